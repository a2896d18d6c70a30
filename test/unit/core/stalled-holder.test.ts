/**
 * A writer whose process stalls while it holds its lock (suspended by the system, a debugger,
 * Ctrl-Z, SIGSTOP) for longer than the lock's stale limit: another process takes the lock over and
 * writes, then the stalled one carries on. Wherever it stalled, nothing may be lost or forked, and
 * what it reports must be true: "stored" only when its write is there, a failure only when it is
 * not (`proxy` writes failed audit events again with its next batch; a user runs a failed
 * `secrets set` again).
 *
 * The stalled writer is test/fixtures/stall-worker.mjs, a separate process running the BUILT modules
 * (`npm run build` first): it stops itself with SIGSTOP before its Nth file-system call made under
 * the lock, for every N in turn. Barriers only: its "holding" line, the token's mtime set back (what
 * 10 s of silence would do), SIGCONT, its exit.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {appendFile, mkdtemp, readdir, readFile, rm, stat, utimes} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {VaultStore} from '../../../src/backends/local/vault-store.js'
import {appendAudit, verifyAudit} from '../../../src/core/audit.js'
import {loadConfig, updateConfig} from '../../../src/core/config.js'
import {openCredentialStore} from '../../../src/core/credentials.js'
import {STALE_MS} from '../../../src/core/file-lock.js'
import {ROOT} from '../../helpers/cli.js'

const WORKER = join(ROOT, 'test', 'fixtures', 'stall-worker.mjs')

const event = (command: string) => ({
  command,
  duration_ms: 1,
  exit_code: 0,
  outcome: 'ok' as const,
  time: new Date().toISOString(),
})

/** Make every token in `lock` look as if its owner had not refreshed it for longer than STALE_MS. */
/**
 * Resolves once process `pid` is stopped (its state in /proc is T): the worker says "holding" and
 * then stops itself, two steps; a SIGCONT sent in between would be lost and leave it stopped.
 */
async function stopped(pid: number): Promise<void> {
  for (let tries = 0; tries < 5000; tries++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    if (/\) T /.test(stat)) return
    await new Promise((resolve) => {
      setTimeout(resolve, 1)
    })
  }

  assert.fail(`process ${pid} never stopped`)
}

async function ageTokens(lock: string): Promise<void> {
  const past = new Date(Date.now() - 2 * STALE_MS)
  for (const entry of await readdir(lock)) await utimes(join(lock, entry), past, past)
}

async function commandsIn(home: string): Promise<string[]> {
  const text = await readFile(join(home, 'audit.log'), 'utf8')
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as {command: string}).command)
}

const store = (home: string) => new VaultStore({env: {}, home, keychain: null})
const put = async (home: string, name: string): Promise<void> => {
  const now = new Date().toISOString()
  const entry = {created: now, updated: now, value: Buffer.from(name).toString('base64'), version: 1}
  await store(home).updateEntry(name, () => ({entry, result: undefined}), {createIfMissing: true})
}

interface Stall {
  home: string
  /** What the stalled writer reported: stored, or the error code. */
  reported: {error?: string; stored?: boolean}
}

async function auditProblems({home, reported}: Stall): Promise<Array<false | string | undefined>> {
  const verified = await verifyAudit(home)
  const commands = await commandsIn(home)
  const count = (command: string) => commands.filter((item) => item === command).length
  return [
    !verified.ok && `verify: ${JSON.stringify(verified.firstBad)}`,
    reported.stored && count('stalled') !== 1 && `reported stored, found ${count('stalled')} times`,
    !reported.stored &&
      count('stalled') !== 0 &&
      `reported ${reported.error}, yet found ${count('stalled')} times`,
    // Nothing of its own was written when it found out (so it appends again), or it was durable already.
    !reported.stored && `the append failed (${reported.error}) although it could be made again`,
    count('other') !== 1 && 'the other event is not there once',
  ]
}

