/**
 * The service behind `audit` and `audit verify`: flag → filter translation, reading, following and
 * verifying the local trail, and merging it with backends' own audit sources (AgentSecrets proxy
 * logs, AgentAuth activity) into one time-ordered view (product.md §8).
 */
import type {Session} from './session.js'

import {
  type AuditFilter,
  type AuditRecord,
  followAudit,
  matchesAuditFilter,
  parseTimeBound,
  readAudit,
  verifyAudit,
} from './audit.js'
import {type BackendKind, type ExternalAuditEvent, isBackendKind} from './backend.js'
import {assertHomeIsDirectory, listProfiles, type Profile} from './config.js'
import {AgentVaultError, NotSupportedError, UsageError} from './errors.js'

/** `audit --source`: the local trail, one backend kind's sources, or everything. */
/** The backend kinds with an audit source of their own (`auditEvents`). */
export const AUDIT_SOURCE_KINDS = ['agentsecrets', 'agentauth'] as const satisfies readonly BackendKind[]

/** What `audit --source` accepts: the local trail, a kind with an audit source, or all merged. */
export const AUDIT_SOURCES = ['local', ...AUDIT_SOURCE_KINDS, 'all'] as const

/** One line of the audit view: a local record or a backend source's event. */
export type AuditViewEvent = AuditRecord | ExternalAuditEvent

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

export interface ShowAuditOptions {
  /** Backend sources to merge into the history (see {@link collectExternalEvents}). */
  external?: () => Promise<ExternalAuditEvent[]>
  /** Keep printing new events until SIGINT/SIGTERM. */
  follow: boolean
  /** Read the local trail (default true); false shows only `external`. */
  local?: boolean
  /** The matching events already in the trail (time-ordered; `limit` applies here). */
  onHistory(records: AuditViewEvent[]): void
  /** Each matching event appended later (follow only). */
  onRecord(record: AuditRecord): void
}

/**
 * Show the trail, and with `follow` keep showing it. Following starts before the history is read,
 * so an event appended while the history is being read is shown exactly once: never lost in the
 * gap between the two, never twice.
 */
export async function showAuditTrail(
  home: string,
  filter: AuditFilter,
  options: ShowAuditOptions,
): Promise<void> {
  assertHomeIsDirectory(home)
  const history = async (): Promise<AuditViewEvent[]> => {
    if (!options.external) return readAudit(home, filter)
    const [local, external] = await Promise.all([
      options.local === false ? [] : readAudit(home, {...filter, limit: undefined}),
      options.external(),
    ])
    return mergeAuditEvents(local, external, filter.limit)
  }

  if (!options.follow) {
    options.onHistory(await history())
    return
  }

  if (options.local === false)
    throw new UsageError('FOLLOW_LOCAL_ONLY', '--follow follows the local trail only', {
      suggestion:
        'Use --source local or --source all with --follow, or drop --follow to read a backend source.',
    })

  const controller = new AbortController()
  const stop = (): void => controller.abort()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const followed = followAudit(home, {...filter, limit: undefined}, controller.signal)
  // The first next() fixes the starting point (the log's current end) synchronously.
  const first = followed.next()
  first.catch(() => {})
  try {
    const shown = new Set<string>()
    const past = await history()
    options.onHistory(past)
    for (const record of past) if ('hash' in record) shown.add(record.hash)
    for (let next = await first; !next.done; next = await followed.next()) {
      if (!shown.has(next.value.hash)) options.onRecord(next.value)
    }
  } finally {
    controller.abort()
    await followed.return().catch(() => {})
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
}

/** Local records and source events in time order (ties: local first, then as given); the last `limit`. */
export function mergeAuditEvents(
  local: AuditRecord[],
  external: ExternalAuditEvent[],
  limit?: number,
): AuditViewEvent[] {
  const merged = [...local, ...external]
    .map((event, index) => ({event, index, time: Date.parse(event.time)}))
    .sort((a, b) => a.time - b.time || a.index - b.index)
    .map(({event}) => event)
  return limit === undefined ? merged : merged.slice(-limit)
}

/**
 * The profiles whose audit sources `--source` names: for a kind, `--profile` when it is of that
 * kind, else its configured profiles, else its implicit one; for `all`, every configured profile.
 */
async function sourceProfiles(session: Session, source: 'all' | BackendKind): Promise<Profile[]> {
  const config = await session.config()
  const configured = listProfiles(config).filter((profile) => !profile.implicit)
  if (source === 'all') return configured
  const chosen = session.options.profileName === undefined ? undefined : await session.profileFor(source)
  if (chosen && chosen.name === session.options.profileName) return [chosen]
  const ofKind = configured.filter((profile) => profile.kind === source)
  return ofKind.length > 0 ? ofKind : [await session.profileFor(source)]
}

/**
 * Events of the backend sources `source` names (`local`: none), filtered like local records. With
 * `all`, backends without a source are skipped. A failing source (e.g. an AgentSecrets profile on
 * the proxy transport, which has no readable log) is skipped with a warning, with `all` as with a
 * named kind — unless it was the only one asked for (`--profile`, or every profile of the kind
 * failed): then its error stands.
 */
export async function collectExternalEvents(
  session: Session,
  source: string,
  filter: AuditFilter,
): Promise<ExternalAuditEvent[]> {
  if (source === 'local') return []
  if (source !== 'all' && !isBackendKind(source))
    throw new UsageError('BAD_SOURCE', `Unknown audit source ${source}`, {
      suggestion: `Use one of ${AUDIT_SOURCES.join(', ')}.`,
    })
  const profiles = await sourceProfiles(session, source)
  const settled = await Promise.allSettled(
    profiles.map(async (profile): Promise<ExternalAuditEvent[] | undefined> => {
      const backend = await session.backendFor(profile)
      if (!backend.auditEvents) {
        if (source === 'all') return undefined
        throw new NotSupportedError(profile.kind, 'An audit source', 'Use --source local (or all).')
      }

      return backend.auditEvents(filter)
    }),
  )
  const failures = settled.flatMap((result) =>
    result.status === 'rejected' ? [result.reason as unknown] : [],
  )
  const unexpected = failures.find((error) => !(error instanceof AgentVaultError))
  if (unexpected !== undefined) throw unexpected
  const read = settled.filter((result) => result.status === 'fulfilled' && result.value !== undefined)
  if (source !== 'all' && read.length === 0 && failures.length > 0) throw failures[0]
  for (const [index, result] of settled.entries()) {
    if (result.status === 'rejected')
      session.options.warn(
        `Skipped the audit source of profile ${(profiles[index] as Profile).name}: ${(result.reason as AgentVaultError).message}`,
      )
  }

  return settled
    .flatMap((result) => (result.status === 'fulfilled' ? (result.value ?? []) : []))
    .filter((event) => matchesAuditFilter(event, filter))
}

export interface AuditVerification {
  count: number
  /** An append cut short left the start of a line at the end (see core/audit.ts); the next append removes it. */
  interrupted?: {line: number; reason: string}
  ok: true
}

export async function verifyAuditTrail(home: string): Promise<AuditVerification> {
  assertHomeIsDirectory(home)
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

  return result.interrupted
    ? {count: result.count, interrupted: result.interrupted, ok: true}
    : {count: result.count, ok: true}
}
