import {AgentVaultCommand} from '../../base-command.js'
import {listProfiles} from '../../core/config.js'
import {renderTable} from '../../ui/table.js'

export interface ProfilesListResult {
  profiles: Array<{
    active: boolean
    default: boolean
    implicit: boolean
    kind: string
    name: string
    settings: Record<string, unknown>
  }>
}

export default class ProfilesList extends AgentVaultCommand<typeof ProfilesList> {
  static aliases = ['profiles ls']
  // No -p/--profile: this command reads no profile's backend (it would be accepted and ignored).
  // (The cast: the base class types its flags as always carrying --profile; here it is absent.)
  static baseFlags = {
    'no-prompt': AgentVaultCommand.baseFlags['no-prompt'],
  } as unknown as typeof AgentVaultCommand.baseFlags
  static description =
    'Configured profiles, plus the implicit `local` profile when none is configured and the implicit profile of each other kind whose native env vars are set (e.g. BAO_ADDR). `*` marks the active profile.'
  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static summary = 'List profiles.'

  async run(): Promise<ProfilesListResult> {
    const profiles = listProfiles(await this.vault.config(), this.vault.options.env)
    this.log(
      renderTable(profiles, [
        {header: ' ', get: (p) => (p.active ? '*' : '')},
        {header: 'name', get: (p) => p.name},
        {header: 'kind', get: (p) => p.kind},
        {header: 'default', get: (p) => (p.default ? 'yes' : '')},
        {header: 'settings', get: (p) => JSON.stringify(p.settings)},
      ]).trimEnd(),
    )
    return {profiles}
  }
}
