/**
 * The agent's verify activity as an audit source (protocols/agentauth.md §5.6, §10.6): pages of 100
 * until a page is empty, `offset + page length ≥ total` (v0.7) or `has_more` is false (legacy),
 * de-duplicated by entry id because new attempts shift the offsets of a newest-first list.
 */
import type {ExternalAuditEvent} from '../../core/backend.js'
import type {AgentAuthConnection} from './connection.js'

import {activityOperation} from './operations.js'
import {type ActivityEntry, parseActivityPage} from './responses.js'

/** Entries asked for per activity page (§10.6). */
export const ACTIVITY_PAGE_SIZE = 100

/** How far back to read. */
export interface ActivityOptions {
  /** Stop paging once a page reaches entries older than this (the list is newest first). */
  since?: Date
}

const entryKey = (entry: ActivityEntry): string =>
  entry.id === undefined
    ? `t:${entry.timestamp}|${entry.success}|${entry.reason}|${entry.ip_address ?? ''}`
    : `id:${String(entry.id)}`

/** Every activity entry of `agentId`, newest first, each once. */
export async function readActivity(
  connection: AgentAuthConnection,
  agentId: string,
  options: ActivityOptions = {},
): Promise<ActivityEntry[]> {
  const seen = new Set<string>()
  const entries: ActivityEntry[] = []
  for (let offset = 0; ;) {
    const answer = await connection.jwtCall(activityOperation(agentId, ACTIVITY_PAGE_SIZE, offset))
    const page = parseActivityPage(answer.body)
    let added = 0
    for (const entry of page.entries) {
      const key = entryKey(entry)
      if (seen.has(key)) continue
      seen.add(key)
      entries.push(entry)
      added++
    }

    const {length} = page.entries
    offset += length
    const oldest = page.entries.at(-1)
    const done =
      length === 0 ||
      added === 0 ||
      page.hasMore === false ||
      (page.hasMore === undefined && page.total !== undefined && offset >= page.total) ||
      (options.since !== undefined &&
        oldest !== undefined &&
        Date.parse(oldest.timestamp) < options.since.getTime())
    if (done) return entries
  }
}

/** agentvault's view of one verify attempt (§10.6). */
export type AgentAuthAuditEvent = {
  agent_id: string
  /** The caller's address as the server saw it; null when it recorded none. */
  ip: null | string
  /** The server's reason, verbatim (`Valid credentials`, `invalid_api_key`, …). */
  reason: string
} & ExternalAuditEvent

/**
 * One entry as an audit event (§10.6). The attempt was not an agentvault command: `exit_code` is
 * what agentvault would have answered (0, or 4 for a refused sign-in) and `duration_ms` is unknown (0).
 */
export function activityEvent(entry: ActivityEntry, profile: string): AgentAuthAuditEvent {
  return {
    time: entry.timestamp,
    command: 'verify',
    outcome: entry.success ? 'ok' : 'denied',
    exit_code: entry.success ? 0 : 4,
    duration_ms: 0,
    profile,
    backend: 'agentauth',
    source: 'agentauth',
    agent_id: entry.agent_id,
    reason: entry.reason,
    ip: entry.ip_address,
  }
}
