/**
 * Sanctum errors (protocols/sanctum.md §10): the daemon's error codes mapped to agentvault's
 * categories, and the client's own transport and protocol errors. Messages name methods, paths,
 * codes and sizes — never a payload, a value or key material.
 */
import {AgentVaultError, BackendUnavailableError, type ErrorCategory, UsageError} from '../../core/errors.js'

/**
 * The spec's own categories. agentvault has no `locked`, `lease` or `backend` category, so those
 * three exit as "backend unavailable" (5); the finer name stays in `details.sanctum_category`.
 */
export type SanctumCategory =
  'auth' | 'backend' | 'denied' | 'lease' | 'locked' | 'not_found' | 'rate_limited'

const SANCTUM_CATEGORY_BY_CODE: Readonly<Record<string, SanctumCategory>> = {
  AUTH_FAILED: 'auth',
  SESSION_EXPIRED: 'auth',
  ACCESS_DENIED: 'denied',
  POLICY_DENIED: 'denied',
  SSRF_BLOCKED: 'denied',
  CREDENTIAL_NOT_FOUND: 'not_found',
  NOT_FOUND: 'not_found',
  VAULT_LOCKED: 'locked',
  LEASE_EXPIRED: 'lease',
  LEASE_EXHAUSTED: 'lease',
  RATE_LIMITED: 'rate_limited',
}

const CATEGORY: Readonly<Record<SanctumCategory, ErrorCategory>> = {
  auth: 'auth',
  backend: 'unavailable',
  denied: 'denied',
  lease: 'unavailable',
  locked: 'unavailable',
  not_found: 'not_found',
  rate_limited: 'rate_limited',
}

/** Codes we pass through as agentvault error codes; anything else becomes SANCTUM_ERROR. */
const SAFE_CODE = /^[A-Z][A-Z0-9_]{0,63}$/
const MAX_TEXT = 300

/** Daemon text goes to a terminal: no control characters (escape sequences), bounded length. */
export function cleanText(text: string): string {
  const flat = text.replaceAll(/[\u0000-\u001F\u007F-\u009F]+/g, ' ').trim()
  return flat.length > MAX_TEXT ? `${flat.slice(0, MAX_TEXT)}…` : flat
}

function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? cleanText(value) : undefined
}

/** Where a daemon error happened: the method, and the credential path when there is one. */
export interface RequestLabel {
  method: string
  path?: string
}

function defaultSuggestion(code: string | undefined, category: SanctumCategory, label: RequestLabel): string {
  switch (code) {
    case 'AUTH_FAILED': {
      return 'Check the agent name and its key: the daemon must know this agent (`sanctum agent register <name>`) with the public key of your key file (`agentvault login sanctum --agent NAME` tests it).'
    }

    case 'SESSION_EXPIRED': {
      return 'The session expired again right after signing in; check the daemon’s session lifetime and clock, then retry.'
    }

    case 'VAULT_LOCKED': {
      return 'Unlock the vault on the vault host: `sanctum unlock`.'
    }

    case 'RATE_LIMITED': {
      return 'Wait for the rate-limit window to pass, then retry; or ask the vault admin for a higher limit.'
    }

    case 'SSRF_BLOCKED': {
      return 'The daemon refuses requests to private, loopback and link-local addresses; use a public URL.'
    }
  }

  switch (category) {
    case 'denied': {
      return `Ask the vault admin for a policy that lets this agent ${label.method === 'list' ? 'list credentials' : `use ${label.path ?? 'this credential'}`} (\`sanctum policy\`).`
    }

    case 'not_found': {
      return 'Run `agentvault secrets list` to see the paths this agent may use.'
    }

    case 'lease': {
      return 'Run the command again to get a fresh lease; ask the vault admin if a policy limits the accesses.'
    }

    default: {
      return 'See the daemon’s logs on the vault host; `DEBUG=agentvault:sanctum` shows the requests agentvault sent.'
    }
  }
}

/** The fields of a wire error (§10), from an object or a plain string, cleaned for a terminal. */
interface WireFields {
  code?: string
  context?: object
  detail?: string
  docsUrl?: string
  message: string
  suggestion?: string
}

function wireFields(wire: unknown): WireFields {
  if (typeof wire !== 'object' || wire === null || Array.isArray(wire))
    return {message: typeof wire === 'string' && wire !== '' ? wire : 'Unknown error'}
  const fields = wire as Record<string, unknown>
  return {
    code: typeof fields.code === 'string' ? fields.code : undefined,
    context: typeof fields.context === 'object' && fields.context !== null ? fields.context : undefined,
    detail: optionalText(fields.detail),
    docsUrl: optionalText(fields.docs_url),
    message: typeof fields.message === 'string' && fields.message !== '' ? fields.message : 'Unknown error',
    suggestion: optionalText(fields.suggestion),
  }
}

/**
 * An error answered by the daemon (`{"error": …}`), as an agentvault error: the wire code picks
 * the category and exit code; the daemon's message, detail, suggestion and docs_url are kept.
 */
export class SanctumDaemonError extends AgentVaultError {
  /** The daemon's code, when it sent one. */
  readonly wireCode?: string
  /** The daemon's message, for the unknown-method test of the dialect negotiation. */
  readonly wireMessage: string

