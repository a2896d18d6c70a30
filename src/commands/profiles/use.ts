import {Args} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {useProfile} from '../../core/profiles.js'

export interface ProfilesUseResult {
  active: string
}

export default class ProfilesUse extends AgentVaultCommand<typeof ProfilesUse> {
  // No -p/--profile: the profile is the NAME argument (a --profile would be accepted and ignored).
  static baseFlags = {
    'no-prompt': AgentVaultCommand.baseFlags['no-prompt'],
  } as unknown as typeof AgentVaultCommand.baseFlags
  static args = {
    name: Args.string({description: 'Profile name (or a kind, for its implicit profile).', required: true}),
  }
  static description =
    'The active profile serves commands that take no reference (e.g. `secrets list`) and becomes the default for references of its kind.'
  static examples = [
    '<%= config.bin %> <%= command.id %> prod-bao',
    '<%= config.bin %> <%= command.id %> local',
  ]
  static summary = 'Make a profile the active one.'

  async run(): Promise<ProfilesUseResult> {
    const result = await useProfile(this.vault.home, this.args.name)
    this.logToStderr(`Active profile: ${result.active}`)
    return result
  }
}
