import {AgentVaultCommand} from '../base-command.js'
import {profileStatuses, type ProfileStatusRow, unusableProfiles} from '../core/status.js'
import {renderTable} from '../ui/table.js'

export interface StatusResult {
  profiles: ProfileStatusRow[]
}

export default class Status extends AgentVaultCommand<typeof Status> {
  static aliases = ['whoami']
  static description = `For each profile: whether its backend is reachable, who you are signed in as, and when the token expires. Nothing is sent anywhere but to each profile’s own backend.

Scripts can rely on the exit code: 0 when every profile shown is usable (a local vault not created yet counts as usable), else the code of the worst problem — 5 unreachable, 4 not signed in or key missing, 3 misconfigured — after the table (or the --json result, whose rows always carry every key: null when unknown, and "problem" says what is wrong).`
  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> whoami --json']
  static summary = 'Show each profile: reachable, signed in as, token expiry.'

  async run(): Promise<StatusResult> {
    const profiles = await profileStatuses(this.vault)
    this.log(
      renderTable(profiles, [
        {header: ' ', get: (p) => (p.active ? '*' : '')},
        {header: 'profile', get: (p) => p.name},
        {header: 'kind', get: (p) => p.kind},
        {header: 'reachable', get: (p) => (p.reachable ? 'yes' : 'no')},
        {header: 'signed in', get: (p) => (p.signedIn ? (p.identity ?? 'yes') : 'no')},
        {header: 'expires', get: (p) => p.tokenExpiry ?? ''},
        {header: 'note', get: (p) => p.message ?? ''},
      ]).trimEnd(),
    )
    const unusable = unusableProfiles(profiles)
    if (unusable) this.refuseWithResult(unusable)
    return {profiles}
  }
}