  constructor(wire: unknown, label: RequestLabel) {
    const {code: wireCode, context, detail, docsUrl, message, suggestion} = wireFields(wire)
    const category = (wireCode && SANCTUM_CATEGORY_BY_CODE[wireCode]) || 'backend'
    const where = label.path ? `${label.method} ${label.path}` : label.method
    const shownCode = wireCode === undefined ? '' : `${cleanText(wireCode)}, `
    super(
      CATEGORY[category],
      wireCode && SAFE_CODE.test(wireCode) ? wireCode : 'SANCTUM_ERROR',
      `Sanctum daemon: ${cleanText(message)}${detail ? ` — ${detail}` : ''} (${shownCode}${where})`,
      {
        suggestion:
          (suggestion ?? defaultSuggestion(wireCode, category, label)) +
          (docsUrl ? `\nDocs: ${docsUrl}` : ''),
        details: {
          sanctum_category: category,
          method: label.method,
          ...(label.path === undefined ? {} : {path: label.path}),
          ...(wireCode === undefined ? {} : {sanctum_code: cleanText(wireCode)}),
          ...(detail === undefined ? {} : {detail}),
          ...(docsUrl === undefined ? {} : {docs_url: docsUrl}),
          ...(context === undefined ? {} : {context}),
        },
      },
    )
    this.wireCode = wireCode
    this.wireMessage = message
  }
}

const UNKNOWN_METHOD = /(unknown|invalid) method|method not found/i

/** §4: the answer of a daemon that does not know the method's name (string, message or code). */
export function isUnknownMethodError(error: unknown): error is SanctumDaemonError {
  return (
    error instanceof SanctumDaemonError &&
    (error.wireCode === 'METHOD_NOT_FOUND' || UNKNOWN_METHOD.test(error.wireMessage))
  )
}

export function isSessionExpired(error: unknown): boolean {
  return error instanceof SanctumDaemonError && error.wireCode === 'SESSION_EXPIRED'
}

const PROTOCOL_SUGGESTION =
  'Check that the profile points at a Sanctum daemon (socket, or host and port); `DEBUG=agentvault:sanctum` shows methods, ids and frame sizes.'

/** The daemon sent something the protocol does not allow; the connection is closed. */
export class SanctumProtocolError extends BackendUnavailableError {
  constructor(what: string, code = 'SANCTUM_PROTOCOL', details?: Record<string, unknown>) {
    super(code, `Sanctum protocol error: ${what}`, {suggestion: PROTOCOL_SUGGESTION, details})
  }
}

/** An incoming frame declared more bytes than `maxFrameBytes` (sizes only, never content). */
export class SanctumFrameTooLargeError extends SanctumProtocolError {
  constructor(
    readonly declared: number,
    readonly allowed: number,
  ) {
    super(`a frame of ${declared} bytes exceeds the limit of ${allowed} bytes`, 'SANCTUM_FRAME_TOO_LARGE', {
      declared,
      allowed,
    })
  }
}

const DAEMON_SUGGESTION =
  'Start the daemon on the vault host (`sanctum daemon start`), or point the profile at it: `agentvault login sanctum --socket PATH` (or --host/--port; env SANCTUM_SOCKET, SANCTUM_HOST, SANCTUM_PORT).'

export function unreachableError(endpoint: string, errno: string | undefined): BackendUnavailableError {
  return new BackendUnavailableError(
    'SANCTUM_UNREACHABLE',
    `Cannot reach the Sanctum daemon at ${endpoint}${errno ? ` (${errno})` : ''}`,
    {suggestion: DAEMON_SUGGESTION, details: {endpoint, ...(errno ? {errno} : {})}},
  )
}

export function timeoutError(endpoint: string, what: string, timeoutMs: number): BackendUnavailableError {
  return new BackendUnavailableError(
    'SANCTUM_TIMEOUT',
    `The Sanctum daemon at ${endpoint} did not answer ${what} within ${timeoutMs} ms`,
    {
      suggestion: `Check that the daemon is healthy; raise the profile's timeoutMs if it is just slow.`,
      details: {endpoint, timeoutMs},
    },
  )
}

export function connectionClosedError(endpoint: string, errno?: string): BackendUnavailableError {
  return new BackendUnavailableError(
    'SANCTUM_CONNECTION_CLOSED',
    `The connection to the Sanctum daemon at ${endpoint} closed before it answered${errno ? ` (${errno})` : ''}`,
    {suggestion: DAEMON_SUGGESTION, details: {endpoint}},
  )
}

export function requestTooLargeError(method: string, size: number, allowed: number): UsageError {
  return new UsageError(
    'SANCTUM_REQUEST_TOO_LARGE',
    `The ${method} request is ${size} bytes, over the limit of ${allowed} bytes; nothing was sent`,
    {suggestion: 'Send less data (e.g. a smaller body), or raise the profile’s maxFrameBytes.'},
  )
}

/** `secrets set` / `secrets delete`: the daemon has no store or delete RPC, so nothing is sent (§12). */
export function notOverAgentProtocol(what: 'delete' | 'set', target = '<path>'): AgentVaultError {
  return new AgentVaultError(
    'usage',
    'NOT_SUPPORTED',
    `${what === 'set' ? 'Storing' : 'Deleting'} secrets is not supported over the agent protocol (sanctum)`,
    {
      suggestion:
        what === 'set'
          ? `Use \`sanctum store ${target}\` on the vault host.`
          : `Use \`sanctum store ${target}\` on the vault host to replace it, or \`sanctum remove ${target}\` to delete it.`,
    },
  )
}
