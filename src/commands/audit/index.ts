import {Flags} from '@oclif/core'

import type {AuditRecord} from '../../core/audit.js'

import {AgentVaultCommand} from '../../base-command.js'
import {auditFilterFromFlags, followAuditTrail, readAuditTrail} from '../../core/audit-view.js'
import {renderTable} from '../../ui/table.js'

export type AuditResult = AuditRecord[]

export default class Audit extends AgentVaultCommand<typeof Audit> {
  static description =
    'One time-ordered view of what touched which secret: time, command, profile, backend, reference names, operation, target host, outcome, exit code, duration. Never a value. `--json` prints one JSON object per line.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --since 1h',
    '<%= config.bin %> <%= command.id %> --secret OPENAI_KEY --status denied --json',
    '<%= config.bin %> <%= command.id %> --follow',
  ]
  static flags = {
    command: Flags.string({description: 'Only this command (e.g. "run", "secrets get").'}),
    follow: Flags.boolean({char: 'f', description: 'Keep printing new events as they are appended.'}),
    limit: Flags.integer({description: 'Only the most recent N events.', min: 1}),
    secret: Flags.string({description: 'Only events naming this secret (substring of the reference).'}),
    since: Flags.string({description: 'From this time: ISO 8601, or a duration ago (30m, 2h, 7d).'}),
    source: Flags.string({default: 'local', description: 'Which trail to read.', options: ['local', 'all']}),
    status: Flags.string({description: 'Only this outcome.', options: ['ok', 'denied', 'error']}),
    until: Flags.string({description: 'Up to this time: ISO 8601, or a duration ago.'}),
  }
  static summary = 'View the audit trail.'

  async run(): Promise<void> {
    const filter = await auditFilterFromFlags(this.flags)
    const json = this.jsonEnabled()
    const print = (record: AuditRecord): void => printRecord(record, json)

    const records = await readAuditTrail(this.vault.home, filter)
    if (!this.jsonEnabled() && !this.flags.follow) {
      if (records.length === 0) this.logToStderr('No audit events match.')
      else this.log(renderTable(records, columns).trimEnd())
    } else {
      for (const record of records) print(record)
    }

    if (this.flags.follow) await followAuditTrail(this.vault.home, filter, print)
  }
}

const columns = [
  {header: 'time', get: (r: AuditRecord) => r.time},
  {header: 'command', get: (r: AuditRecord) => r.command},
  {header: 'profile', get: (r: AuditRecord) => r.profile ?? ''},
  {
    header: 'references',
    get: (r: AuditRecord) => [...(r.references ?? []), ...(r.resource_refs ?? [])].join(','),
  },
  {header: 'operation', get: (r: AuditRecord) => r.operation ?? ''},
  {header: 'outcome', get: (r: AuditRecord) => r.outcome},
  {header: 'exit', get: (r: AuditRecord) => String(r.exit_code)},
  {header: 'ms', get: (r: AuditRecord) => String(r.duration_ms)},
]

function printRecord(record: AuditRecord, json: boolean): void {
  process.stdout.write(
    json ? JSON.stringify(record) + '\n' : columns.map((c) => c.get(record)).join('  ') + '\n',
  )
}
