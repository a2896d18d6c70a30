import {nearest} from '../../core/did-you-mean.js'
/**
 * Classification of OpenBao answers and transport failures into typed errors
 * (protocols/openbao.md §6, §9, §12). Pure functions of the HTTP status, the body's *shape* and the
 * operation — never of message text, except OpenBao's one documented CAS message. Server messages are kept only as `details.serverErrors`
 * (truncated), never in a message. Whatever a body holds, these functions return or throw only
 * AgentVaultErrors.
 */
import {
  AgentVaultError,
  AuthError,
  BackendUnavailableError,
  ConfigError,
  DeniedError,
  RateLimitedError,
  UsageError,
} from '../../core/errors.js'
import {CERTIFICATE_ERROR_CODES} from '../../core/tls.js'

/**
 * Whether `error` is one of ours, by shape: a lazily imported module may see another instance of
 * the error classes (mocha loads tests as CommonJS, `import()` as ESM), so `instanceof` is not
 * enough.
 */
export function isAgentVaultError(error: unknown): error is AgentVaultError {
  if (error instanceof AgentVaultError) return true
  const candidate = error as Partial<AgentVaultError> | undefined
  return (
    error instanceof Error &&
    typeof candidate?.code === 'string' &&
    typeof candidate.category === 'string' &&
    typeof candidate.exitCode === 'number'
  )
}

/** What the server answered: a resolved body (200/204), or a status with its body. */
export type Answer = {body: unknown; ok: true} | {body: unknown; ok: false; status: number}

/** The operation an answer belongs to; it decides what a 400, 403 or 404 means. */
export type Purpose =
  | 'delete'
  | 'health'
  | 'list'
  | 'login'
  | 'lookup-self'
  | 'metadata-read'
  | 'metadata-write'
  | 'read'
  | 'renew-self'
  | 'revoke-self'
  | 'unwrap'
  | 'wrap-lookup'
  | 'write'

export interface OperationContext {
  /** A write that carried `options.cas`. */
  cas?: boolean
  purpose: Purpose
  /** The canonical reference, for messages (never a value). */
  reference?: string
}

/** The metadata of one version, as in `data.metadata` of a read (§6). */
export interface VersionMetadata {
  created_time: string
  custom_metadata: null | Record<string, string>
  deletion_time: string
  destroyed: boolean
  version: number
}

export interface KvSecret {
  data: Record<string, unknown>
  metadata: VersionMetadata
}

/** Failures before a byte of the request left: safe to repeat on another address, writes included. */
const PRE_SEND_CODES: ReadonlySet<string> = new Set([
  'AGENTVAULT_REDIRECT_REFUSED',
  'EADDRNOTAVAIL',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'EHOSTDOWN',
  'EHOSTUNREACH',
  'ENETDOWN',
  'ENETUNREACH',
  'ENOTFOUND',
  'EPROTO',
  'ERR_FR_TOO_MANY_REDIRECTS',
  'ERR_SSL_WRONG_VERSION_NUMBER',
])

/** Failures after the request may have reached the server: reads move on, writes do not. */
const IN_FLIGHT_CODES: ReadonlySet<string> = new Set([
  'ECONNABORTED',
  'ECONNRESET',
  'EPIPE',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ETIMEDOUT',
])

/** A transport failure, by when it happened: decides failover (§9). */
export type NetworkFailure =
  | {code: string; kind: 'in-flight'}
  | {code: string; kind: 'other'}
  | {code: string; kind: 'pre-send'}
  | {code: string; kind: 'tls'}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function codeOf(value: unknown): string | undefined {
  if (!isRecord(value) && !(value instanceof Error)) return undefined
  const {code} = value as {code?: unknown}
  return typeof code === 'string' && code !== '' ? code : undefined
}

/**
 * The failure code of a rejected transport call: the error's own code, else its cause's (axios
 * and follow-redirects wrap the socket's error), checked for TLS codes first.
 */
export function networkFailure(error: unknown): NetworkFailure {
  const codes: string[] = []
  let current: unknown = error
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    const code = codeOf(current)
    if (code) codes.push(code)
    current = (current as {cause?: unknown}).cause
  }

  const tls = codes.find((code) => CERTIFICATE_ERROR_CODES.has(code) || code.startsWith('ERR_TLS_CERT'))
  if (tls) return {code: tls, kind: 'tls'}
  const preSend = codes.find((code) => PRE_SEND_CODES.has(code) || code.startsWith('ERR_SSL_'))
  if (preSend) return {code: preSend, kind: 'pre-send'}
  const inFlight = codes.find((code) => IN_FLIGHT_CODES.has(code))
  if (inFlight) return {code: inFlight, kind: 'in-flight'}
  return {code: codes[0] ?? 'UNKNOWN', kind: 'other'}
}

