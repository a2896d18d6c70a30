import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {join} from 'node:path'

import {collect, ROOT, startCli, waitForOutput} from '../helpers/cli.js'
import {type AgentSecretsE2e, CANARIES, setupAgentSecretsE2e} from '../servers/agentsecrets/e2e-fixture.js'

const CHILD = join(ROOT, 'test', 'fixtures', 'signal-child.cjs')
const LOCAL_CANARY = 'local-canary-run-8e8e41'
const sha = (text: string): string => createHash('sha256').update(text).digest('hex')
/** Prints the SHA-256 of three variables (never the values) and exits 42. */
const HASHER = `const c=require('node:crypto');const h=(v)=>c.createHash('sha256').update(v??'<unset>').digest('hex');console.log('hashes '+JSON.stringify({LOC:h(process.env.LOC),API_KEY:h(process.env.API_KEY),OTHER:h(process.env.OTHER)}));process.exit(42)`

/** `run` has no --json: its own failures are `Error:`/`Try this:` on stderr, nothing on stdout. */
async function runFails(
  e: AgentSecretsE2e,
  args: string[],
  env: NodeJS.ProcessEnv,
  expected: {code: number; message: RegExp},
): Promise<string> {
  const {code, message} = expected
  const result = await e.av(['run', ...args], {env})
  assert.equal(result.code, code, result.stderr)
  assert.equal(result.stdout, '')
  assert.match(result.stderr, /^Error: .+\nTry this: .+$/m)
  assert.match(result.stderr, message)
  return result.stderr
}

