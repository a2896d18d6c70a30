import {Flags} from '@oclif/core'

import type {AuditViewEvent} from '../../core/audit-view.js'
import type {AuditRecord} from '../../core/audit.js'

import {AgentVaultCommand} from '../../base-command.js'
import {type Column, renderTable} from '../../ui/table.js'

export type ProxyLogsResult = AuditRecord[]

const columns: Array<Column<AuditViewEvent>> = [
  {header: 'time', get: (r) => r.time},
  {header: 'agent', get: (r) => (r as AuditRecord).agent_id ?? ''},
  {header: 'status', get: (r) => String((r as AuditRecord).status ?? '')},
  {header: 'outcome', get: (r) => r.outcome},
  {header: 'host', get: (r) => (r as AuditRecord).target_host ?? ''},
  {header: 'references', get: (r) => [...(r.references ?? []), ...(r.resource_refs ?? [])].join(',')},
  {header: 'error', get: (r) => (r as AuditRecord).error_code ?? ''},
  {header: 'ms', get: (r) => String(r.duration_ms)},
]

export default class ProxyLogs extends AgentVaultCommand<typeof ProxyLogs> {
  static description =
    'The audit events of proxy requests (command "proxy" in the audit log): time, the agent id the caller sent, the status returned, outcome, target host, references and error code. Never a value. --json prints one JSON object per line; `agentvault audit` shows the same events among all others.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --limit 20',
    '<%= config.bin %> <%= command.id %> --since 1h --status denied --json',
    '<%= config.bin %> <%= command.id %> --follow',
  ]
  static flags = {
    follow: Flags.boolean({char: 'f', description: 'Keep printing new events as they are appended.'}),
    limit: Flags.integer({description: 'Only the most recent N events.', min: 1}),
    since: Flags.string({description: 'From this time: ISO 8601, or a duration ago (30m, 2h, 7d).'}),
    status: Flags.string({description: 'Only this outcome.', options: ['ok', 'denied', 'error']}),
  }
  static summary = 'Show the proxy’s requests from the audit log.'

  async run(): Promise<void> {
    const {auditFilterFromFlags, showAuditTrail} = await import('../../core/audit-view.js')
    const json = this.jsonEnabled()
    const print = (record: AuditViewEvent): void => {
      process.stdout.write(
        json ? `${JSON.stringify(record)}\n` : `${columns.map((c) => c.get(record)).join('  ')}\n`,
      )
    }

    await showAuditTrail(this.vault.home, auditFilterFromFlags({...this.flags, command: 'proxy'}), {
      follow: this.flags.follow,
      onHistory: (records) => {
        if (json || this.flags.follow) for (const record of records) print(record)
        else if (records.length === 0) this.logToStderr('No proxy requests in the audit log.')
        else this.log(renderTable(records, columns).trimEnd())
      },
      onRecord: print,
    })
  }
}
