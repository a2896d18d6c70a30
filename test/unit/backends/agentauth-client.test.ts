/**
 * The AgentAuth HTTP client against the test server on loopback (protocols/agentauth.md §2, §3,
 * §8, §9): retry policy and spacing on an injected clock (no wall time is waited), the per-call
 * generation fallback and what it records, request hygiene, and the typed errors of each status.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {createServer as createHttpsServer} from 'node:https'
import {createServer} from 'node:net'

import type {Generation} from '../../../src/backends/agentauth/settings.js'

import {
  AgentAuthHttp,
  type Clock,
  type Operation,
  retryAfterMs,
} from '../../../src/backends/agentauth/http-client.js'
import {errorFromAnswer} from '../../../src/backends/agentauth/http-errors.js'
import {
  catalogueOperation,
  getOperation,
  listOperation,
  registerOperation,
  revokeOperation,
  verifyOperation,
} from '../../../src/backends/agentauth/operations.js'
import {sharedTestCertificates} from '../../helpers/test-ca.js'
import {fails, FakeClock, startServer} from '../../servers/agentauth/harness.js'
import {type AgentAuthTestServer} from '../../servers/agentauth/server.js'

interface Harness {
  clock: FakeClock
  generations: Generation[]
  http: AgentAuthHttp
  server: AgentAuthTestServer
  sleeps: number[]
}

/** A client on the server's fake clock; sleeps move that clock and are recorded. */
function client(
  server: AgentAuthTestServer,
  clock: FakeClock,
  generation: Generation = 'unknown',
  timeoutMs = 2000,
): Harness {
  const sleeps: number[] = []
  const generations: Generation[] = []
  const injected: Clock = {
    now: () => clock.now(),
    async sleep(ms) {
      sleeps.push(ms)
      clock.advance(ms)
    },
  }
  const http = new AgentAuthHttp({
    baseUrl: server.url,
    clock: injected,
    generation,
    onGeneration(next) {
      generations.push(next)
    },
    timeoutMs,
  })
  return {clock, generations, http, server, sleeps}
}

const context = {operation: 'list agents', profile: 'aa', route: 'jwt' as const}

