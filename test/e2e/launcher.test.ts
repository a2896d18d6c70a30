/**
 * Issue 11 §1: Node scans a script's own arguments for `--env-file` and reads that file itself,
 * before any JavaScript runs (a missing file: `node: …: not found`, exit 9; a process-substitution
 * file or a FIFO: consumed before agentvault reads it). The launcher (bin/run.js, a sh/JS
 * polyglot) hands agentvault's arguments to Node outside argv, so `run --env-file` belongs to
 * agentvault. Each case runs through bin/run.js executed as a program and through an installed
 * package (npm pack → npm install, the command npx runs), on the machine's Node and on Node 22
 * (scripts/node-version.js installs it from the npm registry on first use).
 */
import assert from 'node:assert/strict'
import {execFile, spawn} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {
  baseEnv,
  BIN,
  type CliResult,
  collect,
  ROOT,
  runCli,
  startCli,
  tempHome,
  withNodeOnPath,
} from '../helpers/cli.js'
import {install, pack} from '../helpers/package.js'

const CANARY = 'canary-launcher-5d1e8b7a0c'
const MASK = '<concealed by agentvault>'
const execFileP = promisify(execFile)

function assertNoCanary(result: CliResult): void {
  assert.ok(!result.stdout.includes(CANARY), `the value leaked to stdout: ${result.stdout}`)
  assert.ok(!result.stderr.includes(CANARY), `the value leaked to stderr: ${result.stderr}`)
}

interface Launched extends CliResult {
  timedOut: boolean
}

