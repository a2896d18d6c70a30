/**
 * Redaction of what comes back from a use operation: any echo of a secret value (raw, base64,
 * URL-encoded, JSON-escaped — the forms of {@link maskPatterns}) becomes `<concealed by agentvault>`.
 * Built on the streaming masker of `run`, fed one whole buffer at a time.
 */
import {isUtf8} from 'node:buffer'

import {Masker, maskPatterns} from '../mask.js'

export interface Redactor {
  /** The bytes with every secret form replaced. */
  bytes(data: Buffer): Buffer
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

/**
 * The `application/x-www-form-urlencoded` form of each text value (space as `+`, `!'()~` escaped),
 * where it differs from the URL-encoded form {@link maskPatterns} already covers: servers echo form
 * bodies and query strings that way.
 */
function formEncodedForms(values: readonly Buffer[]): Buffer[] {
  const forms: Buffer[] = []
  for (const value of values) {
    if (value.length < 4 || !isUtf8(value)) continue
    const text = value.toString('utf8')
    const form = new URLSearchParams([['', text]]).toString().slice(1)
    if (form !== encodeURIComponent(text)) forms.push(Buffer.from(form, 'utf8'))
  }

  return forms
}

/** `replacement` defaults to the masker's `<concealed by agentvault>` (`proxy` uses AgentSecrets' marker). */
export function createRedactor(values: readonly Buffer[], replacement?: string): Redactor {
  const masker = new Masker(
    [...maskPatterns(values), ...formEncodedForms(values)],
    ...(replacement === undefined ? [] : [Buffer.from(replacement, 'utf8')]),
  )
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