describe('agentauth HTTP client', () => {
  const servers: AgentAuthTestServer[] = []
  const start = async (generation: 'legacy' | 'v1', options = {}): Promise<Harness> => {
    const {clock, server} = await startServer(generation, options)
    servers.push(server)
    return client(server, clock)
  }

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()))
  })

  describe('retries (§8), timed on the injected clock', () => {
    it('503, 503, 200 succeeds after two retries spaced 1 s and 2 s', async () => {
      const h = await start('v1')
      h.server.fault(
        'GET',
        '/health',
        {body: '<html>busy</html>', contentType: 'text/html', status: 503},
        {status: 503},
      )
      const answer = await h.http.send({method: 'GET', path: '/health'}, 'v1')
      assert.equal(answer.status, 200)
      assert.equal(answer.retries, 2)
      assert.deepEqual(h.sleeps, [1000, 2000])
      const times = h.server.requestsTo('/health').map((r) => r.time)
      assert.deepEqual([times[1]! - times[0]!, times[2]! - times[1]!], [1000, 2000])
    })

    it('429 with Retry-After: 1 waits one second, then succeeds', async () => {
      const h = await start('v1')
      h.server.fault('GET', '/health', {
        body: '{"error":"Too many requests, please try again later."}',
        headers: {'Retry-After': '1'},
        status: 429,
      })
      const answer = await h.http.send({method: 'GET', path: '/health'}, 'v1')
      assert.equal(answer.status, 200)
      assert.deepEqual(h.sleeps, [1000])
      const [first, second] = h.server.requestsTo('/health')
      assert.equal(second!.time - first!.time, 1000)
    })

    it('Retry-After up to 30 s is waited, read as seconds or an HTTP date; 1/2/4 s apply without it', async () => {
      const h = await start('v1')
      const date = new Date(h.clock.now() + 5000).toUTCString()
      h.server.fault(
        'GET',
        '/health',
        {headers: {'Retry-After': '30'}, status: 429},
        {headers: {'Retry-After': date}, status: 429},
        {status: 429},
      )
      await h.http.send({method: 'GET', path: '/health'}, 'v1')
      assert.equal(h.sleeps[0], 30_000)
      // The date was 5 s ahead when made; 30 s have passed since, so it is in the past: no wait.
      assert.equal(h.sleeps[1], 0)
      assert.equal(h.sleeps[2], 4000)
      assert.equal(retryAfterMs(new Date(1_000_000 + 5000).toUTCString(), 1_000_000), 5000)
      assert.equal(retryAfterMs('soon', 0), undefined)
    })

    it('a Retry-After longer than 30 s (seconds or date) fails at once: no wait, no retry, exit 8 with the reset time', async () => {
      for (const header of ['3600', 'date']) {
        const h = await start('v1')
        const value = header === 'date' ? new Date(h.clock.now() + 3_600_000).toUTCString() : header
        h.server.fault('GET', '/health', {
          body: '{"error":"Too many requests, please try again later."}',
          headers: {'Retry-After': value},
          status: 429,
        })
        const answer = await h.http.send({method: 'GET', path: '/health'}, 'v1')
        assert.equal(answer.status, 429)
        assert.equal(answer.retries, 0)
        assert.deepEqual(h.sleeps, [], 'nothing waited')
        assert.equal(h.server.requestsTo('/health').length, 1, 'nothing repeated')
        const error = await fails(
          Promise.reject(errorFromAnswer(answer, context, h.clock.now())),
          8,
          'AGENTAUTH_RATE_LIMITED',
        )
        const reset = new Date(Math.floor((h.clock.now() + 3_600_000) / 1000) * 1000).toISOString()
        assert.match(error.message, new RegExp(`resets at ${reset}`))
        assert.doesNotMatch(error.message, /after 3 retries/)
        assert.equal(error.details?.reset, reset)
      }
    })

    it('a 400 is never retried', async () => {
      const h = await start('v1')
      const answer = await h.http.call(registerOperation({name: 'x', owner_email: 'nope'}))
      assert.equal(answer.status, 400)
      assert.equal(answer.retries, 0)
      assert.deepEqual(h.sleeps, [])
      assert.equal(h.server.requestsTo('/v1/agents/register').length, 1)
      const error = await fails(
        Promise.reject(errorFromAnswer(answer, {...context, route: 'public'})),
        2,
        'AGENTAUTH_BAD_REQUEST',
      )
      assert.match(error.message, /name: Name must be between 3 and 100 characters/)
      assert.match(error.message, /owner_email: /)
    })

    it('5xx four times: three retries (1, 2, 4 s), then backend unavailable (exit 5)', async () => {
      const h = await start('v1')
      h.server.fault('GET', '/health', {status: 502}, {status: 500}, {status: 503}, {status: 504})
      const answer = await h.http.send({method: 'GET', path: '/health'}, 'v1')
      assert.equal(answer.status, 504)
      assert.deepEqual(h.sleeps, [1000, 2000, 4000])
      await fails(Promise.reject(errorFromAnswer(answer, context)), 5, 'AGENTAUTH_SERVER_ERROR')
    })

    it('429 after the last retry is rate limited (exit 8) and names the window reset', async () => {
      const h = await start('v1')
      const limited = {
        body: '{"error":"Too many requests, please try again later."}',
        headers: {'RateLimit-Reset': '120', 'Retry-After': '2'},
        status: 429,
      }
      h.server.fault('GET', '/health', limited, limited, limited, limited)
      const answer = await h.http.send({method: 'GET', path: '/health'}, 'v1')
      assert.deepEqual(h.sleeps, [2000, 2000, 2000])
      const error = await fails(
        Promise.reject(errorFromAnswer(answer, context, h.clock.now())),
        8,
        'AGENTAUTH_RATE_LIMITED',
      )
      assert.match(error.message, new RegExp(new Date(h.clock.now() + 120_000).toISOString()))
      assert.match(error.message, /Too many requests/)
    })

    it('a dropped connection is retried', async () => {
      const h = await start('v1')
      h.server.fault('GET', '/health', {drop: true})
      const answer = await h.http.send({method: 'GET', path: '/health'}, 'v1')
      assert.equal(answer.status, 200)
      assert.deepEqual(h.sleeps, [1000])
    })

    it('a timeout is retried, then reported as unavailable (exit 5)', async () => {
      const {clock, server} = await startServer('v1')
      servers.push(server)
      server.latency(400, '/health')
      const h = client(server, clock, 'unknown', 100)
      await fails(h.http.send({method: 'GET', path: '/health'}, 'v1'), 5, 'AGENTAUTH_TIMEOUT')
      assert.deepEqual(h.sleeps, [1000, 2000, 4000])
      assert.equal(server.requestsTo('/health').length, 4)
    })

    it('a refused connection is retried, then unavailable (exit 5)', async () => {
      const port = await new Promise<number>((resolve) => {
        const probe = createServer().listen(0, '127.0.0.1', () => {
          const {port: free} = probe.address() as {port: number}
          probe.close(() => resolve(free))
        })
      })
      const sleeps: number[] = []
      const http = new AgentAuthHttp({
        baseUrl: `http://127.0.0.1:${port}`,
        clock: {
          now: () => 0,
          async sleep(ms) {
            sleeps.push(ms)
          },
        },
        generation: 'unknown',
        timeoutMs: 1000,
      })
      const error = await fails(http.send({method: 'GET', path: '/health'}, 'v1'), 5, 'AGENTAUTH_UNREACHABLE')
      assert.match(error.message, /ECONNREFUSED/)
      assert.deepEqual(sleeps, [1000, 2000, 4000])
    })
  })

  it('verifies the server’s certificate even when NODE_TLS_REJECT_UNAUTHORIZED=0 is in the environment', async () => {
    const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED
    const received: string[] = []
    // A server whose CA the client was not given (so nobody can verify it), recording what reaches it.
    const tls = sharedTestCertificates()
    const server = createHttpsServer(
      {cert: readFileSync(tls.cert), key: readFileSync(tls.key)},
      (request, response) => {
        received.push(String(request.headers.authorization))
        response.end('{}')
      },
    )
    await new Promise<void>((resolve) => {
      server.listen(0, '127.0.0.1', resolve)
    })
    try {
      process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
      const http = new AgentAuthHttp({
        baseUrl: `https://127.0.0.1:${(server.address() as {port: number}).port}`,
        clock: {now: () => 0, async sleep() {}},
        generation: 'v1',
        timeoutMs: 2000,
      })
      await assert.rejects(http.send({method: 'GET', path: '/health'}, 'v1', 'canary-token'))
      assert.deepEqual(received, [], 'a request reached a server that was not verified')
    } finally {
      if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved
      server.closeAllConnections()
      await new Promise((resolve) => {
        server.close(resolve)
      })
    }
  })

  describe('generation selection (§2)', () => {
    it('legacy server: /v1 is an HTML route miss, the legacy path answers, the profile becomes legacy', async () => {
      const h = await start('legacy')
      const {agentId, apiKey} = h.server.seedAgent()
      const answer = await h.http.call(verifyOperation(agentId, apiKey))
      assert.equal(answer.status, 200)
      assert.equal(answer.generation, 'legacy')
      assert.deepEqual(h.generations, ['legacy'])
      assert.deepEqual(
        h.server.requests.map((r) => r.pathname),
        ['/v1/agents/verify', '/agents/verify'],
      )
      // From now on straight to the legacy path.
      await h.http.call(verifyOperation(agentId, apiKey))
      assert.equal(h.server.requests.at(-1)!.pathname, '/agents/verify')
      assert.equal(h.server.requests.length, 3)
    })

    it('v1 server: the first answer on /v1 records v1; a real 404 is final (no fallback)', async () => {
      const h = await start('v1')
      const {agentId, apiKey} = h.server.seedAgent()
      await h.http.call(verifyOperation(agentId, apiKey))
      assert.deepEqual(h.generations, ['v1'])
      const verify = h.server.requests.at(-1)!
      const before = h.server.requests.length
      const {body} = await h.http.call(verifyOperation(agentId, apiKey))
      const access = (body as {token: {access_token: string}}).token.access_token
      const missing = await h.http.call({...getOperation('agt_missing'), token: access})
      assert.equal(missing.status, 404)
      assert.equal(missing.routeMiss, false)
      assert.equal(h.server.requests.length, before + 2, 'one request for the 404: no legacy retry')
      await fails(
        Promise.reject(errorFromAnswer(missing, {...context, operation: 'get the agent'})),
        6,
        'AGENTAUTH_NOT_FOUND',
      )
      assert.equal(verify.pathname, '/v1/agents/verify')
    })

    it('recorded legacy on a v1 server: a legacy route miss resets to unknown and retries on /v1', async () => {
      const {clock, server} = await startServer('v1')
      servers.push(server)
      const h = client(server, clock, 'legacy')
      const {agentId, apiKey} = server.seedAgent()
      // The un-prefixed v0.7 mount answers the legacy verify path: stays legacy (§2.4).
      const verified = await h.http.call(verifyOperation(agentId, apiKey))
      assert.equal(verified.status, 200)
      assert.deepEqual(h.generations, [])
      const access = (verified.body as {token: {access_token: string}}).token.access_token
      // …but v0.7 has no POST /agents/:id/revoke: JSON "Route not found" → unknown → /v1 → v1.
      const revoked = await h.http.call({...revokeOperation(agentId), token: access})
      assert.equal(revoked.status, 200)
      assert.deepEqual(h.generations, ['unknown', 'v1'])
      assert.deepEqual(
        server.requests.slice(-2).map((r) => `${r.method} ${r.pathname}`),
        [`POST /agents/${agentId}/revoke`, `PUT /v1/agents/${agentId}/status`],
      )
      assert.equal(server.state.agents.get(agentId)!.status, 'suspended')
    })

    it('legacy-only operations never change the generation; both paths missing is a route miss (exit 6)', async () => {
      const h = await start('v1')
      const catalogue = await h.http.call(catalogueOperation())
      assert.equal(catalogue.routeMiss, true)
      assert.deepEqual(h.generations, [])
      const both: Operation = {
        legacy: {method: 'GET', path: '/nowhere'},
        name: 'do nothing',
        v1: {method: 'GET', path: '/v1/nowhere'},
      }
      const answer = await h.http.call(both)
      assert.equal(answer.routeMiss, true)
      assert.equal(h.server.requests.length, 3)
      await fails(Promise.reject(errorFromAnswer(answer, context)), 6, 'AGENTAUTH_ROUTE_NOT_FOUND')
    })
  })

  describe('requests and errors (§3, §9)', () => {
    it('sends Accept, a JSON Content-Type only with a body, a Bearer token on JWT calls, no Origin, nothing secret in URLs', async () => {
      const h = await start('v1')
      const {agentId, apiKey} = h.server.seedAgent()
      const verified = await h.http.call(verifyOperation(agentId, apiKey))
      const access = (verified.body as {token: {access_token: string}}).token.access_token
      await h.http.call({...listOperation({limit: 5}), token: access})
      const [verify, list] = h.server.requests
      assert.equal(verify!.headers.accept, 'application/json')
      assert.equal(verify!.headers['content-type'], 'application/json')
      assert.equal(verify!.headers.authorization, undefined)
      assert.equal(list!.headers['content-type'], undefined)
      assert.equal(list!.headers.authorization, `Bearer ${access}`)
      assert.equal(list!.path, '/v1/agents?limit=5')
      for (const request of h.server.requests) {
        assert.equal(request.headers.origin, undefined)
        assert.ok(!request.path.includes(apiKey) && !request.path.includes(access))
      }
    })

    it('401 on verify is an auth error (exit 4) naming the server’s words; 403 is denied (exit 7)', async () => {
      const h = await start('legacy')
      const {agentId} = h.server.seedAgent({status: 'revoked'})
      const answer = await h.http.call(verifyOperation(agentId, 'ak_wrong'))
      const error = await fails(
        Promise.reject(errorFromAnswer(answer, {...context, route: 'verify'})),
        4,
        'AGENTAUTH_INVALID_CREDENTIALS',
      )
      assert.match(error.message, /Agent is not active \(status: revoked\)/)
      const plain = h.server.seedAgent({permissions: ['github:repos:read']})
      const verified = await h.http.call(verifyOperation(plain.agentId, plain.apiKey))
      const access = (verified.body as {token: {access_token: string}}).token.access_token
      const list = await h.http.call({...listOperation(), token: access})
      await fails(Promise.reject(errorFromAnswer(list, context)), 7, 'AGENTAUTH_FORBIDDEN')
    })

    it('409 and 413 are usage errors (exit 2) of kind conflict and too_large', async () => {
      const h = await start('v1', {bodyLimitBytes: 512})
      const big = await h.http.call(
        registerOperation({description: 'x'.repeat(600), name: 'big-agent', owner_email: 'a@b.co'}),
      )
      assert.equal(big.status, 413)
      const tooLarge = await fails(Promise.reject(errorFromAnswer(big, context)), 2, 'AGENTAUTH_TOO_LARGE')
      assert.equal(tooLarge.details?.kind, 'too_large')
      h.server.fault('POST', '/v1/agents/register', {
        body: '{"error":"Resource already exists","status":409,"details":"Duplicate entry"}',
        status: 409,
      })
      const conflict = await h.http.call(registerOperation({name: 'dup-agent', owner_email: 'a@b.co'}))
      const error = await fails(Promise.reject(errorFromAnswer(conflict, context)), 2, 'AGENTAUTH_CONFLICT')
      assert.equal(error.details?.kind, 'conflict')
      assert.match(error.message, /Resource already exists \(Duplicate entry\)/)
    })

    it('the status line stands in for a non-JSON error body', async () => {
      const h = await start('legacy')
      h.server.fault('GET', '/health', {body: '<h1>Bad</h1>', contentType: 'text/html', status: 400})
      const answer = await h.http.send({method: 'GET', path: '/health'}, 'v1')
      assert.equal(
        errorFromAnswer(answer, context).message,
        'AgentAuth refused to list agents: HTTP 400 Bad Request',
      )
    })
  })
})
