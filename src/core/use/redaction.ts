/**
 * Redaction of what comes back from a use operation: any echo of a secret value (raw, trimmed, base64
 * at any alignment, URL-encoded and form-encoded, JSON-escaped as the common serialisers do it — the
 * forms of {@link maskPatterns}) becomes `<concealed by agentvault>`.
 * Built on the streaming masker of `run`, fed one whole buffer at a time.
 */
import {hash as oneShotHash} from 'node:crypto'

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
  /**
   * Text of agentvault's own that quotes what a server sent (an error naming a redirect's host or
   * scheme, which URL parsing lower-cased) with every secret form concealed whatever its case;
   * the rest of the text keeps its case.
   */
  message(text: string): string
  /** True once any call to bytes/text/value replaced something. */
  readonly redacted: boolean
  /** The string (as latin1 bytes, as HTTP headers are) with every secret form replaced. */
  text(value: string): string
  /** Strings anywhere inside a JSON-like value redacted, object keys too; other values kept. */
  value<T>(data: T): T
}

/** A copy with ASCII letters lower-cased (header names are ASCII tokens; other bytes stay). */
function asciiLowerCase(bytes: Buffer): Buffer {
  // Memory of its own (not Node's shared pool): a masker's output piece that is a view of it is
  // text, anything else the marker (see lowerMasked).
  const lower = Buffer.alloc(bytes.length)
  bytes.copy(lower)
  for (let i = 0; i < lower.length; i++) if (lower[i]! >= 0x41 && lower[i]! <= 0x5a) lower[i]! += 0x20
  return lower
}

/** The maskers of one value set (and marker): built once, then reused while sharing is on. */
interface Maskers {
  /** The replacement given, as bytes; undefined for the masker's default. */
  marker?: Buffer
  masker: Masker
  names?: Masker
  patterns: Buffer[]
  /** The shortest pattern's length: shorter input holds no pattern (most header values). */
  shortest: number
}

/** Value sets whose maskers a long-lived process (`proxy`) keeps, most recently used last. */
let shared: Map<string, Maskers> | undefined
const MAX_SHARED = 64

/**
 * Keep the maskers of each value set for later redactors of the same values (building them is
 * most of a small request's redaction cost), and conceal every value redacted so far in every
 * later redaction (see `remembered`): for `proxy` and `mcp`, which serve the same secrets again
 * and again. The kept maskers hold the values' forms for the process's lifetime (at most
 * {@link MAX_SHARED} sets). `false` drops them and wipes the remembered values. Returns whether
 * sharing is on.
 */
export function shareMaskers(on: boolean): boolean {
  shared = on ? (shared ?? new Map()) : undefined
  if (!on) for (const value of remembered.splice(0)) value.fill(0)
  return on
}

/**
 * While sharing is on: copies of the values redacted so far, oldest first. A long-lived server
 * conceals them in every later response too, not only the values that response's request used: an
 * upstream that kept a value sent in one request (a paste, a gist, a conversation) could otherwise
 * hand it back in the answer to a later request that injects another secret.
 */
const remembered: Buffer[] = []
/** Values remembered at most; beyond it the oldest is forgotten (and wiped). */
const MAX_REMEMBERED = 256

/** `values` and, while sharing is on, every value remembered before (remembering the new ones). */
function withRemembered(values: readonly Buffer[]): readonly Buffer[] {
  if (!shared) return values
  for (const value of values)
    if (value.length > 0 && !remembered.some((known) => known.equals(value))) {
      remembered.push(Buffer.from(value))
      if (remembered.length > MAX_REMEMBERED) remembered.shift()?.fill(0)
    }

  return remembered
}

function maskersFor(values: readonly Buffer[], replacement: string | undefined): Maskers {
  const build = (): Maskers => {
    // Copies: the caller wipes its values after use, and a kept masker must not change with them.
    const patterns = maskPatterns(shared ? values.map((value) => Buffer.from(value)) : values)
    const marker = replacement === undefined ? undefined : Buffer.from(replacement, 'utf8')
    const shortest = Math.min(...patterns.filter((p) => p.length > 0).map((p) => p.length))
    return {
      ...(marker && {marker}),
      masker: new Masker(patterns, ...(marker ? [marker] : [])),
      patterns,
      shortest,
    }
  }

  if (!shared) return build()
  // The key is a digest, never the values: one call over one buffer (a Hash object per request
  // costs more than hashing these few bytes).
  const parts: Buffer[] = [Buffer.from(replacement ?? '\u0000', 'utf8')]
  for (const value of values) parts.push(Buffer.from(`\u0000${value.length}:`, 'latin1'), value)
  const joined = Buffer.concat(parts)
  const key = oneShotHash('sha256', joined, 'hex')
  joined.fill(0)
  let entry = shared.get(key)
  if (entry) {
    shared.delete(key)
  } else {
    entry = build()
    if (shared.size >= MAX_SHARED) shared.delete(shared.keys().next().value as string)
  }

  shared.set(key, entry)
  return entry
}

