/**
 * Streaming, byte-safe concealment of secret values in a child's output (product.md §4).
 *
 * `agentvault run` pumps every non-TTY child stream through a {@link Masker} (output-pump.ts). It
 * works on raw bytes (never decodes UTF-8, so binary output and split multi-byte characters pass
 * through untouched), holds back at most `longest pattern − 1` bytes between chunks (so memory does
 * not grow with output size, yet a value split across any number of chunks is still caught), and
 * finds all patterns in one multi-pattern pass (Wu–Manber) rather than one pass per pattern.
 */
import {uniqueLongestFirst} from './mask-patterns.js'

export {type MaskPatternOptions, maskPatterns, MIN_LINE_LENGTH} from './mask-patterns.js'

/** What a concealed value is replaced with. */
export const DEFAULT_REPLACEMENT = '<concealed by agentvault>'

/** Bits of the block hash: a 16 KiB shift table stays in L1 cache, which the scan loop is bound by. */
const HASH_BITS = 14
const HASH_MASK = (1 << HASH_BITS) - 1
/**
 * Window ends examined per collect/verify round. Bounds the candidate array whatever the chunk
 * size, so a caller pushing one huge chunk does not make the masker allocate in proportion.
 */
const SLICE = 65_536
/** Ranges shorter than this are scanned with one lane; four lanes only pay off on longer ones. */
const LANES_MIN = 4096
const EMPTY = Buffer.alloc(0)

/**
 * Incremental masker: feed it chunks with {@link Masker.push}, then call {@link Masker.end}. Every
 * occurrence of a pattern in the concatenated input is replaced with `replacement`; when matches
 * overlap, the leftmost wins, then the longest at that position, and scanning resumes after it.
 * The output is the same however the input is split into chunks.
 *
 * Search: Wu–Manber. Every pattern's first `window` bytes (window = shortest pattern length) feed a
 * table saying how far the window may safely slide given the hash of the two bytes at its end; a
 * slide of 0 marks a candidate, verified against the few patterns whose window ends that way. On
 * random or text-like data the window slides almost `window` bytes per step. Each step's lookup
 * depends on the previous one, so a single scan is latency-bound; four independent lanes (the
 * quarters of a range) run interleaved to overlap those latencies (measured ≈3× one lane), and candidates are
 * verified afterwards in order. That is equivalent to one sequential scan, because a Wu–Manber
 * scan from any alignment lands on every place where a pattern's window ends.
 *
 * Returned buffers may be views of the chunk passed to `push` (nothing is copied on the common
 * path), so the caller must not reuse a chunk's memory until it has consumed the output. Patterns
 * are used as given, not copied: do not modify them while the masker is in use.
 */
export class Masker {
  private readonly tables: MaskTables
  private readonly replacement: Buffer
  /** Window ends found by `collect`, reused across rounds; grows up to SLICE entries. */
  private candidates = new Int32Array(0)
  /** Scratch space of the four-lane scan (collectPairs). */
  private readonly lanes = new Int32Array(8)
  private held: Buffer = EMPTY

  /**
   * @param patterns byte patterns to conceal (e.g. from `maskPatterns`), or the tables another
   *   masker was built with (see {@link MaskTables}); empty patterns are ignored since they would
   *   conceal nothing. Order does not matter.
   * @param replacement what each occurrence becomes.
   */
  constructor(
    patterns: MaskTables | readonly Buffer[],
    replacement: Buffer = Buffer.from(DEFAULT_REPLACEMENT),
  ) {
    this.tables = patterns instanceof MaskTables ? patterns : new MaskTables(patterns)
    this.replacement = replacement
  }

  /** Bytes currently held back because they might be the start of a value split across chunks. */
  get heldBack(): number {
    return this.held.length
  }

  /** Feed the next chunk; returns the output that is final (possibly none). */
  push(chunk: Buffer): Buffer[] {
    const {longest} = this.tables
    if (longest === 0) return chunk.length > 0 ? [chunk] : []
    if (chunk.length === 0) return []
    const out: Buffer[] = []
    const reach = longest - 1 // bytes after a start position needed to decide it
    const {held} = this
    let from = 0 // first undecided position in `chunk`

    if (held.length > 0 && chunk.length < reach) {
      // Too little new data to decide the held bytes: work on a copy of everything undecided.
      const data = Buffer.concat([held, chunk])
      this.held = this.settle(data, 0, data.length - reach, out)
      return out
    }

    if (held.length > 0) {
      // Decide the held positions on a small copy of held + the first `reach` bytes of the chunk,
      // enough to see any pattern starting there, so the bulk of the chunk is never copied.
      const seam = Buffer.concat([held, chunk.subarray(0, reach)])
      const cursor = this.scan(seam, 0, held.length, out)
      if (cursor < held.length) out.push(seam.subarray(cursor, held.length))
      from = Math.max(cursor, held.length) - held.length
    }

    this.held = this.settle(chunk, from, chunk.length - reach, out)
    return out
  }

