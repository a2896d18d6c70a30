/**
 * AgentSecrets' audit trail normalised to agentvault's event fields (protocols/agentsecrets.md §9):
 * NDJSON from `log(s) --json`, the legacy `proxy.log` JSONL, or the `proxy logs` table. Only the
 * mapped fields are copied — agent, token, workspace and every other field are dropped — so no
 * value can pass through. Pure; hostile input yields fewer events or a typed error, never a crash.
 */
import type {AuditFilter} from '../../core/audit.js'
import type {ExternalAuditEvent} from '../../core/backend.js'

import {KEY_PATTERN} from './errors.js'
import {parseTable} from './text.js'

/** agentvault's view of one AgentSecrets entry. */
export type AgentSecretsAuditEvent = ExternalAuditEvent & {
  /** Table source: only the time of day was known; the date is inferred (open point 13). */
  approximate?: boolean
  method?: string
  reason?: null | string
  redacted?: boolean
  /** The called URL, or null when unknown (truncated in the table; env runs). */
  target?: null | string
}

export interface NormaliseContext {
  /** The profile whose source this is (the event's `profile`). */
  profile: string
}

const MAX_KEYS = 64
const HOST = /^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]{2,45}\]$/
const METHOD = /^[A-Z]{1,16}$/
const SLUG = /^[a-z][a-z0-9_]{0,63}$/

/** The key as a reference; the profile is its own field (`profile`), as in local records. */
function referenceOf(key: string): string {
  return `agentsecrets://${key}`
}

function keysOf(value: unknown): string[] {
  if (!Array.isArray(value)) return []
  return value
    .filter((key): key is string => typeof key === 'string' && KEY_PATTERN.test(key) && key.length <= 128)
    .slice(0, MAX_KEYS)
}

function hostOf(url: string): string | undefined {
  try {
    const {hostname} = new URL(url)
    return HOST.test(hostname) ? hostname.toLowerCase() : undefined
  } catch {
    return undefined
  }
}

function safeUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048) return undefined
  try {
    const url = new URL(value)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
    // Credentials in a logged URL are not ours to repeat.
    url.username = ''
    url.password = ''
    return url.href
  } catch {
    return undefined
  }
}

function nonNegative(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value < 1e12
    ? Math.round(value)
    : undefined
}

function statusCode(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 999
    ? value
    : undefined
}

function reasonOf(value: unknown): null | string {
  if (typeof value !== 'string' || value === '-' || value === '') return null
  return SLUG.test(value) ? value : 'other'
}

/** What one entry says, already checked; {@link buildEvent} turns it into an event. */
interface EntryParts {
  approximate?: boolean
  blocked: boolean
  /** The HTTP status, or for `ENV` the child's exit code. */
  code?: number
  duration: number
  host?: string
  keys: string[]
  method?: string
  /** AgentSecrets' own verdict was OK. */
  ok: boolean
  reason: null | string
  redacted?: boolean
  target: null | string
  time: Date
}

/** agentvault's outcome and exit code for an entry (§9: upstream 4xx/5xx stay `ok`). */
function verdict(
  parts: EntryParts,
  env: boolean,
): {exitCode: number; outcome: AgentSecretsAuditEvent['outcome']} {
  if (parts.blocked) return {exitCode: 7, outcome: 'denied'}
  // AgentSecrets has no exit codes of its own: env runs carry the child's, calls agentvault's equivalent.
  if (env) return {exitCode: parts.code ?? 1, outcome: parts.ok && parts.code === 0 ? 'ok' : 'error'}
  return parts.ok ? {exitCode: 0, outcome: 'ok'} : {exitCode: 1, outcome: 'error'}
}

function buildEvent(parts: EntryParts, context: NormaliseContext): AgentSecretsAuditEvent {
  const env = parts.method === 'ENV'
  const {exitCode, outcome} = verdict(parts, env)
  return {
    time: parts.time.toISOString(),
    command: env ? 'agentsecrets env' : 'agentsecrets call',
    outcome,
    exit_code: exitCode,
    duration_ms: parts.duration,
    profile: context.profile,
    backend: 'agentsecrets',
    ...(parts.keys.length > 0 && {references: parts.keys.map((key) => referenceOf(key))}),
    operation: env ? 'env' : 'http_request',
    ...(!env && parts.host !== undefined && {target_host: parts.host}),
    ...(!env && parts.code !== undefined && {status: parts.code}),
    source: 'agentsecrets',
    ...(parts.blocked && {blocked: true}),
    ...(parts.method !== undefined && {method: parts.method}),
    target: env ? null : parts.target,
    reason: parts.reason,
    ...(parts.redacted !== undefined && {redacted: parts.redacted}),
    ...(parts.approximate && {approximate: true}),
  }
}

function methodOf(value: unknown): string | undefined {
  const upper = typeof value === 'string' ? value.toUpperCase() : ''
  return METHOD.test(upper) ? upper : undefined
}

/** One NDJSON / JSONL record (pkg/audit/event.go, pkg/proxy/audit.go) → an event, or undefined. */
export function normaliseRecord(
  record: unknown,
  context: NormaliseContext,
): AgentSecretsAuditEvent | undefined {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) return undefined
  const entry = record as Record<string, unknown>
  const time = typeof entry.timestamp === 'string' ? Date.parse(entry.timestamp) : Number.NaN
  if (!Number.isFinite(time)) return undefined
  const status = typeof entry.status === 'string' ? entry.status.toUpperCase() : ''
  const target = safeUrl(entry.target_url)
  const domain =
    typeof entry.domain === 'string' && HOST.test(entry.domain) ? entry.domain.toLowerCase() : undefined
  const host = domain ?? (target === undefined ? undefined : hostOf(target))
  return buildEvent(
    {
      blocked: status === 'BLOCKED',
      code: statusCode(entry.status_code),
      duration: nonNegative(entry.duration_ms) ?? 0,
      ...(host !== undefined && {host}),
      keys: keysOf(entry.secret_keys),
      method: methodOf(entry.method),
      ok: status === 'OK',
      reason: reasonOf(entry.reason),
      ...(typeof entry.redacted === 'boolean' && {redacted: entry.redacted}),
      target: target ?? null,
      time: new Date(time),
    },
    context,
  )
}

