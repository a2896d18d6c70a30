import fc from 'fast-check'
import assert from 'node:assert/strict'

import {SanctumFrameTooLargeError, SanctumProtocolError} from '../../../src/backends/sanctum/errors.js'
import {encodeFrame, FrameDecoder} from '../../../src/backends/sanctum/framing.js'
import {UsageError} from '../../../src/core/errors.js'
import {VECTOR} from '../../servers/sanctum/fixtures.js'

const MAX = 1024 * 1024

function frameOf(payload: Buffer): Buffer {
  const header = Buffer.alloc(4)
  header.writeUInt32BE(payload.length, 0)
  return Buffer.concat([header, payload])
}

/** Split `bytes` at the given cut points (sorted, deduplicated, within range). */
function chunk(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
  const pieces: Buffer[] = []
  let start = 0
  for (const point of [...points, bytes.length]) {
    pieces.push(bytes.subarray(start, point))
    start = point
  }

  return pieces
}

function decodeAll(decoder: FrameDecoder, pieces: Buffer[]): Array<Record<string, unknown>> {
  return pieces.flatMap((piece) => decoder.push(piece).map((frame) => frame.message))
}

function protocolError(payload: Buffer): SanctumProtocolError {
  try {
    new FrameDecoder(MAX).push(frameOf(payload))
  } catch (error) {
    assert.ok(error instanceof SanctumProtocolError, String(error))
    assert.equal(error.exitCode, 5)
    return error
  }

  assert.fail('expected a protocol error')
}

describe('sanctum framing (protocols/sanctum.md §2)', () => {
  it('encodes compact JSON behind a 4-byte big-endian length: the §13 example is 00 00 00 3f', () => {
    const frame = encodeFrame({id: 1, method: 'authenticate', params: {agent_name: 'test'}}, MAX)
    assert.equal(frame.subarray(0, 4).toString('hex'), '0000003f')
    assert.equal(frame.subarray(4).toString('utf8'), VECTOR.authenticateExample)
  })

  it('refuses to send a request over maxFrameBytes (a local usage error)', () => {
    assert.throws(
      () => encodeFrame({id: 1, method: 'use', params: {body: 'x'.repeat(2048)}}, 1024),
      (error: unknown) => error instanceof UsageError && error.code === 'SANCTUM_REQUEST_TOO_LARGE',
    )
  })

  it('reassembles a header split across chunks and several frames in one chunk', () => {
    const a = encodeFrame({id: 1, result: {a: 1}}, MAX)
    const b = encodeFrame({id: 2, result: {b: 'ü'}}, MAX)
    const decoder = new FrameDecoder(MAX)
    assert.deepEqual(decoder.push(a.subarray(0, 2)), [])
    assert.equal(decoder.bufferedBytes, 2)
    assert.deepEqual(
      decoder.push(Buffer.concat([a.subarray(2), b])).map((frame) => frame.message),
      [
        {id: 1, result: {a: 1}},
        {id: 2, result: {b: 'ü'}},
      ],
    )
    assert.equal(decoder.bufferedBytes, 0)
  })

  it('throws SanctumFrameTooLargeError on the header alone, with sizes only', () => {
    const header = Buffer.alloc(4)
    header.writeUInt32BE(MAX + 1, 0)
    assert.throws(
      () => new FrameDecoder(MAX).push(header),
      (error: unknown) =>
        error instanceof SanctumFrameTooLargeError &&
        error.declared === MAX + 1 &&
        error.allowed === MAX &&
        error.code === 'SANCTUM_FRAME_TOO_LARGE',
    )
  })

  it('zero-length, invalid JSON, invalid UTF-8 and non-object payloads are protocol errors that never quote the payload', () => {
    assert.match(protocolError(Buffer.alloc(0)).message, /empty/)
    const secretish = 'not json sk-canary-123'
    assert.doesNotMatch(protocolError(Buffer.from(secretish)).message, /canary/)
    assert.match(protocolError(Buffer.from([0x7b, 0xff, 0x7d])).message, /UTF-8/)
    for (const json of ['[1,2]', '"text"', '42', 'null', 'true'])
      assert.match(protocolError(Buffer.from(json)).message, /not a JSON object/)
  })

  it('property: any chunking of a valid stream yields the same messages', () => {
    const message = fc.dictionary(fc.string({maxLength: 8}), fc.jsonValue({maxDepth: 3}), {maxKeys: 6})
    fc.assert(
      fc.property(
        fc.array(message, {maxLength: 8}),
        fc.array(fc.nat(), {maxLength: 40}),
        (messages, cuts) => {
          const stream = Buffer.concat(messages.map((m) => encodeFrame(m, MAX)))
          // JSON semantics on purpose (-0 becomes 0, undefined members vanish), not a deep clone.
          // eslint-disable-next-line unicorn/prefer-structured-clone
          const expected = messages.map((m) => JSON.parse(JSON.stringify(m)))
          assert.deepEqual(decodeAll(new FrameDecoder(MAX), chunk(stream, cuts)), expected)
          // One byte at a time, too.
          const bytes = [...stream].map((byte) => Buffer.from([byte]))
          assert.deepEqual(decodeAll(new FrameDecoder(MAX), bytes), expected)
        },
      ),
      {numRuns: 300},
    )
  })

  it('property: random bytes in any chunking yield only objects or typed protocol errors', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({maxLength: 300}),
          // A plausible header in front of random bytes, to reach the JSON and UTF-8 checks.
          fc
            .tuple(fc.integer({min: 0, max: 64}), fc.uint8Array({maxLength: 64}))
            .map(([length, body]) => Buffer.concat([Buffer.from([0, 0, 0, length]), body])),
        ),
        fc.array(fc.nat(), {maxLength: 20}),
        (bytes, cuts) => {
          const decoder = new FrameDecoder(4096)
          try {
            for (const message of decodeAll(decoder, chunk(Buffer.from(bytes), cuts)))
              assert.ok(typeof message === 'object' && message !== null && !Array.isArray(message))
          } catch (error) {
            assert.ok(error instanceof SanctumProtocolError, `untyped error: ${String(error)}`)
          }
        },
      ),
      {numRuns: 1000},
    )
  })
})
