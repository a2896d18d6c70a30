// The project imports fast-check's default export (`fc.string()`, …) as its docs do.

import fc from 'fast-check'
import assert from 'node:assert/strict'

import {looksLikeReference, SUPPORTED_SCHEMES} from '../../../src/core/references.js'
import {editDistance, misspeltSchemeHint} from '../../../src/core/scheme-typos.js'

const KNOWN = SUPPORTED_SCHEMES as readonly string[]
const ORDINARY = [
  'https',
  'http',
  'postgres',
  'postgresql',
  'redis',
  'rediss',
  'mysql',
  'amqp',
  's3',
  'mongodb+srv',
  'ssh',
  'file',
  'wss',
  'ftp',
  'ldap',
  'nats',
  'kafka',
]
const LETTERS = 'abcdefghijklmnopqrstuvwxyz0123456789+.-'

/** One edit of `word`: delete, insert, substitute or swap two neighbours. */
const oneEdit = (word: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.nat(word.length - 1).map((i) => word.slice(0, i) + word.slice(i + 1)),
    fc
      .tuple(fc.nat(word.length), fc.constantFrom(...LETTERS))
      .map(([i, c]) => word.slice(0, i) + c + word.slice(i)),
    fc
      .tuple(fc.nat(word.length - 1), fc.constantFrom(...LETTERS))
      .map(([i, c]) => word.slice(0, i) + c + word.slice(i + 1)),
    fc
      .nat(Math.max(0, word.length - 2))
      .map((i) => word.slice(0, i) + (word[i + 1] ?? '') + (word[i] ?? '') + word.slice(i + 2)),
  )

describe('misspeltSchemeHint (which env-file values `run` warns about)', () => {
  it('the examples: typos and openbao-shaped schemes warn; references, URLs and plain values do not', () => {
    assert.deepEqual(misspeltSchemeHint('locl://X'), {scheme: 'locl', suggestion: 'local'})
    assert.deepEqual(misspeltSchemeHint('LOACL://X'), {scheme: 'LOACL', suggestion: 'local'})
    assert.deepEqual(misspeltSchemeHint('santcum://a/b'), {scheme: 'santcum', suggestion: 'sanctum'})
    assert.deepEqual(misspeltSchemeHint('agentsecret://K'), {
      scheme: 'agentsecret',
      suggestion: 'agentsecrets',
    })
    assert.deepEqual(misspeltSchemeHint('bao+kv2://secret/x#y'), {
      scheme: 'bao+kv2',
      suggestion: 'openbao+kv2',
    })
    assert.deepEqual(misspeltSchemeHint('vault+kv1://secret/x#y'), {
      scheme: 'vault+kv1',
      suggestion: 'vault+kv2',
    })
    for (const quiet of [
      'local://X',
      'https://example.com',
      'postgres://u:p@h/db',
      'redis://r',
      'mongodb+srv://cluster/db',
      'plain value',
      'localhost:8080',
      'loki://logs',
      'C:\\\\Users\\\\x',
      '',
    ])
      assert.equal(misspeltSchemeHint(quiet), undefined, quiet)
  })

  it('never hints for a known reference scheme, in any case, whatever follows', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...KNOWN),
        fc.boolean(),
        fc.string({unit: 'binary'}),
        (scheme, upper, rest) => {
          const value = `${upper ? scheme.toUpperCase() : scheme}://${rest}`
          assert.ok(looksLikeReference(value))
          assert.equal(misspeltSchemeHint(value), undefined)
        },
      ),
    )
  })

  it('never hints for ordinary URLs (web URLs and common connection-string schemes)', () => {
    fc.assert(
      fc.property(fc.webUrl({withFragments: true, withQueryParameters: true}), (url) =>
        assert.equal(misspeltSchemeHint(url), undefined),
      ),
    )
    fc.assert(
      fc.property(fc.constantFrom(...ORDINARY), fc.string(), (scheme, rest) =>
        assert.equal(misspeltSchemeHint(`${scheme}://${rest}`), undefined),
      ),
    )
  })

  it('hints for one edit of any known scheme (unless the edit is itself a known or ordinary scheme)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...KNOWN).chain((scheme) => oneEdit(scheme).map((typo) => ({scheme, typo}))),
        fc.string(),
        ({scheme, typo}, rest) => {
          fc.pre(/^[a-z][a-z0-9+.-]*$/.test(typo) && !KNOWN.includes(typo) && !ORDINARY.includes(typo))
          const hint = misspeltSchemeHint(`${typo}://${rest}`)
          assert.ok(hint, `${typo} (from ${scheme}) earns a hint`)
          assert.ok(KNOWN.includes(hint.suggestion))
          assert.equal(hint.scheme, typo)
        },
      ),
    )
  })

  it('hostile input: never throws; a hint only for a scheme followed by ://, and it quotes only that scheme', () => {
    fc.assert(
      fc.property(fc.string({unit: 'binary', maxLength: 300}), (value) => {
        const hint = misspeltSchemeHint(value)
        if (hint === undefined) return
        assert.ok(value.startsWith(`${hint.scheme}://`))
        assert.match(hint.scheme, /^[A-Za-z][A-Za-z0-9+.-]*$/)
        const lower = hint.scheme.toLowerCase()
        assert.ok(
          lower.includes('+kv') || editDistance(lower, hint.suggestion) <= 2,
          `${hint.scheme} → ${hint.suggestion}`,
        )
      }),
    )
    assert.equal(misspeltSchemeHint(`${'a'.repeat(100_000)}://x`), undefined)
  })

  it('editDistance is a metric on the words it compares (symmetric, zero only for equal words)', () => {
    fc.assert(
      fc.property(fc.string({maxLength: 12}), fc.string({maxLength: 12}), (a, b) => {
        assert.equal(editDistance(a, b), editDistance(b, a))
        assert.equal(editDistance(a, b) === 0, a === b)
        assert.ok(editDistance(a, b) <= Math.max(a.length, b.length))
      }),
    )
  })
})
