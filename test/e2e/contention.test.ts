/**
 * Through the built binary: writers next to other processes — one that holds the vault lock (this
 * test process, with the same lock code the CLI uses), one killed in the middle of its work. Barriers
 * and file-system events only; no timing is asserted.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {watch} from 'node:fs'
import {mkdir, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {withFileLock} from '../../src/core/file-lock.js'
import {collect, runCli, startCli, tempHome} from '../helpers/cli.js'
import {expectFailure, until} from '../helpers/e2e.js'
import {proxyCall, startProxy} from '../helpers/proxy.js'
import {startSeededServer} from '../servers/openbao/harness.js'

describe('e2e: writers next to other processes', () => {
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

  it('a passphrase credential file: a wrong passphrase fails at once (exit 4), without queueing for its lock', async () => {
    // As for the vault: the key of credentials.enc is derived before its lock is taken.
    const {server, tokens} = await startSeededServer()
    try {
      const home = join(t.home, 'credentials-passphrase')
      await mkdir(home, {mode: 0o700})
      const env = {...t.env, AGENTVAULT_HOME: home, AGENTVAULT_PASSPHRASE: 'correct horse battery staple'}
      const login = await runCli(['login', 'openbao', '--address', server.url, '--token-stdin'], {
        env,
        input: tokens.reader,
      })
      assert.equal(login.code, 0, login.stderr)
      assert.ok((await readdir(home)).includes('credentials.enc'), 'the token went to the credential file')
      const wrong = {...env, AGENTVAULT_PASSPHRASE: 'wrong horse'}
      await withFileLock(join(home, 'credentials.lock'), async () => {
        for (const [args, input] of [
          [['logout', 'openbao'], ''],
          [['login', 'openbao', '--address', server.url, '--token-stdin'], tokens.reader],
        ] as const) {
          const {error} = await expectFailure([...args], {env: wrong, input}, {code: 4})
          assert.equal(error.category, 'auth', args.join(' '))
        }
      })
      const logout = await runCli(['logout', 'openbao'], {env})
      assert.equal(logout.code, 0, logout.stderr)
    } finally {
      await server.close()
    }
  })

  describe('a process killed while it created the key file', () => {
    const KEY_TEMP = /^vault\.key\.\d+\.[\da-f]+\.tmp$/

    it("its temp key file (a dead pid's) is removed by the next command that creates the vault", async () => {
      const home = join(t.home, 'dead-key-temp')
      await mkdir(home, {mode: 0o700})
      // What the killed process left: a copy of a key, under a pid that no longer exists.
      const leftover = join(home, 'vault.key.999999999.0badf00d.tmp')
      await writeFile(leftover, `${Buffer.alloc(32, 7).toString('base64')}\n`, {mode: 0o600})
      const set = await runCli(['secrets', 'set', 'K'], {env: {...t.env, AGENTVAULT_HOME: home}, input: 'v'})
      assert.equal(set.code, 0, set.stderr)
      assert.deepEqual(
        (await readdir(home)).filter((entry) => KEY_TEMP.test(entry)),
        [],
      )
    })

    it('SIGKILL the moment its temp key file appears: the next `secrets set` works and leaves no key copy', async () => {
      const home = join(t.home, 'killed-key')
      await mkdir(home, {mode: 0o700})
      const env = {...t.env, AGENTVAULT_HOME: home}
      const child = startCli(['secrets', 'set', 'FIRST'], {env, input: 'first'})
      const done = collect(child)
      const watcher = watch(home, (_event, name) => {
        if (name !== null && KEY_TEMP.test(name)) child.kill('SIGKILL')
      })
      try {
        const first = await done
        // Killed there, or (if the kill came late) finished: either way the next command must work.
        assert.ok(first.signal === 'SIGKILL' || first.code === 0, first.stderr)
      } finally {
        watcher.close()
        child.kill('SIGKILL')
      }

      const next = await runCli(['secrets', 'set', 'NEXT'], {env, input: 'next'})
      assert.equal(next.code, 0, next.stderr)
      const get = await runCli(['secrets', 'get', 'NEXT', '--reveal'], {env})
      assert.equal(get.stdout, 'next')
      assert.deepEqual(
        (await readdir(home)).filter((entry) => KEY_TEMP.test(entry) || entry.endsWith('.lock')),
        [],
      )
      assert.match(await readFile(join(home, 'vault.key'), 'utf8'), /^[\w+/]{43}=\n$/)
    })
  })

  it('`proxy stop` of a proxy stopped with SIGSTOP (Ctrl-Z) stops it, instead of forgetting it as stale', async () => {
    // It does not answer its health check, but it is this home's proxy (it started before its
    // pid file was written): it must not be declared "not this home's proxy" with its pid file
    // removed while it lives on, still bound to its port, invisible to `proxy status`.
    const env = {...t.env, AGENTVAULT_HOME: join(t.home, 'stopped-proxy')}
    const set = await runCli(['secrets', 'set', 'K'], {env, input: 'v'})
    assert.equal(set.code, 0, set.stderr)
    const proxy = await startProxy(env)
    try {
      assert.equal((await proxyCall(proxy.port, {path: '/health'})).status, 200)
      proxy.child.kill('SIGSTOP')
      const stop = await runCli(['proxy', 'stop'], {env})
      assert.equal(stop.code, 0, stop.stderr)
      const exited = await proxy.exited
      assert.equal(exited.code, 0, exited.stderr)
      await assert.rejects(stat(join(env.AGENTVAULT_HOME, 'proxy.pid')), {code: 'ENOENT'})
    } finally {
      proxy.child.kill('SIGKILL')
      proxy.child.kill('SIGCONT')
    }
  })

  it('`proxy stop` never signals a live process that started after the pid file was written (a reused pid)', async function () {
    const home = join(t.home, 'reused-pid')
    await mkdir(home, {mode: 0o700})
    // A stopped process (as a stopped proxy would be), but one that started after the record said
    // its proxy started: the pid was reused. Signals sent to a stopped process stay pending, so
    // /proc shows whether any arrived.
    const victim = spawn('sleep', ['600'], {stdio: 'ignore'})
    try {
      await once(victim, 'spawn')
      if (victim.pid === undefined) throw new Error('no pid')
      const status = `/proc/${victim.pid}/status`
      const proc = await stat(status).then(
        () => true,
        () => false,
      )
      if (!proc) this.skip()
      victim.kill('SIGSTOP')
      await until(async () => /^State:\s+T/m.test(await readFile(status, 'utf8')))
      const record = {
        instance: 'ab'.repeat(16),
        pid: victim.pid,
        port: 9,
        profile: 'local',
        started: new Date(Date.now() - 3_600_000).toISOString(),
        token: null,
      }
      await writeFile(join(home, 'proxy.pid'), `${JSON.stringify(record)}\n`, {mode: 0o600})
      // Once (the pid file is gone after the first try), with --json for the error code.
      const stop = await runCli(['proxy', 'stop', '--json'], {env: {...t.env, AGENTVAULT_HOME: home}})
      assert.equal(stop.code, 3, stop.stderr)
      assert.equal((JSON.parse(stop.stdout) as {error: {code: string}}).error.code, 'PROXY_PID_STALE')
      const after = await readFile(status, 'utf8')
      assert.match(after, /^State:\s+T/m, 'still stopped')
      assert.match(after, /^ShdPnd:\s+0+$/m, 'no signal pending')
      assert.match(after, /^SigPnd:\s+0+$/m, 'no signal pending')
    } finally {
      victim.kill('SIGKILL')
    }
  })
})
