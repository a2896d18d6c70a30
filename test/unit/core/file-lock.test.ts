/**
 * The cross-process lock (src/core/file-lock.ts). The stress tests run the BUILT module
 * (dist/core/file-lock.js, as the CLI ships it) in separate Node processes: `npm run build` first.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {withFileLock, writeFileAtomic} from '../../../src/core/file-lock.js'
import {ROOT} from '../../helpers/cli.js'

const BUILT = join(ROOT, 'dist', 'core', 'file-lock.js')
const WORKER = join(ROOT, 'test', 'fixtures', 'lock-worker.mjs')

interface Worker {
  child: ChildProcess
  log: string
  name: string
}

function startWorker(dir: string, name: string, cycles: number, holdAt?: number): Worker {
  const log = join(dir, `${name}.log`)
  const args = [
    WORKER,
    BUILT,
    join(dir, 'counter.lock'),
    join(dir, 'history.json'),
    log,
    name,
    String(cycles),
  ]
  if (holdAt !== undefined) args.push(String(holdAt))
  const child = spawn(process.execPath, args, {stdio: ['ignore', 'pipe', 'pipe']})
  return {child, log, name}
}

async function exitOf(
  worker: Worker,
): Promise<{code: null | number; signal: NodeJS.Signals | null; stderr: string}> {
  let stderr = ''
  worker.child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const [code, signal] = (await once(worker.child, 'close')) as [null | number, NodeJS.Signals | null]
  return {code, signal, stderr}
}

async function completed(worker: Worker): Promise<number[]> {
  const text = await readFile(worker.log, 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map(Number)
}

/** Resolves when the worker prints "holding": it is inside its critical section, holding the lock. */
function holding(worker: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = ''
    worker.child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('holding\n')) resolve()
    })
    worker.child.once('close', () => reject(new Error(`${worker.name} ended before it held the lock`)))
  })
}

function tokensOf(history: string[], name: string): number[] {
  return history.filter((token) => token.startsWith(`${name}:`)).map((token) => Number(token.split(':')[1]))
}

const range = (n: number): number[] => Array.from({length: n}, (_, index) => index + 1)

