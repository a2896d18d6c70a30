/**
 * `agentvault proxy` over openbao (values read by agentvault, injected by its engine) and sanctum
 * (the daemon performs `http_request`), against the project's test servers on loopback.
 */
import assert from 'node:assert/strict'
import {join} from 'node:path'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {proxyCall, type ProxyReply, type StartedProxy, startProxy} from '../helpers/proxy.js'
import {startUpstream, type Upstream} from '../servers/http-upstream/index.js'
import {CANARY as BAO_CANARY, startSeededServer} from '../servers/openbao/harness.js'
import {type OpenBaoTestServer} from '../servers/openbao/server.js'
import {
  AGENT,
  CANARY as SANCTUM_CANARY,
  startStandardServer,
  writeSeedFile,
} from '../servers/sanctum/harness.js'
import {type SanctumTestServer} from '../servers/sanctum/server.js'

const MARKER = '[REDACTED_BY_AGENTSECRETS]'

function call(proxy: StartedProxy, headers: Record<string, string>, method = 'GET'): Promise<ProxyReply> {
  return proxyCall(proxy.port, {headers: {'X-AS-Session-Token': proxy.token ?? '', ...headers}, method})
}

describe('e2e: proxy over openbao and sanctum', function () {
  this.timeout(120_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let upstream: Upstream
  const env = (): NodeJS.ProcessEnv => ({...t.env, HOME: t.home})
  const ok = async (args: string[], input?: string): Promise<CliResult> => {
    const result = await runCli(args, {env: env(), ...(input !== undefined && {input})})
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
    return result
  }

  before(async () => {
    t = await tempHome()
    upstream = await startUpstream()
  })

  after(async () => {
    await upstream.close()
    await t.dispose()
  })

  describe('openbao', () => {
    let bao: OpenBaoTestServer
    let proxy: StartedProxy

    before(async () => {
      const seeded = await startSeededServer()
      bao = seeded.server
      await ok([
        'profiles',
        'add',
        'bao',
        '--kind',
        'openbao',
        '--set',
        `address=${bao.url}`,
        '--set',
        'allowPrivateNetworks=true',
        '--set',
        'allowedDomains=["127.0.0.1"]',
      ])
      await ok(['login', 'openbao', '--profile', 'bao', '--token-stdin'], seeded.tokens.reader)
      proxy = await startProxy(env(), ['--profile', 'bao'])
    })

    after(async () => {
      await proxy.stop()
      await bao.close()
    })

    it('full references in several styles; echoes redacted; the value never comes back', async () => {
      const reply = await call(proxy, {
        'X-AS-Target-URL': upstream.url('/echo?x=1'),
        'X-AS-Inject-Bearer': 'openbao+kv2://secret/myapp/api#token',
        'X-AS-Inject-Query-key': 'openbao://secret/myapp/api#token',
      })
      assert.equal(reply.status, 200, reply.text)
      assert.equal(upstream.last('/echo').headers.authorization, `Bearer ${BAO_CANARY}`)
      assert.equal(new URL(upstream.last('/echo').path, 'http://x').searchParams.get('Key'), BAO_CANARY)
      assert.equal(reply.headers['x-echo-token'], MARKER)
      assert.ok(!reply.text.includes(BAO_CANARY))
    })

    it("a missing field is 502 secret '…' not found; a bare name asks for a reference (400)", async () => {
      const missing = await call(proxy, {
        'X-AS-Target-URL': upstream.url('/x'),
        'X-AS-Inject-Bearer': 'openbao://secret/myapp/nothing#token',
      })
      assert.equal(missing.status, 502, missing.text)
      assert.match(
        (JSON.parse(missing.text) as {error: string}).error,
        /^secret 'openbao:\/\/secret\/myapp\/nothing#token' not found/,
      )
      const bare = await call(proxy, {'X-AS-Target-URL': upstream.url('/x'), 'X-AS-Inject-Bearer': 'token'})
      assert.equal(bare.status, 400)
    })

    it('a host outside the profile list: 403 domain_not_in_allowlist, nothing read', async () => {
      const reads = bao.log.length
      const reply = await call(proxy, {
        'X-AS-Target-URL': upstream.url('/x', {host: '127.0.0.2'}),
        'X-AS-Inject-Bearer': 'openbao://secret/myapp/api#token',
      })
      assert.equal(reply.status, 403)
      assert.equal((JSON.parse(reply.text) as {error: string}).error, 'domain_not_in_allowlist')
      assert.ok(
        !bao.log.slice(reads).some((entry) => entry.path.includes('/data/myapp/api')),
        'the value was not read for a refused host',
      )
    })
  })

  describe('sanctum', () => {
    let daemon: SanctumTestServer
    let proxy: StartedProxy

    before(async () => {
      daemon = await startStandardServer({ssrfAllowlist: [new URL(upstream.url('/')).host]})
      const keyPath = await writeSeedFile(join(t.home, '.sanctum', 'keys'), `${AGENT}.key`)
      await ok(['login', 'sanctum', '--agent', AGENT, '--socket', daemon.socketPath, '--key-path', keyPath])
      proxy = await startProxy(env(), ['--profile', 'sanctum'])
    })

    after(async () => {
      await proxy.stop()
      assert.equal(daemon.outstandingLeases().length, 0, 'no lease left behind')
      await daemon.close()
    })

    it('concurrent requests share one authenticated connection; the daemon injects; never retrieved', async () => {
      daemon.reset()
      const replies = await Promise.all(
        Array.from({length: 6}, (_, i) =>
          call(
            proxy,
            {
              'X-AS-Target-URL': upstream.url(`/sanctum-${i}`),
              ...(i % 2 === 0
                ? {'X-AS-Inject-Bearer': 'canary/token'}
                : {'X-AS-Inject-Header-X-Token': 'sanctum://canary/token'}),
            },
            'POST',
          ),
        ),
      )
      for (const reply of replies) assert.equal(reply.status, 200, reply.text)
      assert.equal(upstream.last('/sanctum-0').headers.authorization, `Bearer ${SANCTUM_CANARY}`)
      assert.equal(upstream.last('/sanctum-1').headers['x-token'], SANCTUM_CANARY)
      assert.equal(daemon.stats.handshakes, 1, 'one authenticated connection for every request')
      assert.equal(daemon.leases.size, 0, 'use never retrieves')
      for (const reply of replies) assert.ok(!reply.text.includes(SANCTUM_CANARY))
    })

    it('query injection is not something Sanctum does: 400; unknown path: 502 not found; upstream 4xx passes', async () => {
      const query = await call(proxy, {
        'X-AS-Target-URL': upstream.url('/x'),
        'X-AS-Inject-Query-key': 'canary/token',
      })
      assert.equal(query.status, 400)
      assert.match(query.text, /not supported by sanctum/)
      const missing = await call(proxy, {
        'X-AS-Target-URL': upstream.url('/x'),
        'X-AS-Inject-Bearer': 'missing/nothing',
      })
      assert.equal(missing.status, 502, missing.text)
      assert.match(
        (JSON.parse(missing.text) as {error: string}).error,
        /^secret 'missing\/nothing' not found/,
      )
      const upstream404 = await call(proxy, {
        'X-AS-Target-URL': upstream.url('/status?code=404'),
        'X-AS-Inject-Bearer': 'canary/token',
      })
      assert.equal(upstream404.status, 404)
      assert.equal(upstream404.text, 'status 404')
    })

    it('the daemon’s SSRF guard maps to 403 ssrf_protection_blocked', async () => {
      const reply = await call(proxy, {
        'X-AS-Target-URL': upstream.url('/x', {host: '127.0.0.2'}),
        'X-AS-Inject-Bearer': 'canary/token',
      })
      assert.equal(reply.status, 403, reply.text)
      assert.equal((JSON.parse(reply.text) as {error: string}).error, 'ssrf_protection_blocked')
    })
  })
})
