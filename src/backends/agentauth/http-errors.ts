/**
 * AgentAuth answers → agentvault's typed errors (protocols/agentauth.md §3 "Error bodies", §9).
 * The text shown is the server's `message`, else its `error`, plus one `field: message` line per
 * `details` entry (and legacy's `required`/`valid_tiers`/`invalid_permissions` extras); a non-JSON
 * body yields the status line. Server text is cut short and stripped of control characters; a
 * request's secrets are never part of it (no error path quotes a request body).
 */
import {
  AgentVaultError,
  AuthError,
  BackendUnavailableError,
  DeniedError,
  RateLimitedError,
  UsageError,
} from '../../core/errors.js'
import {type HttpAnswer, requestedWaitMs} from './http-client.js'

/** Which kind of route answered: decides what a 401 or 403 means (§9). */
export type RouteKind = 'jwt' | 'public' | 'refresh' | 'verify'

/** What the failing call was, for the message and the suggestion. */
export interface ErrorContext {
  /** What was being done, for the message: `list agents`. */
  operation: string
  /** The profile, for `login` suggestions. */
  profile: string
  route: RouteKind
}

const MAX_TEXT = 300

function clean(text: string): string {
  const flat = text.replaceAll(/[\u0000-\u001F\u007F-\u009F]+/g, ' ').trim()
  return flat.length > MAX_TEXT ? `${flat.slice(0, MAX_TEXT)}…` : flat
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []
}

