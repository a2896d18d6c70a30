import {Args, Flags} from '@oclif/core'

import type {LoginResult} from '../core/backend.js'

import {AgentVaultCommand} from '../base-command.js'
import {login} from '../core/status.js'

export type LoginCommandResult = LoginResult & {kind: string; profile: string}

export default class Login extends AgentVaultCommand<typeof Login> {
  static args = {
    kind: Args.string({
      description: 'Backend kind (default: the active profile’s).',
      options: ['local', 'sanctum', 'agentsecrets', 'openbao', 'agentauth'],
    }),
  }
  static description = `For \`local\`, initialises the embedded vault and chooses where its key lives: AGENTVAULT_PASSPHRASE (scrypt), the OS keychain, or a 0600 key file — by default the first that is available. Other backends sign in and keep their tokens in the credential store.`
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> local --key-source file',
    'AGENTVAULT_PASSPHRASE=… <%= config.bin %> <%= command.id %> local --key-source passphrase',
  ]
  static flags = {
    'key-source': Flags.string({
      description: 'local: where the vault key lives.',
      options: ['passphrase', 'keychain', 'file'],
    }),
  }
  static summary = 'Sign in to a backend (or initialise the local vault).'

  async run(): Promise<LoginCommandResult> {
    const result = await login(this.vault, this.args.kind, {keySource: this.flags['key-source']})
    this.logToStderr(result.message)
    return result
  }
}