/** The status of an `ApiResponseError` (node-vault's class is not exported: duck-typed). */
export function responseOf(error: unknown): undefined | {body: unknown; status: number} {
  if (!isRecord(error) && !(error instanceof Error)) return undefined
  const {response} = error as {response?: unknown}
  if (!isRecord(response)) return undefined
  const {statusCode} = response
  if (typeof statusCode !== 'number' || !Number.isInteger(statusCode)) return undefined
  return {body: response.body, status: statusCode}
}

/** At most five server messages of at most 200 characters, for `--json` details only. */
export function serverErrors(body: unknown): string[] | undefined {
  if (!isRecord(body) || !Array.isArray(body.errors)) return undefined
  const messages = body.errors.filter((e): e is string => typeof e === 'string').slice(0, 5)
  return messages.length > 0 ? messages.map((m) => (m.length > 200 ? `${m.slice(0, 200)}…` : m)) : undefined
}

function details(
  status: number,
  body: unknown,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const messages = serverErrors(body)
  return {status, ...extra, ...(messages ? {serverErrors: messages} : {})}
}

const what = (context: OperationContext): string => context.reference ?? 'the request'

/** OpenBao's CAS refusal (protocols/openbao.md §6): 400 `check-and-set parameter did not match the current version`. */
function isCasMismatch(body: unknown): boolean {
  return (
    isRecord(body) &&
    Array.isArray(body.errors) &&
    body.errors.some((e) => typeof e === 'string' && e.includes('check-and-set parameter did not match'))
  )
}

function versionMetadata(value: unknown): undefined | VersionMetadata {
  if (!isRecord(value)) return undefined
  const version = typeof value.version === 'number' && Number.isSafeInteger(value.version) ? value.version : 0
  const custom = isRecord(value.custom_metadata)
    ? Object.fromEntries(
        Object.entries(value.custom_metadata).filter(
          (entry): entry is [string, string] => typeof entry[1] === 'string',
        ),
      )
    : null
  return {
    created_time: typeof value.created_time === 'string' ? value.created_time : '',
    custom_metadata: custom,
    deletion_time: typeof value.deletion_time === 'string' ? value.deletion_time : '',
    destroyed: value.destroyed === true,
    version,
  }
}

/** An envelope (§3): an object with at least one of the envelope's own keys. */
export function isEnvelope(body: unknown): body is Record<string, unknown> {
  return isRecord(body) && ['auth', 'data', 'request_id', 'warnings', 'wrap_info'].some((key) => key in body)
}

/** 200 with a body that is not an envelope (or lacks what the operation needs). */
export function unexpectedAnswer(context: OperationContext, status = 200): AgentVaultError {
  return new BackendUnavailableError(
    'BACKEND_ERROR',
    `OpenBao gave an unexpected answer (HTTP ${status}) for ${what(context)}`,
    {
      details: {status},
      suggestion: 'Check that the address points at an OpenBao or Vault server (not a proxy or web page).',
    },
  )
}

/**
 * A 403 before the token was checked: the caller runs lookup-self with the same token and turns
 * this into PERMISSION_DENIED (token valid) or AUTH_REQUIRED (token refused).
 */
export function forbidden(context: OperationContext, body: unknown): AgentVaultError {
  return new DeniedError('PERMISSION_DENIED', `Permission denied for ${what(context)}`, {
    details: details(403, body),
    suggestion:
      "The token's policies do not allow this; ask for a policy granting it, or use another profile.",
  })
}

/** AUTH_REQUIRED (exit 4) with the profile's login hint. */
export function authRequired(profile: string, reason: string): AgentVaultError {
  return new AuthError('AUTH_REQUIRED', `Not signed in to OpenBao (profile ${profile}): ${reason}`, {
    suggestion: `Run \`agentvault login openbao --profile ${profile}\`, or set BAO_TOKEN.`,
  })
}

