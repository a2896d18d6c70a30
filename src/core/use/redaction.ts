/**
 * Redaction of what comes back from a use operation: any echo of a secret value (raw, trimmed, base64
 * at any alignment, URL-encoded and form-encoded, JSON-escaped as the common serialisers do it — the
 * forms of {@link maskPatterns}) becomes `<concealed by agentvault>`.
 * Built on the streaming masker of `run`, fed one whole buffer at a time.
 */
import {Masker, maskPatterns} from '../mask.js'

export interface Redactor {
  /** The bytes with every secret form replaced. */
  bytes(data: Buffer): Buffer
  /**
   * A response header name with every secret form replaced, compared without regard to case
   * (names arrive lower-cased); the name itself when it holds none.
   */
  headerName(name: string): string
  /** Whether `data` holds any secret form. */
  contains(data: Buffer | string): boolean
  /** Whether a URL carries a secret: as written, or once its path and query are decoded. */
  inUrl(url: URL): boolean
  /** True once any call to bytes/text/value replaced something. */
  readonly redacted: boolean
  /** The string (as latin1 bytes, as HTTP headers are) with every secret form replaced. */
  text(value: string): string
  /** Strings anywhere inside a JSON-like value redacted; other values kept. */
  value<T>(data: T): T
}

/** A copy with ASCII letters lower-cased (header names are ASCII tokens; other bytes stay). */
function asciiLowerCase(bytes: Buffer): Buffer {
  const lower = Buffer.from(bytes)
  for (let i = 0; i < lower.length; i++) if (lower[i]! >= 0x41 && lower[i]! <= 0x5a) lower[i]! += 0x20
  return lower
}

/** `replacement` defaults to the masker's `<concealed by agentvault>` (`proxy` uses AgentSecrets' marker). */
export function createRedactor(values: readonly Buffer[], replacement?: string): Redactor {
  const patterns = maskPatterns(values)
  const marker = replacement === undefined ? [] : [Buffer.from(replacement, 'utf8')]
  const masker = new Masker(patterns, ...marker)
  let names: Masker | undefined
  let redacted = false
  const mask = (data: Buffer): Buffer => {
    const out = Buffer.concat([...masker.push(data), ...masker.end()])
    return out.equals(data) ? data : out
  }

  const redactor: Redactor = {
    bytes(data) {
      const out = mask(data)
      if (out !== data) redacted = true
      return out
    },
    headerName(name) {
      names ??= new Masker(
        patterns.map((p) => asciiLowerCase(p)),
        ...marker,
      )
      const bytes = asciiLowerCase(Buffer.from(name, 'latin1'))
      const out = Buffer.concat([...names.push(bytes), ...names.end()])
      if (out.equals(bytes)) return name
      redacted = true
      return out.toString('latin1')
    },
    contains(data) {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
      return mask(bytes) !== bytes
    },
    inUrl(url) {
      const parts = [url.href, ...[...url.searchParams].flat()]
      try {
        parts.push(decodeURIComponent(url.pathname), decodeURIComponent(url.hash))
      } catch {
        // Not decodable: the raw href above is all there is to check.
      }

      return parts.some((part) => redactor.contains(part))
    },
    get redacted() {
      return redacted
    },
    text(value) {
      // Header values are latin1 on the wire; UTF-8 text in JSON results is handled by `value`.
      const bytes = Buffer.from(value, 'latin1')
      const out = redactor.bytes(bytes)
      return out === bytes ? value : out.toString('latin1')
    },
    value<T>(data: T): T {
      if (typeof data === 'string') {
        const bytes = Buffer.from(data, 'utf8')
        const out = redactor.bytes(bytes)
        return (out === bytes ? data : out.toString('utf8')) as T
      }

      if (Array.isArray(data)) return data.map((item: unknown) => redactor.value(item)) as T
      if (data !== null && typeof data === 'object')
        return Object.fromEntries(
          Object.entries(data).map(([key, item]) => [key, redactor.value(item as unknown)]),
        ) as T
      return data
    },
  }
  return redactor
}
