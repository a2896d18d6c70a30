/**
 * HS256 JWTs for the AgentAuth test server (protocols/agentauth.md §4): compact JWS with the
 * server's secret, no `iss`/`aud`/`sub`/`jti`, as `jsonwebtoken` makes them.
 */
import {createHmac, timingSafeEqual} from 'node:crypto'

const HEADER = Buffer.from(JSON.stringify({alg: 'HS256', typ: 'JWT'})).toString('base64url')

export function signJwt(payload: Record<string, unknown>, secret: string): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url')
  const signature = createHmac('sha256', secret).update(`${HEADER}.${body}`).digest('base64url')
  return `${HEADER}.${body}.${signature}`
}

/** The payload of a token signed with `secret` and not expired at `nowSeconds`; undefined otherwise. */
export function verifyJwt(
  token: string,
  secret: string,
  nowSeconds: number,
): Record<string, unknown> | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  const [header, body, signature] = parts as [string, string, string]
  const expected = createHmac('sha256', secret).update(`${header}.${body}`).digest()
  const given = Buffer.from(signature, 'base64url')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
  let payload: unknown
  try {
    const head = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as {alg?: string}
    if (head.alg !== 'HS256') return undefined
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }

  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined
  const {exp} = payload as {exp?: unknown}
  if (typeof exp === 'number' && nowSeconds >= exp) return undefined
  return payload as Record<string, unknown>
}

/** The claims of a token signed with `secret`, whatever its expiry (for assertions). */
export function decodeForTest(
  token: string | undefined,
  secret: string,
): Record<string, unknown> & {exp: number; iat: number} {
  const payload = verifyJwt(token ?? '', secret, 0)
  if (!payload) throw new Error('not a token signed with this secret')
  return payload as Record<string, unknown> & {exp: number; iat: number}
}
