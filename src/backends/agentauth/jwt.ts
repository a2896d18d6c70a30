/**
 * Reading an AgentAuth JWT's claims locally, without verifying its signature (protocols/agentauth.md
 * §4, §10.2–10.3): the client only needs `exp` to decide when to refresh and `agent_id`/`tier` to
 * show who it is. The server remains the judge of validity. Hostile input yields a typed error whose
 * message never quotes the token.
 */
import {BackendUnavailableError} from '../../core/errors.js'

/** The claims agentvault reads; any other claim is ignored. */
export interface JwtClaims {
  agent_id?: string
  /** Expiry, seconds since the epoch. */
  exp: number
  iat?: number
  permissions?: string[]
  tier?: string
  /** `refresh` on v0.7 refresh tokens. */
  type?: string
}

const BASE64URL = /^[A-Za-z0-9_-]+$/
/** Far beyond any real token; a bound so a hostile value cannot make us decode megabytes. */
const MAX_TOKEN_LENGTH = 16 * 1024

/** The error for a token that is not a readable JWT; `what` says which one (never its text). */
export function malformedToken(what: string): BackendUnavailableError {
  return new BackendUnavailableError(
    'UNEXPECTED_RESPONSE',
    `AgentAuth gave ${what} that is not a readable JWT`,
    {
      suggestion:
        'Check that the base URL points at an AgentAuth server, then sign in again: agentvault login agentauth',
    },
  )
}

/**
 * The claims of a compact JWS (`header.payload.signature`).
 *
 * @param token the compact JWS.
 * @param what names the token in the error (`an access token`).
 * @throws BackendUnavailableError UNEXPECTED_RESPONSE when it is not three base64url parts whose
 *   middle decodes to a JSON object with a finite numeric `exp`.
 */
export function decodeJwtClaims(token: string, what = 'a token'): JwtClaims {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw malformedToken(what)
  const parts = token.split('.')
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) throw malformedToken(what)
  let payload: unknown
  try {
    payload = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'))
  } catch {
    throw malformedToken(what)
  }

  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw malformedToken(what)
  const claims = payload as Record<string, unknown>
  const {exp} = claims
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw malformedToken(what)
  const text = (name: string): string | undefined => {
    const value = claims[name]
    return typeof value === 'string' && value !== '' ? value : undefined
  }

  const agentId = text('agent_id')
  const tier = text('tier')
  const type = text('type')
  const {iat, permissions} = claims
  return {
    ...(agentId === undefined ? {} : {agent_id: agentId}),
    exp,
    ...(typeof iat === 'number' && Number.isFinite(iat) ? {iat} : {}),
    ...(Array.isArray(permissions)
      ? {permissions: permissions.filter((p): p is string => typeof p === 'string')}
      : {}),
    ...(tier === undefined ? {} : {tier}),
    ...(type === undefined ? {} : {type}),
  }
}

/** The claims, or undefined when the token is not a readable JWT (legacy `rt_…` refresh tokens). */
export function tryDecodeJwtClaims(token: string): JwtClaims | undefined {
  try {
    return decodeJwtClaims(token)
  } catch {
    return undefined
  }
}

/** `exp` as an ISO 8601 UTC time, or undefined when it is out of the Date range. */
export function expiryIso(claims: JwtClaims): string | undefined {
  const ms = claims.exp * 1000
  const date = new Date(ms)
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString()
}