  /**
   * Feed `buffer[start, end)`, using the `start` bytes before it as free room: the held-back bytes
   * are copied there, just before the new ones, so that output with no match is one view of
   * `buffer` (one write for the caller) rather than the held bytes and the chunk apart. With less
   * room than is held back this is `push(buffer.subarray(start, end))`. The output is the same as
   * push's; `buffer[0, start)` may be overwritten.
   */
  pushAfter(buffer: Buffer, start: number, end: number): Buffer[] {
    const {held} = this
    if (held.length === 0 || held.length > start || this.tables.longest === 0)
      return this.push(buffer.subarray(start, end))
    const from = start - held.length
    held.copy(buffer, from)
    const out: Buffer[] = []
    const data = buffer.subarray(from, end)
    this.held = this.settle(data, 0, data.length - (this.tables.longest - 1), out)
    return out
  }

  /**
   * One whole input at once, as `push(data)` then `end()` would mask it, for a caller that has all
   * of it (a response to redact): every position is decided in one pass, nothing is held back or
   * copied, and input with no match comes back as one view of `data`.
   */
  whole(data: Buffer): Buffer[] {
    if (this.held.length > 0) return [...this.push(data), ...this.end()]
    if (this.tables.longest === 0 || data.length === 0) return data.length > 0 ? [data] : []
    const out: Buffer[] = []
    this.settle(data, 0, data.length, out)
    return out
  }

  /** The input ended: everything held back is final (a prefix of a pattern at the very end is not a match). */
  end(): Buffer[] {
    return this.flush()
  }

  /**
   * Give up waiting for more input (e.g. the writer went quiet): everything held back is decided
   * now, as at the end, and the masker goes on with the next chunk. A value whose first bytes are
   * flushed this way and whose rest comes later is not caught: the caller flushes only after a
   * pause, when a prompt or a cut-off line is likelier than a value written in two parts.
   */
  flush(): Buffer[] {
    const {held} = this
    this.held = EMPTY
    if (held.length === 0) return []
    const out: Buffer[] = []
    this.settle(held, 0, held.length, out)
    return out
  }

  /**
   * Decide every start position in [from, limit) of `data` — those far enough from its end for any
   * pattern to fit — and, beyond `limit`, every position where no pattern can begin; emit the
   * decided bytes into `out` and return a copy of the undecided rest (a copy, so the caller's
   * chunk is not retained and may be reused).
   */
  private settle(data: Buffer, from: number, limit: number, out: Buffer[]): Buffer {
    const cursor = this.scan(data, from, limit, out)
    let decided = Math.max(cursor, limit)
    while (decided < data.length && !this.mightStartAt(data, decided)) decided++
    if (decided > cursor) out.push(data.subarray(cursor, decided))
    return decided < data.length ? Buffer.from(data.subarray(decided)) : EMPTY
  }

  /** Whether a pattern matches at `start`, or would if `data` went on. */
  private mightStartAt(data: Buffer, start: number): boolean {
    const {byFirstByte, next, patterns} = this.tables
    const available = data.length - start
    for (let k = byFirstByte[data[start]!]!; k !== -1; k = next.firstByte[k]!) {
      const p = patterns[k]!
      const length = Math.min(p.length, available)
      let i = 1
      while (i < length && data[start + i] === p[i]) i++
      if (i === length) return true
    }

    return false
  }

  /**
   * Find the matches starting in [from, limit) and emit what precedes each plus the replacement.
   * Returns the position after the last match (or `from`); bytes from there on are not emitted.
   * A pattern only matches if it lies entirely inside `data`.
   */
  private scan(data: Buffer, from: number, limit: number, out: Buffer[]): number {
    const {window} = this.tables
    const stop = Math.min(limit + window - 1, data.length) // window ends < stop
    let cursor = from
    for (let lo = from + window - 1; lo < stop; lo += SLICE) {
      const count = this.collect(data, lo, Math.min(lo + SLICE, stop))
      cursor = this.verify(data, cursor, count, out)
    }

    return cursor
  }