/** `replacement` defaults to the masker's `<concealed by agentvault>` (`proxy` uses AgentSecrets' marker). */
export function createRedactor(values: readonly Buffer[], replacement?: string): Redactor {
  return new ValueRedactor(maskersFor(withRemembered(values), replacement))
}

/**
 * A class, not an object of closures: a `proxy` builds one per request, and its methods then
 * cost nothing to make.
 */
class ValueRedactor implements Redactor {
  redacted = false

  constructor(private readonly maskers: Maskers) {}

  bytes(data: Buffer): Buffer {
    const out = this.mask(data)
    if (out !== data) this.redacted = true
    return out
  }

  contains(data: Buffer | string): boolean {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    return this.mask(bytes) !== bytes
  }

  headerName(name: string): string {
    const {maskers} = this
    if (name.length < maskers.shortest) return name
    const bytes = asciiLowerCase(Buffer.from(name, 'latin1'))
    const out = wholeMasked(this.namesMasker(), bytes)
    if (out === bytes) return name
    this.redacted = true
    return out.toString('latin1')
  }

  inUrl(url: URL): boolean {
    const parts = [url.href, ...[...url.searchParams].flat()]
    try {
      parts.push(decodeURIComponent(url.pathname), decodeURIComponent(url.hash))
    } catch {
      // Not decodable: the raw href above is all there is to check.
    }

    // Whatever the case: URL parsing lower-cases hosts and schemes, where a redirect may put a value.
    return parts.some((part) => this.containsAnyCase(part))
  }

  /** Whether `text` holds any secret form, compared without regard to ASCII case. */
  private containsAnyCase(text: string): boolean {
    return text.length >= this.maskers.shortest && this.lowerMasked(Buffer.from(text, 'utf8')) !== undefined
  }

  message(text: string): string {
    const bytes = Buffer.from(text, 'utf8')
    if (bytes.length < this.maskers.shortest) return text
    const masked = this.lowerMasked(bytes)
    if (!masked) return text
    this.redacted = true
    // Lower-casing ASCII letters keeps every byte where it was (UTF-8 sequences have no bytes in
    // A–Z), so what matched in the lower-cased copy is replaced at the same place in the original.
    const {lower, pieces} = masked
    const out = pieces.map((piece) => {
      if (piece.buffer !== lower.buffer) return piece
      const start = piece.byteOffset - lower.byteOffset
      return bytes.subarray(start, start + piece.length)
    })
    return Buffer.concat(out).toString('utf8')
  }

  /**
   * `bytes` lower-cased and masked by the lower-cased patterns (compared without regard to ASCII
   * case): the copy and the pieces, or undefined when nothing matched.
   */
  private lowerMasked(bytes: Buffer): undefined | {lower: Buffer; pieces: Buffer[]} {
    const lower = asciiLowerCase(bytes)
    const pieces = this.namesMasker().whole(lower)
    const [only] = pieces
    return pieces.length === 1 && only!.buffer === lower.buffer && only!.length === lower.length
      ? undefined
      : {lower, pieces}
  }

  text(value: string): string {
    // Header values are latin1 on the wire (one byte per character); UTF-8 text in JSON results
    // is handled by `value`.
    if (value.length < this.maskers.shortest) return value
    const bytes = Buffer.from(value, 'latin1')
    const out = this.bytes(bytes)
    return out === bytes ? value : out.toString('latin1')
  }

  value<T>(data: T): T {
    if (typeof data === 'string') {
      const bytes = Buffer.from(data, 'utf8')
      const out = this.bytes(bytes)
      return (out === bytes ? data : out.toString('utf8')) as T
    }

    if (Array.isArray(data)) return data.map((item: unknown) => this.value(item)) as T
    if (data !== null && typeof data === 'object')
      return Object.fromEntries(
        Object.entries(data).map(([key, item]) => [this.value(key), this.value(item as unknown)]),
      ) as T
    return data
  }

  /** The maskers' patterns in lower case (built on first use, kept with the maskers). */
  private namesMasker(): Masker {
    const {maskers} = this
    maskers.names ??= new Masker(
      maskers.patterns.map((p) => asciiLowerCase(p)),
      ...(maskers.marker ? [maskers.marker] : []),
    )
    return maskers.names
  }

  private mask(data: Buffer): Buffer {
    return data.length < this.maskers.shortest ? data : wholeMasked(this.maskers.masker, data)
  }
}

/** `data`, a whole input, through `masker`: `data` itself when nothing matched. */
function wholeMasked(masker: Masker, data: Buffer): Buffer {
  const out = masker.whole(data)
  const [only] = out
  // Unchanged input comes back as one view of all of it: no copy, no comparison.
  if (
    out.length === 1 &&
    only!.byteOffset === data.byteOffset &&
    only!.length === data.length &&
    only!.buffer === data.buffer
  )
    return data
  const joined = Buffer.concat(out)
  return joined.equals(data) ? data : joined
}
