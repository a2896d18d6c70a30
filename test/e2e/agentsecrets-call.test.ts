import assert from 'node:assert/strict'
import {rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {join} from 'node:path'

import {expectFailure} from '../helpers/e2e.js'
import {type AgentSecretsE2e, CANARIES, setupAgentSecretsE2e} from '../servers/agentsecrets/e2e-fixture.js'

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve)
  })
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => {
    server.close(resolve)
  })
  return port
}

interface Style {
  args: string[]
  check(request: {body: Buffer; headers: Record<string, unknown>; path: string}): void
  name: string
}

const STYLES: Style[] = [
  {
    args: ['--bearer', 'agentsecrets://API_KEY'],
    check: (seen) => assert.equal(seen.headers.authorization, `Bearer ${CANARIES.API_KEY}`),
    name: 'bearer',
  },
  {
    args: ['--basic', 'agentsecrets://BASIC'],
    check: (seen) =>
      assert.equal(seen.headers.authorization, `Basic ${Buffer.from(CANARIES.BASIC).toString('base64')}`),
    name: 'basic',
  },
  {
    args: ['--secret-header', 'X-Api-Key: agentsecrets://HDR'],
    check: (seen) => assert.equal(seen.headers['x-api-key'], CANARIES.HDR),
    name: 'header',
  },
  {
    args: ['--query', 'Key=agentsecrets://Q'],
    check: (seen) => assert.equal(seen.path, `/echo?Key=${CANARIES.Q}&keep=1`),
    name: 'query',
  },
  {
    args: ['--body-field', 'Auth.Token=agentsecrets://JSON_TOKEN', '-d', '{"a":1}'],
    check(seen) {
      assert.equal(seen.body.toString(), `{"Auth":{"Token":"${CANARIES.JSON_TOKEN}"},"a":1}`)
      assert.equal(seen.headers['content-type'], 'application/json')
    },
    name: 'JSON body field',
  },
  {
    args: ['--form-field', 'Client_secret=agentsecrets://FORM', '-d', 'grant_type=client_credentials'],
    check(seen) {
      assert.equal(seen.body.toString(), `Client_secret=${CANARIES.FORM}&grant_type=client_credentials`)
      assert.equal(seen.headers['content-type'], 'application/x-www-form-urlencoded')
    },
    name: 'form field',
  },
]

