/**
 * The result of an HTTP use operation: the engine's outcome (body as bytes, for `call` to print
 * binary-safe) and its stable `--json` shape (`call --json`, `use … http_request`).
 */
import {isUtf8} from 'node:buffer'

/** The response as the engine hands it back: redacted, body as bytes. */
export interface HttpOutcome {
  body: Buffer
  duration_ms: number
  headers: Record<string, string | string[]>
  redacted: boolean
  status: number
  statusText: string
}

/** The `--json` shape of an HTTP result. */
export interface HttpResult {
  body: string
  /** Present when the body is not UTF-8: then `body` is base64. */
  bodyEncoding?: 'base64'
  duration_ms: number
  /** Lower-cased names; `set-cookie` is a list. */
  headers: Record<string, string | string[]>
  /** True when an echo of a secret value was concealed in the headers or body. */
  redacted: boolean
  status: number
}

/** The `--json` form of an outcome: the body as UTF-8 text, or base64 with `bodyEncoding`. */
export function toHttpResult(outcome: Omit<HttpOutcome, 'statusText'>): HttpResult {
  const utf8 = isUtf8(outcome.body)
  return {
    status: outcome.status,
    headers: outcome.headers,
    body: outcome.body.toString(utf8 ? 'utf8' : 'base64'),
    ...(!utf8 && {bodyEncoding: 'base64' as const}),
    redacted: outcome.redacted,
    duration_ms: outcome.duration_ms,
  }
}
