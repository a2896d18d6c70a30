/**
 * Through the built binary: what a writer does while another process holds the vault lock.
 * The lock is held by this test process (the same lock code the CLI uses), released in `finally`;
 * barriers only — no timing is asserted.
 */
import assert from 'node:assert/strict'
import {join} from 'node:path'

import {withFileLock} from '../../src/core/file-lock.js'
import {runCli, tempHome} from '../helpers/cli.js'
import {expectFailure} from '../helpers/e2e.js'

describe('e2e: writers while the vault lock is held', () => {
  let t: Awaited<ReturnType<typeof tempHome>>

  before(async () => {
    t = await tempHome()
  })

  after(async () => {
    await t.dispose()
  })

  it('a passphrase vault: a wrong passphrase fails at once (exit 4), without queueing for the lock', async () => {
    // The key is derived (scrypt) before the lock is taken: under the lock it would make every
    // writer wait for every other writer's derivation (with 120 concurrent `secrets set`, half
    // failed with LOCK_TIMEOUT), and a wrong passphrase would be reported only after the queue —
    // or as a lock timeout (exit 5) when the queue is long.
    const env = {...t.env, AGENTVAULT_PASSPHRASE: 'correct horse battery staple'}
    const first = await runCli(['secrets', 'set', 'FIRST'], {env, input: 'first'})
    assert.equal(first.code, 0, first.stderr)
    const wrong = {...t.env, AGENTVAULT_PASSPHRASE: 'wrong horse'}
    await withFileLock(join(t.env.AGENTVAULT_HOME as string, 'vault.lock'), async () => {
      const {error} = await expectFailure(
        ['secrets', 'set', 'SECOND'],
        {env: wrong, input: 'second'},
        {code: 4, message: /AGENTVAULT_PASSPHRASE/},
      )
      assert.equal(error.category, 'auth')
      await expectFailure(['secrets', 'delete', 'FIRST', '--yes'], {env: wrong}, {code: 4})
    })
    const get = await runCli(['secrets', 'get', 'FIRST', '--reveal'], {env})
    assert.equal(get.stdout, 'first')
  })
})