/** The answer to anything but a KV read: 400, 403, 404, 405, 429, 5xx by operation. */
export function classifyFailure(context: OperationContext, status: number, body: unknown): AgentVaultError {
  const {purpose} = context
  if (status === 400) {
    if (purpose === 'login')
      return new AuthError('AUTH_FAILED', 'OpenBao refused the login credentials', {
        details: details(status, body),
        suggestion:
          'Check the username and password, or the role ID and secret ID, and the auth mount (--auth-mount).',
      })
    if (purpose === 'unwrap' || purpose === 'wrap-lookup')
      return new AuthError(
        'WRAP_TOKEN_INVALID',
        'The wrapping token is not valid: already used, expired or unknown',
        {
          details: details(status, body),
          suggestion: 'Wrapping tokens work once; ask the sender to wrap the secret again.',
        },
      )
    // Only the server's own CAS answer (§6) is a mismatch: a write with an implicit cas (#field
    // updates) can be refused for other reasons (a bad body, a policy's parameter rules).
    if (purpose === 'write' && context.cas && isCasMismatch(body))
      return new UsageError(
        'CAS_MISMATCH',
        `Check-and-set failed for ${what(context)}: the current version differs`,
        {
          details: details(status, body),
          suggestion:
            'Someone wrote it meanwhile: `agentvault secrets versions REF` shows the current version; retry with --cas CURRENT.',
        },
      )
    return new UsageError(
      'BACKEND_REJECTED',
      `OpenBao rejected the request for ${what(context)} (HTTP 400)`,
      {
        details: details(status, body),
        suggestion:
          purpose === 'write'
            ? 'The mount may require check-and-set: pass --cas N (0 = only if absent). `--json` shows the server’s reason.'
            : '`--json` shows the server’s reason in details.serverErrors.',
      },
    )
  }

  if (status === 403) {
    if (purpose === 'login')
      return new AuthError('AUTH_FAILED', 'OpenBao refused the login', {
        details: details(status, body),
        suggestion: 'Check the credentials, the auth mount (--auth-mount) and the namespace.',
      })
    if (purpose === 'lookup-self' || purpose === 'renew-self' || purpose === 'revoke-self')
      return new AuthError('AUTH_REQUIRED', 'The OpenBao token is invalid or expired', {
        details: details(status, body),
        suggestion: 'Sign in again: `agentvault login openbao`.',
      })
    return forbidden(context, body)
  }

  if (status === 404) {
    if (isEnvelope(body) && Array.isArray(body.warnings) && body.warnings.length > 0 && !('errors' in body))
      return notKvV2(context)
    if (purpose === 'login')
      return new ConfigError('AUTH_MOUNT_NOT_FOUND', 'OpenBao has no such auth method mount', {
        details: details(status, body),
        suggestion:
          'Pass the mount path with --auth-mount (default: the method name), and check the namespace.',
      })
    if (purpose === 'metadata-read' || purpose === 'read' || purpose === 'write' || purpose === 'delete')
      return new AgentVaultError('not_found', 'SECRET_NOT_FOUND', `Secret not found: ${what(context)}`, {
        details: details(status, body),
        suggestion: 'Check the mount and path with `agentvault secrets list openbao://MOUNT/FOLDER`.',
      })
    return unexpectedStatus(context, status, body)
  }

  if (status === 429)
    return new RateLimitedError(
      'RATE_LIMITED',
      'OpenBao is rate-limiting requests (HTTP 429), even after retries',
      {
        details: details(status, body),
        suggestion: 'Wait a moment and retry; spread bulk work over time.',
      },
    )
  if (status === 503)
    return new BackendUnavailableError(
      'BACKEND_UNAVAILABLE',
      'OpenBao is sealed, in maintenance or has no active node',
      {
        details: details(status, body),
        suggestion:
          'Unseal the server or wait for a leader; list every cluster node in the profile’s addresses.',
      },
    )
  return unexpectedStatus(context, status, body)
}

function unexpectedStatus(context: OperationContext, status: number, body: unknown): AgentVaultError {
  return new BackendUnavailableError(
    'BACKEND_ERROR',
    `OpenBao failed with HTTP ${status} for ${what(context)}`,
    {
      details: details(status, body),
      suggestion: 'Retry later; if it persists, check the server’s logs. `--json` shows the server’s reason.',
    },
  )
}

function notKvV2(context: OperationContext): AgentVaultError {
  return new ConfigError('NOT_KV_V2', `The mount of ${what(context)} is not a KV version 2 secrets engine`, {
    details: {status: 404},
    suggestion: 'agentvault reads KV v2 mounts only; check the mount name (`bao secrets list`).',
  })
}

/**
 * A KV v2 data read (§6), in the spec's order: 200 with a data map is the value; a 404 carrying
 * version metadata is a destroyed (checked first) or deleted version, never a fallback; a 404
 * envelope with warnings is not KV v2; any other 404 is not found.
 */
