import fc from 'fast-check'
import assert from 'node:assert/strict'

import {Masker, maskPatterns} from '../../../src/core/mask.js'
import {concealUnheld, lazyFilter} from '../../../src/core/runner.js'

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

describe('concealUnheld (run --placeholders: values the command never holds)', () => {
  const HELD = Buffer.from('held-value-1234')
  const UNHELD = Buffer.from('canary-REAL-value-5678')
  const filter = () => concealUnheld(new Masker(maskPatterns([HELD])), new Masker(maskPatterns([UNHELD])))
  const text = (pieces: Buffer[]) => Buffer.concat(pieces).toString()

  it('conceals a whole unheld value, but never holds back the start of one (no guess oracle)', () => {
    // No held values: what a held value's forms could begin would be held back, rightly.
    const masker = concealUnheld(new Masker([]), new Masker(maskPatterns([UNHELD])))
    assert.equal(text(masker.push(Buffer.from(`a ${UNHELD} b\n`))), 'a <concealed by agentvault> b\n')
    // Every prefix of the value comes out at once, as any other output does.
    for (let length = 1; length < UNHELD.length; length++) {
      const guess = UNHELD.subarray(0, length)
      assert.equal(text(masker.push(guess)), guess.toString(), `prefix of ${length}`)
      assert.equal(masker.heldBack, 0)
    }

    // Its base64 form too, whole.
    assert.equal(text(masker.push(Buffer.from(UNHELD.toString('base64')))), '<concealed by agentvault>')
  })

  it('still holds back the start of a value the command holds, and conceals it across chunks', () => {
    const masker = filter()
    assert.deepEqual(masker.push(HELD.subarray(0, 5)), [])
    assert.equal(masker.heldBack, 5)
    assert.equal(text([...masker.push(HELD.subarray(5)), ...masker.end()]), '<concealed by agentvault>')
  })

  it('gives what the held masker gives with each whole unheld value concealed, for any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({maxLength: 30}), fc.constantFrom(HELD, UNHELD)), {maxLength: 5}),
        fc.integer({max: 64, min: 1}),
        (parts, size) => {
          const data = Buffer.concat(parts.flatMap(([noise, value]) => [Buffer.from(noise), value]))
          const masker = filter()
          const reference = new Masker(maskPatterns([HELD]))
          const out: Buffer[] = []
          const expected: Buffer[] = []
          for (let at = 0; at < data.length; at += size) {
            const chunk = data.subarray(at, at + size)
            out.push(...masker.push(chunk))
            expected.push(...reference.push(chunk))
            assert.equal(masker.heldBack, reference.heldBack, 'held back only for held values')
          }

          out.push(...masker.end())
          expected.push(...reference.end())
          const masked = Buffer.concat(out)
          assert.ok(!masked.includes(HELD))
          // Each piece of the held masker's output, with whole unheld values concealed.
          const again = new Masker(maskPatterns([UNHELD]))
          assert.deepEqual(masked, Buffer.concat(expected.flatMap((piece) => again.whole(piece))))
          // In one chunk, no unheld value survives.
          if (size >= data.length) assert.ok(!masked.includes(UNHELD))
        },
      ),
    )
  })
})
