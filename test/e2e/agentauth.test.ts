/**
 * The agentauth backend and the `agents` commands through the built binary, against the AgentAuth
 * test server (test/servers/agentauth) of each generation running in this process. Time on the
 * server is a fake clock the tests move: token expiry is driven, never waited for.
 */
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type CliOptions, type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {type ExpectedFailure, expectFailure, parseJson} from '../helpers/e2e.js'
import {type FakeClock, GENERATIONS, startReceiver, startServer} from '../servers/agentauth/harness.js'
import {type AgentAuthTestServer} from '../servers/agentauth/server.js'

const MASK = '<concealed by agentvault>'

interface StatusRow {
  details?: Record<string, unknown>
  identity?: string
  kind: string
  name: string
  signedIn: boolean
}

for (const generation of GENERATIONS) {
  describe(`e2e: agentauth (${generation} server)`, () => {
    let t: Awaited<ReturnType<typeof tempHome>>
    let server: AgentAuthTestServer
    let clock: FakeClock
    let admin: {agentId: string; apiKey: string}
    let receiver: Awaited<ReturnType<typeof startReceiver>>
    const p = generation === 'v1' ? '/v1' : ''

    const cli = (args: string[], options: CliOptions = {}): Promise<CliResult> =>
      runCli(args, {...options, env: {...t.env, ...options.env}})
    const ok = async (args: string[], options: CliOptions = {}): Promise<CliResult> => {
      const result = await cli(args, options)
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
      return result
    }

    const json = async <T>(args: string[], options: CliOptions = {}): Promise<T> =>
      parseJson<T>(await cli([...args, '--json'], options))
    const failure = (args: string[], expected: ExpectedFailure, options: CliOptions = {}) =>
      expectFailure(args, {...options, env: {...t.env, ...options.env}}, expected)
    const login = (profile: string, apiKey = admin.apiKey, agentId = admin.agentId) =>
      ok(
        [
          'login',
          'agentauth',
          '--profile',
          profile,
          '--base-url',
          server.url,
          '--agent-id',
          agentId,
          '--api-key-stdin',
        ],
        {input: `${apiKey}\n`},
      )

    before(async () => {
      t = await tempHome()
      // Generous limits: rate limiting is the unit tests' business, and a 429 here would really wait.
      const generous = {limit: 100_000, windowMs: 900_000}
      ;({clock, server} = await startServer(generation, {authLimit: generous, globalLimit: generous}))
      receiver = await startReceiver()
      admin = server.seedAgent({name: 'e2e-admin', permissions: ['*:*:*']})
      // The profile `aa` may send its token to the server itself (for `call`).
      await ok([
        'profiles',
        'add',
        'aa',
        '--kind',
        'agentauth',
        '--default',
        '--set',
        `baseUrl=${server.url}`,
        '--set',
        'allowPrivateNetworks=true',
        '--set',
        'allowedDomains=["127.0.0.1"]',
      ])
    })

    after(async () => {
      await server.close()
      await receiver.close()
      await t.dispose()
    })

    describe('login, whoami, logout', () => {
      it('login with --api-key-stdin stores the tokens in the credential store, the settings in config.json', async () => {
        const result = await login('aa')
        assert.match(
          result.stderr,
          new RegExp(`Signed in to AgentAuth at ${server.url} as ${admin.agentId} \\(tier free`),
        )
        assert.equal(result.stdout, '')
        const config = JSON.parse(await readFile(join(t.env.AGENTVAULT_HOME!, 'config.json'), 'utf8')) as {
          profiles: Record<string, Record<string, unknown>>
        }
        assert.deepEqual(config.profiles.aa, {
          agentId: admin.agentId,
          allowedDomains: ['127.0.0.1'],
          allowPrivateNetworks: true,
          baseUrl: server.url,
          generation,
          kind: 'agentauth',
        })
        const paths = server.requests.map((r) => r.pathname)
        assert.deepEqual(
          paths,
          generation === 'v1' ? ['/v1/agents/verify'] : ['/v1/agents/verify', '/agents/verify'],
        )
      })

      it('login from AGENTAUTH_* env without prompting, into a new profile', async () => {
        const result = await json<{details: Record<string, unknown>; profile: string}>(
          ['login', 'agentauth', '--profile', 'from-env'],
          {
            env: {
              AGENTAUTH_AGENT_ID: admin.agentId,
              AGENTAUTH_API_KEY: admin.apiKey,
              AGENTAUTH_BASE_URL: server.url,
              CI: '1',
            },
          },
        )
        assert.equal(result.profile, 'from-env')
        assert.equal(result.details.agent_id, admin.agentId)
        assert.equal(result.details.generation, generation)
      })

      it('login failures: no key without a TTY (2), a wrong key (4), no base URL (3)', async () => {
        await failure(['login', 'agentauth', '--profile', 'aa', '--no-prompt'], {
          code: 2,
          errorCode: 'VALUE_REQUIRED',
          message: /API key/,
        })
        await failure(
          ['login', 'agentauth', '--profile', 'aa', '--api-key-stdin'],
          {code: 4, errorCode: 'AGENTAUTH_INVALID_CREDENTIALS'},
          {input: 'sk_wrong\n'},
        )
        await failure(
          ['login', 'agentauth', '--profile', 'nowhere', '--agent-id', 'agt_x'],
          {code: 3, errorCode: 'AGENTAUTH_BASE_URL_MISSING'},
          {env: {AGENTAUTH_API_KEY: 'k'}},
        )
      })

      it('whoami: agent, tier and expiry from the JWT claims', async () => {
        const {profiles} = await json<{profiles: StatusRow[]}>(['whoami'])
        const row = profiles.find((r) => r.name === 'aa')!
        assert.equal(row.signedIn, true)
        assert.equal(row.identity, admin.agentId)
        assert.equal(row.details?.agent_id, admin.agentId)
        assert.equal(row.details?.tier, 'free')
        assert.equal(row.details?.generation, generation)
        assert.equal(row.details?.reachable, true)
        assert.ok(Math.abs(Number(row.details?.expires_in_s) - 3600) < 60)
        const plain = await ok(['status'])
        assert.match(plain.stdout, /aa\s+agentauth\s+yes\s+agt_/)
      })
    })

    describe('tokens at work', () => {
      it('run --env T=agentauth://access-token prints the concealed form when piped', async () => {
        const result = await ok(['run', '--env', 'T=agentauth://access-token', '--', 'sh', '-c', 'echo $T'])
        assert.equal(result.stdout, `${MASK}\n`)
        const raw = await ok([
          'run',
          '--mask',
          'never',
          '--env',
          'T=agentauth://access-token',
          '--',
          'sh',
          '-c',
          'echo $T',
        ])
        assert.ok(
          server.state.issuedTokens.includes(raw.stdout.trim()),
          'the child got a token the server issued',
        )
      })

      it('a 2 s token is refreshed transparently mid-run (server clock moved on)', async () => {
        server.accessTtlSeconds = 2
        await login('aa')
        clock.advance(10_000)
        const before = server.requests.length
        const list = await json<{agents: Array<{agent_id: string}>}>(['agents', 'list'])
        assert.ok(list.agents.some((a) => a.agent_id === admin.agentId))
        assert.deepEqual(
          server.requests.slice(before).map((r) => `${r.method} ${r.pathname}`),
          [`POST ${p}/agents/refresh`, `GET ${p}/agents`],
        )
        // The child of `run` gets the refreshed token too, and it is accepted by the server.
        clock.advance(10_000)
        const raw = await ok([
          'run',
          '--mask',
          'never',
          '--env',
          'T=agentauth://access-token',
          '--',
          'sh',
          '-c',
          'echo $T',
        ])
        const token = raw.stdout.trim()
        assert.equal(server.state.issuedTokens.at(generation === 'v1' ? -2 : -1), token)
        server.accessTtlSeconds = 3600
        await login('aa')
      })

      it('an expired token is refreshed after the 401 and the call repeated', async () => {
        clock.advance(2 * 3_600_000)
        const before = server.requests.length
        await ok(['agents', 'get', admin.agentId])
        assert.deepEqual(
          server.requests
            .slice(before)
            .map((r) => `${r.method} ${r.pathname} ${r.faulted ? 'fault' : ''}`.trim()),
          [
            `GET ${p}/agents/${admin.agentId}`,
            `POST ${p}/agents/refresh`,
            `GET ${p}/agents/${admin.agentId}`,
          ],
        )
      })

      it('call --bearer agentauth://access-token sends a valid token and prints only the answer', async () => {
        const result = await json<{body: unknown; status: number}>([
          'call',
          `${server.url}${p}/agents/${admin.agentId}`,
          '--bearer',
          'agentauth://access-token',
        ])
        assert.equal(result.status, 200)
        assert.match(JSON.stringify(result.body), new RegExp(admin.agentId))
        const sent = server.requests.at(-1)!.headers.authorization
        assert.ok(sent && server.state.issuedTokens.includes(sent.replace('Bearer ', '')))
      })
    })

    describe('agents commands', () => {
      let created: {agent_id: string; api_key: string}

      it('register prints the API key once (stdout), warns, and keeps it out of config and the audit log', async () => {
        const plain = await ok([
          'agents',
          'register',
          '--name',
          'ci-deployer',
          '--owner-email',
          'ops@example.com',
          '--permission',
          'github:repos:read',
        ])
        const key = /api_key\s+(\S+)/.exec(plain.stdout)?.[1]
        assert.ok(key)
        assert.match(plain.stderr, /Save the API key now/)
        assert.ok(!plain.stderr.includes(key))
        created = await json([
          'agents',
          'register',
          '--name',
          'support-bot',
          '--owner-email',
          'ops@example.com',
          '--description',
          'triage',
        ])
        assert.match(created.api_key, generation === 'v1' ? /^sk_[0-9a-f]{64}$/ : /^ak_[0-9a-f]{48}$/)
        for (const file of ['config.json', 'audit.log']) {
          const text = await readFile(join(t.env.AGENTVAULT_HOME!, file), 'utf8')
          assert.ok(!text.includes(key) && !text.includes(created.api_key), `${file} has no API key`)
        }

        const audited = await ok(['audit', '--command', 'agents register', '--json'])
        const records = audited.stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>)
        assert.equal(records.length, 2)
        assert.deepEqual(
          [records[0]!.profile, records[0]!.backend, records[0]!.outcome],
          ['aa', 'agentauth', 'ok'],
        )
        await failure(
          [
            'agents',
            'register',
            '--name',
            'x-agent',
            '--owner-email',
            'a@b.co',
            '--permission',
            'GitHub:repos',
          ],
          {
            code: 2,
            errorCode: 'BAD_PERMISSION',
          },
        )
      })

      it('list, get, tier, revoke', async () => {
        const list = await json<{agents: Array<{agent_id: string; status: string}>}>([
          'agents',
          'list',
          '--limit',
          '10',
        ])
        assert.ok(list.agents.some((a) => a.agent_id === created.agent_id))
        const got = await json<{agent_id: string; name: string}>(['agents', 'get', created.agent_id])
        assert.equal(got.name, 'support-bot')
        const tier = await json<{agent_id: string; tier: string}>(['agents', 'tier', created.agent_id, 'pro'])
        assert.equal(tier.tier, 'pro')
        assert.equal(server.state.agents.get(created.agent_id)!.tier, 'pro')
        const revoked = await cli(['agents', 'revoke', created.agent_id])
        assert.equal(revoked.code, 0, revoked.stderr)
        assert.match(revoked.stderr, /stay valid until they expire \(up to an hour\)/)
        assert.equal(
          server.state.agents.get(created.agent_id)!.status,
          generation === 'v1' ? 'suspended' : 'revoked',
        )
        await failure(['agents', 'get', 'agt_missing'], {code: 6, errorCode: 'AGENTAUTH_NOT_FOUND'})
        await failure(['agents', 'tier', created.agent_id, 'gold'], {code: 2})
      })

      it('permissions: the server catalogue (legacy) or the built-in copy (v1)', async () => {
        const catalogue = await json<{permissions: string[]; source: string}>(['agents', 'permissions'])
        assert.equal(catalogue.source, generation === 'v1' ? 'builtin' : 'server')
        assert.equal(catalogue.permissions.length, 26)
        assert.ok(catalogue.permissions.includes('*:*:*'))
      })

      it('webhooks: events, register (secret once), list (no secrets), rotate-secret, delete', async () => {
        const {events} = await json<{events: string[]}>(['agents', 'webhooks', 'events'])
        const event = generation === 'v1' ? 'agent.updated' : 'agent.verified'
        assert.ok(events.includes(event))
        const plain = await ok(['agents', 'webhooks', 'register', '--url', receiver.url, '--event', event])
        const secret = /secret\s+(\S+)/.exec(plain.stdout)?.[1]
        assert.ok(secret)
        assert.match(plain.stderr, /Save the webhook secret now/)
        const listed = await json<{webhooks: Array<{id: string; url: string}>}>([
          'agents',
          'webhooks',
          'list',
        ])
        assert.equal(listed.webhooks.length, 1)
        assert.ok(!JSON.stringify(listed).includes(secret))
        const [hook] = listed.webhooks
        const rotated = await json<{secret: string; webhook: {id: string}}>([
          'agents',
          'webhooks',
          'rotate-secret',
          hook!.id,
        ])
        assert.notEqual(rotated.secret, secret)
        assert.equal(rotated.webhook.id, hook!.id)
        const deleted = await json<{deleted: string}>(['agents', 'webhooks', 'delete', hook!.id])
        assert.equal(deleted.deleted, hook!.id)
        assert.equal((await json<{webhooks: unknown[]}>(['agents', 'webhooks', 'list'])).webhooks.length, 0)
      })

      it('webhooks verify accepts a real delivery and rejects a tampered body (exit 7)', async () => {
        const event = generation === 'v1' ? 'agent.updated' : 'agent.verified'
        const created = await json<{secret: string}>([
          'agents',
          'webhooks',
          'register',
          '--url',
          receiver.url,
          '--event',
          event,
        ])
        const before = server.deliveries.length
        await (generation === 'v1' ? server.emit(event, admin.agentId, {tier: 'pro'}) : login('aa'))
        const [delivery] = (await server.waitForDeliveries(before + 1)).slice(before)
        const signature = delivery!.headers['X-AgentAuth-Signature']!
        const verify = ['agents', 'webhooks', 'verify', '--secret-stdin', '--signature', signature]
        const good = await ok(verify, {
          input: Buffer.concat([Buffer.from(`${created.secret}\n`), delivery!.body]),
        })
        assert.equal(good.stdout, 'valid\n')
        const bodyFile = join(t.home, 'delivery.json')
        await writeFile(bodyFile, delivery!.body)
        await ok([...verify.slice(0, -1), `sha256=${signature.toUpperCase()}`, '--body-file', bodyFile], {
          input: `${created.secret}\n`,
        })
        const tampered = Buffer.from(delivery!.body.toString().replace('"data"', '"data" '))
        const refused = await failure(
          verify,
          {code: 7, errorCode: 'SIGNATURE_MISMATCH'},
          {input: Buffer.concat([Buffer.from(`${created.secret}\n`), tampered])},
        )
        assert.ok(!refused.plain.stderr.includes(created.secret))
        await failure(['agents', 'webhooks', 'verify', '--signature', signature], {
          code: 2,
          errorCode: 'SECRET_STDIN_REQUIRED',
        })
      })
    })

    describe('audit --source agentauth', () => {
      it('pages through 250 activity entries with limit=100, each once, as audit events', async () => {
        for (let i = 0; i < 250; i++)
          server.state.logVerification(
            admin.agentId,
            i % 10 !== 0,
            generation === 'v1' ? 'Valid credentials' : 'success',
            '203.0.113.7',
          )
        const expected = server.state.activityOf(admin.agentId).length
        assert.ok(expected > 250)
        const before = server.requests.length
        // Profile `from-env` is the same agent: name one profile, or each entry shows once per profile.
        const result = await ok(['audit', '--source', 'agentauth', '--profile', 'aa', '--json'])
        const events = result.stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>)
        assert.equal(events.length, expected)
        const offsets = server.requests
          .slice(before)
          .filter((r) => r.pathname.endsWith('/activity'))
          .map((r) => new URL(r.path, 'http://x').searchParams.get('offset'))
        assert.deepEqual(offsets, ['0', '100', '200'])
        const denied = events.find((e) => e.outcome === 'denied' && e.ip === '203.0.113.7')!
        assert.equal(denied.source, 'agentauth')
        assert.equal(denied.backend, 'agentauth')
        assert.equal(denied.agent_id, admin.agentId)
        assert.equal(denied.reason, generation === 'v1' ? 'Valid credentials' : 'success')
        const own = events.filter((e) => e.ip === '127.0.0.1').map((e) => e.reason)
        assert.ok(
          own.includes(generation === 'v1' ? 'Invalid credentials' : 'invalid_api_key'),
          'the wrong-key login is there',
        )
        assert.match(String(denied.time), /Z$/)
        const times = events.map((e) => Date.parse(String(e.time)))
        assert.deepEqual(
          [...times].sort((a, b) => a - b),
          times,
          'time order',
        )
        const table = await ok([
          'audit',
          '--source',
          'agentauth',
          '--profile',
          'aa',
          '--status',
          'denied',
          '--limit',
          '3',
        ])
        assert.equal(table.stdout.trim().split('\n').length, 4)
        assert.match(table.stdout, /SOURCE\s+DETAIL/)
      })

      it('--source all merges the local trail with the activity in time order', async () => {
        const result = await ok(['audit', '--source', 'all', '--json'])
        const events = result.stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as {source?: string; time: string})
        const sources = new Set(events.map((e) => e.source))
        assert.ok(sources.has('local') && sources.has('agentauth'), [...sources].join(','))
        const times = events.map((e) => Date.parse(e.time))
        assert.deepEqual(
          [...times].sort((a, b) => a - b),
          times,
        )
        await failure(['audit', '--source', 'agentauth', '--follow'], {
          code: 2,
          errorCode: 'FOLLOW_LOCAL_ONLY',
        })
        // openbao has no audit source: --source does not offer it.
        await failure(['audit', '--source', 'openbao'], {
          code: 2,
          errorCode: 'USAGE',
          message: /--source=openbao to be one of: local, agentsecrets, agentauth, all/,
        })
      })
    })

    describe('rate limits and ended sessions', () => {
      before(async () => {
        await login('aa')
      })

      it('a 429 whose Retry-After is longer than agentvault waits fails at once (exit 8) with the reset time', async () => {
        const limited = {
          body: '{"error":"Too many requests, please try again later."}',
          headers: {'Retry-After': '3600'},
          status: 429,
        }
        const path = `${p}/agents/${admin.agentId}`
        server.fault('GET', path, limited, limited)
        const before = server.requests.length
        const {error} = await failure(['agents', 'get', admin.agentId], {
          code: 8,
          errorCode: 'AGENTAUTH_RATE_LIMITED',
          message: /resets at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/,
        })
        assert.doesNotMatch(error.message, /after 3 retries/)
        assert.equal(
          server.requests.slice(before).filter((r) => r.pathname === path).length,
          2,
          'one request per run (plain and --json): nothing retried',
        )
      })

      it('a revoked agent whose session needs a refresh: the session has ended (exit 4), as a fresh login says', async () => {
        const agent = server.seedAgent({name: 'soon-revoked'})
        await login('rev', agent.apiKey, agent.agentId)
        await ok(['agents', 'revoke', agent.agentId, '--profile', 'aa'])
        // The access token expires on the server's clock: the next call needs a refresh, which fails.
        clock.advance(2 * 3_600_000)
        const {error} = await failure(['agents', 'get', agent.agentId, '--profile', 'rev'], {
          code: 4,
          errorCode: 'AGENTAUTH_SESSION_EXPIRED',
          message: /session of profile rev has ended/,
        })
        assert.doesNotMatch(error.message, /denied refresh/)
        const fresh = await cli(
          [
            'login',
            'agentauth',
            '--profile',
            'rev',
            '--base-url',
            server.url,
            '--agent-id',
            agent.agentId,
            '--api-key-stdin',
          ],
          {input: `${agent.apiKey}\n`},
        )
        assert.equal(fresh.code, 4, fresh.stderr)
      })
    })

    describe('logout', () => {
      it('legacy revokes the refresh token first; v1 warns that it stays valid', async () => {
        const before = server.requests.length
        const result = await ok(['logout', 'agentauth', '--profile', 'aa'])
        const revoked = server.requests.slice(before).some((r) => r.pathname === '/agents/revoke-tokens')
        assert.equal(revoked, generation === 'legacy')
        if (generation === 'v1')
          assert.match(
            result.stderr,
            /cannot revoke tokens: the refresh token stays valid on the server until/,
          )
        const signedOut = await cli(['run', '--env', 'T=agentauth://access-token', '--', 'true'])
        assert.equal(signedOut.code, 4)
        assert.match(signedOut.stderr, /^Error: Not signed in to AgentAuth with profile aa/m)
      })
    })
  })
}
