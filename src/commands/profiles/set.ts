import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {setProfile} from '../../core/profiles.js'
import {settingsHelp} from '../../ui/settings-help.js'

export interface ProfilesSetResult {
  [key: string]: unknown
  kind: string
  name: string
}

export default class ProfilesSet extends AgentVaultCommand<typeof ProfilesSet> {
  // No -p/--profile: the profile is the NAME argument (a --profile would be accepted and ignored).
  static baseFlags = {
    'no-prompt': AgentVaultCommand.baseFlags['no-prompt'],
  } as unknown as typeof AgentVaultCommand.baseFlags
  static args = {
    name: Args.string({description: 'Profile name.', required: true}),
    setting: Args.string({description: 'key=value (as many as you like).'}),
  }
  static description = `Edits a configured profile in place: each key=value (or --set key=value) sets one setting, --unset removes one. Settings are checked as \`profiles add\` checks them — a typo is an error naming the nearest setting of the kind — and nothing is written unless all are valid.

${settingsHelp()}`
  static examples = [
    '<%= config.bin %> <%= command.id %> prod-bao address=https://bao.example.com:8200 namespace=team-a',
    '<%= config.bin %> <%= command.id %> team allowedDomains=api.openai.com,api.anthropic.com',
    '<%= config.bin %> <%= command.id %> prod-bao --unset namespace',
  ]
  static flags = {
    set: Flags.string({description: 'A setting as key=value (repeatable).', multiple: true}),
    unset: Flags.string({description: 'Remove a setting (repeatable).', multiple: true}),
  }
  // key=value pairs after the name, as many as given.
  static strict = false
  static summary = 'Change settings of a profile.'

  async run(): Promise<ProfilesSetResult> {
    const pairs = this.positionals.slice(1)
    const result = await setProfile(this.vault.home, this.args.name, {
      set: [...pairs, ...(this.flags.set ?? [])],
      unset: this.flags.unset ?? [],
    })
    this.logToStderr(`Updated ${result.kind} profile ${result.name}`)
    return result
  }
}