export function classifyRead(context: OperationContext, answer: Answer): KvSecret {
  if (answer.ok) {
    const data = isEnvelope(answer.body) ? answer.body.data : undefined
    const metadata = isRecord(data) ? versionMetadata(data.metadata) : undefined
    if (!isRecord(data) || !isRecord(data.data) || !metadata) throw unexpectedAnswer(context)
    return {data: data.data, metadata}
  }

  const {body, status} = answer
  if (status === 404) {
    const data = isEnvelope(body) && isRecord(body.data) ? body.data : undefined
    const metadata = data ? versionMetadata(data.metadata) : undefined
    if (metadata?.destroyed)
      throw new AgentVaultError(
        'not_found',
        'SECRET_VERSION_DESTROYED',
        `Version ${metadata.version} of ${what(context)} is destroyed`,
        {
          details: {status, version: metadata.version},
          suggestion:
            'A destroyed version cannot be recovered: read another one with ?version=N (`agentvault secrets versions REF` lists them) or write a new one.',
        },
      )
    if (metadata && metadata.deletion_time !== '')
      throw new AgentVaultError(
        'not_found',
        'SECRET_VERSION_DELETED',
        `Version ${metadata.version} of ${what(context)} is deleted`,
        {
          details: {deletion_time: metadata.deletion_time, status, version: metadata.version},
          suggestion: `It can be restored with \`bao kv undelete -versions=${metadata.version} …\`, or read another version with ?version=N.`,
        },
      )
  }

  throw classifyFailure({...context, purpose: 'read'}, status, body)
}

/** A value of `#field`: strings as UTF-8, anything else as compact JSON (§6). */
export function fieldValue(secret: KvSecret, field: string, context: OperationContext): Buffer {
  if (!Object.hasOwn(secret.data, field)) {
    // Field names are not values: they are named, as `bao kv get` lists them.
    const fields = Object.keys(secret.data).slice(0, 50)
    const meant = nearest(field, fields)
    const instead =
      meant !== undefined && context.reference !== undefined
        ? `Did you mean ${context.reference.replace(/#[^?]*/, `#${meant}`)}? `
        : ''
    throw new AgentVaultError(
      'not_found',
      'FIELD_NOT_FOUND',
      `${what(context)}: version ${secret.metadata.version} has no field "${field}"`,
      {
        details: {fields, version: secret.metadata.version},
        suggestion: `${instead}${fields.length === 0 ? 'It has no fields' : `Its fields: ${fields.join(', ')}`}; or read the whole secret without #field.`,
      },
    )
  }

  const value = secret.data[field]
  return Buffer.from(typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null'), 'utf8')
}

/**
 * What failed where, as a person reads it: `ENOTFOUND bao.example` (a name that did not resolve
 * names the host), `ECONNREFUSED 10.0.0.5:8200`, `HTTP 503 bao.example:8200`.
 */
function failureCause({address, reason}: {address: string; reason: string}): string {
  let host = address
  try {
    const url = new URL(address)
    host = /^(ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NONAME)$/.test(reason) ? url.hostname : url.host
  } catch {
    // Not a URL: name it as configured.
  }

  return `${reason} ${host}`
}

/** A transport failure after every address was tried, or one that must not be retried. */
export function unavailable(
  addresses: readonly string[],
  failures: ReadonlyArray<{address: string; reason: string}>,
  inFlightWrite = false,
): AgentVaultError {
  const list = addresses.join(', ')
  return new BackendUnavailableError(
    'BACKEND_UNAVAILABLE',
    inFlightWrite
      ? `The connection to OpenBao failed during a write (${failures.at(-1)?.reason ?? 'unknown'}); it may or may not have been applied`
      : `No OpenBao server answered (${failures.length > 0 ? failures.map(failureCause).join('; ') : `tried ${list}`})`,
    {
      details: {addresses: [...addresses], failures: failures.map((f) => ({...f}))},
      suggestion: inFlightWrite
        ? 'Check with `agentvault secrets versions REF` before writing again.'
        : 'Check that the server runs and is unsealed, the addresses in the profile, and your network.',
    },
  )
}

/** TLS_VERIFY_FAILED (exit 3): naming the address and the OpenSSL code, with the CA hint. */
export function tlsFailed(address: string, code: string, hasCa: boolean): AgentVaultError {
  return new ConfigError(
    'TLS_VERIFY_FAILED',
    `The TLS certificate of ${address} could not be verified (${code})`,
    {
      details: {address, code},
      suggestion: hasCa
        ? 'The caCert does not vouch for this server: give the CA that signed it (caCert / BAO_CACERT).'
        : 'Give the CA that signed the server certificate with `login openbao --ca-cert FILE` (or BAO_CACERT).',
    },
  )
}

/** Reasons for `unavailable` details: a status, or a transport code. Never a message. */
export function failureReason(failure: NetworkFailure | {status: number}): string {
  return 'status' in failure ? `HTTP ${failure.status}` : failure.code
}