describe('file lock', () => {
  let dir: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentvault-lock-'))
  })

  afterEach(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  describe('in one process', () => {
    it('an empty old-format lock file (a crash before the pid was written) does not wedge the lock', async () => {
      const lock = join(dir, 'vault.lock')
      await writeFile(lock, '')
      const past = new Date(Date.now() - 60_000)
      await utimes(lock, past, past)
      assert.equal(await withFileLock(lock, async () => 'ran', {timeoutMs: 3000}), 'ran')
      await assert.rejects(stat(lock), {code: 'ENOENT'}, 'released')
    })

    it('an old-format lock file of a dead process is reclaimed; a live one is respected', async () => {
      const lock = join(dir, 'config.lock')
      await writeFile(lock, '999999999')
      assert.equal(await withFileLock(lock, async () => 'ran', {timeoutMs: 3000}), 'ran')
      await writeFile(lock, String(process.pid))
      await assert.rejects(
        withFileLock(lock, async () => 'ran', {timeoutMs: 300}),
        (error: {code?: string}) => error.code === 'LOCK_TIMEOUT',
      )
    })

    it('an empty lock directory (a crash between release steps) is reclaimed at once', async () => {
      const lock = join(dir, 'audit.lock')
      await mkdir(lock)
      assert.equal(await withFileLock(lock, async () => 'ran', {timeoutMs: 3000}), 'ran')
    })

    it('a token of a live process on this host is respected; a dead pid or a stale mtime is not', async () => {
      const lock = join(dir, 'vault.lock')
      let token = ''
      await withFileLock(lock, async () => {
        token = (await readdir(lock))[0] ?? ''
      })
      const [, host] = token.split('.')
      // Our own pid: alive, fresh → the waiter times out (LOCK_TIMEOUT, exit 5).
      await mkdir(lock)
      await writeFile(join(lock, `${process.pid}.${host}.abcd`), '')
      await assert.rejects(
        withFileLock(lock, async () => 'ran', {timeoutMs: 300}),
        {
          message: new RegExp(`held by process ${process.pid}`),
        },
      )
      // A live pid whose token went unrefreshed for longer than STALE_MS: gone (frozen or recycled pid).
      const past = new Date(Date.now() - 60_000)
      await utimes(join(lock, `${process.pid}.${host}.abcd`), past, past)
      assert.equal(await withFileLock(lock, async () => 'ran', {timeoutMs: 3000}), 'ran')
      // Another host's token, fresh: only staleness can free it.
      await mkdir(lock)
      await writeFile(join(lock, `1.00000000.abcd`), '')
      await assert.rejects(
        withFileLock(lock, async () => 'ran', {timeoutMs: 300}),
        {code: 'LOCK_TIMEOUT'},
      )
      // …and once it has gone unrefreshed for longer than STALE_MS, it is reclaimed.
      await utimes(join(lock, `1.00000000.abcd`), past, past)
      assert.equal(await withFileLock(lock, async () => 'ran', {timeoutMs: 3000}), 'ran')
    })

    it('releases only what it owns: a lock taken over while held is reported, the new owner keeps it', async () => {
      const lock = join(dir, 'vault.lock')
      let releaseB!: () => void
      const bHolds = new Promise<void>((resolve) => {
        releaseB = resolve
      })
      let b: Promise<string> | undefined
      await assert.rejects(
        withFileLock(lock, async () => {
          // Someone judged A stale and took the lock over (simulated): B now holds it.
          await rm(lock, {force: true, recursive: true})
          let bInside!: () => void
          const inside = new Promise<void>((resolve) => {
            bInside = resolve
          })
          b = withFileLock(lock, async () => {
            bInside()
            await bHolds
            return 'b done'
          })
          await inside
          // A's atomic write refuses to land: the lock is no longer A's.
          await writeFileAtomic(join(dir, 'data'), 'from A')
        }),
        {code: 'LOCK_COMPROMISED'},
      )
      await assert.rejects(stat(join(dir, 'data')), {code: 'ENOENT'}, 'A wrote nothing')
      // A's release left B's lock alone: a third party still cannot get in.
      await assert.rejects(
        withFileLock(lock, async () => 'c', {timeoutMs: 300}),
        {code: 'LOCK_TIMEOUT'},
      )
      releaseB()
      assert.equal(await b, 'b done')
      assert.equal(await withFileLock(lock, async () => 'c', {timeoutMs: 3000}), 'c')
    })

    it('an untracked lock (no async context) handed to writeFileAtomic still stops a write once taken over', async () => {
      const lock = join(dir, 'audit.lock')
      // Held and still ours: the write lands.
      await withFileLock(
        lock,
        async (held) => {
          await writeFileAtomic(join(dir, 'head'), 'one', 0o600, {locks: [held]})
        },
        {untracked: true},
      )
      assert.equal(await readFile(join(dir, 'head'), 'utf8'), 'one')
      await assert.rejects(
        withFileLock(
          lock,
          async (held) => {
            await rm(lock, {force: true, recursive: true})
            await writeFileAtomic(join(dir, 'head'), 'two', 0o600, {locks: [held]})
          },
          {untracked: true},
        ),
        {code: 'LOCK_COMPROMISED'},
      )
      assert.equal(await readFile(join(dir, 'head'), 'utf8'), 'one', 'the second write never landed')
    })

    it('a holder refreshes its token, so a long critical section is never judged stale', async () => {
      const lock = join(dir, 'vault.lock')
      await withFileLock(lock, async () => {
        const [token] = await readdir(lock)
        const tokenPath = join(lock, token ?? '')
        const past = new Date(Date.now() - 60_000)
        await utimes(tokenPath, past, past)
        // Wait (bounded) for the refresh to happen: an event, not a fixed sleep.
        for (let attempt = 0; attempt < 100; attempt++) {
          if ((await stat(tokenPath)).mtimeMs > past.getTime() + 1000) break
          await new Promise((resolve) => {
            setTimeout(resolve, 50)
          })
        }

        assert.ok(Date.now() - (await stat(tokenPath)).mtimeMs < 5000, 'refreshed')
      })
    })

    it('nested locks on different files, and the lock is free again after fn throws', async () => {
      const outer = join(dir, 'a.lock')
      const inner = join(dir, 'b.lock')
      await assert.rejects(
        withFileLock(outer, () =>
          withFileLock(inner, async () => {
            throw new Error('boom')
          }),
        ),
        {message: 'boom'},
      )
      assert.deepEqual(await readdir(dir), [])
    })

    it("stale temp files of dead writers are removed on the next write; a live writer's are kept", async () => {
      const file = join(dir, 'vault.json')
      await writeFile(join(dir, 'vault.json.999999999.abcd1234.tmp'), 'half')
      await writeFile(join(dir, `vault.json.${process.pid}.beef.tmp`), 'mine, in progress')
      await writeFile(join(dir, 'other.json.999999999.abcd1234.tmp'), 'not ours to judge')
      await writeFileAtomic(file, 'whole')
      assert.deepEqual((await readdir(dir)).sort(), [
        'other.json.999999999.abcd1234.tmp',
        'vault.json',
        `vault.json.${process.pid}.beef.tmp`,
      ])
    })
  })

  it('writeFileAtomic gives the file exactly the mode asked for, whatever the umask', async () => {
    const file = join(dir, 'vault.json')
    const previous = process.umask(0o277)
    try {
      await writeFileAtomic(file, 'one', 0o600)
    } finally {
      process.umask(previous)
    }

    assert.equal((await stat(file)).mode & 0o777, 0o600)
  })

  describe('dead temporaries, with the directory read once per process', () => {
    it("a dead owner's temporaries are removed once its lock is reclaimed, even in a process that already looked", async () => {
      const file = join(dir, 'vault.json')
      const lock = join(dir, 'vault.lock')
      await withFileLock(lock, () => writeFileAtomic(file, 'one'))
      // After this process looked: a writer on another host took the lock, wrote half a temp file and died.
      const leftover = join(dir, 'vault.json.999999999.abcd1234.tmp')
      await writeFile(leftover, 'half')
      await mkdir(lock)
      await writeFile(join(lock, '1.00000000.abcd'), '')
      const past = new Date(Date.now() - 60_000)
      await utimes(join(lock, '1.00000000.abcd'), past, past)
      await withFileLock(lock, () => writeFileAtomic(file, 'two'), {timeoutMs: 3000})
      await assert.rejects(stat(leftover), {code: 'ENOENT'}, 'the reclaim made the next write look again')
      assert.equal(await readFile(file, 'utf8'), 'two')
      assert.deepEqual((await readdir(dir)).sort(), ['vault.json'])
    })

    it('without a reclaim a process does not read the directory again; the next process removes what appeared', async () => {
      await stat(BUILT).catch(() => assert.fail(`${BUILT} is missing: run \`npm run build\` first`))
      const file = join(dir, 'config.json')
      await writeFileAtomic(file, 'one')
      const leftover = join(dir, 'config.json.999999999.abcd1234.tmp')
      await writeFile(leftover, 'half')
      await writeFileAtomic(file, 'two')
      assert.deepEqual((await stat(leftover)).size, 4, 'this process already listed the directory')
      const child = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const {writeFileAtomic} = await import(${JSON.stringify(BUILT)}); await writeFileAtomic(${JSON.stringify(file)}, 'three')`,
        ],
        {stdio: 'inherit'},
      )
      const [exitCode] = (await once(child, 'close')) as [number]
      assert.equal(exitCode, 0)
      await assert.rejects(stat(leftover), {code: 'ENOENT'}, 'a new process looks afresh')
      assert.equal(await readFile(file, 'utf8'), 'three')
    })
  })

  describe('stress: N processes × M locked read-modify-write cycles (built module)', () => {
    const WORKERS = 6
    const CYCLES = 20

    before(async () => {
      await stat(BUILT).catch(() => assert.fail(`${BUILT} is missing: run \`npm run build\` first`))
    })

    it(`${WORKERS} × ${CYCLES}: exactly ${WORKERS * CYCLES} increments, none lost, none repeated`, async () => {
      const workers = range(WORKERS).map((n) => startWorker(dir, `w${n}`, CYCLES))
      const exits = await Promise.all(workers.map((worker) => exitOf(worker)))
      for (const [index, exit] of exits.entries()) assert.equal(exit.code, 0, `w${index + 1}: ${exit.stderr}`)

      const history = JSON.parse(await readFile(join(dir, 'history.json'), 'utf8')) as string[]
      assert.equal(history.length, WORKERS * CYCLES)
      for (const worker of workers) {
        assert.deepEqual(tokensOf(history, worker.name), range(CYCLES), `${worker.name}'s increments`)
        assert.deepEqual(await completed(worker), range(CYCLES))
      }

      assert.deepEqual(
        (await readdir(dir)).filter((entry) => /\.(lock|tmp)$/.test(entry)),
        [],
        'no lock or temp left',
      )
    })

    it(`${WORKERS} lanes × 5 short-lived processes of one cycle each: exactly ${WORKERS * 5}`, async () => {
      // Owners that come and go are what broke the pid-file lock: a waiter read the pid of an owner
      // that then exited, found it dead, and deleted the lock its successor had just taken.
      const lane = async (n: number): Promise<void> => {
        for (let k = 1; k <= 5; k++) {
          const worker = startWorker(dir, `l${n}p${k}`, 1)
          const exit = await exitOf(worker)
          assert.equal(exit.code, 0, `${worker.name}: ${exit.stderr}`)
        }
      }

      await Promise.all(range(WORKERS).map((n) => lane(n)))
      const history = JSON.parse(await readFile(join(dir, 'history.json'), 'utf8')) as string[]
      assert.equal(new Set(history).size, history.length, 'no increment counted twice')
      assert.equal(history.length, WORKERS * 5)
    })

    it('holders SIGKILLed inside the section: the survivors lose nothing, the lock is reclaimed', async () => {
      // Two victims stop inside their critical section (holding the lock) at different cycles.
      const victims = [startWorker(dir, 'v1', CYCLES, 3), startWorker(dir, 'v2', CYCLES, 7)]
      const survivors = range(WORKERS - victims.length).map((n) => startWorker(dir, `w${n}`, CYCLES))
      const survivorExits = Promise.all(survivors.map((worker) => exitOf(worker)))
      const victimExits = victims.map((victim) => exitOf(victim))
      // Each victim is killed the moment it says it holds the lock (whichever comes first).
      const kills = victims.map(async (victim) => {
        await holding(victim)
        victim.child.kill('SIGKILL')
      })
      await Promise.all(kills)
      for (const exit of await Promise.all(victimExits)) assert.equal(exit.signal, 'SIGKILL')
      for (const [index, exit] of (await survivorExits).entries())
        assert.equal(exit.code, 0, `w${index + 1}: ${exit.stderr}`)

      const history = JSON.parse(await readFile(join(dir, 'history.json'), 'utf8')) as string[]
      assert.equal(new Set(history).size, history.length, 'no increment counted twice')
      for (const worker of survivors)
        assert.deepEqual(tokensOf(history, worker.name), range(CYCLES), `${worker.name}'s increments`)
      // A victim's increments are exactly those it finished before it stopped at HOLD_AT.
      for (const [index, victim] of victims.entries()) {
        const holdAt = index === 0 ? 3 : 7
        assert.deepEqual(tokensOf(history, victim.name), range(holdAt - 1), `${victim.name}'s increments`)
        assert.deepEqual(await completed(victim), range(holdAt - 1))
      }

      assert.equal(history.length, (WORKERS - victims.length) * CYCLES + 2 + 6)
    })
  })
})