async function names(home: string): Promise<string[]> {
  return [...((await store(home).readMetadata()) ?? new Map<string, unknown>()).keys()].sort()
}

async function vaultProblems({home, reported}: Stall): Promise<Array<false | string | undefined>> {
  const stored = (await names(home)).includes('stalled')
  const all = await names(home)
  const values = await store(home).readValues(all.map((name) => ({name})))
  return [
    !all.includes('other') && 'the other write lost',
    all.some((name, index) => values?.[index]?.toString() !== name) && 'a value differs',
    reported.stored && !stored && 'reported stored, yet absent',
    !reported.stored && stored && `reported ${reported.error}, yet stored`,
    // Found out before its rename: a clear failure (exit 5), nothing written.
    !reported.stored && reported.error !== 'LOCK_COMPROMISED' && `failed with ${reported.error}`,
  ]
}

async function addProfile(home: string, name: string): Promise<void> {
  await updateConfig(home, (config) => {
    config.profiles[name] = {kind: 'local'}
  })
}

async function configProblems({home, reported}: Stall): Promise<Array<false | string | undefined>> {
  const profiles = Object.keys((await loadConfig(home)).profiles)
  const stored = profiles.includes('stalled')
  return [
    !profiles.includes('first') && 'first lost',
    !profiles.includes('other') && 'the other change lost',
    reported.stored && !stored && 'reported made, yet absent',
    !reported.stored && stored && `reported ${reported.error}, yet made`,
    !reported.stored && reported.error !== 'LOCK_COMPROMISED' && `failed with ${reported.error}`,
  ]
}

async function storeToken(home: string, name: string): Promise<void> {
  const store = await openCredentialStore({env: {}, home, keychain: null})
  await store.set(`openbao:${name}`, `token-${name}`)
}

async function credentialProblems({home, reported}: Stall): Promise<Array<false | string | undefined>> {
  const store = await openCredentialStore({env: {}, home, keychain: null})
  const token = async (name: string) => store.get(`openbao:${name}`)
  const stored = (await token('stalled')) === 'token-stalled'
  return [
    (await token('first')) !== 'token-first' && 'first lost',
    (await token('other')) !== 'token-other' && 'the other token lost',
    reported.stored && !stored && 'reported stored, yet absent',
    !reported.stored && stored && `reported ${reported.error}, yet stored`,
    !reported.stored && reported.error !== 'LOCK_COMPROMISED' && `failed with ${reported.error}`,
  ]
}

interface Sweep {
  /** What is wrong after the stalled writer finished. */
  check(stall: Stall): Promise<Array<false | string | undefined>>
  dir: string
  kind: 'audit' | 'config' | 'credentials' | 'vault'
  /** The write of another process while the worker is stalled. */
  other(home: string): Promise<void>
  prepare(home: string): Promise<void>
}

/**
 * For N = 1, 2, …: prepare a fresh home, start the worker stalling at its Nth call under the lock,
 * let `other` write meanwhile, continue the worker, and collect what `check` finds wrong. Returns
 * the problems found and how many stall points there were.
 */
async function sweep({
  check,
  dir,
  kind,
  other,
  prepare,
}: Sweep): Promise<{failures: string[]; points: number}> {
  const failures: string[] = []
  for (let pauseAt = 1; pauseAt < 100; pauseAt++) {
    const home = join(dir, `${kind}-${pauseAt}`)
    await prepare(home)
    const child = spawn(process.execPath, [WORKER, kind, home, String(pauseAt), 'stalled'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    const closed = once(child, 'close') as Promise<[null | number, NodeJS.Signals | null]>
    const held = new Promise<boolean>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if (out.startsWith('holding\n')) resolve(true)
      })
      child.once('close', () => resolve(false))
    })
    try {
      if (!(await held)) {
        // Fewer calls than pauseAt: every point was visited.
        const [code] = await closed
        assert.equal(code, 0, `worker without a stall: ${out}${stderr}`)
        return {failures, points: pauseAt - 1}
      }

      // 10 s of silence from the frozen holder, then another process writes.
      await stopped(child.pid!)
      await ageTokens(join(home, `${kind}.lock`))
      await other(home)
      child.kill('SIGCONT')
      await closed
      const reported = JSON.parse(out.slice('holding\n'.length)) as Stall['reported']
      const problems = (await check({home, reported})).filter(Boolean)
      if (problems.length > 0) failures.push(`stalled at call ${pauseAt}: ${problems.join('; ')}`)
    } finally {
      child.kill('SIGKILL')
      child.kill('SIGCONT')
    }
  }

  return {failures, points: 100}
}