/** The server's own words about a failed call: a headline and detail lines. */
export function serverMessage(answer: Pick<HttpAnswer, 'body' | 'json' | 'status' | 'statusText'>): {
  details: string[]
  text: string
} {
  const status = `HTTP ${answer.status}${answer.statusText ? ` ${answer.statusText}` : ''}`
  if (!answer.json || !isRecord(answer.body)) return {details: [], text: clean(status)}
  const {body} = answer
  const headline = nonEmpty(body.message) ?? nonEmpty(body.error) ?? status
  return {
    details: [...validationLines(body), ...legacyExtras(body)].map((line) => clean(line)),
    text: clean(headline),
  }
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** v0.7 `details`: `[{field, message}]` (or a string). */
function validationLines(body: Record<string, unknown>): string[] {
  if (typeof body.details === 'string') return [body.details]
  if (!Array.isArray(body.details)) return []
  return body.details
    .slice(0, 20)
    .filter(
      (entry): entry is {field?: unknown; message: string} =>
        isRecord(entry) && typeof entry.message === 'string',
    )
    .map((entry) => (typeof entry.field === 'string' ? `${entry.field}: ${entry.message}` : entry.message))
}

/** Legacy extras (and v0.7's `available`): required fields, valid values, refused permissions. */
function legacyExtras(body: Record<string, unknown>): string[] {
  const lines: string[] = []
  const list = (label: string, value: unknown): void => {
    const items = stringList(value)
    if (items.length > 0) lines.push(`${label}: ${items.join(', ')}`)
  }

  list('required', body.required)
  list('valid tiers', body.valid_tiers)
  list('valid events', body.valid_events ?? body.available)
  if (Array.isArray(body.invalid_permissions))
    for (const entry of body.invalid_permissions.slice(0, 20))
      if (isRecord(entry) && typeof entry.permission === 'string')
        lines.push(`${entry.permission}: ${nonEmpty(entry.reason) ?? 'invalid'}`)
  if (typeof body.status === 'string' && body.error === 'Agent is not active')
    lines.push(`status: ${body.status}`)
  return lines
}

function describe(answer: HttpAnswer): string {
  const {details, text} = serverMessage(answer)
  return details.length === 0 ? text : `${text} (${details.join('; ')})`
}

/**
 * When a rate-limit window ends, as ISO time (whole seconds): from `RateLimit-Reset` (seconds), else
 * from `Retry-After` (seconds or an HTTP date).
 */
function resetTime(answer: HttpAnswer, now: number): string | undefined {
  const raw = answer.headers['ratelimit-reset'] ?? answer.headers['x-ratelimit-reset']
  const text = Array.isArray(raw) ? raw[0] : raw
  let at: number | undefined
  if (text !== undefined && /^\d+$/.test(text.trim())) {
    const seconds = Number(text.trim())
    // draft-6 sends seconds left; some limiters send an epoch time: tell them apart by size.
    at = seconds > 1e9 ? seconds * 1000 : now + seconds * 1000
  } else {
    const wait = requestedWaitMs(answer.headers['retry-after'], now)
    if (wait !== undefined) at = now + wait
  }

  if (at === undefined) return undefined
  const date = new Date(Math.floor(at / 1000) * 1000)
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString()
}

const login = (profile: string): string => `agentvault login agentauth --profile ${profile}`

/** The typed error for a non-2xx answer (after retries and, on JWT routes, after the refresh-and-repeat). */
export function errorFromAnswer(
  answer: HttpAnswer,
  context: ErrorContext,
  now = Date.now(),
): AgentVaultError {
  const what = describe(answer)
  const {operation, profile, route} = context
  const details = {status: answer.status}
  const {status} = answer
  if (answer.routeMiss)
    return new AgentVaultError(
      'not_found',
      'AGENTAUTH_ROUTE_NOT_FOUND',
      `This AgentAuth server does not offer ${operation} (${what})`,
      {
        details,
        suggestion:
          'Check the base URL (`agentvault status`); the server may run an AgentAuth version without this route.',
      },
    )
  // A session that can no longer be refreshed has ended, whatever the generation says: v0.7 answers
  // 401 for an inactive agent, legacy 403 `Agent is revoked` (issue 12 §6). Exit 4 for both.
  const sessionEnded = (suggestion: string): AuthError =>
    new AuthError(
      'AGENTAUTH_SESSION_EXPIRED',
      `The AgentAuth session of profile ${profile} has ended: ${what}`,
      {
        details,
        suggestion,
      },
    )
  // A refresh refused as malformed (400) ends the session just like a 401 (§10.2).
  if (status === 400 && route !== 'refresh')
    return new UsageError('AGENTAUTH_BAD_REQUEST', `AgentAuth refused to ${operation}: ${what}`, {
      details,
      suggestion: 'Fix the values named above and try again.',
    })
  if (status === 401 || status === 400) {
    if (route === 'verify')
      return new AuthError(
        'AGENTAUTH_INVALID_CREDENTIALS',
        `AgentAuth did not accept the agent id and API key: ${what}`,
        {
          details,
          suggestion:
            'Check the agent id and API key (a suspended or revoked agent cannot sign in); register a new agent with `agentvault agents register` if the key is lost.',
        },
      )
    if (route === 'refresh') return sessionEnded(`Sign in again: ${login(profile)}`)
    return new AuthError(
      'AGENTAUTH_UNAUTHORIZED',
      `AgentAuth refused the access token of profile ${profile} to ${operation}: ${what}`,
      {
        details,
        suggestion: `Sign in again: ${login(profile)}`,
      },
    )
  }

  if (status === 403) {
    if (route === 'refresh')
      return sessionEnded(
        `The agent is no longer active: an administrator can reactivate it, or register a new agent; then ${login(profile)}`,
      )
    return new DeniedError(
      'AGENTAUTH_FORBIDDEN',
      `AgentAuth did not allow profile ${profile} to ${operation}: ${what}`,
      {
        details,
        suggestion: 'The server allows this only to the agent itself or an admin agent (permission *:*:*).',
      },
    )
  }

  if (status === 404)
    return new AgentVaultError(
      'not_found',
      'AGENTAUTH_NOT_FOUND',
      `AgentAuth found nothing to ${operation}: ${what}`,
      {
        details,
        suggestion:
          'Check the id; `agentvault agents list` and `agentvault agents webhooks list` show what exists.',
      },
    )
  if (status === 409)
    return new UsageError('AGENTAUTH_CONFLICT', `AgentAuth could not ${operation}: ${what}`, {
      details: {...details, kind: 'conflict'},
      suggestion: 'It already exists; list what is there before creating it again.',
    })
  if (status === 413)
    return new UsageError(
      'AGENTAUTH_TOO_LARGE',
      `AgentAuth refused to ${operation}: the request is too large (${what})`,
      {
        details: {...details, kind: 'too_large'},
        suggestion: 'Send less (AgentAuth accepts JSON bodies up to 10 MB).',
      },
    )
  if (status === 429) {
    const reset = resetTime(answer, now)
    return new RateLimitedError(
      'AGENTAUTH_RATE_LIMITED',
      `AgentAuth is rate limiting this client${answer.retries > 0 ? ` after ${answer.retries} ${answer.retries === 1 ? 'retry' : 'retries'}` : ''}: ${what}${reset ? `; the window resets at ${reset}` : ''}`,
      {
        details: {...details, ...(reset ? {reset} : {})},
        suggestion:
          'Wait for the window to reset. Jobs that start many processes should `agentvault login agentauth` once instead of signing in per process.',
      },
    )
  }

  if (status >= 500)
    return new BackendUnavailableError(
      'AGENTAUTH_SERVER_ERROR',
      `AgentAuth failed to ${operation} after 3 retries: ${what}`,
      {
        details,
        suggestion: 'The server is failing; try again later or check its health with `agentvault status`.',
      },
    )
  return new UsageError('AGENTAUTH_REQUEST_FAILED', `AgentAuth refused to ${operation}: ${what}`, {
    details,
    suggestion: 'Check the command’s arguments; `--help` shows examples.',
  })
}

/** A 2xx answer whose body we cannot read (§9): the server is not speaking AgentAuth. */
export function unexpectedResponse(operation: string): BackendUnavailableError {
  return new BackendUnavailableError(
    'UNEXPECTED_RESPONSE',
    `AgentAuth gave an unexpected response to ${operation}`,
    {
      suggestion: 'Check that the base URL points at an AgentAuth server (`agentvault status`).',
    },
  )
}
