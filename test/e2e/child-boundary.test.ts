/**
 * The process boundary of `run`, probed by a hostile child: what the command agentvault starts can
 * get out of agentvault itself (its memory, its descriptors) rather than out of what it is given.
 * The child runs as the same OS user; when the tests run as root it runs as a root without
 * capabilities (setpriv), which the kernel treats as any other process of that user.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'

const SECRET = 'canary-child-boundary-REAL-5f19c2'
const PASSPHRASE = 'canary-child-boundary-PASS-77e0a4'

/** A root child without capabilities is an ordinary same-user process (CAP_SYS_RESOURCE, CAP_SYS_PTRACE gone). */
function asSameUser(command: string[]): string[] {
  return process.getuid?.() === 0
    ? ['setpriv', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--', ...command]
    : command
}

/** The signals whose default action dumps core, as kill(2) can send them (SIGQUIT is forwarded instead). */
const CORE_SIGNALS = ['SIGABRT', 'SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP', 'SIGSYS', 'SIGXCPU']

/** Files in `dir` (where core_pattern `core` puts agentvault's dump) that hold a canary; all removed. */
async function dumpsWithCanary(dir: string): Promise<string[]> {
  const found: string[] = []
  for (const name of await readdir(dir)) {
    const bytes = await readFile(join(dir, name))
    if (bytes.includes(SECRET) || bytes.includes(PASSPHRASE)) found.push(name)
    await rm(join(dir, name), {force: true})
  }

  return found
}

describe('e2e: run against a hostile child, at the process boundary', function () {
  this.timeout(60_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let env: NodeJS.ProcessEnv
  let cwd: string
  const cli = (args: string[], input?: string): Promise<CliResult> => runCli(args, {cwd, env, input})

  before(async function () {
    // prlimit and setpriv are util-linux, there wherever Linux is (Debian: essential).
    if (process.platform !== 'linux') this.skip()
    t = await tempHome()
    env = {...t.env, AGENTVAULT_PASSPHRASE: PASSPHRASE}
    cwd = await mkdtemp(join(tmpdir(), 'av-boundary-'))
    const stored = await cli(['secrets', 'set', 'K'], SECRET)
    assert.equal(stored.code, 0, stored.stderr)
  })

  after(async () => {
    if (cwd) await rm(cwd, {force: true, recursive: true})
    await t?.dispose()
  })

  describe('core dumps: the child raises agentvault’s core limit and sends it a core-dumping signal', () => {
    for (const mode of [[], ['--placeholders']]) {
      for (const signal of CORE_SIGNALS) {
        it(`${['run', ...mode].join(' ')}: ${signal} leaves no core file, and the limit cannot be raised`, async () => {
          // As the child could run it: raise agentvault's limit (soft and hard, else soft), note it
          // in a file (agentvault, killed, relays no more output), then send the signal and leave
          // at once (nothing outlives the test).
          const hostile = [
            'prlimit --pid "$PPID" --core=unlimited:unlimited 2>/dev/null || prlimit --pid "$PPID" --core=unlimited: 2>/dev/null',
            'grep "^Max core file size" "/proc/$PPID/limits" > "$1"',
            `kill -${signal.slice(3)} "$PPID"`,
          ].join('\n')
          const report = join(t.home, 'limits')
          await rm(report, {force: true})
          const result = await cli([
            'run',
            ...mode,
            '--env',
            'K=local://K',
            '--',
            ...asSameUser(['sh', '-c', hostile, 'hostile', report]),
          ])
          const limits = await readFile(report, 'utf8').catch(() => '')
          const limit = /^Max core file size\s+(\S+)\s+(\S+)/m.exec(limits)
          assert.ok(limit, `the child could not read agentvault's limits: ${limits}${result.stderr}`)
          assert.deepEqual([limit[1], limit[2]], ['0', '0'], 'the child raised agentvault’s core limit')
          assert.deepEqual(await dumpsWithCanary(cwd), [], 'a core file of agentvault holds the canary')
        })
      }
    }

    it('the command itself starts with the limits agentvault runs under, but cannot raise them either', async () => {
      // Documented (README, run --placeholders limits): a core of the command would hold what it was given.
      const result = await cli([
        'run',
        '--env',
        'K=local://K',
        '--',
        ...asSameUser(['sh', '-c', 'grep "^Max core file size" /proc/self/limits']),
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stdout, /^Max core file size\s+0\s+0\b/m)
    })
  })

  it('prlimit missing from PATH: run still runs the command', async () => {
    const path = spawnSync('sh', ['-c', 'command -v sh'], {encoding: 'utf8'}).stdout.trim()
    const result = await runCli(['run', '--env', 'K=local://K', '--', path, '-c', 'echo "[$K]"'], {
      cwd,
      env: {...env, PATH: '/nonexistent'},
    })
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, '[<concealed by agentvault>]\n')
  })
})
