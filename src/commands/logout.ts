import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../base-command.js'
import {logout} from '../core/status.js'

export interface LogoutResult {
  cleared: boolean
  kind: string
  profile: string
}

export default class Logout extends AgentVaultCommand<typeof Logout> {
  static args = {
    kind: Args.string({
      description: 'Backend kind (default: the active profile’s).',
      options: ['local', 'sanctum', 'agentsecrets', 'openbao', 'agentauth'],
    }),
  }
  static description =
    'Removes the profile’s tokens from the credential store. The local vault and its key are kept. agentauth: a legacy server’s refresh token is revoked first (best effort); AgentAuth v0.7 cannot revoke, so its refresh token stays valid on the server until it expires (a warning says when).'
  static examples = [
    '<%= config.bin %> <%= command.id %> openbao --profile prod-bao',
    '<%= config.bin %> <%= command.id %> openbao --profile prod-bao --revoke',
    '<%= config.bin %> <%= command.id %> agentauth',
    '<%= config.bin %> <%= command.id %>',
  ]
  static flags = {
    revoke: Flags.boolean({description: 'openbao: also revoke the token on the server (revoke-self).'}),
  }
  static summary = 'Clear stored credentials of a profile.'

  async run(): Promise<LogoutResult> {
    const result = await logout(this.vault, this.args.kind, {revoke: this.flags.revoke})
    this.logToStderr(
      result.cleared ? `Signed out of ${result.profile}.` : `No stored credentials for ${result.profile}.`,
    )
    return result
  }
}