  /** Record in `candidates`, ascending, the window ends in [lo, hi) whose block has shift 0. */
  private collect(data: Buffer, lo: number, hi: number): number {
    const {pairs, shift} = this.tables
    // One entry per window end at most; small pushes (e.g. byte by byte) keep this small.
    if (this.candidates.length < hi - lo)
      this.candidates = new Int32Array(Math.min(SLICE, Math.max(hi - lo, 4096)))
    const found = this.candidates
    if (!pairs) {
      let count = 0
      for (let end = lo; end < hi; end++) if (shift[data[end]!] === 0) found[count++] = end
      return count
    }

    return collectPairs(data, shift, lo, hi, found, this.lanes)
  }

  /** Check the collected candidates in order, emitting as `scan` describes; returns the new cursor. */
  private verify(data: Buffer, cursor: number, count: number, out: Buffer[]): number {
    const {byWindowEnd, next, pairs, patterns, window} = this.tables
    const found = this.candidates
    const n = data.length
    for (let c = 0; c < count; c++) {
      const end = found[c]!
      const start = end - window + 1
      if (start < cursor) continue // inside a match already replaced
      const h = blockHash(data, end, pairs)
      for (let k = byWindowEnd[h]!; k !== -1; k = next.windowEnd[k]!) {
        const p = patterns[k]!
        const {length} = p
        if (start + length > n) continue
        let i = 0
        while (i < length && data[start + i] === p[i]) i++
        if (i === length) {
          if (start > cursor) out.push(data.subarray(cursor, start))
          out.push(this.replacement)
          cursor = start + length
          break
        }
      }
    }

    return cursor
  }
}

/**
 * Wu–Manber candidates over [lo, hi) with byte-pair blocks, in four interleaved lanes (see
 * {@link Masker}); writes them to `found` in ascending order and returns how many there are.
 * `lanes` is scratch space for {@link fourLanes} (8 entries).
 */
// eslint-disable-next-line max-params -- hot path: plain arguments, no options object to unpack
function collectPairs(
  data: Buffer,
  shift: Uint8Array,
  lo: number,
  hi: number,
  found: Int32Array,
  lanes: Int32Array,
): number {
  if (hi - lo < LANES_MIN) return slide(data, shift, lo, hi, found, 0)
  // Four lanes over the quarters of the range. Lane k writes its candidates from offset k ×
  // quarter, which lane k − 1 (at most one candidate per position) cannot reach.
  const quarter = (hi - lo) >> 2
  const q1 = lo + quarter
  const q2 = q1 + quarter
  const q3 = q2 + quarter
  lanes[0] = lo
  lanes[1] = q1
  lanes[2] = q2
  lanes[3] = q3
  lanes[4] = 0
  lanes[5] = quarter
  lanes[6] = 2 * quarter
  lanes[7] = 3 * quarter
  fourLanes(data, shift, found, lanes, hi)
  let na = slide(data, shift, lanes[0]!, q1, found, lanes[4]!)
  const nb = slide(data, shift, lanes[1]!, q2, found, lanes[5]!)
  const nc = slide(data, shift, lanes[2]!, q3, found, lanes[6]!)
  const nd = slide(data, shift, lanes[3]!, hi, found, lanes[7]!)
  found.copyWithin(na, quarter, nb)
  na += nb - quarter
  found.copyWithin(na, 2 * quarter, nc)
  na += nc - 2 * quarter
  found.copyWithin(na, 3 * quarter, nd)
  return na + nd - 3 * quarter
}

/**
 * The interleaved part of {@link collectPairs}: the four lanes advance together until one reaches
 * the end of its quarter. Positions and candidate counts come in and go back through `lanes`
 * (a, b, c, d, then na, nb, nc, nd). A function of its own, and a small one, so that V8 optimizes
 * it after the first chunk: inside collectPairs (with four copies of `slide` inlined) it ran
 * unoptimized for the first ~10 MiB of output while the optimizing compiler worked on the whole.
 */
// eslint-disable-next-line max-params -- hot path: plain arguments, no options object to unpack
function fourLanes(data: Buffer, shift: Uint8Array, found: Int32Array, lanes: Int32Array, hi: number): void {
  let a = lanes[0]!
  let b = lanes[1]!
  let c = lanes[2]!
  let d = lanes[3]!
  let na = lanes[4]!
  let nb = lanes[5]!
  let nc = lanes[6]!
  let nd = lanes[7]!
  const q1 = b
  const q2 = c
  const q3 = d
  while (a < q1 && b < q2 && c < q3 && d < hi) {
    const sa = shift[((data[a - 1]! << 7) ^ data[a]!) & HASH_MASK]!
    const sb = shift[((data[b - 1]! << 7) ^ data[b]!) & HASH_MASK]!
    const sc = shift[((data[c - 1]! << 7) ^ data[c]!) & HASH_MASK]!
    const sd = shift[((data[d - 1]! << 7) ^ data[d]!) & HASH_MASK]!
    if (sa === 0) found[na++] = a++
    else a += sa
    if (sb === 0) found[nb++] = b++
    else b += sb
    if (sc === 0) found[nc++] = c++
    else c += sc
    if (sd === 0) found[nd++] = d++
    else d += sd
  }

  lanes[0] = a
  lanes[1] = b
  lanes[2] = c
  lanes[3] = d
  lanes[4] = na
  lanes[5] = nb
  lanes[6] = nc
  lanes[7] = nd
}

