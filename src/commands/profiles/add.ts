import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {BACKEND_KINDS} from '../../core/backend.js'
import {addProfile, parseSettings, settingType} from '../../core/profiles.js'
import {settingsHelp} from '../../ui/settings-help.js'

export interface ProfilesAddResult {
  [key: string]: unknown
  kind: string
  name: string
}

export default class ProfilesAdd extends AgentVaultCommand<typeof ProfilesAdd> {
  // No -p/--profile: the profile is the NAME argument (a --profile would be accepted and ignored).
  static baseFlags = {
    'no-prompt': AgentVaultCommand.baseFlags['no-prompt'],
  } as unknown as typeof AgentVaultCommand.baseFlags
  static args = {name: Args.string({description: 'Profile name ([A-Za-z0-9._-]).', required: true})}
  static description = `Settings are checked against the kind's own (a typo is an error naming the nearest one): text as is, numbers, true/false, and lists as JSON or comma-separated. Credentials are never stored here: use \`agentvault login KIND\`. Change a profile later with \`agentvault profiles set\`.

${settingsHelp()}`
  static examples = [
    '<%= config.bin %> <%= command.id %> prod-bao --kind openbao --set address=https://bao.example.com:8200',
    '<%= config.bin %> <%= command.id %> team --kind local --set allowedDomains=api.openai.com,*.example.com --default',
  ]
  static flags = {
    default: Flags.boolean({description: 'Make it the default profile of its kind.'}),
    kind: Flags.string({description: 'Backend kind.', options: [...BACKEND_KINDS], required: true}),
    set: Flags.string({
      description: 'A setting as key=value (repeatable); lists as JSON or comma-separated.',
      multiple: true,
    }),
  }
  static summary = 'Add a profile.'

  async run(): Promise<ProfilesAddResult> {
    const settings = parseSettings(this.flags.set ?? [], settingType(this.flags.kind))
    const result = await addProfile(
      this.vault.home,
      this.args.name,
      this.flags.kind,
      settings,
      this.flags.default,
    )
    this.logToStderr(`Added ${result.kind} profile ${result.name}`)
    return result
  }
}
