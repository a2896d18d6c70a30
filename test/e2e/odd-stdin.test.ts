/**
 * Through the built binary: stdin as a CI runner, a cron job or a supervisor leaves it — closed
 * (`<&-`), /dev/null, an endless stream (/dev/zero), or a pipe that stays open and never says
 * anything (a runner that keeps its end). A command that needs no input must not wait for it; a command that needs it and gets none
 * fails at once with exit 2, `Error:` and `Try this:` naming the flag to use. (Endless and huge input
 * is test/e2e/endless-input.test.ts.) A run still going after HANG_MS is killed and fails the test:
 * that bound is the failure signal, not a sleep.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {
  baseEnv,
  BIN,
  type CliResult,
  collectUnlessHung,
  ROOT,
  runCli,
  tempHome,
  withNodeOnPath,
} from '../helpers/cli.js'

const HANG_MS = 20_000

type StdinKind = 'closed' | 'dev-null' | 'dev-zero' | 'silent-pipe'

async function runWithStdin(
  kind: StdinKind,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<CliResult & {hung: boolean}> {
  const childEnv = withNodeOnPath(baseEnv(env))
  const zero = kind === 'dev-zero' ? openSync('/dev/zero', 'r') : undefined
  const child =
    kind === 'dev-zero'
      ? spawn(BIN, args, {cwd: ROOT, env: childEnv, stdio: [zero, 'pipe', 'pipe']})
      : kind === 'closed'
        ? spawn('sh', ['-c', 'exec "$0" "$@" <&-', BIN, ...args], {
            cwd: ROOT,
            env: childEnv,
            stdio: ['pipe', 'pipe', 'pipe'],
          })
        : spawn(BIN, args, {
            cwd: ROOT,
            env: childEnv,
            stdio: [kind === 'dev-null' ? 'ignore' : 'pipe', 'pipe', 'pipe'],
          })
  // silent-pipe: the write end stays open (never written, never closed) until the command ends.
  child.stdin?.on('error', () => {})
  try {
    return await collectUnlessHung(child, HANG_MS)
  } finally {
    child.stdin?.destroy()
    if (zero !== undefined) closeSync(zero)
  }
}

describe('e2e: odd stdin (closed, /dev/null, a silent pipe that never ends)', function () {
  this.timeout(120_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let env: NodeJS.ProcessEnv
  let files: {dotenv: string; template: string}

  before(async () => {
    t = await tempHome()
    env = {...t.env, FROM_ENV_VALUE: 'from-env'}
    const stored = await runCli(['secrets', 'set', 'A', '--allow-domain', 'api.example.com'], {
      env,
      input: 'a-value',
    })
    assert.equal(stored.code, 0, stored.stderr)
    files = {dotenv: join(t.home, 'in.env'), template: join(t.home, 'in.tpl')}
    await writeFile(files.dotenv, 'FROM_FILE=file-value\n')
    await writeFile(files.template, 'key={{ local://A }}\n')
  })

  after(() => t.dispose())

  /** Commands that need no stdin: they finish (exit 0) whatever stdin is. */
  const noInput = (): string[][] => [
    ['secrets', 'list'],
    ['secrets', 'get', 'A', '--reveal'],
    ['secrets', 'set', 'FROM_ENV', '--from-env', 'FROM_ENV_VALUE'],
    ['secrets', 'set', 'FROM_FILE', '--from-file', files.dotenv],
    ['secrets', 'import', files.dotenv, '--overwrite'],
    ['secrets', 'export', '--reveal'],
    ['secrets', 'versions', 'A'],
    ['secrets', 'delete', 'NOT_THERE_EITHER', '--yes'],
    ['inject', '-i', files.template],
    ['use', 'A', 'sign', '--param', 'algorithm=hmac-sha256', '--param', 'data=hello'],
    ['profiles', 'list'],
    ['status'],
    ['audit', '--limit', '3'],
    ['audit', 'verify'],
    ['run', '--env', 'K=local://A', '--', 'node', '-e', 'process.exit(0)'],
  ]

  /** Commands that need stdin: with none, exit 2 at once naming how to give it. */
  const needInput: Array<{args: string[]; hint: RegExp}> = [
    {args: ['secrets', 'set', 'NEEDS_VALUE'], hint: /--from-file|--from-env|stdin/},
    {args: ['secrets', 'set', 'NEEDS_VALUE', '--from-file', '-'], hint: /stdin|--from/},
    {
      args: ['login', 'openbao', '--address', 'https://bao.example.com', '--token-stdin'],
      hint: /token|stdin/i,
    },
    {args: ['use', 'A', 'sign', '--params', '-'], hint: /params|stdin/i},
  ]

  for (const kind of ['closed', 'dev-null', 'dev-zero', 'silent-pipe'] as const) {
    describe(`stdin ${kind}`, () => {
      it('commands that need no input finish with exit 0', async () => {
        for (const args of noInput()) {
          const result = await runWithStdin(kind, args, env)
          assert.ok(!result.hung, `${args.join(' ')} waited for stdin (${kind})`)
          const expected = args.includes('NOT_THERE_EITHER') ? 6 : 0
          assert.equal(result.code, expected, `${args.join(' ')} (${kind}): ${result.stderr}`)
        }
      })

      if (kind === 'closed' || kind === 'dev-null')
        // A silent pipe may still deliver: waiting is right there (as `cat` does); endless input is
        // test/e2e/endless-input.test.ts.
        for (const {args, hint} of needInput)
          it(`${args.join(' ')}: exit 2 at once, Error and Try this`, async () => {
            const result = await runWithStdin(kind, args, env)
            assert.ok(!result.hung, 'hung')
            assert.equal(result.code, 2, result.stderr)
            assert.equal(result.stdout, '')
            assert.match(result.stderr, /^Error: .+\nTry this: .+/m)
            assert.match(result.stderr, hint)
          })
    })
  }
})