describe('e2e: agentsecrets run (agentsecrets env --only … -- CMD)', () => {
  let e: AgentSecretsE2e

  before(async () => {
    e = await setupAgentSecretsE2e()
    const stored = await e.av(['secrets', 'set', 'LOC'], {env: e.cliEnv(), input: LOCAL_CANARY})
    assert.equal(stored.code, 0, stored.stderr)
    await e.world.update((state) => {
      state.switches = {recordEnv: true}
    })
  })

  after(async () => {
    await e?.dispose()
  })

  it('--placeholders refuses agentsecrets:// references (AgentSecrets injects real values itself), exit 2', async () => {
    const stderr = await runFails(
      e,
      ['--placeholders', '--env', 'API_KEY=agentsecrets://API_KEY', '--', process.execPath, '-e', HASHER],
      e.cliEnv(),
      {code: 2, message: /--placeholders cannot stand in for values that a backend injects itself/},
    )
    for (const canary of Object.values(CANARIES)) assert.ok(!stderr.includes(canary))
  })

  it('one local:// and two agentsecrets:// references: the child sees all three, agentvault never holds the AgentSecrets values, exit 42 passes through', async () => {
    const before = (await e.world.invocations()).length
    const result = await e.av(
      [
        'run',
        '--env',
        'LOC=local://LOC',
        '--env',
        'API_KEY=agentsecrets://API_KEY',
        '--env',
        'OTHER=agentsecrets://OTHER',
        '--',
        process.execPath,
        '-e',
        HASHER,
      ],
      // A stale inherited API_KEY must not sit beside the value AgentSecrets appends.
      {env: e.cliEnv({API_KEY: 'stale-inherited-value'})},
    )
    assert.equal(result.code, 42, result.stderr)
    const hashes = JSON.parse(/hashes (.*)/.exec(result.stdout)?.[1] ?? '{}') as Record<string, string>
    assert.deepEqual(hashes, {
      API_KEY: sha(CANARIES.API_KEY),
      LOC: sha(LOCAL_CANARY),
      OTHER: sha(CANARIES.OTHER),
    })
    assert.match(
      result.stdout,
      /Local Engine: Injecting 2 secrets: API_KEY, OTHER/,
      'notices pass through (open point 12)',
    )

    const invocations = (await e.world.invocations()).slice(before)
    // agentvault asked AgentSecrets for nothing but the probe, the preflight list and the wrapper.
    assert.deepEqual(
      invocations.map((invocation) => invocation.argv.slice(0, 2)),
      [
        ['env', '--help'],
        ['secrets', 'list'],
        ['env', '--only'],
      ],
    )
    const wrapper = invocations.at(-1)!
    assert.deepEqual(wrapper.argv, ['env', '--only', 'API_KEY,OTHER', '--', process.execPath, '-e', HASHER])
    // The environment agentvault gave the only holder of the values: the local value (another
    // backend's) is there, no AgentSecrets name and no AgentSecrets value is.
    const env = wrapper.env!
    assert.equal(env.LOC, LOCAL_CANARY)
    assert.ok(
      !('API_KEY' in env) && !('OTHER' in env),
      'the AgentSecrets names were removed, inherited copy included',
    )
    e.expectNoCanary(JSON.stringify(env), 'the environment of agentsecrets env')
    e.expectNoCanary(JSON.stringify(wrapper.argv), 'the argv of agentsecrets env')
    e.expectNoCanary(result.stdout + result.stderr, 'the output of run')
  })

  it('SIGTERM reaches the innermost child exactly once; stdin passes through both layers', async () => {
    const child = startCli(
      ['run', '--env', 'API_KEY=agentsecrets://API_KEY', '--', process.execPath, CHILD],
      {
        env: e.cliEnv({EXIT_CODE: '7'}),
        openStdin: true,
      },
    )
    const done = collect(child)
    await waitForOutput(child, 'ready')
    child.kill('SIGTERM')
    await waitForOutput(child, 'got SIGTERM')
    child.stdin?.write('hello\n')
    await waitForOutput(child, 'stdin hello')
    child.stdin?.end('report\n')
    const result = await done
    assert.equal(result.code, 7, result.stderr)
    const counts = JSON.parse(/counts (.*)/.exec(result.stdout)?.[1] ?? '{}') as Record<string, number>
    assert.deepEqual(counts, {SIGTERM: 1})
  })

  it('a child killed by a signal: agentsecrets reports 255 and agentvault passes it on', async () => {
    const result = await e.av(
      ['run', '--env', 'API_KEY=agentsecrets://API_KEY', '--', 'sh', '-c', 'kill -TERM $$'],
      {env: e.cliEnv()},
    )
    assert.equal(result.code, 255)
  })

  it('refuses what AgentSecrets cannot do, before anything starts', async () => {
    const before = (await e.world.invocations()).length
    const stderr = await runFails(e, ['--env', 'MY_KEY=agentsecrets://API_KEY', '--', 'true'], e.cliEnv(), {
      code: 2,
      message: /Cannot map/,
    })
    assert.match(
      stderr,
      /Cannot map MY_KEY to agentsecrets:\/\/API_KEY: AgentSecrets injects each secret under its own key name and cannot rename it\. Map API_KEY=agentsecrets:\/\/API_KEY or rename the secret in AgentSecrets\./,
    )
    assert.equal((await e.world.invocations()).length, before, 'no CLI call for a naming error')
    // Open point 9: env --only would only warn about an unknown key.
    await runFails(e, ['--env', 'GHOST=agentsecrets://GHOST', '--', 'true'], e.cliEnv(), {
      code: 6,
      message: /Secret not found: agentsecrets:\/\/GHOST/,
    })
    assert.ok(
      !(await e.world.invocations()).some(
        (invocation) =>
          invocation.argv[0] === 'env' && invocation.argv[1] === '--only' && invocation.argv[2] === 'GHOST',
      ),
    )
  })

  it('open points 2 and 10, and the proxy transport: refused with a way out', async () => {
    await e.world.update((state) => {
      state.version = '2.1.0'
    })
    try {
      await runFails(e, ['--env', 'API_KEY=agentsecrets://API_KEY', '--', 'true'], e.cliEnv(), {
        code: 2,
        message: /cannot inject selected secrets[\s\S]*Upgrade AgentSecrets/,
      })
    } finally {
      await e.world.update((state) => {
        state.version = '3.3.0'
      })
    }

    await runFails(e, ['--env', 'API_KEY=agentsecrets://API_KEY', '--', 'true'], e.proxyEnv(), {
      code: 5,
      message: /AgentSecrets CLI was not found/,
    })
    await e.av(['profiles', 'add', 'as-a', '--kind', 'agentsecrets'], {env: e.cliEnv()})
    await e.av(['profiles', 'add', 'as-b', '--kind', 'agentsecrets', '--set', 'transport=proxy'], {
      env: e.cliEnv(),
    })
    await runFails(e, ['--env', 'API_KEY=agentsecrets://API_KEY?profile=as-b', '--', 'true'], e.cliEnv(), {
      code: 2,
      message: /needs the AgentSecrets CLI/,
    })
    await e.av(['profiles', 'add', 'as-c', '--kind', 'agentsecrets'], {env: e.cliEnv()})
    await runFails(
      e,
      [
        '--env',
        'API_KEY=agentsecrets://API_KEY?profile=as-a',
        '--env',
        'OTHER=agentsecrets://OTHER?profile=as-c',
        '--',
        'true',
      ],
      e.cliEnv(),
      {code: 2, message: /agentsecrets references of one profile only/},
    )
  })

  it('canaries: no AgentSecrets value in any output, log, config, argv or environment agentvault produced', async () => {
    await e.sweep()
  })
})
