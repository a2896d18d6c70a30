import fc from 'fast-check'
import assert from 'node:assert/strict'

import {nearest, nearestCommand, typoBudget} from '../../../src/core/did-you-mean.js'

const COMMANDS = [
  'secrets list',
  'secrets get',
  'secrets set',
  'status',
  'run',
  'audit',
  'audit verify',
  'login',
]

describe('did you mean', () => {
  it('finds the flag or command one typo away', () => {
    assert.equal(nearest('--revael', ['--reveal', '--profile', '--json']), '--reveal')
    assert.equal(nearestCommand(['secrts', 'list'], COMMANDS), 'secrets list')
    assert.equal(nearestCommand(['secrets', 'lst'], COMMANDS), 'secrets list')
    assert.equal(nearestCommand(['staus'], COMMANDS), 'status')
    assert.equal(nearestCommand(['audit', 'verfy'], COMMANDS), 'audit verify')
  })

  it('suggests nothing for words far from every candidate', () => {
    assert.equal(nearest('zzzzqqqq', COMMANDS), undefined)
    assert.equal(nearestCommand(['deploy'], COMMANDS), undefined)
    assert.equal(nearest('--x', []), undefined)
  })

  it('never suggests beyond the typo budget, and a known word is its own answer (hostile input)', () => {
    fc.assert(
      fc.property(
        fc.string({maxLength: 40}),
        fc.array(fc.string({maxLength: 40}), {maxLength: 8}),
        (word, candidates) => {
          const found = nearest(word, candidates)
          if (found !== undefined) assert.ok(candidates.includes(found))
          if (candidates.some((candidate) => candidate.toLowerCase() === word.toLowerCase()))
            assert.equal(found?.toLowerCase(), word.toLowerCase())
          if (candidates.length === 0) assert.equal(found, undefined)
          assert.ok(typoBudget(word) >= 1)
        },
      ),
    )
    fc.assert(
      fc.property(fc.array(fc.string({maxLength: 20}), {maxLength: 6}), (words) => {
        const found = nearestCommand(words, COMMANDS)
        if (found !== undefined) assert.ok(COMMANDS.includes(found))
      }),
    )
  })
})
