import {AgentVaultCommand} from '../../base-command.js'
import {type AuditVerification, verifyAuditTrail} from '../../core/audit-view.js'

export type AuditVerifyResult = AuditVerification

export default class AuditVerify extends AgentVaultCommand<typeof AuditVerify> {
  // No -p/--profile: this command reads no profile's backend (it would be accepted and ignored).
  // (The cast: the base class types its flags as always carrying --profile; here it is absent.)
  static baseFlags = {
    'no-prompt': AgentVaultCommand.baseFlags['no-prompt'],
  } as unknown as typeof AgentVaultCommand.baseFlags
  static description =
    'Recomputes the SHA-256 chain of the local audit log. Any edited, deleted, inserted or reordered line breaks it: the command then exits 3 and names the first bad entry.'
  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static summary = 'Check the local audit log’s hash chain.'

  async run(): Promise<AuditVerifyResult> {
    const result = await verifyAuditTrail(this.vault.home)
    this.logToStderr(`Audit log intact: ${result.count} entries.`)
    if (result.interrupted)
      this.logToStderr(
        `Note: line ${result.interrupted.line} is an entry that was never finished: ${result.interrupted.reason.replace(/^.*?: /, '')}. No entry is missing; the next command that writes the audit log removes it.`,
      )
    return result
  }
}