describe('e2e: the launcher keeps Node from reading agentvault’s arguments (run --env-file)', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let work: string
  let installed: string
  const versionOf = new Map<string, string>([[process.execPath, process.version]])

  /** Node 22's binary: installed on first use (once for the suite), its version checked. */
  let node22Install: Promise<string> | undefined
  async function findNode22(): Promise<string> {
    let binary: string
    try {
      const found = await execFileP(process.execPath, [join(ROOT, 'scripts', 'node-version.js'), '22'], {
        encoding: 'utf8',
      })
      binary = found.stdout.trim()
    } catch (error) {
      const {message, stderr} = error as Error & {stderr?: string}
      throw new Error(
        `Node 22 is needed for these tests, and scripts/node-version.js 22 could not install it:\n${stderr || message}`,
      )
    }

    const {stdout} = await execFileP(binary, ['--version'], {encoding: 'utf8'})
    assert.match(stdout, /^v22\./, `${binary} is Node 22`)
    versionOf.set(binary, stdout.trim())
    return binary
  }

  function installNode22(): Promise<string> {
    node22Install ??= findNode22()
    return node22Install
  }

  before(async function () {
    this.timeout(300_000)
    t = await tempHome()
    work = await mkdtemp(join(tmpdir(), 'agentvault-launcher-'))
    const stored = await runCli(['secrets', 'set', 'K'], {env: t.env, input: CANARY})
    assert.equal(stored.code, 0, stored.stderr)
    // Started now, awaited by the Node 22 suites: a failure fails those, and only those.
    installNode22().catch(() => {})
    const {tarball} = await pack(work)
    installed = await install(tarball, join(work, 'project'), {global: false})
  })

  after(async () => {
    await t.dispose()
    await rm(work, {force: true, recursive: true})
  })

  /**
   * Run `script` with bash, `$0` being the agentvault command, with `nodeBinary` first on PATH.
   * In its own process group, killed whole after `timeoutMs` (a hang is a failure, not a stall).
   */
  function launch(
    script: string,
    command: string,
    nodeBinary: string,
    timeoutMs = 20_000,
  ): Promise<Launched> {
    const child = spawn('bash', ['-c', script, command], {
      cwd: t.home,
      detached: true,
      env: withNodeOnPath(baseEnv(t.env), nodeBinary),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
      } catch {} // the group is gone already
    }, timeoutMs)
    return collect(child).then((result) => {
      clearTimeout(timer)
      return {...result, timedOut}
    })
  }

  const commands: Array<[string, () => string]> = [
    ['bin/run.js executed as a program', () => BIN],
    ['the installed package (npm install, as npx runs it)', () => installed],
  ]
  let node22 = ''
  const nodes: Array<[string, () => string]> = [
    ["the machine's Node", () => process.execPath],
    ['Node 22', () => node22],
  ]

  for (const [commandLabel, commandOf] of commands) {
    for (const [nodeLabel, nodeOf] of nodes) {
      describe(`${commandLabel}, on ${nodeLabel}`, () => {
        if (nodeLabel === 'Node 22')
          before(async function () {
            this.timeout(600_000)
            node22 = await installNode22()
          })

        it('runs on that Node (the `node` first on PATH, as #!/usr/bin/env node did)', async () => {
          const result = await launch('exec "$0" --version', commandOf(), nodeOf())
          assert.equal(result.code, 0, result.stderr)
          assert.match(
            result.stdout,
            new RegExp(` node-${versionOf.get(nodeOf())?.replaceAll('.', '\\.')}\\n$`),
          )
        })

        it('run --env-file <(…): the process-substitution file reaches agentvault, not Node', async () => {
          const result = await launch(
            `exec "$0" run --env-file <(printf 'A=local://K\\nPLAIN=plain-value\\n') -- sh -c 'echo "\${A:-UNSET}|\${PLAIN:-UNSET}"'`,
            commandOf(),
            nodeOf(),
          )
          assert.equal(result.timedOut, false, 'run did not hang')
          assert.equal(result.code, 0, result.stderr)
          assert.equal(result.stdout, `${MASK}|plain-value\n`)
          assertNoCanary(result)
        })

        it("run --env-file missing.env: agentvault's own error (usage, exit 2), not Node's", async () => {
          const result = await launch('exec "$0" run --env-file missing.env -- true', commandOf(), nodeOf())
          assert.equal(result.timedOut, false, 'run did not hang')
          assert.equal(result.code, 2, result.stderr)
          assert.equal(result.stdout, '')
          assert.equal(
            result.stderr,
            'Error: Cannot read env file missing.env (ENOENT)\nTry this: Check the path given to --env-file.\n',
          )
        })

        it('run --env-file FIFO: read once, by agentvault (no hang)', async () => {
          const result = await launch(
            `fifo=$(mktemp -u "$PWD/env-fifo.XXXXXX") && mkfifo "$fifo" && { printf 'A=local://K\\n' > "$fifo" & } && exec "$0" run --env-file "$fifo" -- sh -c 'echo "\${A:-UNSET}"'`,
            commandOf(),
            nodeOf(),
          )
          assert.equal(result.timedOut, false, 'run hung on the FIFO: someone else read it first')
          assert.equal(result.code, 0, result.stderr)
          assert.equal(result.stdout, `${MASK}\n`)
          assertNoCanary(result)
        })

        it("the child's own --env-file arguments (after --) reach the child untouched", async () => {
          const result = await launch(
            `exec "$0" run --env K=local://K -- sh -c 'cat "$2"; echo "$3|$K"' child --env-file <(printf 'CHILD=own\\n') --env-file=missing-child.env`,
            commandOf(),
            nodeOf(),
          )
          assert.equal(result.timedOut, false, 'run did not hang')
          assert.equal(result.code, 0, result.stderr)
          assert.equal(result.stdout, `CHILD=own\n--env-file=missing-child.env|${MASK}\n`)
          assertNoCanary(result)
        })
      })
    }
  }

  describe('the launcher itself', () => {
    it('passes every argument through byte for byte', async () => {
      const args = [
        '',
        'a b',
        'two\nlines',
        '*',
        '$HOME',
        '\\',
        '-n',
        '--',
        'é ✓',
        '=',
        'AGENTVAULT_ARGC=9',
        '\'"',
      ]
      const result = await runCli(
        ['run', '--env', 'K=local://K', '--', 'sh', '-c', 'printf "[%s]\\n" "$@"', 'x', ...args],
        {
          env: t.env,
        },
      )
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, args.map((arg) => `[${arg}]\n`).join(''))
    })

    it('the child inherits none of the launcher’s variables', async () => {
      const result = await runCli(['run', '--env', 'K=local://K', '--', 'env'], {env: t.env})
      assert.equal(result.code, 0, result.stderr)
      assert.doesNotMatch(result.stdout, /^AGENTVAULT_ARG/m)
      assert.match(result.stdout, new RegExp(`^K=${MASK}$`, 'm'))
    })

    it('execs node in the same process: the child’s parent is the process that was started', async () => {
      const child = startCli(['run', '--env', 'K=local://K', '--', 'sh', '-c', 'echo "$PPID"'], {env: t.env})
      const result = await collect(child)
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, `${child.pid}\n`)
    })

    it('`node bin/run.js ARGS` works too; stale launcher variables are neither used nor passed on', async () => {
      const child = spawn(
        process.execPath,
        [BIN, 'run', '--env', 'K=local://K', '--', 'sh', '-c', 'env | grep ^AGENTVAULT_ARG; echo "ok $K"'],
        {
          env: baseEnv({...t.env, AGENTVAULT_ARGC: '1', AGENTVAULT_ARGV_0: '--version'}),
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      const result = await collect(child)
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, `ok ${MASK}\n`)
    })
  })
})
