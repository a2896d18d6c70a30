import fc from 'fast-check'
/**
 * `--set key=value` parsing (core/profiles.ts) against the kinds' declared types, property-tested
 * with hostile input: it returns or fails with a usage error, never anything else.
 */
import assert from 'node:assert/strict'

import {profileSettings} from '../../../src/core/backend-declarations.js'
import {BACKEND_KINDS} from '../../../src/core/backend.js'
import {UsageError} from '../../../src/core/errors.js'
import {parseSettings, settingType} from '../../../src/core/profiles.js'

const KINDS = fc.constantFrom(...BACKEND_KINDS)

describe('profile settings: --set key=value', () => {
  it('any input: a result or a UsageError (exit 2), never another error', () => {
    fc.assert(
      fc.property(KINDS, fc.array(fc.string({unit: 'binary'}), {maxLength: 6}), (kind, pairs) => {
        try {
          parseSettings(pairs, settingType(kind))
        } catch (error) {
          assert.ok(error instanceof UsageError, String(error))
          assert.equal(error.exitCode, 2)
        }
      }),
      {numRuns: 500},
    )
  })

  it('a declared text setting keeps its value exactly, whatever it looks like', () => {
    fc.assert(
      fc.property(KINDS, fc.string({unit: 'binary'}), (kind, value) => {
        const text = profileSettings(kind).find((setting) => setting.type === 'string')
        if (!text) return
        assert.deepEqual(parseSettings([`${text.name}=${value}`], settingType(kind)), {[text.name]: value})
      }),
    )
  })

  it('a declared list: comma-separated items trimmed, or a JSON list', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a-z0-9.*-]{1,12}$/), {maxLength: 5}), (hosts) => {
        const type = settingType('local')
        assert.deepEqual(parseSettings([`allowedDomains=${hosts.join(' , ')}`], type).allowedDomains, hosts)
        assert.deepEqual(
          parseSettings([`allowedDomains=${JSON.stringify(hosts)}`], type).allowedDomains,
          hosts,
        )
      }),
    )
  })

  it('numbers and booleans only as declared', () => {
    const type = settingType('sanctum')
    assert.deepEqual(parseSettings(['port=7600', 'allowPrivateNetworks=false', 'agent=42'], type), {
      agent: '42',
      allowPrivateNetworks: false,
      port: 7600,
    })
    for (const bad of ['port=76.5', 'port=', 'allowPrivateNetworks=yes', 'timeoutMs=1e3'])
      assert.throws(
        () => parseSettings([bad], type),
        (error: unknown) => error instanceof UsageError,
      )
  })
})