describe('a holder of a lock that stalls past the stale limit (built modules)', function () {
  this.timeout(180_000)
  let dir: string

  before(async () => {
    for (const module of [
      'core/audit.js',
      'core/config.js',
      'core/credentials.js',
      'backends/local/vault-store.js',
    ]) {
      const built = join(ROOT, 'dist', module)
      await stat(built).catch(() => assert.fail(`${built} is missing: run \`npm run build\` first`))
    }

    dir = await mkdtemp(join(tmpdir(), 'agentvault-stall-'))
  })

  after(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  describe('the audit log', () => {
    const STARTS = [
      {name: 'a log that ends cleanly', unfinished: ''},
      // What a process killed in its write leaves: removed by the next append, here by both.
      {name: 'a log that ends in a line an interrupted append left', unfinished: '{"command":"cut sh'},
    ]
    for (const {name, unfinished} of STARTS)
      it(`${name}: wherever it stalls, the chain verifies and each event is in the log once, as reported`, async () => {
        const {failures, points} = await sweep({
          check: auditProblems,
          dir: join(dir, `start-${unfinished.length}`),
          kind: 'audit',
          other: (home) => appendAudit(home, event('other')).then(() => {}),
          async prepare(home) {
            await appendAudit(home, event('first'))
            if (unfinished !== '') await appendFile(join(home, 'audit.log'), unfinished)
          },
        })
        assert.ok(points > 10 && points < 100, `visited ${points} points`)
        assert.deepEqual(failures, [])
      })
  })

  describe('the local vault', () => {
    for (const {first, name} of [
      {first: true, name: 'a vault with a secret'},
      {first: false, name: 'no vault yet (both writers create it)'},
    ])
      it(`${name}: wherever it stalls, no write is lost and the stalled write reports exactly what happened`, async () => {
        const {failures, points} = await sweep({
          check: async (stall) => [
            ...(await vaultProblems(stall)),
            first && !(await names(stall.home)).includes('first') && 'first lost',
          ],
          dir: join(dir, `vault-${first}`),
          kind: 'vault',
          other: (home) => put(home, 'other'),
          prepare: async (home) => (first ? put(home, 'first') : undefined),
        })
        assert.ok(points > 10 && points < 100, `visited ${points} points`)
        assert.deepEqual(failures, [])
      })
  })

  describe('config.json', () => {
    it('wherever it stalls, no change is lost and the stalled change reports exactly what happened', async () => {
      const {failures, points} = await sweep({
        check: configProblems,
        dir: join(dir, 'config'),
        kind: 'config',
        other: (home) => addProfile(home, 'other'),
        prepare: (home) => addProfile(home, 'first'),
      })
      assert.ok(points > 5 && points < 100, `visited ${points} points`)
      assert.deepEqual(failures, [])
    })
  })

  describe('the credential file', () => {
    it('wherever it stalls, no token is lost and the stalled write reports exactly what happened', async () => {
      const {failures, points} = await sweep({
        check: credentialProblems,
        dir: join(dir, 'credentials'),
        kind: 'credentials',
        other: (home) => storeToken(home, 'other'),
        prepare: (home) => storeToken(home, 'first'),
      })
      assert.ok(points > 5 && points < 100, `visited ${points} points`)
      assert.deepEqual(failures, [])
    })
  })
})
