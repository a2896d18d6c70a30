import fc from 'fast-check'
import assert from 'node:assert/strict'

import {CHARSET_NAMES, CHARSETS, entropyBits, generateValue} from '../../../src/core/generate.js'

describe('core/generate', () => {
  it('draws exactly `length` characters, all from the named alphabet', () => {
    fc.assert(
      fc.property(fc.integer({max: 300, min: 1}), fc.constantFrom(...CHARSET_NAMES), (length, charset) => {
        const value = generateValue(length, charset).toString('latin1')
        assert.equal(value.length, length)
        for (const char of value) assert.ok(CHARSETS[charset].includes(char), `${char} not in ${charset}`)
      }),
    )
  })

  it('uses the whole alphabet (no character is unreachable) and the alphabets are what they say', () => {
    const seen = new Set(generateValue(20_000, 'ascii').toString('latin1'))
    assert.equal(seen.size, 94)
    assert.equal(CHARSETS.base64url.length, 64)
    assert.equal(CHARSETS.hex, '0123456789abcdef')
    assert.equal(entropyBits(32, 'alnum'), 190)
    assert.equal(entropyBits(64, 'hex'), 256)
  })
})
