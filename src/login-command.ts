/**
 * The base of `login KIND` (src/commands/login/<kind>.ts): its flags, help and prompts come from
 * the backend's declaration (src/backends/<kind>/declaration.ts, built by ui/login.ts), so a new
 * backend adds a declaration and a three-line command, not flags in a shared file.
 */
import type {LoginResult} from './core/backend.js'
import type {LoginDeclaration} from './core/declarations.js'

import {AgentVaultCommand} from './base-command.js'
import {LOGIN_DECLARATIONS} from './core/backend-declarations.js'
import {login} from './core/status.js'

export type LoginCommandResult = LoginResult & {kind: string; profile: string}

/** A login command: `kind` is the backend it signs in to, or undefined for the active profile's. */
export abstract class LoginCommand extends AgentVaultCommand<typeof LoginCommand> {
  protected abstract readonly kind: string | undefined

  async run(): Promise<LoginCommandResult> {
    const result = await login(this.vault, this.kind, async (profile) => {
      const {readLoginInputs} = await import('./ui/login.js')
      const declaration: LoginDeclaration = LOGIN_DECLARATIONS[profile.kind]
      return readLoginInputs(declaration, {
        env: process.env,
        flags: this.flags as Record<string, unknown>,
        interactive: this.interactive,
        settings: profile.settings,
      })
    })
    this.logToStderr(result.message)
    return result
  }
}
