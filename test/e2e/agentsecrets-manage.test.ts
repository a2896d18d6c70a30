import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {expectFailure} from '../helpers/e2e.js'
import {type AgentSecretsE2e, CANARIES, setupAgentSecretsE2e} from '../servers/agentsecrets/e2e-fixture.js'

const NEW_VALUE = 'as-canary-new-value-61c2'

describe('e2e: agentsecrets secrets, login and status', () => {
  let e: AgentSecretsE2e

  before(async () => {
    e = await setupAgentSecretsE2e()
  })

  after(async () => {
    await e?.dispose()
  })

  describe('secrets', () => {
    it('list: the keys of the active environment, names only, despite an update banner', async () => {
      await e.world.update((state) => {
        state.secrets.production = {PROD_ONLY: 'p'}
        state.switches = {banner: true}
      })
      const result = await e.av(['secrets', 'list', '--profile', 'agentsecrets', '--json'], {env: e.cliEnv()})
      await e.world.update((state) => {
        state.switches = {}
      })
      assert.equal(result.code, 0, result.stderr)
      const names = (JSON.parse(result.stdout) as {secrets: Array<{name: string}>}).secrets.map(
        (secret) => secret.name,
      )
      assert.deepEqual(names, Object.keys(CANARIES).sort())
      const prod = await e.av(['secrets', 'list', '--profile', 'agentsecrets', '--json'], {
        env: e.cliEnv({AGENTSECRETS_ENV: 'production'}),
      })
      assert.deepEqual(
        (JSON.parse(prod.stdout) as {secrets: Array<{name: string}>}).secrets.map((secret) => secret.name),
        ['PROD_ONLY'],
      )
    })

    it('get: --reveal is refused with the zero-knowledge error and no backend call; without it, only presence', async () => {
      const before = (await e.world.invocations()).length
      const {error} = await expectFailure(
        ['secrets', 'get', 'agentsecrets://API_KEY', '--reveal'],
        {env: e.cliEnv()},
        {code: 2, errorCode: 'ZERO_KNOWLEDGE', message: /AgentSecrets never reveals values/},
      )
      assert.match(error.suggestion, /agentvault run --env API_KEY=agentsecrets:\/\/API_KEY/)
      assert.equal((await e.world.invocations()).length, before, 'AgentSecrets was not contacted')
      const present = await e.av(['secrets', 'get', 'agentsecrets://API_KEY', '--json'], {env: e.cliEnv()})
      assert.equal(present.code, 0, present.stderr)
      assert.deepEqual(JSON.parse(present.stdout), {
        description: 'development environment',
        present: true,
        reference: 'agentsecrets://API_KEY',
      })
      await expectFailure(
        ['secrets', 'get', 'agentsecrets://NOPE'],
        {env: e.cliEnv()},
        {code: 6, message: /agentsecrets:\/\/NOPE/},
      )
      // A backend that does reveal still insists on --reveal, without any call.
      await expectFailure(
        ['secrets', 'get', 'local://X'],
        {env: e.cliEnv()},
        {code: 2, errorCode: 'REVEAL_REQUIRED'},
      )
    })

    it('set: the CLI takes values only in argv, so agentvault refuses without --allow-argv', async () => {
      const before = (await e.world.invocations()).length
      await expectFailure(
        ['secrets', 'set', 'agentsecrets://NEW_KEY'],
        {env: e.cliEnv(), input: NEW_VALUE},
        {code: 2, errorCode: 'AGENTSECRETS_ARGV_REQUIRED', message: /command-line argument/},
      )
      const since = (await e.world.invocations()).slice(before)
      assert.ok(since.every((invocation) => !JSON.stringify(invocation.argv).includes(NEW_VALUE)))
      assert.equal((await e.world.state()).secrets.development?.NEW_KEY, undefined)
    })

    it('set --allow-argv: one argv element, a warning, then verified with secrets list', async () => {
      const before = (await e.world.invocations()).length
      const result = await e.av(['secrets', 'set', 'agentsecrets://NEW_KEY', '--allow-argv'], {
        env: e.cliEnv(),
        input: NEW_VALUE,
        record: false,
      })
      assert.equal(result.code, 0, result.stderr)
      assert.match(
        result.stderr,
        /Warning: Passing the value of NEW_KEY to agentsecrets as a command-line argument/,
      )
      assert.ok(!result.stdout.includes(NEW_VALUE) && !result.stderr.includes(NEW_VALUE))
      assert.equal((await e.world.state()).secrets.development?.NEW_KEY, NEW_VALUE)
      const since = (await e.world.invocations()).slice(before)
      const carrying = since.filter((invocation) => JSON.stringify(invocation.argv).includes(NEW_VALUE))
      assert.deepEqual(
        carrying.map((invocation) => invocation.argv),
        [['secrets', 'set', `NEW_KEY=${NEW_VALUE}`]],
      )
      assert.equal(since.at(-1)?.argv.join(' '), 'secrets list', 'verified afterwards')
    })

    it('set through a CLI that advertises a stdin option: the value goes on stdin, no flag needed', async () => {
      await e.world.update((state) => {
        state.switches = {setStdin: true}
      })
      const before = (await e.world.invocations()).length
      try {
        const result = await e.av(['secrets', 'set', 'agentsecrets://PIPED_KEY'], {
          env: e.cliEnv(),
          input: NEW_VALUE,
        })
        assert.equal(result.code, 0, result.stderr)
      } finally {
        await e.world.update((state) => {
          state.switches = {}
        })
      }

      assert.equal((await e.world.state()).secrets.development?.PIPED_KEY, NEW_VALUE)
      const since = (await e.world.invocations()).slice(before)
      assert.ok(
        since.some((invocation) => invocation.argv.join(' ') === 'secrets set --value-stdin PIPED_KEY'),
      )
      assert.ok(since.every((invocation) => !JSON.stringify(invocation.argv).includes(NEW_VALUE)))
    })

    it('delete: --yes, verified; a missing key is exit 6; production without a terminal is refused', async () => {
      const deleted = await e.av(['secrets', 'delete', 'agentsecrets://NEW_KEY', '--yes', '--json'], {
        env: e.cliEnv(),
      })
      assert.equal(deleted.code, 0, deleted.stderr)
      assert.deepEqual(JSON.parse(deleted.stdout), {deleted: 'agentsecrets://NEW_KEY'})
      assert.equal((await e.world.state()).secrets.development?.NEW_KEY, undefined)
      await expectFailure(
        ['secrets', 'delete', 'agentsecrets://NEW_KEY', '--yes'],
        {env: e.cliEnv()},
        {code: 6},
      )
      await expectFailure(
        ['secrets', 'delete', 'agentsecrets://PROD_ONLY', '--yes'],
        {env: e.cliEnv({AGENTSECRETS_ENV: 'production'})},
        {code: 2, errorCode: 'AGENTSECRETS_NEEDS_TERMINAL', message: /not a terminal/},
      )
      assert.equal((await e.world.state()).secrets.production?.PROD_ONLY, 'p')
      await expectFailure(
        ['secrets', 'delete', 'agentsecrets://PIPED_KEY'],
        {env: e.cliEnv()},
        {code: 2, errorCode: 'CONFIRMATION_REQUIRED'},
      )
    })

    it('the proxy transport cannot manage secrets: "needs the AgentSecrets CLI"', async () => {
      // The first profile of a kind becomes its default: keep that one on the CLI.
      await e.av(['profiles', 'add', 'agentsecrets', '--kind', 'agentsecrets'], {env: e.cliEnv()})
      await e.av(
        [
          'profiles',
          'add',
          'as-proxy',
          '--kind',
          'agentsecrets',
          '--set',
          'transport=proxy',
          '--set',
          `port=${e.proxy.port}`,
        ],
        {env: e.cliEnv()},
      )
      await expectFailure(
        ['secrets', 'list', '--profile', 'as-proxy'],
        {env: e.cliEnv()},
        {code: 2, errorCode: 'AGENTSECRETS_NEEDS_CLI'},
      )
      await expectFailure(
        ['secrets', 'set', 'agentsecrets://X?profile=as-proxy', '--allow-argv'],
        {env: e.cliEnv(), input: 'v'},
        {code: 2, errorCode: 'AGENTSECRETS_NEEDS_CLI'},
      )
    })
  })

  describe('login and status', () => {
    it('login checks the proxy’s /health and saves transport and port; a session token goes to the credential store only', async () => {
      const token = `as_sess_${'5e'.repeat(16)}`
      const result = await e.av(
        [
          'login',
          'agentsecrets',
          '--profile',
          'as-login',
          '--transport',
          'proxy',
          '--port',
          String(e.proxy.port),
          '--session-token-stdin',
          '--json',
        ],
        {
          env: e.cliEnv(),
          input: token,
        },
      )
      assert.equal(result.code, 0, result.stderr)
      assert.equal(JSON.parse(result.stdout).details.transport, 'proxy')
      const config = await readFile(join(e.home, 'config.json'), 'utf8')
      assert.deepEqual(JSON.parse(config).profiles['as-login'], {
        kind: 'agentsecrets',
        port: e.proxy.port,
        transport: 'proxy',
      })
      assert.ok(!config.includes(token))
      // The 3.x proxy now wants that token, and agentvault sends it from the credential store.
      await e.world.update((state) => {
        state.sessionToken = token
      })
      try {
        const call = await e.av(
          ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY?profile=as-login'],
          {env: e.cliEnv()},
        )
        assert.equal(call.code, 0, call.stderr)
        const status = await e.av(['status', '--json'], {env: e.cliEnv()})
        const row = (
          JSON.parse(status.stdout) as {
            profiles: Array<{details: Record<string, unknown>; name: string; reachable: boolean}>
          }
        ).profiles.find((profile) => profile.name === 'as-login')
        assert.equal(row?.reachable, true)
        assert.equal(row?.details.sessionToken, 'credential store')
        assert.equal((row?.details.proxy as {healthy: boolean}).healthy, true)
        assert.ok(!status.stdout.includes(token))
        const logout = await e.av(['logout', 'agentsecrets', '--profile', 'as-login', '--json'], {
          env: e.cliEnv(),
        })
        assert.equal(JSON.parse(logout.stdout).cleared, true)
        await expectFailure(
          ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY?profile=as-login'],
          {env: e.cliEnv()},
          {code: 4},
        )
      } finally {
        await e.world.update((state) => {
          delete state.sessionToken
        })
      }
    })

    it('login checks the CLI (--version); status reports its version; tokens never go to config', async () => {
      const result = await e.av(['login', 'agentsecrets', '--profile', 'agentsecrets', '--json'], {
        env: e.cliEnv(),
      })
      assert.equal(result.code, 0, result.stderr)
      assert.equal(JSON.parse(result.stdout).details.cli.version, '3.3.0')
      const status = await e.av(['status', '--json'], {env: e.cliEnv()})
      const row = (
        JSON.parse(status.stdout) as {
          profiles: Array<{details: Record<string, unknown>; name: string; reachable: boolean}>
        }
      ).profiles.find((profile) => profile.name === 'agentsecrets')
      assert.equal(row?.reachable, true)
      assert.equal((row?.details.cli as {version: string}).version, '3.3.0')
      await expectFailure(
        ['profiles', 'add', 'bad', '--kind', 'agentsecrets', '--set', 'sessionToken=as_sess_x'],
        {env: e.cliEnv()},
        {code: 2, message: /credential/},
      )
    })

    it('login with the proxy down → exit 5; nothing saved', async () => {
      await expectFailure(
        ['login', 'agentsecrets', '--profile', 'as-down', '--transport', 'proxy', '--port', '1'],
        {env: e.cliEnv()},
        {code: 5, errorCode: 'AGENTSECRETS_PROXY_DOWN'},
      )
      assert.ok(!(await readFile(join(e.home, 'config.json'), 'utf8')).includes('as-down'))
    })
  })

  it('canaries: no AgentSecrets value in any output, log, config or argv (but set --allow-argv’s own)', async () => {
    await e.sweep()
  })
})
