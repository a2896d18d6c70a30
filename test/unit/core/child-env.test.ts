import fc from 'fast-check'
import assert from 'node:assert/strict'

import {
  argumentListTooLong,
  checkSpawnable,
  credentialVariables,
  MAX_ARG_STRLEN,
} from '../../../src/core/child-env.js'
import {UsageError} from '../../../src/core/errors.js'
import {BACKEND_CREDENTIAL_ENV} from '../../../src/core/registry.js'

const CANARY = 'canary-child-env-2d9f'

function refusal(run: () => void): UsageError {
  try {
    run()
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error))
    return error
  }

  return assert.fail('accepted')
}

describe('core/child-env', () => {
  it('withholds the core passphrase and every variable a backend declares', () => {
    const names = credentialVariables()
    assert.ok(names.includes('AGENTVAULT_PASSPHRASE'))
    for (const declared of Object.values(BACKEND_CREDENTIAL_ENV))
      for (const name of declared) assert.ok(names.includes(name), name)
    assert.ok(!names.includes('BAO_ADDR') && !names.includes('AGENTVAULT_HOME'))
  })

  it('refuses a NUL byte in any value, naming the variable and never the value (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (before, after) => {
        const value = `${CANARY}${before}\u0000${after}`
        const error = refusal(() => checkSpawnable(['true'], {OK: 'x', SECRET_VAR: value}))
        assert.equal(error.code, 'VALUE_NOT_ENV_SAFE')
        assert.match(error.message, /SECRET_VAR/)
        assert.ok(!error.message.includes(CANARY) && !(error.suggestion ?? '').includes(CANARY))
      }),
    )
  })

  it('refuses a NUL byte in an argument, naming its position only', () => {
    const error = refusal(() => checkSpawnable(['sh', '-c', `echo ${CANARY}\u0000`], {}))
    assert.equal(error.code, 'ARGUMENT_NOT_SAFE')
    assert.match(error.message, /Argument 2/)
    assert.ok(!error.message.includes(CANARY))
  })

  it('applies the per-string limit on Linux only, at exactly MAX_ARG_STRLEN', () => {
    const fits = 'x'.repeat(MAX_ARG_STRLEN - 'BIG='.length - 1)
    checkSpawnable(['true'], {BIG: fits}, 'linux')
    const error = refusal(() => checkSpawnable(['true'], {BIG: `${fits}y`}, 'linux'))
    assert.match(error.message, /^BIG is too big .*128 KiB/)
    checkSpawnable(['true'], {BIG: `${fits}y`}, 'darwin')
    refusal(() => checkSpawnable(['echo', 'z'.repeat(MAX_ARG_STRLEN)], {}, 'linux'))
  })

  it('names the biggest variables when the total is too big, never a value', () => {
    const error = argumentListTooLong(['cmd'], {A: CANARY.repeat(10), B: CANARY, C: 'x'})
    assert.equal(error.code, 'ENVIRONMENT_TOO_BIG')
    assert.match(error.message, /ARG_MAX.*A \(0 KiB\), B/)
    assert.ok(!error.message.includes(CANARY))
  })
})