/**
 * One Wu–Manber lane: slide a window whose last byte is at `end` until it reaches `stop`, appending
 * the window ends with shift 0 to `found` from index `count`; returns the new count.
 */
// eslint-disable-next-line max-params -- hot path: plain arguments, no options object to unpack
function slide(
  data: Buffer,
  shift: Uint8Array,
  end: number,
  stop: number,
  found: Int32Array,
  count: number,
): number {
  while (end < stop) {
    const step = shift[((data[end - 1]! << 7) ^ data[end]!) & HASH_MASK]!
    if (step === 0) found[count++] = end++
    else end += step
  }

  return count
}

/** Maskers for `patterns`, one per call (e.g. per output stream), sharing one set of tables. */
export function maskers(patterns: readonly Buffer[], replacement?: Buffer): () => Masker {
  const tables = new MaskTables(patterns)
  return () => new Masker(tables, replacement)
}

/** Hash of the block of a Wu–Manber window that ends at `data[end]` (byte pairs, or single bytes). */
function blockHash(data: Uint8Array, end: number, pairs: boolean): number {
  return pairs ? ((data[end - 1]! << 7) ^ data[end]!) & HASH_MASK : data[end]!
}

/**
 * The search tables of a {@link Masker}, built once from a pattern set: a masker per output stream
 * can share them (`new Masker(tables)`), so a run with both streams masked builds them once.
 * Immutable once built; the patterns are used as given, not copied.
 */
export class MaskTables {
  /** Patterns with a given first byte: `patterns[byFirstByte[b]]`, then along `next.firstByte`. */
  readonly byFirstByte: Int32Array
  /**
   * Patterns whose window ends with a given block hash, in pattern order (longest first, so the
   * first one that matches at a position is the longest match there): `byWindowEnd[h]`, then
   * along `next.windowEnd`; −1 ends a list.
   */
  readonly byWindowEnd: Int32Array
  /** Length of the longest pattern: at most this − 1 bytes are ever held back. */
  readonly longest: number
  readonly next: {readonly firstByte: Int32Array; readonly windowEnd: Int32Array}
  /** Blocks are byte pairs, unless some pattern is a single byte (window 1). */
  readonly pairs: boolean
  /** Patterns, deduplicated and sorted longest first. */
  readonly patterns: readonly Buffer[]
  /** How far the window may slide when its last block has a given hash; 0 = candidate. */
  readonly shift: Uint8Array
  /** Wu–Manber window: how many leading bytes of every pattern the shift table covers. */
  readonly window: number

  constructor(patterns: readonly Buffer[]) {
    const sorted = uniqueLongestFirst(patterns)
    this.patterns = sorted
    this.longest = sorted[0]?.length ?? 0
    // Capped so that shifts fit a byte.
    const window = Math.min(sorted.at(-1)?.length ?? 1, 255)
    const pairs = window >= 2
    this.window = window
    this.pairs = pairs
    const shift = new Uint8Array(HASH_MASK + 1).fill(window - (pairs ? 1 : 0))
    for (const p of sorted) {
      for (let j = pairs ? 1 : 0; j < window; j++) {
        const h = blockHash(p, j, pairs)
        if (shift[h]! > window - 1 - j) shift[h] = window - 1 - j
      }
    }

    this.shift = shift
    // Linked lists rather than prefix sums over the whole table: no pass over its 16 Ki entries,
    // which costs more than everything else here while the code is not yet compiled.
    this.byWindowEnd = new Int32Array(HASH_MASK + 1).fill(-1)
    this.byFirstByte = new Int32Array(256).fill(-1)
    this.next = {firstByte: new Int32Array(sorted.length), windowEnd: new Int32Array(sorted.length)}
    // Prepending in reverse keeps each list in pattern order.
    for (let k = sorted.length - 1; k >= 0; k--) {
      const p = sorted[k]!
      const h = blockHash(p, window - 1, pairs)
      this.next.windowEnd[k] = this.byWindowEnd[h]!
      this.byWindowEnd[h] = k
      this.next.firstByte[k] = this.byFirstByte[p[0]!]!
      this.byFirstByte[p[0]!] = k
    }
  }
}
