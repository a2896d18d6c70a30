import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {BACKEND_KINDS} from '../../core/backend.js'
import {addProfile, parseSettings} from '../../core/profiles.js'

export interface ProfilesAddResult {
  [key: string]: unknown
  kind: string
  name: string
}

export default class ProfilesAdd extends AgentVaultCommand<typeof ProfilesAdd> {
  static args = {name: Args.string({description: 'Profile name ([A-Za-z0-9._-]).', required: true})}
  static description =
    'Settings are backend-specific (`address`, `namespace`, `allowedDomains`, `allowPrivateNetworks`, `auditPaths`, …). Credentials are never stored here: use `agentvault login`.'
  static examples = [
    '<%= config.bin %> <%= command.id %> prod-bao --kind openbao --set address=https://bao.example.com:8200',
    '<%= config.bin %> <%= command.id %> team --kind local --set allowedDomains=\'["api.openai.com"]\' --default',
  ]
  static flags = {
    default: Flags.boolean({description: 'Make it the default profile of its kind.'}),
    kind: Flags.string({description: 'Backend kind.', options: [...BACKEND_KINDS], required: true}),
    set: Flags.string({
      description: 'A setting as key=value (JSON for lists and booleans; repeatable).',
      multiple: true,
    }),
  }
  static summary = 'Add a profile.'

  async run(): Promise<ProfilesAddResult> {
    const settings = parseSettings(this.flags.set ?? [])
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
