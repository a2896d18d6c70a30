import fc from 'fast-check'
import assert from 'node:assert/strict'

import {Masker, maskPatterns} from '../../../src/core/mask.js'
import {lazyFilter} from '../../../src/core/runner.js'

const VALUE = Buffer.from('lazy-s3cr3t-value')
const PATTERNS = maskPatterns([VALUE])

describe('lazyFilter (a stream’s masker, built on its first output)', () => {
  it('builds nothing for a stream that stays silent: nothing held, nothing at the end', () => {
    let built = 0
    const filter = lazyFilter(() => {
      built++
      return new Masker(PATTERNS)
    })
    assert.equal(filter.heldBack, 0)
    assert.deepEqual(filter.flush(), [])
    assert.deepEqual(filter.end(), [])
    assert.equal(built, 0)
  })

  it('gives exactly what the masker gives, for any chunking of output holding the value', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({maxLength: 40}), {maxLength: 6}),
        fc.array(fc.boolean(), {maxLength: 12}),
        (pieces, flushes) => {
          const data = Buffer.concat(pieces.flatMap((piece) => [Buffer.from(piece), VALUE]))
          const chunks = pieces.map((_, i) =>
            data.subarray((i * data.length) / pieces.length, ((i + 1) * data.length) / pieces.length),
          )
          let built = 0
          const lazy = lazyFilter(() => {
            built++
            return new Masker(PATTERNS)
          })
          const eager = new Masker(PATTERNS)
          const out: Buffer[][] = [[], []]
          for (const [i, chunk] of chunks.entries()) {
            out[0]!.push(...lazy.push(chunk))
            out[1]!.push(...eager.push(chunk))
            assert.equal(lazy.heldBack, eager.heldBack)
            if (flushes[i]) {
              out[0]!.push(...lazy.flush())
              out[1]!.push(...eager.flush())
            }
          }

          out[0]!.push(...lazy.end())
          out[1]!.push(...eager.end())
          assert.deepEqual(Buffer.concat(out[0]!), Buffer.concat(out[1]!))
          // An idle flush may let out the start of a value split across chunks, as the masker does.
          if (!flushes.includes(true)) assert.ok(!Buffer.concat(out[0]!).includes(VALUE))
          assert.equal(built, chunks.length > 0 ? 1 : 0)
        },
      ),
    )
  })
})