/** NDJSON or JSONL text: every line that parses to a record; other lines (banners, junk) are skipped. */
export function parseJsonLines(text: string, context: NormaliseContext): AgentSecretsAuditEvent[] {
  const events: AgentSecretsAuditEvent[] = []
  for (const line of text.split('\n')) {
    const trimmed = line.trim()
    if (!trimmed.startsWith('{')) continue
    let record: unknown
    try {
      record = JSON.parse(trimmed)
    } catch {
      continue
    }

    const event = normaliseRecord(record, context)
    if (event) events.push(event)
  }

  return events
}

const TABLE_COLUMNS = [
  'Time',
  'Status',
  'Method',
  'Target URL',
  'Secrets',
  'Auth',
  'Code',
  'Reason',
  'Duration',
] as const

/** `HH:MM:SS` on today's local date, or the previous day when that would be in the future (open point 13). */
function datedTime(text: string, now: Date): Date | undefined {
  const match = /^(\d{2}):(\d{2}):(\d{2})$/.exec(text)
  if (!match) return undefined
  const [hours, minutes, seconds] = [Number(match[1]), Number(match[2]), Number(match[3])]
  if (hours > 23 || minutes > 59 || seconds > 59) return undefined
  const date = new Date(now)
  date.setHours(hours, minutes, seconds, 0)
  if (date.getTime() > now.getTime()) date.setDate(date.getDate() - 1)
  return date
}

/** The `Target URL` cell: scheme removed, cut to 27 characters + `...` (§9). */
function targetCell(cell: string): {host?: string; target: null | string} {
  const truncated = cell.endsWith('...')
  const shown = cell.replace(/\.\.\.$/, '')
  // A cut that falls inside the host leaves no trustworthy host.
  const hostPart = truncated && !shown.includes('/') ? '' : (shown.split('/')[0] ?? '')
  const host = hostPart.replace(/:\d+$/, '')
  // Without its scheme the URL is not known for sure: an untruncated one is kept as printed.
  const target = !truncated && /^[\u0021-\u007E]{1,200}$/.test(cell) ? cell : null
  return {...(HOST.test(host) && {host: host.toLowerCase()}), target}
}

function tableRowParts(row: Record<string, string>, now: Date): EntryParts | undefined {
  const time = datedTime(row.time ?? '', now)
  if (!time) return undefined
  const statusCell = (row.status ?? '').toUpperCase()
  const codeCell = row.code ?? ''
  const duration = /^(\d{1,12})\s*ms$/.exec(row.duration ?? '')
  return {
    approximate: true,
    blocked: /\bBLOCK/.test(statusCell),
    ...(/^\d{1,3}$/.test(codeCell) && {code: Number(codeCell)}),
    duration: duration ? Number(duration[1]) : 0,
    ...targetCell(row['target url'] ?? ''),
    keys: (row.secrets ?? '')
      .split(', ')
      .filter((key) => KEY_PATTERN.test(key) && key.length <= 128)
      .slice(0, MAX_KEYS),
    method: methodOf(row.method),
    ok: /\bOK\b/.test(statusCell),
    reason: reasonOf(row.reason),
    ...(/REDACTED/.test(statusCell) && {redacted: true}),
    time,
  }
}

/** The 9-column `proxy logs` table (§9): newest first, local times, truncated targets. */
export function parseProxyLogsTable(
  text: string,
  context: NormaliseContext,
  now = new Date(),
): AgentSecretsAuditEvent[] {
  const table = parseTable(text, TABLE_COLUMNS, 'proxy logs')
  const events: AgentSecretsAuditEvent[] = []
  for (const row of table.rows) {
    const parts = tableRowParts(row, now)
    if (parts) events.push(buildEvent(parts, context))
  }

  // Rows are newest first; events go oldest first.
  return events.reverse()
}

/** agentvault's audit filter applied to normalised events (limit: the most recent N). */
export function filterEvents(
  events: AgentSecretsAuditEvent[],
  filter: AuditFilter,
): AgentSecretsAuditEvent[] {
  const matching = events.filter((event) => {
    const time = Date.parse(event.time)
    if (filter.since && !(time >= filter.since.getTime())) return false
    if (filter.until && !(time <= filter.until.getTime())) return false
    if (filter.status !== undefined && event.outcome !== filter.status) return false
    if (filter.backend !== undefined && event.backend !== filter.backend) return false
    if (filter.profile !== undefined && event.profile !== filter.profile) return false
    if (
      filter.command !== undefined &&
      event.command !== filter.command &&
      !event.command.startsWith(`${filter.command} `)
    )
      return false
    if (
      filter.secret !== undefined &&
      !(event.references ?? []).some((name) => name.includes(filter.secret!))
    )
      return false
    return true
  })
  const ordered = matching
    .map((event, index) => ({event, index, time: Date.parse(event.time)}))
    .sort((a, b) => a.time - b.time || a.index - b.index)
    .map(({event}) => event)
  return filter.limit === undefined ? ordered : ordered.slice(-filter.limit)
}
