/**
 * AgentSecrets' answers (protocols/agentsecrets.md §5.4) for what agentvault's engine decides, so
 * that SDK error classes come out right: shape A `{"error":"…"}\n`, shape B
 * `{"domain":…,"error":"<slug>","message":…}` (alphabetical keys, no newline). Messages come from
 * agentvault's typed errors, which name references and hosts, never values.
 */
import type {AgentVaultError} from '../errors.js'
import type {ProxyInjection} from './headers.js'

export interface ProxyAnswer {
  body: Buffer
  contentType: string
  status: number
}

/** How the audit log and the request log file the answer. */
export type ProxyOutcome = 'denied' | 'error' | 'ok'

export const REDACTION_MARKER = '[REDACTED_BY_AGENTSECRETS]'

const JSON_TYPE = 'application/json'

/** One line, printable, bounded: a message can never split a log line or grow without end. */
function oneLine(text: string): string {
  const flat = text.replaceAll(/[\u0000-\u001F\u007F]+/g, ' ')
  return flat.length > 500 ? `${flat.slice(0, 500)}…` : flat
}

/** Shape A: `{"error":"<message>"}` and a newline. */
export function shapeA(status: number, message: string): ProxyAnswer {
  return {
    body: Buffer.from(`${JSON.stringify({error: oneLine(message)})}\n`, 'utf8'),
    contentType: JSON_TYPE,
    status,
  }
}

/** Shape B: a block, keys in alphabetical order, no trailing newline. */
export function shapeB(slug: string, domain: string, message: string): ProxyAnswer {
  return {
    body: Buffer.from(JSON.stringify({domain, error: slug, message: oneLine(message)}), 'utf8'),
    contentType: JSON_TYPE,
    status: 403,
  }
}

const UPSTREAM_CODES = new Set([
  'BAD_RESPONSE_ENCODING',
  'HOST_NOT_FOUND',
  'REQUEST_TIMEOUT',
  'TOO_MANY_REDIRECTS',
  'UPSTREAM_UNREACHABLE',
])
/** Usage errors raised while putting a value in place: AgentSecrets' "injection failed" (502). */
const INJECTION_CODES = new Set([
  'BASIC_NEEDS_USER_PASSWORD',
  'BODY_FIELD_CONFLICT',
  'BODY_NOT_JSON_OBJECT',
  'SECRET_NOT_HEADER_SAFE',
  'SECRET_NOT_TEXT',
])
/** The engine's address guard, and Sanctum's daemon-side one. */
const SSRF_CODES = new Set(['METADATA_ADDRESS', 'PRIVATE_ADDRESS', 'RESERVED_ADDRESS', 'SSRF_BLOCKED'])

function detail(error: AgentVaultError, name: string): string | undefined {
  const value = error.details?.[name]
  return typeof value === 'string' ? value : undefined
}

/** The key as the caller sent it that an error about `reference` concerns. */
function keyFor(reference: string, injections: readonly ProxyInjection[]): string {
  if (injections.length === 1) return (injections[0] as ProxyInjection).key.replaceAll("'", '')
  const bare = reference.replace(/^[a-z0-9+]+:\/\//, '').replace(/\?.*$/, '')
  const match =
    injections.find((injection) => injection.key === reference) ??
    injections.find((injection) => injection.key === bare)
  return (match?.key ?? reference).replaceAll("'", '')
}

/** The AgentSecrets status and body for an error, and how it is audited. */
export function answerFor(
  error: AgentVaultError,
  injections: readonly ProxyInjection[],
): {answer: ProxyAnswer; outcome: ProxyOutcome} {
  const text = error.suggestion ? `${error.message}. ${error.suggestion}` : error.message
  const host = detail(error, 'host') ?? ''
  if (error.category === 'denied') {
    // AgentSecrets' own block (an agentsecrets:// key): its slug and domain, passed on as they came.
    const slug = detail(error, 'reason')
    const domain = detail(error, 'domain')
    if (slug !== undefined && /^[a-z_]{1,64}$/.test(slug) && domain !== undefined)
      return {answer: shapeB(slug, domain, text), outcome: 'denied'}
    if (error.code === 'HOST_NOT_ALLOWED' || error.code === 'REDIRECT_NOT_ALLOWED') {
      const empty = detail(error, 'allowlist') === 'empty'
      return {
        answer: empty
          ? shapeB(
              'empty_allowlist',
              host,
              `No allowed hosts are configured for ${detail(error, 'reference') ?? 'this secret'}. Run: agentvault secrets set NAME --allow-domain ${host}, or add ${host} to the profile's allowedDomains`,
            )
          : shapeB(
              'domain_not_in_allowlist',
              host,
              `${host} is not in the allowlist of ${detail(error, 'reference') ?? 'this secret'}. ${error.suggestion ?? ''}`.trim(),
            ),
        outcome: 'denied',
      }
    }

    if (error.code === 'PLAIN_HTTP')
      return {answer: shapeB('non_https_blocked', host, text), outcome: 'denied'}
    if (SSRF_CODES.has(error.code))
      return {answer: shapeB('ssrf_protection_blocked', host, text), outcome: 'denied'}
    if (error.code === 'RESPONSE_TOO_LARGE')
      return {answer: shapeA(502, `failed to reach upstream: ${error.message}`), outcome: 'error'}
    return {answer: shapeB('policy_denied', host, text), outcome: 'denied'}
  }

  if (error.category === 'not_found') {
    const reference = error.message.replace(/^Secret not found: /, '')
    const key = keyFor(reference, injections)
    return {
      answer: shapeA(502, `secret '${key}' not found — run 'agentvault secrets list' (${error.message})`),
      outcome: 'error',
    }
  }

  if (INJECTION_CODES.has(error.code))
    return {answer: shapeA(502, `injection failed: ${error.message}`), outcome: 'error'}
  if (UPSTREAM_CODES.has(error.code) || error.code.startsWith('TLS_'))
    return {answer: shapeA(502, `failed to reach upstream: ${error.message}`), outcome: 'error'}
  switch (error.category) {
    case 'usage': {
      return {answer: shapeA(400, text), outcome: 'error'}
    }

    case 'auth':
    case 'config':
    case 'rate_limited':
    case 'unavailable': {
      return {answer: shapeA(503, `backend unavailable: ${text}`), outcome: 'error'}
    }

    default: {
      return {answer: shapeA(500, 'internal error in the agentvault proxy (see its log)'), outcome: 'error'}
    }
  }
}
