/**
 * Through the built binary: a process killed (SIGKILL) at every point of every write it makes.
 *
 * test/fixtures/crash-at-op.c, preloaded into the binary, counts each change the process makes under
 * its AGENTVAULT_HOME (create, write, sync, rename, link, unlink, mkdir, rmdir, chmod, utime) and
 * kills the process with SIGKILL right before the Nth — or, for a write, after writing only half of
 * it. Each command is first run to completion to count its changes and to learn its end state; then,
 * for every N, a fresh copy of the same home is crashed at N. Afterwards the home must hold the old
 * or the new state (never a mix, a torn file, a lost secret or a lost credential), `audit verify`
 * must pass, and the next writing command must work without any manual repair (it takes over the
 * dead process's lock). No timing is involved: the crash point is an exact count.
 */
import assert from 'node:assert/strict'
import {cp, mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {buildCrashAtOp, crashAtOpEnv} from '../helpers/crash-at-op.js'
import {sweepSample} from '../helpers/e2e.js'
import {startSeededServer} from '../servers/openbao/harness.js'
import {type OpenBaoTestServer} from '../servers/openbao/server.js'

/** What a home holds, as the CLI reports it (timestamps left out: they differ between runs). */
interface Snapshot {
  credentials?: string
  profiles: string
  secrets: string
  values: string
}

interface Scenario {
  args: string[]
  /** Compare the credential store too (signed in to openbao or not). */
  credentials?: boolean
  input?: string
  /** Also crash inside taking and releasing the locks (see crashEverywhere). */
  locks?: boolean
  /** Secrets whose value is random (generated): only their presence is compared. */
  random?: string[]
  /** A further state a crash may leave, besides the old and the new (made from both). */
  between?(before: Snapshot, after: Snapshot): Snapshot
  /** Build the home the command starts from. */
  setup(env: NodeJS.ProcessEnv): Promise<void>
}

interface Op {
  kind: string
  path: string
}

async function run(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<CliResult> {
  return runCli(args, {env, input})
}

async function ok(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<CliResult> {
  const result = await run(args, env, input)
  assert.equal(result.code, 0, `${args.join(' ')} → ${result.code}\n${result.stderr}${result.stdout}`)
  return result
}

function crashEnv(env: NodeJS.ProcessEnv, home: string, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {...crashAtOpEnv(env, {root: home}), ...extra}
}

/** Two versions of A, and B with a description and a tag; one audited read. */
async function baseVault(env: NodeJS.ProcessEnv): Promise<void> {
  await ok(['secrets', 'set', 'A'], env, 'a-1')
  await ok(['secrets', 'set', 'A'], env, 'a-2')
  await ok(['secrets', 'set', 'B', '--description', 'bee', '--tag', 'x'], env, 'b-1')
  await ok(['secrets', 'get', 'B', '--reveal'], env)
}

/**
 * A new profile is saved in config.json before its token is stored: a crash in between leaves
 * the profile signed out (nothing lost; `login` again signs it in).
 */
function signedOut(_before: Snapshot, after: Snapshot): Snapshot {
  return {
    ...after,
    credentials: after.credentials?.replace(
      '"name":"openbao","signedIn":true',
      '"name":"openbao","signedIn":false',
    ),
  }
}

describe('e2e: a process killed at every point of its writes (SIGKILL)', function () {
  this.timeout(240_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: OpenBaoTestServer
  let tokens: Awaited<ReturnType<typeof startSeededServer>>['tokens']
  let homes = 0

  before(async () => {
    buildCrashAtOp()

    t = await tempHome()
    ;({server, tokens} = await startSeededServer())
  })

  after(async () => {
    await server?.close()
    await t?.dispose()
  })

  function envFor(home: string): NodeJS.ProcessEnv {
    return {...t.env, AGENTVAULT_HOME: home}
  }

  async function freshHome(): Promise<string> {
    homes += 1
    const home = join(t.home, `h${homes}`)
    return home
  }

  async function snapshot(env: NodeJS.ProcessEnv, scenario: Scenario): Promise<Snapshot> {
    const credentials = scenario.credentials === true
    const exported = JSON.parse(
      (await ok(['secrets', 'export', '--format', 'json', '--reveal'], env)).stdout,
    ) as Record<string, string>
    for (const name of scenario.random ?? []) if (name in exported) exported[name] = '<random>'
    const values = JSON.stringify(exported)
    const list = JSON.parse((await ok(['secrets', 'list', '--json'], env)).stdout) as {
      secrets: Array<Record<string, unknown>>
    }
    const secrets = JSON.stringify(
      list.secrets.map(({created: _c, updated: _u, ...rest}) => rest),
      null,
      1,
    )
    const profiles = (await ok(['profiles', 'list', '--json'], env)).stdout
    const result: Snapshot = {profiles, secrets, values}
    if (credentials) {
      const status = await run(['status', '--json'], env)
      const parsed = JSON.parse(status.stdout) as {profiles?: Array<Record<string, unknown>>}
      result.credentials = JSON.stringify(
        (parsed.profiles ?? []).map((p) => ({name: p.name, signedIn: p.signedIn ?? p.identity ?? null})),
      )
    }

    return result
  }

  /** Every change `scenario` makes, by a run to completion in a fresh home; and its end state. */
  async function learn(scenario: Scenario, template: string): Promise<{after: Snapshot; ops: Op[]}> {
    const home = await freshHome()
    await cp(template, home, {recursive: true})
    const env = envFor(home)
    const log = join(t.home, `ops-${homes}.log`)
    await writeFile(log, '')
    const result = await run(scenario.args, crashEnv(env, home, {CRASH_AT_OP_LOG: log}), scenario.input)
    assert.equal(result.code, 0, result.stderr)
    const ops = (await readFile(log, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const space = line.indexOf(' ')
        return {kind: line.slice(0, space), path: line.slice(space + 1)}
      })
    assert.ok(ops.length > 0, 'the preload saw no change: is it loaded?')
    return {after: await snapshot(env, scenario), ops}
  }

  async function crashEverywhere(scenario: Scenario): Promise<void> {
    const template = await freshHome()
    await scenario.setup(envFor(template))
    const before = await snapshot(envFor(template), scenario)
    const {after, ops} = await learn(scenario, template)
    assert.notDeepEqual(before, after, 'the command changed nothing')

    const points: Array<{at: number; mode: 'before' | 'torn'}> = []
    for (const [index, op] of ops.entries()) {
      // The lock's own steps are the same code in every command: crashed at in the scenarios that
      // ask for it (and in all with CRASH_ALL_POINTS=1), to keep the suite's time in bounds.
      if (!scenario.locks && process.env.CRASH_ALL_POINTS !== '1' && /\.lock(\.|\/|$)/.test(op.path)) continue
      points.push({at: index + 1, mode: 'before'})
      if (op.kind === 'write') points.push({at: index + 1, mode: 'torn'})
    }

    const failures: string[] = []
    // Two homes at a time: each crash point is independent of the others. Every point here, every
    // Nth on the passes on other Nodes (sweepSample).
    const sampled = sweepSample(points)
    const queue = sampled.map((point, index) => ({
      ...point,
      takeOver: index % 2 === 0 || index === sampled.length - 1,
    }))
    const worker = async (): Promise<void> => {
      for (let point = queue.shift(); point; point = queue.shift()) {
        const label = `crash ${point.mode} op ${point.at}/${ops.length} (${ops[point.at - 1]?.kind} ${ops[point.at - 1]?.path.replace(/^.*\//, '')})`
        try {
          await crashAt(scenario, {after, before, template}, point, point.takeOver)
        } catch (error) {
          failures.push(`${label}: ${(error as Error).message}`)
        }
      }
    }

    await Promise.all([worker(), worker()])
    assert.deepEqual(failures, [], `${failures.length} of ${points.length} crash points failed`)
  }

  async function crashAt(
    scenario: Scenario,
    {after, before, template}: {after: Snapshot; before: Snapshot; template: string},
    {at, mode}: {at: number; mode: 'before' | 'torn'},
    takeOver: boolean,
  ): Promise<void> {
    const home = await freshHome()
    await cp(template, home, {recursive: true})
    const env = envFor(home)
    const crashed = await run(
      scenario.args,
      crashEnv(env, home, {CRASH_AT_OP: String(at), CRASH_AT_OP_MODE: mode}),
      scenario.input,
    )
    assert.equal(crashed.signal, 'SIGKILL', `not killed: exit ${crashed.code} ${crashed.stderr}`)

    // The old state or the new one, readable without repair.
    const state = await snapshot(env, scenario)
    const allowed = [before, after, ...(scenario.between ? [scenario.between(before, after)] : [])]
    if (!allowed.some((one) => isDeepEqual(state, one))) {
      const differs = (Object.keys(state) as Array<keyof Snapshot>).filter(
        (key) => state[key] !== before[key],
      )
      assert.fail(
        `neither the old nor the new state: ${differs.map((key) => `${key}: ${state[key]} (before ${before[key]}, after ${after[key]})`).join('; ')}`,
      )
    }

    const verify = await run(['audit', 'verify'], env)
    assert.equal(verify.code, 0, `audit verify: ${verify.stderr}${verify.stdout}`)
    // The next writers' turn after every other point (and the last): consecutive steps leave the
    // same locks and temp files behind, and CI must stay within its time.
    if (!takeOver) {
      await rm(home, {force: true, recursive: true})
      return
    }

    // The next writers work at once (the dead process's locks are taken over) and clean up.
    await ok(['secrets', 'set', 'NEXT_WRITE'], env, 'next-value')
    await ok(['profiles', 'add', 'next-profile', '--kind', 'openbao', '--set', `address=${server.url}`], env)
    if (scenario.credentials)
      await ok(['login', 'openbao', '--address', server.url, '--token-stdin'], env, tokens.reader)
    const next = await ok(['secrets', 'get', 'NEXT_WRITE', '--reveal'], env)
    assert.equal(next.stdout, 'next-value')
    const verifyAgain = await run(['audit', 'verify'], env)
    assert.equal(verifyAgain.code, 0, `audit verify after the next write: ${verifyAgain.stderr}`)
    const debris = (await readdir(home)).filter((name) => /\.tmp$|\.lock$/.test(name))
    assert.deepEqual(debris, [], 'temp files or locks left after the next writes')
    await rm(home, {force: true, recursive: true})
  }

  const scenarios: Array<[string, Scenario]> = [
    [
      'secrets set of a new secret in a new home (key file and vault created)',
      {
        args: ['secrets', 'set', 'FIRST'],
        input: 'first-value',
        async setup(env) {
          await mkdir(env.AGENTVAULT_HOME as string, {mode: 0o700, recursive: true})
        },
      },
    ],
    [
      'secrets set of an existing secret (a new version)',
      {
        args: ['secrets', 'set', 'A'],
        input: 'a-3',
        setup: baseVault,
      },
    ],
    [
      'secrets set of a new secret next to others',
      {
        args: ['secrets', 'set', 'C'],
        input: 'c-1',
        setup: baseVault,
      },
    ],
    ['secrets rollback', {args: ['secrets', 'rollback', 'A', '--version', '1'], setup: baseVault}],
    ['secrets delete', {args: ['secrets', 'delete', 'B', '--yes'], setup: baseVault}],
    ['secrets rename', {args: ['secrets', 'rename', 'B', 'RENAMED'], setup: baseVault}],
    ['secrets edit', {args: ['secrets', 'edit', 'B', '--description', 'new words'], setup: baseVault}],
    [
      'secrets generate',
      {args: ['secrets', 'generate', 'GEN', '--length', '16'], random: ['GEN'], setup: baseVault},
    ],
    [
      'secrets import of three secrets',
      {
        args: ['secrets', 'import', '-', '--overwrite'],
        input: 'A=a-imported\nX=x-1\nY=y-1\n',
        setup: baseVault,
      },
    ],
    [
      'profiles add (config.json)',
      {
        args: ['profiles', 'add', 'bao', '--kind', 'openbao', '--set', 'address=https://bao.example.com'],
        setup: baseVault,
      },
    ],
    [
      'profiles use and remove (config.json)',
      {
        args: ['profiles', 'remove', 'bao'],
        async setup(env) {
          await baseVault(env)
          await ok(
            ['profiles', 'add', 'bao', '--kind', 'openbao', '--set', 'address=https://bao.example.com'],
            env,
          )
        },
      },
    ],
  ]

  for (const [name, scenario] of scenarios)
    it(name, async () => {
      await crashEverywhere(scenario)
    })

  it('login openbao (credentials.enc written)', async () => {
    await crashEverywhere({
      args: ['login', 'openbao', '--address', server.url, '--token-stdin'],
      locks: true,
      between: signedOut,
      credentials: true,
      input: tokens.writer,
      setup: baseVault,
    })
  })

  it('login openbao in a new home (the key file and credentials.enc created)', async () => {
    await crashEverywhere({
      args: ['login', 'openbao', '--address', server.url, '--token-stdin'],
      between: signedOut,
      credentials: true,
      input: tokens.writer,
      async setup(env) {
        await mkdir(env.AGENTVAULT_HOME as string, {mode: 0o700, recursive: true})
      },
    })
  })

  it('logout openbao (credentials.enc rewritten)', async () => {
    await crashEverywhere({
      args: ['logout', 'openbao'],
      credentials: true,
      async setup(env) {
        await baseVault(env)
        await ok(['login', 'openbao', '--address', server.url, '--token-stdin'], env, tokens.writer)
      },
    })
  })

  it('12 concurrent writers, 4 of them killed holding the vault lock: every other write is kept', async () => {
    const home = await freshHome()
    const env = envFor(home)
    await ok(['secrets', 'set', 'BEFORE'], env, 'before')
    const killed = new Set([1, 4, 7, 10])
    const runs = Array.from({length: 12}, (_, i) =>
      run(
        ['secrets', 'set', `K${i}`],
        killed.has(i)
          ? // Dies right before its rename: its new vault written, the lock held, nothing committed.
            crashAtOpEnv(env, {
              at: 1,
              match: `rename ${join(home, 'vault.json')}`,
              mode: 'before',
              root: home,
            })
          : env,
        `value-${i}`,
      ),
    )
    const results = await Promise.all(runs)
    for (const [i, result] of results.entries()) {
      if (killed.has(i)) assert.equal(result.signal, 'SIGKILL', `K${i}: ${result.stderr}`)
      else assert.equal(result.code, 0, `K${i}: ${result.stderr}`)
    }

    const values = JSON.parse(
      (await ok(['secrets', 'export', '--format', 'json', '--reveal'], env)).stdout,
    ) as Record<string, string>
    const expected: Record<string, string> = {BEFORE: 'before'}
    for (let i = 0; i < 12; i++) if (!killed.has(i)) expected[`K${i}`] = `value-${i}`
    assert.deepEqual(values, expected)
    const verify = await run(['audit', 'verify'], env)
    assert.equal(verify.code, 0, verify.stderr)
  })
})

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b)
    return true
  } catch {
    return false
  }
}
