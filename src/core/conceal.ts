/**
 * Concealing what agentvault sent in what a server sends back about it (product.md §10). Error
 * texts are the server's to write: one that echoes the request (a validation message quoting the
 * body, a proxy's error page, a token in a "bad token" message) would otherwise carry a value into
 * an error message, `--json` details or a log. Every backend passes the server-provided parts of
 * its errors through `concealSent` with the values of the request: the same forms the `run` masker
 * and `use` redaction conceal (raw, base64, URL-encoded, JSON-escaped) become
 * `<concealed by agentvault>`.
 */
import {createRedactor} from './use/redaction.js'

/** Every string (and Buffer) inside `sent`: request bodies, parameter maps, tokens. */
function sentValues(sent: readonly unknown[]): Buffer[] {
  const values: Buffer[] = []
  const visit = (item: unknown, depth: number): void => {
    if (typeof item === 'string') values.push(Buffer.from(item, 'utf8'))
    else if (Buffer.isBuffer(item)) values.push(item)
    else if (depth < 8 && Array.isArray(item)) for (const inner of item) visit(inner, depth + 1)
    else if (depth < 8 && item !== null && typeof item === 'object')
      for (const inner of Object.values(item)) visit(inner, depth + 1)
  }

  for (const item of sent) visit(item, 0)
  return values
}

/**
 * `received` (a string, or a JSON-like value whose strings are scanned) with every form of every
 * value found in `sent` concealed. Values under 4 bytes are not concealed (as in masking).
 */
export function concealSent<T>(received: T, sent: readonly unknown[]): T {
  const values = sentValues(sent)
  if (values.length === 0) return received
  return createRedactor(values).value(received)
}
