// The project imports fast-check's default export (`fc.string()`, …) as its docs do.

import fc from 'fast-check'
import assert from 'node:assert/strict'

import type {Profile} from '../../../../src/core/config.js'

import {AgentVaultError} from '../../../../src/core/errors.js'
import {McpPolicy, parseAllowPattern, type ResolvedPattern} from '../../../../src/core/mcp/policy.js'
import {parseReference} from '../../../../src/core/references.js'

const profile = (name: string): Profile =>
  ({implicit: false, kind: 'local', name, settings: {}}) as unknown as Profile

function policyOf(...texts: Array<[string, string]>): McpPolicy {
  return new McpPolicy(
    texts.map(([text, profileName]): ResolvedPattern => ({...parseAllowPattern(text), profileName})),
  )
}

const NAME = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,12}$/).filter((name) => !name.includes('..'))

describe('mcp policy: --allow patterns', () => {
  it('parses kinds, schemes, profiles and the literal prefix', () => {
    const local = parseAllowPattern('local://OPENAI_*')
    assert.equal(local.kind, 'local')
    assert.equal(local.literalPrefix, 'OPENAI_')
    assert.equal(local.profile, undefined)
    const bao = parseAllowPattern('vault+kv2://secret/app/*?profile=prod')
    assert.deepEqual(
      [bao.kind, bao.scheme, bao.profile, bao.literalPrefix],
      ['openbao', 'vault+kv2', 'prod', 'secret/app/'],
    )
    assert.equal(parseAllowPattern('sanctum://ci/*?profile=*').profile, '*')
  })

  it('matches what the same reference would name: kind, profile, path; a field-less openbao pattern admits its fields', () => {
    const policy = policyOf(
      ['local://OPENAI_*', 'lp'],
      ['openbao://secret/app/db', 'bao'],
      ['sanctum://ci/*', '*'],
    )
    const allowed = (text: string, profileName: string): boolean =>
      policy.allows(parseReference(text), profile(profileName)) !== undefined
    assert.ok(allowed('local://OPENAI_KEY', 'lp'))
    assert.ok(allowed('local://OPENAI_', 'lp'))
    assert.ok(!allowed('local://OPENAI_KEY', 'other'), 'another profile')
    assert.ok(!allowed('local://XOPENAI_KEY', 'lp'), 'anchored at the start')
    assert.ok(!allowed('sanctum://OPENAI_KEY', 'lp'), 'another kind')
    assert.ok(allowed('openbao+kv2://secret/app/db#password', 'bao'))
    assert.ok(allowed('hashicorp://secret/app/db#user?version=3', 'bao'), 'scheme aliases and versions')
    assert.ok(!allowed('openbao://secret/app/dbx#password', 'bao'))
    assert.ok(!allowed('openbao://secret/app/db/nested#password', 'bao'))
    assert.ok(allowed('sanctum://ci/deploy/key', 'anything'), '?profile=* admits every profile')
  })

  it('no pattern admits nothing', () => {
    fc.assert(
      fc.property(NAME, NAME, (name, profileName) => {
        assert.equal(policyOf().allows(parseReference(`local://${name}`), profile(profileName)), undefined)
      }),
    )
  })

  it('a pattern without * admits exactly its own reference; local://PREFIX* exactly the names with that prefix', () => {
    fc.assert(
      fc.property(NAME, NAME, (pattern, name) => {
        const exact = policyOf([`local://${pattern}`, 'p'])
        const prefix = policyOf([`local://${pattern}*`, 'p'])
        const ref = parseReference(`local://${name}`)
        assert.equal(exact.allows(ref, profile('p')) !== undefined, name === pattern)
        assert.equal(prefix.allows(ref, profile('p')) !== undefined, name.startsWith(pattern))
      }),
    )
  })

  it('hostile patterns fail with a usage error (never a crash, never a match-everything)', () => {
    fc.assert(
      fc.property(fc.string({maxLength: 80}), (text) => {
        try {
          const pattern = parseAllowPattern(text)
          assert.ok(text.includes('://'))
          assert.ok(pattern.matcher instanceof RegExp)
          // The regular expression is built from escaped parts: a pattern never reaches beyond "*".
          if (!text.includes('*'))
            assert.ok(!pattern.matcher.test(`${pattern.literalPrefix}x/y`) || pattern.kind === 'openbao')
        } catch (error) {
          assert.ok(error instanceof AgentVaultError, String(error))
          assert.equal(error.category, 'usage')
        }
      }),
      {numRuns: 500},
    )
    for (const text of [
      '',
      '*',
      'local:/*',
      'local://../*',
      'local://a/../b',
      'nope://*',
      'local://a?x=*',
      'local://AVstarAV9',
    ])
      assert.throws(
        () => parseAllowPattern(text),
        (error: unknown) => error instanceof AgentVaultError && error.category === 'usage',
      )
  })
})
