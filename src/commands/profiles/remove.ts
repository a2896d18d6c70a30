import {Args} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {removeProfile} from '../../core/profiles.js'

export interface ProfilesRemoveResult {
  removed: string
}

export default class ProfilesRemove extends AgentVaultCommand<typeof ProfilesRemove> {
  // No -p/--profile: the profile is the NAME argument (a --profile would be accepted and ignored).
  static baseFlags = {
    'no-prompt': AgentVaultCommand.baseFlags['no-prompt'],
  } as unknown as typeof AgentVaultCommand.baseFlags
  static args = {name: Args.string({description: 'Profile name.', required: true})}
  static description =
    'Removes the profile from config.json. Stored credentials are cleared with `agentvault logout`.'
  static examples = ['<%= config.bin %> <%= command.id %> prod-bao']
  static summary = 'Remove a profile.'

  async run(): Promise<ProfilesRemoveResult> {
    const result = await removeProfile(this.vault.home, this.args.name)
    this.logToStderr(`Removed profile ${result.removed}`)
    return result
  }
}
