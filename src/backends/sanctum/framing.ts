/**
 * Sanctum framing (protocols/sanctum.md §2): a 4-byte big-endian payload length, then one compact
 * JSON object in UTF-8. The decoder is incremental: frames may arrive in any chunking, headers
 * split too, several frames per chunk.
 */
import {requestTooLargeError, SanctumFrameTooLargeError, SanctumProtocolError} from './errors.js'

export const HEADER_BYTES = 4
/** §1: the default `maxFrameBytes` (16 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024

/** Encode one message; refuses (nothing sent) a payload over `maxFrameBytes`. */
export function encodeFrame(message: Record<string, unknown>, maxFrameBytes: number): Buffer {
  const payload = Buffer.from(JSON.stringify(message), 'utf8')
  if (payload.length > maxFrameBytes)
    throw requestTooLargeError(String(message.method ?? 'request'), payload.length, maxFrameBytes)
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length)
  frame.writeUInt32BE(payload.length, 0)
  payload.copy(frame, HEADER_BYTES)
  return frame
}

/** One decoded frame: the object and its payload size (for debug output, which never logs payloads). */
export interface DecodedFrame {
  message: Record<string, unknown>
  size: number
}

const utf8 = new TextDecoder('utf-8', {fatal: true})

function parsePayload(payload: Buffer): Record<string, unknown> {
  let text: string
  try {
    text = utf8.decode(payload)
  } catch {
    throw new SanctumProtocolError(`a ${payload.length}-byte frame is not valid UTF-8`)
  }

  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    // JSON.parse's message quotes the text: never pass it on.
    throw new SanctumProtocolError(`a ${payload.length}-byte frame is not valid JSON`)
  }

  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`
    throw new SanctumProtocolError(`a frame holds ${kind}, not a JSON object`)
  }

  return value as Record<string, unknown>
}

/**
 * Incremental frame reader. `push` returns the frames completed by a chunk, or throws a
 * SanctumProtocolError (SanctumFrameTooLargeError for an oversized header, thrown before any of
 * its body is buffered). After a throw the stream cannot be trusted: drop the decoder.
 */
export class FrameDecoder {
  private readonly chunks: Buffer[] = []
  /** Payload length of the frame being read, once its header is complete. */
  private expected: number | undefined
  private length = 0

  constructor(private readonly maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {}

  /** Bytes received but not yet part of a complete frame (a partial header or body). */
  get bufferedBytes(): number {
    return this.length + (this.expected === undefined ? 0 : HEADER_BYTES)
  }

  push(chunk: Buffer): DecodedFrame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk)
      this.length += chunk.length
    }

    const frames: DecodedFrame[] = []
    for (;;) {
      if (this.expected === undefined) {
        if (this.length < HEADER_BYTES) break
        const size = this.take(HEADER_BYTES).readUInt32BE(0)
        if (size > this.maxFrameBytes) throw new SanctumFrameTooLargeError(size, this.maxFrameBytes)
        if (size === 0) throw new SanctumProtocolError('an empty (zero-length) frame')
        this.expected = size
      }

      if (this.length < this.expected) break
      const size = this.expected
      this.expected = undefined
      frames.push({message: parsePayload(this.take(size)), size})
    }

    return frames
  }

  /** Remove and return the first `n` buffered bytes (n ≤ length), copying only across chunks. */
  private take(n: number): Buffer {
    this.length -= n
    const first = this.chunks[0] as Buffer
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      return first.subarray(0, n)
    }

    const parts: Buffer[] = []
    let need = n
    while (need > 0) {
      const chunk = this.chunks[0] as Buffer
      if (chunk.length <= need) {
        parts.push(chunk)
        this.chunks.shift()
        need -= chunk.length
      } else {
        parts.push(chunk.subarray(0, need))
        this.chunks[0] = chunk.subarray(need)
        need = 0
      }
    }

    return Buffer.concat(parts, n)
  }
}
