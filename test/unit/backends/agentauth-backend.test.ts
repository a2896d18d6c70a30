/**
 * The agentauth backend in-process against the test server (protocols/agentauth.md §10): login and
 * what it stores where, token freshness driven by a fake clock shared with the server (the 60 s
 * window, 2 s tokens, the 401 refresh-and-repeat), the per-profile refresh lock across instances,
 * env-only sign-in kept in memory, the activity audit source paged and de-duplicated, logout and
 * status in both generations.
 */
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {BackendContext} from '../../../src/core/backend.js'

import {type AgentAuthBackend, createBackend} from '../../../src/backends/agentauth/index.js'
import {decodeJwtClaims} from '../../../src/backends/agentauth/jwt.js'
import {readSession} from '../../../src/backends/agentauth/token-store.js'
import {openCredentialStore} from '../../../src/core/credentials.js'
import {parseReference} from '../../../src/core/references.js'
import {
  fails,
  FakeClock,
  GENERATIONS,
  startServer,
  type TestContext,
  testContext,
} from '../../servers/agentauth/harness.js'
import {type AgentAuthTestServer} from '../../servers/agentauth/server.js'

const TOKEN = parseReference('agentauth://access-token')

/** The backend's clock: the fake one (sleeps move it). */
const clientClock = (clock: FakeClock) => ({now: () => clock.now(), sleep: clock.sleep})

