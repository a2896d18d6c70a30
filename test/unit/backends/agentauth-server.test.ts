/**
 * The AgentAuth test server meets protocols/agentauth.md §11, point by point, in both generations —
 * so that the client tests built on it test against the protocol, not against our own guesses.
 */
import assert from 'node:assert/strict'
import {createHmac} from 'node:crypto'

import {FakeClock, GENERATIONS, startReceiver, startServer} from '../../servers/agentauth/harness.js'
import {decodeForTest} from '../../servers/agentauth/jwt.js'
import {
  type AgentAuthTestServer,
  CATALOGUE,
  LEGACY_EVENTS,
  V1_EVENTS,
} from '../../servers/agentauth/server.js'

interface Reply {
  headers: Headers
  json: Record<string, unknown>
  status: number
  text: string
}

async function call(
  server: AgentAuthTestServer,
  method: string,
  path: string,
  options: {body?: unknown; headers?: Record<string, string>; raw?: string; token?: string} = {},
): Promise<Reply> {
  const headers: Record<string, string> = {...options.headers}
  if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`
  let body: string | undefined
  if (options.raw !== undefined || options.body !== undefined) {
    headers['Content-Type'] ??= 'application/json'
    body = options.raw ?? JSON.stringify(options.body)
  }

  const response = await fetch(`${server.url}${path}`, {body, headers, method})
  const text = await response.text()
  let json: Record<string, unknown> = {}
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    // Not JSON (HTML 404s).
  }

  return {headers: response.headers, json, status: response.status, text}
}

const prefix = (generation: string): string => (generation === 'v1' ? '/v1' : '')

async function signIn(
  server: AgentAuthTestServer,
  agentId: string,
  apiKey: string,
): Promise<Record<string, string>> {
  const reply = await call(server, 'POST', `${prefix(server.generation)}/agents/verify`, {
    body: {agent_id: agentId, api_key: apiKey},
  })
  assert.equal(reply.status, 200, reply.text)
  return reply.json.token as Record<string, string>
}

describe('agentauth test server (§11)', () => {
  const open: Array<{close(): Promise<void>}> = []
  const start = async (generation: 'legacy' | 'v1', options = {}) => {
    const started = await startServer(generation, options)
    open.push(started.server)
    return started
  }

  afterEach(async () => {
    await Promise.all(open.splice(0).map((server) => server.close()))
  })

  it('1. listens on 127.0.0.1 on an ephemeral port and stops', async () => {
    const {server} = await start('v1')
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.equal((await call(server, 'GET', '/health')).status, 200)
  })

  describe('2. routes of each generation', () => {
    it('v1 serves /v1 and the un-prefixed mounts; misses are JSON', async () => {
      const {server} = await start('v1')
      for (const path of ['/v1/webhooks/events', '/webhooks/events'])
        assert.equal((await call(server, 'GET', path)).status, 200)
      const miss = await call(server, 'GET', '/v1/nope?x=1')
      assert.equal(miss.status, 404)
      assert.deepEqual(miss.json, {error: 'Route not found', path: '/v1/nope?x=1', status: 404})
      assert.equal((await call(server, 'GET', '/permissions/list')).status, 404)
      assert.equal((await call(server, 'GET', '/health')).json.version, '0.7.0')
    })

    it('legacy serves only legacy routes and answers /v1 with Express HTML 404s', async () => {
      const {server} = await start('legacy')
      const miss = await call(server, 'GET', '/v1/agents')
      assert.equal(miss.status, 404)
      assert.match(miss.headers.get('content-type') ?? '', /^text\/html/)
      assert.match(miss.text, /<pre>Cannot GET \/v1\/agents<\/pre>/)
      const catalogue = await call(server, 'GET', '/permissions/list')
      assert.deepEqual(catalogue.json.permissions, CATALOGUE)
      assert.equal(CATALOGUE.length, 26)
      assert.equal((await call(server, 'GET', '/health')).json.service, 'AgentAuths API')
    })
  })

  describe('3. formats, hashing, validation', () => {
    it('ids, keys and secrets in each generation’s format; keys only as SHA-256', async () => {
      for (const generation of GENERATIONS) {
        const {server} = await start(generation)
        const reply = await call(server, 'POST', `${prefix(generation)}/agents/register`, {
          body: {name: 'ci-deployer', owner_email: 'ops@example.com', permissions: ['github:repos:read']},
        })
        assert.equal(reply.status, 201, reply.text)
        const agentId = (reply.json.agent_id ?? (reply.json.agent as {agent_id: string}).agent_id) as string
        const apiKey = (reply.json.api_key ?? (reply.json.credentials as {api_key: string}).api_key) as string
        if (generation === 'v1') {
          assert.match(agentId, /^agt_[0-9a-f]{32}$/)
          assert.match(apiKey, /^sk_[0-9a-f]{64}$/)
        } else {
          assert.match(agentId, /^agt_[0-9a-f]{24}$/)
          assert.match(apiKey, /^ak_[0-9a-f]{48}$/)
          assert.equal(reply.json.success, true)
        }

        assert.ok(
          !JSON.stringify([...server.state.agents.values()]).includes(apiKey),
          'the key is kept only hashed',
        )
        const token = await signIn(server, agentId, apiKey)
        const hook = await call(server, 'POST', `${prefix(generation)}/webhooks`, {
          body: {
            agent_id: agentId,
            events: [generation === 'v1' ? 'agent.created' : 'agent.verified'],
            url: 'https://h.example.com/x',
          },
          token: token.access_token,
        })
        assert.equal(hook.status, 201, hook.text)
        if (generation === 'v1') {
          assert.match(hook.json.secret as string, /^whsec_[0-9a-f]{64}$/)
          assert.match(hook.json.id as string, /^[0-9a-f-]{36}$/)
        } else {
          assert.match(hook.json.secret as string, /^[0-9a-f]{64}$/)
          assert.equal(typeof (hook.json.webhook as {id: unknown}).id, 'number')
        }
      }
    })

    it('verify failures: valid:false (v1) vs verified:false (legacy); legacy checks status before the key', async () => {
      const v1 = (await start('v1')).server
      assert.deepEqual((await call(v1, 'POST', '/v1/agents/verify', {body: {}})).json, {
        error: 'Agent ID is required',
        valid: false,
      })
      assert.deepEqual(
        (await call(v1, 'POST', '/v1/agents/verify', {body: {agent_id: 7, api_key: 'x'}})).json,
        {
          error: 'Agent ID must be a string',
          valid: false,
        },
      )
      const wrong = await call(v1, 'POST', '/v1/agents/verify', {body: {agent_id: 'agt_x', api_key: 'sk_x'}})
      assert.equal(wrong.status, 401)
      assert.deepEqual(wrong.json, {error: 'Invalid credentials', valid: false})
      const legacy = (await start('legacy')).server
      const missing = await call(legacy, 'POST', '/agents/verify', {body: {agent_id: 'agt_x'}})
      assert.deepEqual(missing.json, {error: 'Missing required fields', required: ['agent_id', 'api_key']})
      const {agentId} = legacy.seedAgent({status: 'revoked'})
      const inactive = await call(legacy, 'POST', '/agents/verify', {
        body: {agent_id: agentId, api_key: 'ak_wrong'},
      })
      assert.deepEqual(inactive.json, {error: 'Agent is not active', status: 'revoked', verified: false})
    })

    it('register validation: v1 details per field; legacy named errors and catalogue-only permissions', async () => {
      const v1 = (await start('v1')).server
      const invalid = await call(v1, 'POST', '/v1/agents/register', {body: {name: 'ab', owner_email: 'x'}})
      assert.equal(invalid.json.error, 'Validation failed')
      assert.deepEqual(
        (invalid.json.details as Array<{field: string}>).map((d) => d.field),
        ['name', 'owner_email'],
      )
      const anyString = await call(v1, 'POST', '/v1/agents/register', {
        body: {name: 'abc', owner_email: 'a@b.co', permissions: ['Any Thing']},
      })
      assert.equal(anyString.status, 201)
      const legacy = (await start('legacy')).server
      assert.deepEqual((await call(legacy, 'POST', '/agents/register', {body: {name: 'abc'}})).json, {
        error: 'Missing required fields',
        required: ['name', 'owner_email'],
      })
      const bad = await call(legacy, 'POST', '/agents/register', {
        body: {name: 'abc', owner_email: 'a@b.co', permissions: ['github:*:*', 'github:repos:read']},
      })
      assert.equal(bad.json.error, 'Invalid permissions')
      assert.deepEqual(bad.json.invalid_permissions, [
        {permission: 'github:*:*', reason: 'Unknown permission'},
      ])
      const deduped = await call(legacy, 'POST', '/agents/register', {
        body: {name: 'abc', owner_email: 'a@b.co', permissions: ['github:repos:read', 'github:repos:read']},
      })
      const id = (deduped.json.agent as {agent_id: string}).agent_id
      assert.deepEqual(legacy.state.agents.get(id)!.permissions, ['github:repos:read'])
    })
  })

  it('4. HS256 JWTs with the §4 claims and configurable lifetimes', async () => {
    for (const generation of GENERATIONS) {
      const {clock, server} = await start(generation, {accessTtlSeconds: 62, jwtSecret: 'configured'})
      const {agentId, apiKey} = server.seedAgent({permissions: ['*:*:*'], tier: 'pro'})
      const token = await signIn(server, agentId, apiKey)
      assert.equal(Number(token.expires_in), 62)
      const claims = decodeForTest(token.access_token, 'configured')
      assert.equal(claims.exp - claims.iat, 62)
      assert.equal(claims.agent_id, agentId)
      assert.equal(claims.tier, 'pro')
      if (generation === 'legacy') assert.deepEqual(claims.permissions, ['*:*:*'])
      else assert.equal(claims.permissions, undefined)
      const me = `${prefix(generation)}/agents/${agentId}`
      assert.equal((await call(server, 'GET', me, {token: token.access_token})).status, 200)
      clock.advance(62_000)
      const expired = await call(server, 'GET', me, {token: token.access_token})
      assert.equal(expired.status, 401)
      assert.equal(
        expired.json.error === 'Invalid token' || expired.json.message === 'Invalid or expired token',
        true,
      )
    }
  })

  describe('5. refresh', () => {
    it('v1: JWT refresh, not rotated, needs an active agent', async () => {
      const {clock, server} = await start('v1')
      const {agentId, apiKey} = server.seedAgent()
      const token = await signIn(server, agentId, apiKey)
      assert.equal(decodeForTest(token.refresh_token, server.jwtSecret).type, 'refresh')
      clock.advance(1000)
      const first = await call(server, 'POST', '/v1/agents/refresh', {
        body: {refresh_token: token.refresh_token},
      })
      assert.equal(first.status, 200)
      assert.equal(typeof first.json.access_token, 'string')
      const again = await call(server, 'POST', '/v1/agents/refresh', {
        body: {refresh_token: token.refresh_token},
      })
      assert.equal(again.status, 200, 'the old refresh token stays valid')
      assert.deepEqual((await call(server, 'POST', '/v1/agents/refresh', {body: {}})).json, {
        error: 'Missing refresh_token',
        status: 400,
      })
      const wrongType = await call(server, 'POST', '/v1/agents/refresh', {
        body: {refresh_token: token.access_token},
      })
      assert.equal(wrongType.json.error, 'Invalid token type')
      server.setAgentStatus(agentId, 'suspended')
      const inactive = await call(server, 'POST', '/v1/agents/refresh', {
        body: {refresh_token: token.refresh_token},
      })
      assert.deepEqual(inactive.json, {error: 'Agent not found or inactive', status: 401})
    })

    it('legacy: opaque tokens rotated on use, expiring, revocable, replaced by a new verify', async () => {
      const {clock, server} = await start('legacy', {refreshTtlSeconds: 60})
      const {agentId, apiKey} = server.seedAgent()
      const token = await signIn(server, agentId, apiKey)
      assert.match(token.refresh_token!, /^rt_[0-9a-f]{64}$/)
      assert.equal(Number(token.refresh_token_expires_in), 60)
      assert.ok(!JSON.stringify([...server.state.refreshTokens]).includes(token.refresh_token!))
      const rotated = await call(server, 'POST', '/agents/refresh', {
        body: {refresh_token: token.refresh_token},
      })
      assert.equal(rotated.status, 200)
      assert.deepEqual(
        (await call(server, 'POST', '/agents/refresh', {body: {refresh_token: token.refresh_token}})).json,
        {
          error: 'Invalid refresh token',
        },
      )
      const next = rotated.json.refresh_token as string
      clock.advance(61_000)
      assert.deepEqual((await call(server, 'POST', '/agents/refresh', {body: {refresh_token: next}})).json, {
        error: 'Refresh token expired',
      })
      const fresh = await signIn(server, agentId, apiKey)
      const replacing = await signIn(server, agentId, apiKey)
      assert.equal(
        (await call(server, 'POST', '/agents/refresh', {body: {refresh_token: fresh.refresh_token}})).status,
        401,
      )
      const revoke = await call(server, 'POST', '/agents/revoke-tokens', {token: replacing.access_token})
      assert.equal(revoke.status, 200)
      assert.equal(
        (await call(server, 'POST', '/agents/refresh', {body: {refresh_token: replacing.refresh_token}}))
          .status,
        401,
      )
      const last = await signIn(server, agentId, apiKey)
      server.setAgentStatus(agentId, 'revoked')
      const denied = await call(server, 'POST', '/agents/refresh', {
        body: {refresh_token: last.refresh_token},
      })
      assert.equal(denied.status, 403)
      assert.deepEqual(denied.json, {error: 'Agent is revoked'})
    })
  })

  describe('6. guards and authorization', () => {
    it('v1 guard messages; expired is "Invalid token"; no authorization; agent state not consulted', async () => {
      const {clock, server} = await start('v1')
      const {agentId, apiKey} = server.seedAgent({permissions: ['github:repos:read']})
      const other = server.seedAgent({name: 'other-agent'})
      const token = await signIn(server, agentId, apiKey)
      const error = async (headers: Record<string, string>): Promise<unknown> =>
        (await call(server, 'GET', '/v1/agents', {headers})).json.error
      assert.equal(await error({}), 'Missing Authorization header')
      assert.equal(
        await error({Authorization: `Basic ${token.access_token}`}),
        'Authorization header must use Bearer scheme',
      )
      assert.equal(await error({Authorization: 'Bearer '}), 'Missing JWT token')
      assert.equal(await error({Authorization: 'Bearer nonsense'}), 'Invalid token')
      assert.equal(
        await error({Authorization: `Bearer ${token.refresh_token}`}),
        'Invalid token type. Use access token, not refresh token.',
      )
      assert.equal(
        (await call(server, 'GET', `/v1/agents/${other.agentId}`, {token: token.access_token})).status,
        200,
      )
      server.setAgentStatus(agentId, 'suspended')
      assert.equal((await call(server, 'GET', '/v1/agents', {token: token.access_token})).status, 200)
      clock.advance(3_600_000)
      assert.equal(await error({Authorization: `Bearer ${token.access_token}`}), 'Invalid token')
    })

    it('legacy guard messages and admin/self rules with §6 matching', async () => {
      const {server} = await start('legacy')
      const admin = server.seedAgent({name: 'admin-agent', permissions: ['*:*:*']})
      const plain = server.seedAgent({name: 'plain-agent', permissions: ['github:repos:read']})
      const adminToken = await signIn(server, admin.agentId, admin.apiKey)
      const plainToken = await signIn(server, plain.agentId, plain.apiKey)
      assert.equal(
        (await call(server, 'GET', '/agents')).json.message,
        'No token provided. Use POST /agents/verify to get a token.',
      )
      assert.equal(
        (await call(server, 'GET', '/agents', {token: 'x.y.z'})).json.message,
        'Invalid or expired token',
      )
      // The scheme is not checked: the second word is the token.
      assert.equal(
        (await call(server, 'GET', '/agents', {headers: {Authorization: `Token ${adminToken.access_token}`}}))
          .status,
        200,
      )
      const forbidden = await call(server, 'GET', '/agents', {token: plainToken.access_token})
      assert.equal(forbidden.status, 403)
      assert.deepEqual(forbidden.json.your_permissions, ['github:repos:read'])
      assert.equal(
        (await call(server, 'GET', `/agents/${plain.agentId}`, {token: plainToken.access_token})).status,
        200,
      )
      assert.equal(
        (await call(server, 'GET', `/agents/${admin.agentId}`, {token: plainToken.access_token})).status,
        403,
      )
      assert.equal(
        (await call(server, 'GET', `/agents/${plain.agentId}`, {token: adminToken.access_token})).status,
        200,
      )
      assert.equal(
        (
          await call(server, 'PUT', `/agents/${plain.agentId}/tier`, {
            body: {tier: 'pro'},
            token: plainToken.access_token,
          })
        ).status,
        403,
      )
      const tier = await call(server, 'PUT', `/agents/${plain.agentId}/tier`, {
        body: {tier: 'gold'},
        token: adminToken.access_token,
      })
      assert.deepEqual(tier.json.valid_tiers, ['free', 'pro', 'enterprise'])
    })
  })

  it('7. verify attempts logged (unknown ids too, not 400s) with reasons and IPs; both activity shapes', async () => {
    for (const generation of GENERATIONS) {
      const {server} = await start(generation)
      const {agentId, apiKey} = server.seedAgent({permissions: ['*:*:*']})
      const verify = `${prefix(generation)}/agents/verify`
      const forwarded = {'X-Forwarded-For': '198.51.100.1, 203.0.113.7'}
      await call(server, 'POST', verify, {body: {agent_id: agentId, api_key: 'wrong'}, headers: forwarded})
      await call(server, 'POST', verify, {body: {agent_id: 'agt_unknown', api_key: 'wrong'}})
      await call(server, 'POST', verify, {body: {agent_id: agentId}})
      const token = await signIn(server, agentId, apiKey)
      assert.equal(server.state.logs.length, 3)
      assert.deepEqual(
        server.state.logs.map((l) => [l.agent_id, l.reason]),
        generation === 'v1'
          ? [
              [agentId, 'Invalid credentials'],
              ['agt_unknown', 'Invalid credentials'],
              [agentId, 'Valid credentials'],
            ]
          : [
              [agentId, 'invalid_api_key'],
              ['agt_unknown', 'agent_not_found'],
              [agentId, 'success'],
            ],
      )
      assert.equal(server.state.logs[0]!.ip_address, generation === 'v1' ? '203.0.113.7' : '127.0.0.1')
      for (let i = 0; i < 120; i++) server.state.logVerification(agentId, i % 2 === 0, 'seeded', '127.0.0.1')
      const activity = `${prefix(generation)}/agents/${agentId}/activity`
      const page = await call(server, 'GET', activity, {token: token.access_token})
      if (generation === 'v1') {
        assert.equal((page.json.logs as unknown[]).length, 100)
        assert.deepEqual([page.json.total, page.json.limit, page.json.offset], [122, 100, 0])
      } else {
        assert.equal((page.json.activity as unknown[]).length, 50)
        assert.deepEqual(page.json.pagination, {count: 50, has_more: true, limit: 50, offset: 0, total: 122})
      }

      const tail = await call(server, 'GET', `${activity}?limit=100&offset=100`, {token: token.access_token})
      const entries = (tail.json.logs ?? tail.json.activity) as Array<{id: number}>
      assert.equal(entries.length, 22)
      assert.ok(entries[0]!.id > entries[1]!.id, 'newest first')
      if (generation === 'legacy') assert.equal((tail.json.pagination as {has_more: boolean}).has_more, false)
    }
  })

  describe('8. webhooks', () => {
    it('v1: CRUD, masked list, rotation, deliveries only through emit(), signed over the exact bytes', async () => {
      const {server} = await start('v1')
      const receiver = await startReceiver()
      open.push(receiver)
      const {agentId, apiKey} = server.seedAgent()
      const token = (await signIn(server, agentId, apiKey)).access_token
      const created = await call(server, 'POST', '/v1/webhooks', {
        body: {agent_id: agentId, events: ['agent.updated'], url: receiver.url},
        token,
      })
      const id = created.json.id as string
      assert.equal((await call(server, 'GET', '/v1/webhooks', {token})).status, 400)
      const listed = await call(server, 'GET', `/v1/webhooks?agent_id=${agentId}`, {token})
      assert.equal((listed.json.webhooks as Array<{secret: string}>)[0]!.secret, '***')
      const bad = await call(server, 'POST', '/v1/webhooks', {
        body: {agent_id: agentId, events: ['nope'], url: 'ftp://x'},
        token,
      })
      assert.deepEqual(
        (bad.json.details as Array<{message: string}>).map((d) => d.message),
        ['URL must use HTTP or HTTPS protocol', 'Invalid event: nope'],
      )
      assert.deepEqual(bad.json.available, V1_EVENTS)
      const rotated = await call(server, 'POST', `/v1/webhooks/${id}/regenerate-secret`, {token})
      assert.equal(rotated.json.webhook_id, id)
      const [delivery] = await server.emit('agent.updated', agentId, {tier: 'pro'})
      assert.equal(delivery!.status, 200)
      const received = receiver.received[0]!
      assert.deepEqual(Object.keys(JSON.parse(received.body.toString()) as object).sort(), [
        'agent_id',
        'data',
        'event',
        'timestamp',
      ])
      assert.equal(
        received.headers['x-agentauth-signature'],
        createHmac('sha256', rotated.json.secret as string)
          .update(received.body)
          .digest('hex'),
      )
      assert.equal(received.headers['x-agentauth-event'], undefined)
      assert.deepEqual(await call(server, 'DELETE', `/v1/webhooks/${id}`, {token}).then((r) => r.json), {
        message: 'Webhook deleted successfully',
        success: true,
      })
      assert.equal((await call(server, 'DELETE', `/v1/webhooks/${id}`, {token})).status, 200, 'idempotent')
    })

    it('legacy: deliveries on verify and revoke with event and timestamp headers, awaitable', async () => {
      const {server} = await start('legacy')
      const receiver = await startReceiver()
      open.push(receiver)
      const {agentId, apiKey} = server.seedAgent()
      const token = (await signIn(server, agentId, apiKey)).access_token
      const created = await call(server, 'POST', '/webhooks', {
        body: {events: ['agent.verified', 'agent.revoked'], url: receiver.url},
        token,
      })
      const secret = created.json.secret as string
      assert.deepEqual((await call(server, 'GET', '/webhooks/events')).json.events, LEGACY_EVENTS)
      const listed = await call(server, 'GET', '/webhooks', {token})
      assert.equal(listed.json.count, 1)
      assert.equal((listed.json.webhooks as Array<Record<string, unknown>>)[0]!.secret, undefined)
      await signIn(server, agentId, apiKey)
      await call(server, 'POST', `/agents/${agentId}/revoke`, {token})
      const deliveries = await server.waitForDeliveries(2)
      assert.deepEqual(deliveries.map((d) => d.event).sort(), ['agent.revoked', 'agent.verified'])
      for (const delivery of deliveries) {
        const body = JSON.parse(delivery.body.toString()) as {timestamp: string}
        assert.match(body.timestamp, /^\d+$/)
        assert.equal(delivery.headers['X-AgentAuth-Timestamp'], body.timestamp)
        assert.equal(
          delivery.headers['X-AgentAuth-Signature'],
          createHmac('sha256', secret).update(delivery.body).digest('hex'),
        )
      }

      const other = server.seedAgent({name: 'other-agent'})
      const otherToken = (await signIn(server, other.agentId, other.apiKey)).access_token
      const id = String((created.json.webhook as {id: number}).id)
      assert.deepEqual((await call(server, 'DELETE', `/webhooks/${id}`, {token: otherToken})).json, {
        error: 'Webhook not found',
      })
    })
  })

  it('9. per-IP fixed-window rate limits with draft-6 headers and Retry-After', async () => {
    const clock = new FakeClock()
    const {server} = await start('legacy', {
      authLimit: {limit: 2, windowMs: 60_000},
      clock,
      globalLimit: {limit: 4, windowMs: 10_000},
    })
    const first = await call(server, 'GET', '/health')
    assert.equal(first.headers.get('ratelimit-policy'), '4;w=10')
    assert.equal(first.headers.get('ratelimit-limit'), '4')
    assert.equal(first.headers.get('ratelimit-remaining'), '3')
    assert.equal(first.headers.get('ratelimit-reset'), '10')
    await call(server, 'POST', '/agents/verify', {body: {agent_id: 'a', api_key: 'b'}})
    await call(server, 'POST', '/agents/verify', {body: {agent_id: 'a', api_key: 'b'}})
    const auth = await call(server, 'POST', '/agents/verify', {body: {agent_id: 'a', api_key: 'b'}})
    assert.equal(auth.status, 429)
    assert.deepEqual(auth.json, {error: 'Too many authentication attempts, please try again later.'})
    assert.equal(auth.headers.get('retry-after'), '60')
    clock.advance(3000)
    const global = await call(server, 'GET', '/health')
    assert.equal(global.status, 429)
    assert.deepEqual(global.json, {error: 'Too many requests, please try again later.'})
    assert.equal(global.headers.get('retry-after'), '7')
    clock.advance(7000)
    assert.equal((await call(server, 'GET', '/health')).status, 200, 'a new window')
  })

  it('10–11. scripted faults (recorded, not rate-counted) and latency', async () => {
    const {server} = await start('v1', {globalLimit: {limit: 1, windowMs: 60_000}})
    server.fault(
      'GET',
      /^\/health$/,
      {body: '<html>down</html>', contentType: 'text/html', status: 503},
      {headers: {'Retry-After': '3'}, status: 429},
    )
    const html = await call(server, 'GET', '/health')
    assert.equal(html.status, 503)
    assert.match(html.headers.get('content-type') ?? '', /text\/html/)
    assert.equal((await call(server, 'GET', '/health')).headers.get('retry-after'), '3')
    assert.equal(
      (await call(server, 'GET', '/health')).status,
      200,
      'faults did not count against the limit of 1',
    )
    assert.deepEqual(
      server.requests.map((r) => r.faulted),
      [true, true, false],
    )
    server.fault('GET', '/health', {drop: true})
    await assert.rejects(call(server, 'GET', '/health'))
    server.latency(150, '/v1/webhooks/events')
    const started = Date.now()
    await call(server, 'GET', '/v1/webhooks/events')
    assert.ok(Date.now() - started >= 140)
  })

  it('12. body limit (413) and malformed JSON (400) in both generations', async () => {
    for (const generation of GENERATIONS) {
      const {server} = await start(generation, {bodyLimitBytes: 100})
      const large = await call(server, 'POST', `${prefix(generation)}/agents/verify`, {
        raw: JSON.stringify({x: 'y'.repeat(200)}),
      })
      assert.equal(large.status, 413)
      if (generation === 'v1') assert.deepEqual(large.json, {error: 'request entity too large', status: 413})
      else assert.match(large.text, /PayloadTooLargeError/)
      const malformed = await call(server, 'POST', `${prefix(generation)}/agents/verify`, {
        raw: '{"agent_id":',
      })
      assert.equal(malformed.status, 400)
    }
  })

  it('13. records requests; seeds agents, changes their status; an injected clock stamps everything', async () => {
    const clock = new FakeClock(Date.UTC(2030, 0, 1))
    const {server} = await start('v1', {clock})
    const {agent} = server.seedAgent({name: 'clocked'})
    assert.equal(agent.created_at, '2030-01-01T00:00:00.000+00:00')
    server.setAgentStatus(agent.agent_id, 'suspended')
    assert.equal(server.state.agents.get(agent.agent_id)!.status, 'suspended')
    await call(server, 'POST', '/v1/agents/verify', {
      body: {agent_id: agent.agent_id, api_key: 'k'},
      headers: {'X-Test': '1'},
    })
    const [recorded] = server.requests
    assert.equal(recorded!.method, 'POST')
    assert.equal(recorded!.path, '/v1/agents/verify')
    assert.equal(recorded!.headers['x-test'], '1')
    assert.deepEqual(JSON.parse(recorded!.body.toString()), {agent_id: agent.agent_id, api_key: 'k'})
    assert.equal(recorded!.time, Date.UTC(2030, 0, 1))
  })
})
