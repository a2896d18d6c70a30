import {Flags} from '@oclif/core'

import type {AuditRecord} from '../../core/audit.js'

import {AgentVaultCommand} from '../../base-command.js'
import {
  AUDIT_SOURCES,
  auditFilterFromFlags,
  type AuditViewEvent,
  collectExternalEvents,
  showAuditTrail,
} from '../../core/audit-view.js'
import {alignedLine, type Column, renderTable} from '../../ui/table.js'

export type AuditResult = AuditRecord[]

export default class Audit extends AgentVaultCommand<typeof Audit> {
  static description =
    'One time-ordered view of what touched which secret: time, command, profile, backend, reference names, operation, target host, outcome, exit code, duration. Never a value. `--json` prints one JSON object per line.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --since 1h',
    '<%= config.bin %> <%= command.id %> --secret OPENAI_KEY --status denied --json',
    '<%= config.bin %> <%= command.id %> --follow',
    '<%= config.bin %> <%= command.id %> --source agentauth --since 7d --json',
    '<%= config.bin %> <%= command.id %> --source all --status denied',
  ]
  static flags = {
    // Not the base flag: no AGENTVAULT_PROFILE, which would silently narrow the whole trail.
    profile: Flags.string({
      char: 'p',
      description: 'Only events of this profile; with --source KIND, read that profile’s audit source.',
      helpGroup: 'GLOBAL',
    }),
    command: Flags.string({description: 'Only this command (e.g. "run", "secrets get").'}),
    follow: Flags.boolean({char: 'f', description: 'Keep printing new events as they are appended.'}),
    limit: Flags.integer({description: 'Only the most recent N events.', min: 1}),
    secret: Flags.string({description: 'Only events naming this secret (substring of the reference).'}),
    since: Flags.string({description: 'From this time: ISO 8601, or a duration ago (30m, 2h, 7d).'}),
    source: Flags.string({
      default: 'local',
      description:
        'Which trail to read: the local log, a backend kind’s own audit source (e.g. agentauth: the agent’s verify activity), or all of them merged in time order.',
      options: [...AUDIT_SOURCES],
    }),
    status: Flags.string({description: 'Only this outcome.', options: ['ok', 'denied', 'error']}),
    until: Flags.string({description: 'Up to this time: ISO 8601, or a duration ago.'}),
  }
  static summary = 'View the audit trail.'

  async run(): Promise<void> {
    const filter = auditFilterFromFlags(this.flags)
    const json = this.jsonEnabled()
    const follow = this.flags.follow ?? false
    const {source} = this.flags
    const shown = source === 'local' ? columns : [...columns, ...sourceColumns]
    let widths: number[] = []
    // The local trail records each event's profile; backend sources are chosen by profile instead.
    const local = this.flags.profile === undefined ? filter : {...filter, profile: this.flags.profile}
    await showAuditTrail(this.vault.home, local, {
      ...(source === 'local' ? {} : {external: () => collectExternalEvents(this.vault, source, filter)}),
      follow,
      local: source === 'local' || source === 'all',
      onHistory: (records) => {
        if (json) for (const record of records) printRecord(record, json, shown, widths)
        else if (follow) {
          // Rows come one at a time: the widths are fixed now, from the history and room to spare.
          widths = followWidths(records, shown)
          process.stdout.write(
            alignedLine(
              shown.map((c) => c.header.toUpperCase()),
              widths,
            ) + '\n',
          )
          for (const record of records) printRecord(record, json, shown, widths)
        } else if (records.length === 0) this.logToStderr('No audit events match.')
        else this.log(renderTable(records, shown).trimEnd())
      },
      onRecord: (record) => printRecord(record, json, shown, widths),
    })
  }
}

const columns: Array<Column<AuditViewEvent>> = [
  {header: 'time', get: (r) => r.time},
  {header: 'command', get: (r) => r.command},
  {header: 'profile', get: (r) => r.profile ?? ''},
  {
    header: 'references',
    get: (r) => [...(r.references ?? []), ...(r.resource_refs ?? [])].join(','),
  },
  {header: 'operation', get: (r) => r.operation ?? ''},
  {header: 'host', get: (r) => r.target_host ?? ''},
  {header: 'outcome', get: (r) => r.outcome},
  {header: 'exit', get: (r) => String(r.exit_code)},
  {header: 'error', get: (r) => r.error_code ?? ''},
  {header: 'ms', get: (r) => String(r.duration_ms)},
]

/** Text fields some sources add (AgentAuth: agent, reason, address; AgentSecrets: target, reason). */
const DETAIL_FIELDS = ['agent_id', 'target', 'reason', 'ip'] as const

/** Extra columns when backend sources are merged in. */
const sourceColumns: Array<Column<AuditViewEvent>> = [
  {header: 'source', get: (r) => r.source ?? 'local'},
  {
    header: 'detail',
    get: (r) =>
      DETAIL_FIELDS.map((field) => (r as unknown as Record<string, unknown>)[field])
        .filter((value): value is string => typeof value === 'string' && value !== '')
        .join(' '),
  },
]

function printRecord(
  record: AuditViewEvent,
  json: boolean,
  shown: Array<Column<AuditViewEvent>>,
  widths: number[],
): void {
  process.stdout.write(
    json
      ? JSON.stringify(record) + '\n'
      : alignedLine(
          shown.map((c) => oneLine(c.get(record))),
          widths,
        ) + '\n',
  )
}

/** Room a followed column keeps for events not seen yet (an ISO time, a reference, a host, a code). */
const FOLLOW_ROOM: Readonly<Record<string, number>> = {
  command: 11,
  error: 16,
  host: 16,
  ms: 5,
  references: 16,
  time: 24,
}

function followWidths(records: AuditViewEvent[], shown: Array<Column<AuditViewEvent>>): number[] {
  return shown.map((column) =>
    Math.max(
      column.header.length,
      FOLLOW_ROOM[column.header] ?? 0,
      ...records.map((record) => oneLine(column.get(record)).length),
    ),
  )
}

function oneLine(text: string): string {
  return text.replaceAll(/[\r\n\t]/g, ' ')
}