describe('agentauth backend', () => {
  let t: TestContext
  const servers: AgentAuthTestServer[] = []

  beforeEach(async () => {
    t = await testContext()
  })

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()))
    await t.dispose()
  })

  /** A server, a seeded admin agent, and a backend signed in to it (profile `aa`). */
  async function signedIn(
    generation: 'legacy' | 'v1',
    options: {accessTtlSeconds?: number; backendClock?: FakeClock} = {},
  ): Promise<{
    backend: AgentAuthBackend
    clock: FakeClock
    context: BackendContext
    server: AgentAuthTestServer
    agentId: string
    apiKey: string
  }> {
    const {clock, server} = await startServer(generation, {
      accessTtlSeconds: options.accessTtlSeconds ?? 3600,
    })
    servers.push(server)
    const {agentId, apiKey} = server.seedAgent({name: 'unit-agent', permissions: ['*:*:*']})
    const login = createBackend(t.context({}, {AGENTAUTH_API_KEY: apiKey}), {
      clock: clientClock(options.backendClock ?? clock),
    })
    await login.login({agentId, apiKey: Buffer.from(apiKey), baseUrl: server.url})
    const context = t.context({settings: {agentId, baseUrl: server.url, generation}})
    const backend = createBackend(context, {clock: clientClock(options.backendClock ?? clock)})
    return {agentId, apiKey, backend, clock, context, server}
  }

  const store = () => openCredentialStore({env: {AGENTVAULT_NO_KEYCHAIN: '1'}, home: t.home, keychain: null})

  describe('login (§10.1)', () => {
    for (const generation of GENERATIONS) {
      it(`${generation}: tokens go to the credential store; config.json holds baseUrl, agentId, generation`, async () => {
        const {clock, server} = await startServer(generation)
        servers.push(server)
        const {agentId, apiKey} = server.seedAgent({tier: 'pro'})
        const backend = createBackend(t.context({}, {AGENTAUTH_API_KEY: apiKey}), {clock: clientClock(clock)})
        const result = await backend.login({
          agentId,
          apiKey: Buffer.from(apiKey),
          baseUrl: `${server.url}/v1/`,
        })
        assert.equal(result.identity, agentId)
        assert.equal(result.details?.tier, 'pro')
        assert.equal(result.details?.generation, generation)
        const config = JSON.parse(await readFile(join(t.home, 'config.json'), 'utf8')) as {
          defaults: Record<string, string>
          profiles: Record<string, Record<string, unknown>>
        }
        assert.deepEqual(config.profiles.aa, {agentId, baseUrl: server.url, generation, kind: 'agentauth'})
        assert.equal(config.defaults.agentauth, 'aa')
        const session = await readSession(await store(), 'aa')
        assert.equal(session?.base_url, server.url)
        assert.ok(session && server.state.issuedTokens.includes(session.access_token))
        assert.ok(session?.refresh_token && server.state.issuedTokens.includes(session.refresh_token))
        assert.notEqual(session.refresh_token, session.access_token)
        if (generation === 'legacy') assert.ok(session?.refresh_expires_at)
        const files = await Promise.all(['config.json'].map((name) => readFile(join(t.home, name), 'utf8')))
        for (const text of files) {
          assert.ok(!text.includes(apiKey))
          for (const token of server.state.issuedTokens) assert.ok(!text.includes(token))
        }
      })
    }

    it('fails typed: no base URL (3), no API key without prompting (2), a wrong key (4)', async () => {
      const {server} = await startServer('v1')
      servers.push(server)
      await fails(
        createBackend(t.context()).login({agentId: 'agt_x', apiKey: Buffer.from('k')}),
        3,
        'AGENTAUTH_BASE_URL_MISSING',
      )
      const noKey = await fails(
        createBackend(t.context()).login({agentId: 'agt_x', baseUrl: server.url}),
        2,
        'VALUE_REQUIRED',
      )
      assert.match(noKey.suggestion!, /--api-key-stdin or set AGENTAUTH_API_KEY/)
      const wrong = createBackend(t.context({}, {AGENTAUTH_API_KEY: 'sk_wrong'}))
      await fails(
        wrong.login({agentId: 'agt_x', apiKey: Buffer.from('sk_wrong'), baseUrl: server.url}),
        4,
        'AGENTAUTH_INVALID_CREDENTIALS',
      )
      await fails(createBackend(t.context()).login({agentId: 'agt_x', baseUrl: 'ftp://x'}), 2, 'BAD_BASE_URL')
    })
  })

  describe('token freshness (§10.2)', () => {
    for (const generation of GENERATIONS) {
      it(`${generation}: a 62 s token is used as is, and refreshed once it enters the 60 s window (2 s later)`, async () => {
        const {backend, clock, server} = await signedIn(generation, {accessTtlSeconds: 62})
        const first = (await backend.get(TOKEN)).toString()
        assert.equal(server.requestsTo(/\/agents\/refresh$/).length, 0)
        clock.advance(2000)
        const second = (await backend.get(TOKEN)).toString()
        assert.equal(server.requestsTo(/\/agents\/refresh$/).length, 1)
        assert.notEqual(second, first)
        assert.equal(decodeJwtClaims(second).exp * 1000 - clock.now(), 62_000)
        const stored = await readSession(await store(), 'aa')
        assert.equal(stored?.access_token, second, 'the new pair is stored')
        if (generation === 'legacy')
          assert.equal(
            stored?.refresh_token,
            server.state.issuedTokens.at(-2),
            'the rotated refresh token is stored',
          )
      })

      it(`${generation}: a 2 s token is refreshed transparently mid-run`, async () => {
        const {backend, clock, server} = await signedIn(generation, {accessTtlSeconds: 2})
        clock.advance(5000)
        const list = await backend.api.list()
        assert.ok(list.agents.length > 0)
        const calls = server.requests.slice(-2).map((r) => `${r.method} ${r.pathname}`)
        assert.deepEqual(calls, [
          `POST ${generation === 'v1' ? '/v1' : ''}/agents/refresh`,
          `GET ${generation === 'v1' ? '/v1' : ''}/agents`,
        ])
      })

      it(`${generation}: a 401 triggers one refresh and one repeat; a second 401 is an auth error (4)`, async () => {
        const frozen = new FakeClock()
        const {backend, clock, server} = await signedIn(generation, {backendClock: frozen})
        // The server's clock runs ahead: the token looks fresh locally but is expired there.
        clock.advance(2 * 3_600_000)
        await backend.api.list()
        const p = generation === 'v1' ? '/v1' : ''
        assert.deepEqual(
          server.requests.slice(-3).map((r) => `${r.method} ${r.pathname}`),
          [`GET ${p}/agents`, `POST ${p}/agents/refresh`, `GET ${p}/agents`],
        )
        const unauthorized = {body: '{"error":"Invalid token","status":401}', status: 401}
        server.fault('GET', `${p}/agents`, unauthorized, unauthorized)
        const error = await fails(backend.api.list(), 4, 'AGENTAUTH_UNAUTHORIZED')
        assert.match(error.suggestion!, /agentvault login agentauth --profile aa/)
      })
    }

    it('refresh refused because the agent is inactive: the session has ended (4) on both generations', async () => {
      for (const generation of ['v1', 'legacy'] as const) {
        const {agentId, backend, clock, server} = await signedIn(generation, {accessTtlSeconds: 30})
        server.setAgentStatus(agentId, generation === 'v1' ? 'suspended' : 'revoked')
        clock.advance(1000)
        const error = await fails(backend.get(TOKEN), 4, 'AGENTAUTH_SESSION_EXPIRED')
        assert.match(error.message, /session of profile aa has ended/)
        assert.doesNotMatch(error.message, /denied refresh/)
        assert.match(error.suggestion!, /no longer active|agentvault login agentauth/)
      }
    })

    it('legacy: concurrent refreshes of one profile are serialised; the loser adopts the winner’s token', async () => {
      const {clock, context, server} = await signedIn('legacy', {accessTtlSeconds: 30})
      const processes = [1, 2, 3].map(() => createBackend(context, {clock: clientClock(clock)}))
      const tokens = await Promise.all(
        processes.map(async (backend) => (await backend.get(TOKEN)).toString()),
      )
      assert.equal(server.requestsTo('/agents/refresh').length, 1, 'one refresh for three processes')
      assert.equal(new Set(tokens).size, 1)
      const stored = await readSession(await store(), 'aa')
      assert.equal(stored?.access_token, tokens[0])
      assert.equal(server.state.refreshTokens.size, 1, 'the stored refresh token is the live one')
    })

    it('resolveMany: every agentauth reference gets the one token', async () => {
      const {backend, server} = await signedIn('v1')
      const refs = [TOKEN, parseReference('agentauth://access-token?profile=aa')]
      const values = await backend.resolveMany(refs)
      assert.equal(values.size, 2)
      assert.deepEqual(
        [...values.values()].map((v) => v.toString()),
        [server.state.issuedTokens[0], server.state.issuedTokens[0]],
      )
    })
  })

  describe('where tokens come from (§10.4)', () => {
    it('no stored tokens: verifies with AGENTAUTH_* env in-process and stores nothing', async () => {
      const {clock, server} = await startServer('v1')
      servers.push(server)
      const {agentId, apiKey} = server.seedAgent()
      const env = {AGENTAUTH_AGENT_ID: agentId, AGENTAUTH_API_KEY: apiKey, AGENTAUTH_BASE_URL: server.url}
      const backend = createBackend(t.context({implicit: true, name: 'agentauth'}, env), {
        clock: clientClock(clock),
      })
      const token = (await backend.get(TOKEN)).toString()
      assert.equal(token, server.state.issuedTokens[0])
      assert.equal(await (await store()).get('agentauth:agentauth'), undefined)
      assert.equal(server.state.logs.length, 1)
      // The in-memory pair refreshes like a stored one.
      clock.advance(3_600_000)
      await backend.get(TOKEN)
      assert.equal(server.requestsTo('/v1/agents/refresh').length, 1)
    })

    it('tokens stored for another base URL are never sent', async () => {
      const {agentId} = await signedIn('v1')
      const other = await startServer('v1')
      servers.push(other.server)
      const backend = createBackend(t.context({settings: {agentId, baseUrl: other.server.url}}))
      await fails(backend.get(TOKEN), 4, 'AUTH_REQUIRED')
      assert.equal(other.server.requests.length, 0)
      assert.match(t.warnings.join('\n'), /were issued by http:\/\/127\.0\.0\.1:\d+, not/)
    })

    it('not signed in: an auth error naming login and the env vars', async () => {
      const error = await fails(
        createBackend(t.context({settings: {baseUrl: 'http://127.0.0.1:9'}})).get(TOKEN),
        4,
        'AUTH_REQUIRED',
      )
      assert.match(error.suggestion!, /login agentauth --profile aa/)
      assert.match(error.suggestion!, /AGENTAUTH_API_KEY/)
    })
  })

  describe('activity as an audit source (§10.6)', () => {
    for (const generation of GENERATIONS) {
      it(`${generation}: 250 entries paged through with limit=100, each once, as audit events`, async () => {
        const {agentId, backend, server} = await signedIn(generation)
        for (let i = 0; i < 250; i++)
          server.state.logVerification(
            agentId,
            i % 5 !== 0,
            generation === 'v1' ? 'Valid credentials' : 'success',
            `10.0.0.${i % 250}`,
          )
        const events = await backend.auditEvents({})
        assert.equal(events.length, 251, 'the login verify and the 250 seeded')
        const pages = server
          .requestsTo(/\/activity$/)
          .map((r) => new URL(r.path, 'http://x').searchParams.get('offset'))
        assert.deepEqual(pages, ['0', '100', '200'])
        const [newest] = events
        assert.match(newest!.time, /Z$/)
        assert.equal(newest!.backend, 'agentauth')
        assert.equal(newest!.source, 'agentauth')
        assert.equal(newest!.profile, 'aa')
        const sample = events.find((e) => e.outcome === 'denied') as unknown as Record<string, unknown>
        assert.equal(sample.agent_id, agentId)
        assert.match(String(sample.ip), /^10\.0\.0\./)
        assert.equal(sample.exit_code, 4)
      })
    }

    it('new attempts shifting the offsets mid-way are de-duplicated by id; --since stops early', async () => {
      const {agentId, backend, clock, server} = await signedIn('v1')
      for (let i = 0; i < 150; i++) server.state.logVerification(agentId, true, 'Valid credentials', null)
      let shifted = false
      server.onRequest = (request) => {
        if (!shifted && request.path.includes('offset=100')) {
          shifted = true
          server.state.logVerification(agentId, false, 'Invalid credentials', null)
        }
      }

      const events = await backend.auditEvents({})
      // Page 2 starts with page 1's last entry again (shifted by the new attempt): it is counted once.
      assert.equal(events.length, 151)
      assert.equal(events.filter((e) => e.outcome === 'ok').length, 151)
      server.onRequest = undefined
      clock.advance(60_000)
      for (let i = 0; i < 5; i++) server.state.logVerification(agentId, true, 'Valid credentials', null)
      const before = server.requestsTo(/\/activity$/).length
      const recent = await backend.auditEvents({since: new Date(clock.now() - 1000)})
      assert.equal(
        server.requestsTo(/\/activity$/).length - before,
        1,
        'one page reached older entries: paging stopped',
      )
      assert.ok(recent.length >= 5)
    })
  })

  describe('logout and status (§10.3)', () => {
    it('legacy: revoke-tokens first, then the local delete', async () => {
      const {backend, server} = await signedIn('legacy')
      assert.equal(await backend.logout(), true)
      assert.equal(server.requestsTo('/agents/revoke-tokens').length, 1)
      assert.equal(server.state.refreshTokens.size, 0)
      assert.equal(await readSession(await store(), 'aa'), undefined)
      assert.equal(await backend.logout(), false)
    })

    it('v1: a warning that the refresh token stays valid until its exp; deleted locally', async () => {
      const {backend, server} = await signedIn('v1')
      assert.equal(await backend.logout(), true)
      assert.equal(server.requestsTo('/agents/revoke-tokens').length, 0)
      assert.match(
        t.warnings.join('\n'),
        /cannot revoke tokens: the refresh token stays valid on the server until \d{4}-\d\d-\d\dT/,
      )
      assert.equal(await readSession(await store(), 'aa'), undefined)
    })

    for (const generation of GENERATIONS) {
      it(`${generation}: status from the token's claims, the refresh expiry and /health`, async () => {
        const {agentId, backend, clock, server} = await signedIn(generation)
        clock.advance(600_000)
        const status = await backend.status()
        assert.equal(status.signedIn, true)
        assert.equal(status.identity, agentId)
        const details = status.details as Record<string, unknown>
        assert.equal(details.agent_id, agentId)
        assert.equal(details.tier, 'free')
        assert.equal(details.expires_in_s, 3000)
        assert.equal(details.generation, generation)
        assert.equal(details.reachable, true)
        assert.equal(details.server_version, generation === 'v1' ? '0.7.0' : '0.1.0')
        assert.match(String(details.refresh_expires_at), /^\d{4}-/)
        assert.deepEqual(Object.keys(details).sort(), [
          'agent_id',
          'base_url',
          'expires_at',
          'expires_in_s',
          'generation',
          'reachable',
          'refresh_expires_at',
          'server_version',
          'tier',
        ])
        assert.equal(server.requestsTo(/refresh/).length, 0, 'status never refreshes')
        clock.advance(3_600_000)
        assert.match((await backend.status()).message ?? '', /expired/)
        await server.close()
        const down = await backend.status()
        assert.equal(down.reachable, false)
      })
    }
  })
})
