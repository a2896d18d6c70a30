/**
 * The service behind `audit` and `audit verify`: flag → filter translation, reading, following and
 * verifying the local trail. (Backend audit sources join here as they arrive.)
 */
import {
  type AuditFilter,
  type AuditRecord,
  followAudit,
  parseTimeBound,
  readAudit,
  verifyAudit,
} from './audit.js'
import {AgentVaultError} from './errors.js'

export interface AuditFlags {
  command?: string
  limit?: number
  secret?: string
  since?: string
  status?: string
  until?: string
}

export function auditFilterFromFlags(flags: AuditFlags, now = new Date()): AuditFilter {
  return {
    command: flags.command,
    limit: flags.limit,
    secret: flags.secret,
    since: flags.since === undefined ? undefined : parseTimeBound(flags.since, now),
    status: flags.status as AuditFilter['status'],
    until: flags.until === undefined ? undefined : parseTimeBound(flags.until, now),
  }
}

export async function readAuditTrail(home: string, filter: AuditFilter): Promise<AuditRecord[]> {
  return readAudit(home, filter)
}

/** Print new events until SIGINT/SIGTERM. */
export async function followAuditTrail(
  home: string,
  filter: AuditFilter,
  onRecord: (record: AuditRecord) => void,
): Promise<void> {
  const controller = new AbortController()
  const stop = (): void => controller.abort()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    for await (const record of followAudit(home, {...filter, limit: undefined}, controller.signal))
      onRecord(record)
  } finally {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
}

export interface AuditVerification {
  count: number
  ok: true
}

export async function verifyAuditTrail(home: string): Promise<AuditVerification> {
  const result = await verifyAudit(home)
  if (!result.ok) {
    const bad = result.firstBad
    const where = bad
      ? `line ${bad.line}${bad.seq === undefined ? '' : ` (seq ${bad.seq})`}: ${bad.reason}`
      : 'unknown entry'
    throw new AgentVaultError(
      'config',
      'AUDIT_CHAIN_BROKEN',
      `The audit log's hash chain is broken at ${where}`,
      {
        details: {firstBad: bad},
        suggestion:
          'The log was edited, truncated or reordered after it was written; keep a copy for investigation.',
      },
    )
  }

  return {count: result.count, ok: true}
}
