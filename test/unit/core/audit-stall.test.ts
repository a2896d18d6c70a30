/**
 * An audit append whose process stalls while it holds the audit lock (suspended by the system, a
 * debugger, Ctrl-Z, SIGSTOP) for longer than the lock's stale limit: another process takes the lock
 * over and appends, then the stalled one carries on. Wherever it stalled, the chain must still
 * verify and its event must be in the log exactly once — and it must say so truthfully (an append
 * that reports failure wrote nothing: `proxy` writes failed events again with its next batch).
 *
 * The stalled appender is test/fixtures/audit-stall-worker.mjs, a separate process running the BUILT
 * module (`npm run build` first): it stops itself with SIGSTOP before its Nth file-system call made
 * under the lock, for every N in turn. Barriers only: its "holding" line, the token's mtime set back
 * (what 10 s of silence would do), SIGCONT, its exit.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {appendFile, mkdtemp, readdir, readFile, rm, stat, utimes} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {appendAudit, verifyAudit} from '../../../src/core/audit.js'
import {STALE_MS} from '../../../src/core/file-lock.js'
import {ROOT} from '../../helpers/cli.js'

const BUILT = join(ROOT, 'dist', 'core', 'audit.js')
const WORKER = join(ROOT, 'test', 'fixtures', 'audit-stall-worker.mjs')

const event = (command: string) => ({
  command,
  duration_ms: 1,
  exit_code: 0,
  outcome: 'ok' as const,
  time: new Date().toISOString(),
})

async function commandsIn(home: string): Promise<string[]> {
  const text = await readFile(join(home, 'audit.log'), 'utf8')
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as {command: string}).command)
}

/** Make every token in `lock` look as if its owner had not refreshed it for longer than STALE_MS. */
async function ageTokens(lock: string): Promise<void> {
  const past = new Date(Date.now() - 2 * STALE_MS)
  for (const entry of await readdir(lock)) await utimes(join(lock, entry), past, past)
}

describe('core/audit: a holder of the audit lock that stalls past the stale limit', function () {
  this.timeout(180_000)
  let dir: string

  before(async () => {
    await stat(BUILT).catch(() => assert.fail(`${BUILT} is missing: run \`npm run build\` first`))
    dir = await mkdtemp(join(tmpdir(), 'agentvault-audit-stall-'))
  })

  after(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  const STARTS = [
    {name: 'a log that ends cleanly', unfinished: ''},
    // What a process killed in its write leaves: removed by the next append, here by both.
    {name: 'a log that ends in a line an interrupted append left', unfinished: '{"command":"cut sh'},
  ]
  for (const {name, unfinished} of STARTS)
    it(`${name}: wherever it stalls, the chain verifies and each event is in the log once, as reported`, async () => {
      const failures: string[] = []
      let pauseAt = 1
      for (; pauseAt < 100; pauseAt++) {
        const home = join(dir, `home-${unfinished.length}-${pauseAt}`)
        await appendAudit(home, event('first'))
        if (unfinished !== '') await appendFile(join(home, 'audit.log'), unfinished)
        const child = spawn(process.execPath, [WORKER, BUILT, home, String(pauseAt), 'stalled'], {
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
            break
          }

          // 10 s of silence from the frozen holder, then another process appends.
          await ageTokens(join(home, 'audit.lock'))
          await appendAudit(home, event('other'))
          child.kill('SIGCONT')
          const [code] = await closed
          const result = JSON.parse(out.slice('holding\n'.length)) as {error?: string; seq?: number}
          const verified = await verifyAudit(home)
          const commands = await commandsIn(home)
          const stalled = commands.filter((command) => command === 'stalled').length
          const reportedOk = code === 0 && result.seq !== undefined
          const problems = [
            !verified.ok && `verify: ${JSON.stringify(verified.firstBad)}`,
            reportedOk && stalled !== 1 && `reported stored, found ${stalled} times`,
            !reportedOk && stalled !== 0 && `reported ${result.error ?? code}, yet found ${stalled} times`,
            !reportedOk && `the append failed (${result.error ?? stderr}) although it could be retried`,
            commands.filter((command) => command === 'other').length !== 1 &&
              'the other event is not there once',
          ].filter(Boolean)
          if (problems.length > 0) failures.push(`stalled at call ${pauseAt}: ${problems.join('; ')}`)
        } finally {
          child.kill('SIGKILL')
          child.kill('SIGCONT')
        }
      }

      assert.ok(pauseAt > 10 && pauseAt < 100, `visited ${pauseAt - 1} points`)
      assert.deepEqual(failures, [])
    })
})
