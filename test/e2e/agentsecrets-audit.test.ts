import assert from 'node:assert/strict'
import {rename} from 'node:fs/promises'
import {join} from 'node:path'

import {type AgentSecretsE2e, setupAgentSecretsE2e} from '../servers/agentsecrets/e2e-fixture.js'

describe('e2e: agentsecrets audit source', () => {
  let e: AgentSecretsE2e

  before(async () => {
    e = await setupAgentSecretsE2e()
  })

  after(async () => {
    await e?.dispose()
  })

  it('--source all --json merges local and AgentSecrets events in time order, blocked calls marked blocked', async () => {
    // `--source all` reads the configured profiles: login saves one.
    assert.equal((await e.av(['login', 'agentsecrets'], {env: e.cliEnv()})).code, 0)
    assert.equal(
      (await e.av(['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY'], {env: e.cliEnv()}))
        .code,
      0,
    )
    assert.equal(
      (
        await e.av(
          ['call', e.upstream.url('/echo', {host: '127.0.0.2'}), '--bearer', 'agentsecrets://API_KEY'],
          {env: e.cliEnv()},
        )
      ).code,
      7,
    )
    assert.equal(
      (await e.av(['run', '--env', 'OTHER=agentsecrets://OTHER', '--', 'true'], {env: e.cliEnv()})).code,
      0,
    )
    const result = await e.av(['audit', '--source', 'all', '--json'], {env: e.cliEnv()})
    assert.equal(result.code, 0, result.stderr)
    const events = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    const times = events.map((event) => Date.parse(event.time as string))
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      'time-ordered',
    )
    const local = events.filter((event) => event.source === 'local')
    const remote = events.filter((event) => event.source === 'agentsecrets')
    assert.ok(local.some((event) => event.command === 'call' && event.outcome === 'denied'))
    const blocked = remote.filter((event) => event.blocked === true)
    assert.ok(blocked.length > 0)
    for (const event of blocked) {
      assert.equal(event.outcome, 'denied')
      assert.equal(event.reason, 'domain_not_in_allowlist')
      assert.equal(event.target_host, '127.0.0.2')
    }

    assert.ok(
      remote.some(
        (event) =>
          event.command === 'agentsecrets env' &&
          event.outcome === 'ok' &&
          (event.references as string[]).includes('agentsecrets://OTHER'),
      ),
    )
    assert.ok(
      remote.some(
        (event) =>
          event.command === 'agentsecrets call' &&
          event.redacted === true &&
          event.reason === 'credential_echo',
      ),
    )
    e.expectNoCanary(result.stdout, 'audit --source all')
  })

  it('every source of §9: log --json (2.1.0), logs --json (3.x), the proxy logs table, the legacy proxy.log', async () => {
    const count = async (
      env: NodeJS.ProcessEnv,
      extra: string[] = [],
    ): Promise<Array<Record<string, unknown>>> => {
      const result = await e.av(['audit', '--source', 'agentsecrets', '--json', ...extra], {env})
      assert.equal(result.code, 0, result.stderr)
      return result.stdout
        .trim()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
    }

    const entries = (await e.world.proxyLog()).length
    const three = await count(e.cliEnv())
    assert.equal(three.length, entries)
    await e.world.update((state) => {
      state.version = '2.1.0'
    })
    assert.equal((await count(e.cliEnv())).length, entries)
    await e.world.update((state) => {
      state.version = '3.3.0'
      state.switches = {noJsonAudit: true}
    })
    const table = await count(e.cliEnv())
    await e.world.update((state) => {
      state.switches = {}
    })
    assert.equal(table.length, Math.min(entries, 10_000))
    assert.ok(table.every((event) => event.approximate === true))
    const legacy = await count(e.proxyEnv())
    assert.equal(legacy.length, entries)
    assert.equal(
      (await count(e.cliEnv(), ['--status', 'denied'])).every((event) => event.blocked === true),
      true,
    )
    const invocations = await e.world.invocations()
    assert.ok(
      !invocations.some(
        (invocation) =>
          (invocation.argv[0] === 'log' || invocation.argv[0] === 'logs') &&
          !invocation.argv.includes('--json') &&
          !invocation.argv.includes('--help'),
      ),
      'never the interactive pager',
    )
  })

  it('a proxy-transport profile with no readable log is skipped with a warning by --source agentsecrets, as by --source all', async () => {
    const env = e.cliEnv()
    assert.equal((await e.av(['login', 'agentsecrets'], {env})).code, 0)
    const added = await e.av(
      [
        'login',
        'agentsecrets',
        '--profile',
        'as-proxy',
        '--transport',
        'proxy',
        '--port',
        String(e.proxy.port),
      ],
      {env},
    )
    assert.equal(added.code, 0, added.stderr)
    // A newer proxy keeps its log in audit.db: there is no proxy.log for the proxy transport to read.
    const log = join(e.world.home, '.agentsecrets', 'proxy.log')
    await rename(log, `${log}.away`)
    try {
      for (const source of ['agentsecrets', 'all']) {
        const before = (await e.world.invocations()).length
        const result = await e.av(['audit', '--source', source, '--json'], {env})
        assert.equal(result.code, 0, `--source ${source}: ${result.stderr}`)
        assert.match(result.stderr, /^Warning: Skipped the audit source of profile as-proxy: .*proxy\.log/m)
        const consulted = (await e.world.invocations()).slice(before)
        assert.ok(
          consulted.some((invocation) => invocation.argv.includes('--json')),
          `--source ${source} still reads the CLI profile's source`,
        )
      }

      // Asked for by name, the unreadable profile is an error (exit 5) with its Try this.
      const named = await e.av(['audit', '--source', 'agentsecrets', '--profile', 'as-proxy'], {env})
      assert.equal(named.code, 5, named.stderr)
      assert.match(named.stderr, /^Error: .*\nTry this: .+$/m)
    } finally {
      await rename(`${log}.away`, log)
    }
  })

  it('canaries: no AgentSecrets value in any output, log, config or argv', async () => {
    await e.sweep()
  })
})