describe('e2e: agentsecrets call and use', () => {
  let e: AgentSecretsE2e

  before(async () => {
    e = await setupAgentSecretsE2e()
  })

  after(async () => {
    await e?.dispose()
  })

  const transports: Array<{env: () => NodeJS.ProcessEnv; name: string; version: '2.1.0' | '3.3.0'}> = [
    {env: () => e.cliEnv(), name: 'cli (3.3.0, --output json)', version: '3.3.0'},
    {env: () => e.cliEnv(), name: 'cli (2.1.0, text mode)', version: '2.1.0'},
    {env: () => e.proxyEnv(), name: 'proxy (POST /proxy)', version: '3.3.0'},
  ]
  for (const transport of transports) {
    describe(`all six injection styles reach the loopback upstream: ${transport.name}`, () => {
      before(async () => {
        await e.world.update((state) => {
          state.version = transport.version
        })
      })

      after(async () => {
        await e.world.update((state) => {
          state.version = '3.3.0'
        })
      })

      for (const style of STYLES) {
        it(style.name, async () => {
          const before = e.upstream.requests.length
          const result = await e.av(['call', e.upstream.url('/echo?keep=1'), ...style.args, '--json'], {
            env: transport.env(),
          })
          assert.equal(result.code, 0, result.stderr + result.stdout)
          assert.equal(e.upstream.requests.length, before + 1, 'exactly one upstream request')
          style.check(e.upstream.last('/echo'))
          const json = JSON.parse(result.stdout) as {body: string; redacted: boolean; status: number}
          assert.equal(json.status, 200)
          // The upstream echoes the whole request: AgentSecrets concealed every injected value (basic
          // travels base64-encoded, so its echo holds no exact value to conceal).
          assert.equal(json.redacted, style.name !== 'basic')
          if (style.name !== 'basic') assert.match(json.body, /\[REDACTED_BY_AGENTSECRETS\]/)
          e.expectNoCanary(result.stdout + result.stderr, `call ${style.name}`)
        })
      }

      it('several styles combine in one call', async () => {
        const result = await e.av(
          [
            'call',
            e.upstream.url('/echo?keep=1'),
            '--bearer',
            'agentsecrets://API_KEY',
            '--secret-header',
            'X-Api-Key: agentsecrets://HDR',
            '--query',
            'Key=agentsecrets://Q',
          ],
          {env: transport.env()},
        )
        assert.equal(result.code, 0, result.stderr)
        const seen = e.upstream.last('/echo')
        assert.equal(seen.headers.authorization, `Bearer ${CANARIES.API_KEY}`)
        assert.equal(seen.headers['x-api-key'], CANARIES.HDR)
        assert.equal(seen.path, `/echo?Key=${CANARIES.Q}&keep=1`)
      })
    })
  }

  it('2.1.0 runs the engine in-process: lower-case query names keep their case there, and are refused over HTTP', async () => {
    await e.world.update((state) => {
      state.version = '2.1.0'
    })
    const old = await e.av(['call', e.upstream.url('/echo'), '--query', 'api_key=agentsecrets://Q'], {
      env: e.cliEnv(),
    })
    await e.world.update((state) => {
      state.version = '3.3.0'
    })
    assert.equal(old.code, 0, old.stderr)
    assert.equal(e.upstream.last('/echo').path, `/echo?api_key=${CANARIES.Q}`)
    for (const env of [e.cliEnv(), e.proxyEnv()]) {
      const before = e.upstream.requests.length
      await expectFailure(
        ['call', e.upstream.url('/echo'), '--query', 'api_key=agentsecrets://Q'],
        {env},
        {code: 2, errorCode: 'AGENTSECRETS_TARGET_RENAMED', message: /"Api_key"/},
      )
      assert.equal(e.upstream.requests.length, before, 'nothing was sent')
    }
  })

  it('extra -H headers and binary bodies need the proxy transport (open points 3, 4); the proxy forwards them', async () => {
    await expectFailure(
      ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY', '-H', 'X-Trace: 7'],
      {env: e.cliEnv()},
      {code: 2, errorCode: 'AGENTSECRETS_CLI_HEADERS', message: /extra request headers/},
    )
    const file = join(e.home, '..', 'binary.bin')
    await writeFile(file, Buffer.from([0xff, 0xfe, 0x00, 0x01]))
    await expectFailure(
      ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY', '--data-file', file],
      {env: e.cliEnv()},
      {code: 2, errorCode: 'AGENTSECRETS_CLI_BODY'},
    )
    const viaProxy = await e.av(
      [
        'call',
        e.upstream.url('/echo'),
        '-X',
        'PUT',
        '--bearer',
        'agentsecrets://API_KEY',
        '-H',
        'X-Trace: 7',
        '--data-file',
        file,
      ],
      {env: e.proxyEnv()},
    )
    assert.equal(viaProxy.code, 0, viaProxy.stderr)
    const seen = e.upstream.last('/echo')
    assert.equal(seen.method, 'PUT')
    assert.equal(seen.headers['x-trace'], '7')
    assert.deepEqual([...seen.body], [0xff, 0xfe, 0x00, 0x01])
  })

  describe('error mapping (§6)', () => {
    for (const [name, env] of [
      ['cli', () => e.cliEnv()],
      ['proxy', () => e.proxyEnv()],
    ] as const) {
      it(`${name}: a domain not in the allowlist → exit 7 with the allowlist hint`, async () => {
        const {error, plain} = await expectFailure(
          ['call', e.upstream.url('/echo', {host: '127.0.0.2'}), '--bearer', 'agentsecrets://API_KEY'],
          {env: env()},
          {
            code: 7,
            errorCode: 'AGENTSECRETS_DOMAIN_NOT_ALLOWED',
            message: /127\.0\.0\.2 is not in the workspace allowlist/,
          },
        )
        assert.equal(error.category, 'denied')
        assert.equal(error.suggestion, 'Allow the domain: agentsecrets workspace allowlist add 127.0.0.2')
        assert.match(
          plain.stderr,
          /^Try this: Allow the domain: agentsecrets workspace allowlist add 127\.0\.0\.2$/m,
        )
      })

      it(`${name}: a missing secret → exit 6`, async () => {
        await expectFailure(
          ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://NOT_THERE'],
          {env: env()},
          {code: 6, message: /agentsecrets:\/\/NOT_THERE/},
        )
      })

      it(`${name}: an upstream 500 is the response, not an agentvault error`, async () => {
        const plain = await e.av(
          ['call', e.upstream.url('/status?code=500'), '--bearer', 'agentsecrets://API_KEY'],
          {env: env()},
        )
        assert.equal(plain.code, 22, plain.stderr)
        assert.equal(plain.stdout, 'status 500')
        assert.doesNotMatch(plain.stderr, /^Error:/m)
        const json = await e.av(
          [
            'call',
            e.upstream.url('/status?code=500'),
            '--bearer',
            'agentsecrets://API_KEY',
            '--json',
            '--no-fail',
          ],
          {env: env()},
        )
        assert.equal(json.code, 0)
        assert.deepEqual([JSON.parse(json.stdout).status, JSON.parse(json.stdout).body], [500, 'status 500'])
      })

      it(`${name}: another AgentSecrets block (3.x SSRF guard) → exit 7 with the slug`, async () => {
        await e.world.update((state) => {
          state.switches = {ssrf: true}
        })
        try {
          const {error} = await expectFailure(
            ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY'],
            {env: env()},
            {code: 7, errorCode: 'AGENTSECRETS_BLOCKED'},
          )
          assert.equal(error.details?.reason, 'ssrf_protection_blocked')
        } finally {
          await e.world.update((state) => {
            state.switches = {}
          })
        }
      })
    }

    it('a missing session token → exit 4 (proxy); with AGENTSECRETS_SESSION_TOKEN it works', async () => {
      const token = `as_sess_${'c0'.repeat(16)}`
      await e.world.update((state) => {
        state.sessionToken = token
      })
      try {
        await expectFailure(
          ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY'],
          {env: e.proxyEnv()},
          {code: 4, errorCode: 'AGENTSECRETS_SESSION', message: /session token/},
        )
        const ok = await e.av(['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY'], {
          env: e.proxyEnv({AGENTSECRETS_SESSION_TOKEN: token}),
        })
        assert.equal(ok.code, 0, ok.stderr)
        // The CLI carries the session itself (keychain); a CLI without one gets the same 401.
        assert.equal(
          (
            await e.av(['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY'], {
              env: e.cliEnv(),
            })
          ).code,
          0,
        )
        await e.world.update((state) => {
          state.switches = {cliNoSession: true}
        })
        await expectFailure(
          ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY'],
          {env: e.cliEnv()},
          {code: 4, errorCode: 'AGENTSECRETS_SESSION'},
        )
      } finally {
        await e.world.update((state) => {
          delete state.sessionToken
          state.switches = {}
        })
      }
    })

    it('the proxy down → exit 5 with `agentsecrets proxy start` (proxy, and the CLI’s daemon)', async () => {
      const port = await closedPort()
      const down = await expectFailure(
        ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY'],
        {env: e.proxyEnv({AGENTSECRETS_PORT: String(port)})},
        {code: 5, errorCode: 'AGENTSECRETS_PROXY_DOWN', message: /not reachable/},
      )
      assert.match(down.error.suggestion, /agentsecrets proxy start/)
      assert.match(down.plain.stderr, /^Try this: Start it with `agentsecrets proxy start`/m)
      const pidFile = join(e.world.home, '.agentsecrets', 'proxy.pid')
      await writeFile(pidFile, `${process.pid}\n0\n${port}\n`)
      try {
        const viaCli = await expectFailure(
          ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY'],
          {env: e.cliEnv()},
          {code: 5, errorCode: 'AGENTSECRETS_PROXY_DOWN', message: /failed to connect to proxy/},
        )
        assert.match(viaCli.error.suggestion, /agentsecrets proxy start/)
      } finally {
        await rm(pidFile, {force: true})
      }

      await e.world.update((state) => {
        state.switches = {transientFails: true}
      })
      try {
        await expectFailure(
          ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY'],
          {env: e.cliEnv()},
          {code: 5, message: /failed to start transient proxy/},
        )
      } finally {
        await e.world.update((state) => {
          state.switches = {}
        })
      }
    })

    it('the CLI daemon named in proxy.pid is used when it is alive', async () => {
      const pidFile = join(e.world.home, '.agentsecrets', 'proxy.pid')
      await writeFile(pidFile, `${process.pid}\n0\n${e.proxy.port}\n`)
      const before = e.proxy.requests.length
      try {
        const ok = await e.av(['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY'], {
          env: e.cliEnv(),
        })
        assert.equal(ok.code, 0, ok.stderr)
        assert.equal(e.proxy.requests.length, before + 1)
      } finally {
        await rm(pidFile, {force: true})
      }
    })

    it('no executable → exit 5 naming cliPath (E6); the update banner does not disturb parsing', async () => {
      // A default profile first, so the broken one below is only used when named.
      await e.av(['profiles', 'add', 'as-main', '--kind', 'agentsecrets'], {env: e.cliEnv()})
      await e.av(
        [
          'profiles',
          'add',
          'as-missing',
          '--kind',
          'agentsecrets',
          '--set',
          'transport=cli',
          '--set',
          'cliPath=/nonexistent/agentsecrets',
        ],
        {env: e.cliEnv()},
      )
      await expectFailure(
        ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY?profile=as-missing'],
        {env: e.cliEnv()},
        {code: 5, errorCode: 'AGENTSECRETS_CLI_NOT_FOUND', message: /cliPath/},
      )
      await e.world.update((state) => {
        state.switches = {banner: true}
      })
      try {
        const ok = await e.av(
          ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY', '--json'],
          {env: e.cliEnv()},
        )
        assert.equal(ok.code, 0, ok.stderr)
        assert.equal(JSON.parse(ok.stdout).status, 200)
      } finally {
        await e.world.update((state) => {
          state.switches = {}
        })
      }
    })

    it('one call cannot mix AgentSecrets secrets with another backend’s', async () => {
      const stored = await e.av(['secrets', 'set', 'LOCAL_ONE'], {env: e.cliEnv(), input: 'local-value-1234'})
      assert.equal(stored.code, 0, stored.stderr)
      await expectFailure(
        [
          'call',
          e.upstream.url('/echo'),
          '--bearer',
          'agentsecrets://API_KEY',
          '--secret-header',
          'X-Other: local://LOCAL_ONE',
          '--allow-host',
          '127.0.0.1',
        ],
        {env: e.cliEnv()},
        {code: 2, errorCode: 'MIXED_CALL_BACKENDS'},
      )
    })
  })

  describe('use', () => {
    for (const [name, env] of [
      ['cli', () => e.cliEnv()],
      ['proxy', () => e.proxyEnv()],
    ] as const) {
      it(`${name}: use REF http_request is performed by AgentSecrets`, async () => {
        const result = await e.av(
          [
            'use',
            'agentsecrets://HDR',
            'http_request',
            '--param',
            `url=${e.upstream.url('/echo')}`,
            '--param',
            'header_type=api_key',
            '--json',
          ],
          {env: env()},
        )
        assert.equal(result.code, 0, result.stderr)
        assert.equal(JSON.parse(result.stdout).status, 200)
        assert.equal(e.upstream.last('/echo').headers['x-api-key'], CANARIES.HDR)
      })
    }

    it('other operations are not supported by agentsecrets', async () => {
      await expectFailure(
        ['use', 'agentsecrets://API_KEY', 'sign', '--param', 'data=x'],
        {env: e.cliEnv()},
        {code: 2, errorCode: 'NOT_SUPPORTED', message: /not supported by agentsecrets/},
      )
    })
  })

  it('canaries: no AgentSecrets value in any output, log, config or argv', async () => {
    await e.sweep()
    const debug = await e.av(
      [
        'call',
        e.upstream.url('/echo'),
        '--bearer',
        'agentsecrets://API_KEY',
        '--secret-header',
        'X-Api-Key: agentsecrets://HDR',
      ],
      {env: e.cliEnv({DEBUG: '*'})},
    )
    assert.equal(debug.code, 0, debug.stderr)
    assert.match(debug.stderr, /agentvault:agentsecrets/)
    e.expectNoCanary(debug.stdout + debug.stderr, 'DEBUG=* output')
  })
})
