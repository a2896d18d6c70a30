import createDebug from 'debug'
import assert from 'node:assert/strict'
import {createHmac} from 'node:crypto'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {format} from 'node:util'

import type {Backend, BackendContext} from '../../../src/core/backend.js'
import type {AgentVaultError} from '../../../src/core/errors.js'

import {parseReference} from '../../../src/core/references.js'
import {OTHER_SEED_HEX, VECTOR} from '../../servers/sanctum/fixtures.js'
import {
  AGENT,
  BULK_COUNT,
  bulkPath,
  bulkValue,
  CANARY,
  type HttpTarget,
  startHttpTarget,
  startStandardServer,
  writeSeedFile,
} from '../../servers/sanctum/harness.js'
import {type SanctumTestServer, type ServerDialect, type WireError} from '../../servers/sanctum/server.js'

const ref = (path: string) => parseReference(`sanctum://${path}`)

/**
 * mocha loads this file as CommonJS while the backend's lazy `import()`s load ES modules, so a
 * class imported here is not the one the backend throws: recognise agentvault errors by shape.
 */
function isAgentVaultError(error: unknown): error is AgentVaultError {
  const candidate = error as Partial<AgentVaultError>
  return (
    error instanceof Error &&
    typeof candidate.exitCode === 'number' &&
    typeof candidate.code === 'string' &&
    typeof candidate.category === 'string'
  )
}

/** Await `promise` and check it fails with an AgentVaultError of this exit code (and code). */
async function fails(
  promise: Promise<unknown>,
  exitCode: number,
  code?: string | RegExp,
): Promise<AgentVaultError> {
  try {
    await promise
  } catch (error) {
    assert.ok(isAgentVaultError(error), `not typed: ${String(error)}`)
    assert.equal(error.exitCode, exitCode, `${error.code}: ${error.message}`)
    if (typeof code === 'string') assert.equal(error.code, code, error.message)
    else if (code) assert.match(error.code, code)
    assert.ok(!error.message.includes(CANARY) && !(error.suggestion ?? '').includes(CANARY))
    assert.ok(!JSON.stringify(error.toJSON()).includes(CANARY))
    return error
  }

  assert.fail('expected a failure')
}

describe('sanctum backend against the test daemon', () => {
  let home: string
  let keyPath: string
  let server: SanctumTestServer
  let target: HttpTarget
  const opened: Backend[] = []
  const debugLines: string[] = []
  const originalLog = createDebug.log
  let createBackend: (context: BackendContext) => Backend | Promise<Backend>

  before(async () => {
    // Loaded as an ES module, as in production, so the backend sees one copy of core/errors.
    ;({createBackend} = await import('../../../src/backends/sanctum/index.js'))
    home = await mkdtemp(join(tmpdir(), 'sanctum-unit-'))
    keyPath = await writeSeedFile(join(home, 'keys'), 'agent.key')
    target = await startHttpTarget()
    createDebug.enable('agentvault:*')
    createDebug.log = (...args: unknown[]) => {
      debugLines.push(format(...args))
    }
  })

  after(async () => {
    createDebug.log = originalLog
    createDebug.disable()
    assert.ok(
      debugLines.some((line) => line.includes('→ retrieve')),
      'debug output was captured',
    )
    const forms = [CANARY, Buffer.from(CANARY).toString('hex'), Buffer.from(VECTOR.valueText).toString('hex')]
    for (const line of debugLines)
      assert.ok(!forms.some((form) => line.includes(form)), `debug output leaked a value: ${line}`)
    await target.close()
    await rm(home, {force: true, recursive: true})
  })

  beforeEach(async () => {
    server = await startStandardServer({ssrfAllowlist: [new URL(target.url).host]})
  })

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((backend) => backend.close()))
    await server.close()
  })

  function backend(settings: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Backend {
    const context: BackendContext = {
      env: {HOME: home, ...env},
      home: join(home, 'av'),
      interactive: false,
      profile: {
        implicit: false,
        kind: 'sanctum',
        name: 'unit',
        settings: {agent: AGENT, keyPath, socket: server.socketPath, ...settings},
      },
      warn() {},
    }
    const created = createBackend(context) as Backend
    opened.push(created)
    return created
  }

  const close = async (b: Backend): Promise<void> => {
    opened.splice(opened.indexOf(b), 1)
    await b.close()
  }

  for (const dialect of ['a', 'b'] as ServerDialect[]) {
    for (const transport of ['unix', 'tcp'] as const) {
      const make = (settings: Record<string, unknown> = {}) => {
        server.config.dialect = dialect
        return backend(
          transport === 'tcp'
            ? {host: '127.0.0.1', port: server.tcpPort, socket: undefined, ...settings}
            : settings,
        )
      }

      describe(`dialect ${dialect} over ${transport}`, () => {
        it('list: paths, types, tags and descriptions the policy allows, never values', async () => {
          const b = make()
          const all = await b.list!()
          assert.deepEqual(
            all.map((s) => s.name),
            [...Array.from({length: BULK_COUNT}, (_, i) => bulkPath(i)), 'canary/token', 'openai/api_key'],
          )
          assert.deepEqual(
            all.find((s) => s.name === 'openai/api_key'),
            {
              name: 'openai/api_key',
              type: 'api_key',
              description: 'prod',
              tags: ['ai'],
              created: '2026-01-01T00:00:00Z',
            },
          )
          assert.ok(!JSON.stringify(all).includes(CANARY))
          assert.deepEqual(
            (await b.list!('canary/')).map((s) => s.name),
            ['canary/token'],
          )
          assert.equal(server.stats.connections, 1)
        })

        it('get: the value, a lease released on close', async () => {
          const b = make()
          assert.equal((await b.get!(ref('openai/api_key'))).toString(), VECTOR.valueText)
          assert.equal((await b.get!(ref('canary/token'), {ttl: 30})).toString(), CANARY)
          assert.equal(server.outstandingLeases().length, 2)
          assert.deepEqual(
            server.outstandingLeases().map((lease) => lease.ttl),
            [300, 30],
          )
          await close(b)
          assert.equal(server.outstandingLeases().length, 0)
          assert.equal(server.stats.connections, 1)
          assert.equal(server.stats.handshakes, 1)
        })

        it(`resolveMany: ${BULK_COUNT} references over one connection and one handshake, all released`, async () => {
          const b = make()
          const refs = Array.from({length: BULK_COUNT}, (_, i) => ref(bulkPath(i)))
          const values = await b.resolveMany!(refs)
          for (const [i, r] of refs.entries()) assert.equal(values.get(r.canonical)?.toString(), bulkValue(i))
          assert.equal(server.outstandingLeases().length, BULK_COUNT)
          await close(b)
          assert.equal(server.stats.connections, 1)
          assert.equal(server.stats.handshakes, 1)
          assert.equal(server.outstandingLeases().length, 0)
          const methods = server.requests().map((r) => r.method)
          const release = dialect === 'a' ? 'release_lease' : 'lease.release'
          assert.equal(methods.filter((m) => m === release).length, BULK_COUNT)
        })

        it('use: http_request (every header_type), http_header, sign, encrypt and decrypt', async () => {
          const b = make()
          for (const [headerType, header, expected] of [
            ['bearer', 'authorization', `Bearer ${VECTOR.valueText}`],
            ['api_key', 'x-api-key', VECTOR.valueText],
            ['basic', 'authorization', `Basic ${VECTOR.basicBase64}`],
            ['custom', 'x-custom-auth', VECTOR.valueText],
          ] as const) {
            const result = await b.use!(ref('openai/api_key'), {
              operation: 'http_request',
              params: {
                method: 'POST',
                url: `${target.url}/v1/thing`,
                headers: {'content-type': 'text/plain'},
                body: 'hello',
                header_type: headerType,
                ...(headerType === 'custom' ? {header_name: 'X-Custom-Auth'} : {}),
              },
            })
            assert.equal(result.status, 201)
            assert.equal(JSON.parse(String(result.body)).ok, true)
            assert.equal((result.headers as Record<string, string>)['x-target'], 'yes')
            const seen = target.received.at(-1)
            assert.equal(seen?.headers[header], expected)
            assert.equal(seen?.body, 'hello')
            assert.equal(seen?.method, 'POST')
          }

          assert.deepEqual(
            await b.use!(ref('openai/api_key'), {operation: 'http_header', params: {header_type: 'basic'}}),
            {header_name: 'Authorization', header_value: `Basic ${VECTOR.basicBase64}`},
          )
          for (const [algorithm, hash] of [
            ['hmac-sha256', 'sha256'],
            ['hmac-sha512', 'sha512'],
          ] as const)
            assert.deepEqual(
              await b.use!(ref('openai/api_key'), {operation: 'sign', params: {algorithm, data: 'payload'}}),
              {
                signature: createHmac(hash, VECTOR.valueText).update('payload').digest('base64'),
              },
            )
          const {ciphertext} = await b.use!(ref('canary/token'), {
            operation: 'encrypt',
            params: {plaintext: 'hi there'},
          })
          assert.equal(typeof ciphertext, 'string')
          assert.deepEqual(
            await b.use!(ref('canary/token'), {operation: 'decrypt', params: {data: ciphertext}}),
            {
              plaintext: 'hi there',
            },
          )
          const again = await b.use!(ref('canary/token'), {operation: 'encrypt', params: {data: 'x'}})
          assert.deepEqual(
            await b.use!(ref('canary/token'), {operation: 'decrypt', params: {ciphertext: again.ciphertext}}),
            {
              plaintext: 'x',
            },
          )
          assert.equal(server.stats.connections, 1)
          // The use params travel unchanged.
          const use = server.requests().find((r) => r.method === (dialect === 'a' ? 'use' : 'credential.use'))
          assert.deepEqual((use?.params as Record<string, unknown>).params, {
            method: 'POST',
            url: `${target.url}/v1/thing`,
            headers: {'content-type': 'text/plain'},
            body: 'hello',
            header_type: 'bearer',
          })
        })

        it('a daemon-side SSRF refusal is denied (7) with the daemon’s detail', async () => {
          const error = await fails(
            make().use!(ref('openai/api_key'), {
              operation: 'http_request',
              params: {method: 'GET', url: 'http://10.1.2.3/'},
            }),
            7,
            'SSRF_BLOCKED',
          )
          assert.match(error.message, /10\.1\.2\.3 is a private address/)
        })
      })
    }
  }

  describe('wire transcript (§3–§5)', () => {
    it('dialect A: compact JSON, ids from 1, no jsonrpc, session_id where A wants it', async () => {
      server.config.dialect = 'a'
      const b = backend()
      await b.get!(ref('openai/api_key'), {ttl: 60})
      await b.list!()
      await b.use!(ref('openai/api_key'), {operation: 'http_header', params: {}})
      await close(b)
      const [connection] = server.connections
      const {frames} = connection!
      for (const [i, frame] of frames.entries()) {
        assert.equal(frame.raw.subarray(4).toString('utf8'), JSON.stringify(frame.message), 'compact JSON')
        assert.equal(frame.raw.readUInt32BE(0), frame.raw.length - 4)
        assert.deepEqual(Object.keys(frame.message), ['id', 'method', 'params'])
        assert.equal(frame.message.id, i + 1)
      }

      const messages = frames.map((f) => f.message)
      assert.deepEqual(
        messages.map((m) => m.method),
        ['authenticate', 'challenge_response', 'retrieve', 'list', 'use', 'release_lease'],
      )
      assert.deepEqual(messages[0]!.params, {agent_name: AGENT})
      const sessionId = 's-1'
      const challengeResponse = messages[1]!.params as Record<string, unknown>
      assert.equal(challengeResponse.session_id, sessionId)
      assert.match(String(challengeResponse.signature), /^[0-9a-f]{128}$/)
      assert.deepEqual(messages[2]!.params, {session_id: sessionId, path: 'openai/api_key', ttl: 60})
      assert.deepEqual(messages[3]!.params, {session_id: sessionId})
      assert.deepEqual(messages[4]!.params, {
        session_id: sessionId,
        path: 'openai/api_key',
        operation: 'http_header',
      })
      assert.deepEqual(messages[5]!.params, {lease_id: 'lease_1'})
    })

    it('signs the fixed challenge exactly as the §13 vector says', async () => {
      server.config.fixedChallenge = Buffer.from(VECTOR.challengeHex, 'hex')
      const b = backend()
      await b.list!()
      const response = server.requests().find((r) => r.method === 'challenge_response')
      assert.equal((response?.params as Record<string, unknown>).signature, VECTOR.signatureHex)
    })

    for (const style of ['string', 'object', 'code'] as const) {
      it(`auto falls back to dialect B on the same connection (unknown method as ${style})`, async () => {
        server.config.dialect = 'b'
        server.config.unknownMethodStyle = style
        const b = backend()
        assert.equal((await b.get!(ref('openai/api_key'))).toString(), VECTOR.valueText)
        await b.use!(ref('openai/api_key'), {operation: 'http_header', params: {}})
        await close(b)
        assert.equal(server.stats.connections, 1)
        const messages = server.requests()
        assert.deepEqual(
          messages.map((m) => [m.id, m.method]),
          [
            [1, 'authenticate'],
            [2, 'auth.challenge'],
            [3, 'auth.verify'],
            [4, 'credential.retrieve'],
            [5, 'credential.use'],
            [6, 'lease.release'],
          ],
        )
        assert.deepEqual(messages[1]!.params, {agent: AGENT})
        assert.deepEqual(Object.keys(messages[2]!.params as object), ['agent', 'signature'])
        assert.deepEqual(messages[3]!.params, {path: 'openai/api_key'})
        assert.deepEqual(messages[4]!.params, {path: 'openai/api_key', operation: 'http_header', params: {}})
        assert.ok(
          messages.every((m) => !('jsonrpc' in m) && !JSON.stringify(m.params).includes('session_id')),
        )
      })
    }

    it('dialect "b" never sends a dialect A name', async () => {
      const b = backend({dialect: 'b'})
      await b.list!()
      assert.deepEqual(
        server.requests().map((m) => m.method),
        ['auth.challenge', 'auth.verify', 'credential.list'],
      )
    })

    it('dialect "a" never falls back: the error suggests dialect "b"', async () => {
      server.config.dialect = 'b'
      const error = await fails(backend({dialect: 'a'}).list!(), 5)
      assert.match(error.suggestion ?? '', /dialect: "b"/)
      assert.deepEqual(
        server.requests().map((m) => m.method),
        ['authenticate'],
      )
    })

    it('any other authenticate error is final: no fallback', async () => {
      server.config.agents = {}
      await fails(backend().list!(), 4, 'AUTH_FAILED')
      assert.deepEqual(
        server.requests().map((m) => m.method),
        ['authenticate'],
      )
    })
  })

  describe('daemon errors (§10)', () => {
    it('wrong key: AUTH_FAILED (4), keeping detail, suggestion and docs_url', async () => {
      const wrong = await writeSeedFile(join(home, 'keys'), 'wrong.key', OTHER_SEED_HEX)
      const error = await fails(backend({keyPath: wrong}).list!(), 4, 'AUTH_FAILED')
      assert.match(error.message, /Authentication failed — bad signature/)
      assert.match(
        error.suggestion ?? '',
        /^test server: auth_failed\nDocs: https:\/\/docs\.sanctum\.test\/errors\/AUTH_FAILED$/,
      )
      assert.deepEqual(error.details?.context, {server: 'test'})
    })

    it('unknown agent: AUTH_FAILED (4)', async () => {
      const error = await fails(backend({agent: 'stranger'}).list!(), 4, 'AUTH_FAILED')
      assert.match(error.message, /unknown agent/)
    })

    it('authenticated: false is an auth error (4)', async () => {
      server.config.confirmAuthentication = false
      const error = await fails(backend().list!(), 4, 'SANCTUM_NOT_AUTHENTICATED')
      assert.match(error.message, /Authentication not confirmed/)
    })

    it('ACCESS_DENIED and POLICY_DENIED: denied (7)', async () => {
      await fails(backend().get!(ref('denied/secret')), 7, 'ACCESS_DENIED')
      server.config.denialCode = 'POLICY_DENIED'
      await fails(backend().get!(ref('denied/secret')), 7, 'POLICY_DENIED')
    })

    it('VAULT_LOCKED: the handshake works, credential calls are refused (5)', async () => {
      server.config.locked = true
      const error = await fails(backend().get!(ref('openai/api_key')), 5, 'VAULT_LOCKED')
      assert.equal(server.stats.handshakes, 1)
      assert.equal(error.details?.sanctum_category, 'locked')
    })

    it('RATE_LIMITED (8) with its context', async () => {
      server.config.rateLimit = {limit: 2, windowMs: 60_000}
      const b = backend()
      await b.get!(ref('openai/api_key'))
      await b.list!()
      const error = await fails(b.get!(ref('canary/token')), 8, 'RATE_LIMITED')
      assert.deepEqual(error.details?.context, {limit: 2, window_s: 60})
      await close(b)
      assert.equal(server.outstandingLeases().length, 0)
    })

    it('every code maps to its category; plain strings and unknown codes are backend errors', async () => {
      const cases: Array<[WireError, number, string]> = [
        [{code: 'CREDENTIAL_NOT_FOUND', message: 'x'}, 6, 'CREDENTIAL_NOT_FOUND'],
        [{code: 'NOT_FOUND', message: 'x'}, 6, 'NOT_FOUND'],
        [{code: 'LEASE_EXPIRED', message: 'x'}, 5, 'LEASE_EXPIRED'],
        [{code: 'LEASE_EXHAUSTED', message: 'max accesses reached'}, 5, 'LEASE_EXHAUSTED'],
        [{code: 'SSRF_BLOCKED', message: 'x'}, 7, 'SSRF_BLOCKED'],
        [{code: 'SESSION_EXPIRED', message: 'x'}, 4, 'SESSION_EXPIRED'],
        [{code: 'SOMETHING_NEW', message: 'x'}, 5, 'SOMETHING_NEW'],
        [{code: 42, message: 'x'}, 5, 'SANCTUM_ERROR'],
        [{message: 'no code'}, 5, 'SANCTUM_ERROR'],
        ['something went wrong', 5, 'SANCTUM_ERROR'],
      ]
      for (const [error, exitCode, code] of cases) {
        // SESSION_EXPIRED is retried once after signing in again.
        server.inject('retrieve', {kind: 'error', error}, {count: code === 'SESSION_EXPIRED' ? 2 : 1})
        const failure = await fails(backend().get!(ref('openai/api_key')), exitCode, code)
        if (typeof error === 'string') assert.match(failure.message, /something went wrong/)
      }
    })

    it('string-style errors from the daemon: backend errors carrying the text', async () => {
      server.config.errorStyle = 'string'
      const error = await fails(backend().get!(ref('denied/secret')), 5, 'SANCTUM_ERROR')
      assert.match(error.message, /ACCESS_DENIED: Access denied/)
    })

    it('daemon text is cleaned of control characters', async () => {
      server.inject('retrieve', {
        kind: 'error',
        error: {code: 'ACCESS_DENIED', message: 'no\u001B[31m way', detail: 'a\nb'},
      })
      const error = await fails(backend().get!(ref('openai/api_key')), 7)
      assert.ok(!/[\u0000-\u001F]/.test(error.message), error.message)
    })

    it('CREDENTIAL_NOT_FOUND from the daemon: not found (6)', async () => {
      await fails(backend().get!(ref('missing/thing')), 6, 'CREDENTIAL_NOT_FOUND')
    })
  })

  describe('sessions and leases (§11)', () => {
    it(`SESSION_EXPIRED mid-command: one re-authentication, then every reference resolves`, async () => {
      server.expireSessionsAfter(5)
      const b = backend()
      const refs = Array.from({length: BULK_COUNT}, (_, i) => ref(bulkPath(i)))
      const values = await b.resolveMany!(refs)
      assert.equal(values.size, BULK_COUNT)
      assert.equal(server.stats.handshakes, 2)
      assert.equal(server.stats.connections, 1)
      await close(b)
      assert.equal(server.outstandingLeases().length, 0)
    })

    it('SESSION_EXPIRED by session lifetime (injected clock); a second expiry is an auth error', async () => {
      let now = 1_000_000
      server.config.now = () => now
      server.config.sessionLifetimeMs = 1000
      const b = backend()
      await b.get!(ref('openai/api_key'))
      now += 5000
      assert.equal((await b.get!(ref('canary/token'))).toString(), CANARY)
      assert.equal(server.stats.handshakes, 2)
      server.inject(
        'retrieve',
        {kind: 'error', error: {code: 'SESSION_EXPIRED', message: 'expired'}},
        {count: 2},
      )
      await fails(b.get!(ref('openai/api_key')), 4, 'SESSION_EXPIRED')
      assert.equal(server.stats.handshakes, 3)
    })

    it('re-authenticates on a new connection when the daemon closed the old one', async () => {
      const b = backend()
      await b.get!(ref('openai/api_key'))
      server.inject('list', {
        kind: 'error',
        error: {code: 'SESSION_EXPIRED', message: 'expired'},
        hangUp: true,
      })
      assert.ok((await b.list!()).length > 0)
      assert.equal(server.stats.connections, 2)
      assert.equal(server.stats.handshakes, 2)
      await close(b)
      assert.equal(
        server.outstandingLeases().length,
        0,
        'the first connection’s lease is released on the second',
      )
    })

    it('a lease past its TTL: release answers LEASE_EXPIRED, close swallows and counts it', async () => {
      let now = 1_000_000
      server.config.now = () => now
      const b = backend()
      await b.get!(ref('openai/api_key'), {ttl: 1})
      await b.get!(ref('canary/token'))
      now += 2000
      const before = debugLines.length
      await close(b)
      assert.deepEqual(
        [...server.leases.values()].map((lease) => lease.state),
        ['expired', 'released'],
      )
      assert.ok(debugLines.slice(before).some((line) => line.includes('released 1 leases, 1 failed')))
    })

    it('LEASE_EXPIRED on retrieve is a clear error (5)', async () => {
      server.inject('retrieve', {kind: 'error', error: {code: 'LEASE_EXPIRED', message: 'Lease expired'}})
      const error = await fails(backend().get!(ref('openai/api_key')), 5, 'LEASE_EXPIRED')
      assert.equal(error.details?.sanctum_category, 'lease')
    })

    it('leases of references that resolved are released when another fails', async () => {
      const b = backend()
      await fails(b.resolveMany!([ref('openai/api_key'), ref('denied/secret'), ref('canary/token')]), 7)
      await close(b)
      assert.equal(server.outstandingLeases().length, 0)
    })

    it('an unknown lease id on release answers NOT_FOUND (or {}), swallowed', async () => {
      const b = backend()
      await b.get!(ref('openai/api_key'))
      server.leases.clear()
      await close(b)
      server.config.unknownLeaseOk = true
      const c = backend()
      await c.get!(ref('openai/api_key'))
      await close(c)
    })
  })

  describe('transport faults', () => {
    const bulk = Array.from({length: BULK_COUNT}, (_, i) => ref(bulkPath(i)))
    const resolvesAll = async (b: Backend): Promise<void> => {
      const values = await b.resolveMany!(bulk)
      for (const [i, r] of bulk.entries()) assert.equal(values.get(r.canonical)?.toString(), bulkValue(i))
    }

    it('responses written one byte at a time', async () => {
      server.config.write = {kind: 'bytes', pauseMs: 0}
      server.config.dialect = 'b'
      const b = backend()
      assert.equal((await b.get!(ref('openai/api_key'))).toString(), VECTOR.valueText)
      assert.equal(server.stats.handshakes, 1)
    })

    it('responses split into K writes, one split inside the header', async () => {
      server.config.write = {kind: 'chunks', chunks: 5, pauseMs: 1}
      await resolvesAll(backend())
    })

    it('coalesced responses (several frames in one write)', async () => {
      server.config.hold = {count: BULK_COUNT, method: 'retrieve', oneWrite: true}
      await resolvesAll(backend())
    })

    it('out-of-order responses are matched by id', async () => {
      server.config.hold = {count: BULK_COUNT, method: 'retrieve', reverse: true}
      await resolvesAll(backend())
    })

    it('a response whose id matches no request: protocol error, all pending rejected', async () => {
      server.inject('retrieve', {kind: 'stray-id'})
      await fails(backend().resolveMany!(bulk), 5, 'SANCTUM_PROTOCOL')
    })

    it('an oversized frame header: SanctumFrameTooLargeError without waiting for the body', async () => {
      server.inject('retrieve', {kind: 'oversize', declared: 4096 + 1})
      const error = await fails(
        backend({maxFrameBytes: 4096}).get!(ref('openai/api_key')),
        5,
        'SANCTUM_FRAME_TOO_LARGE',
      )
      assert.deepEqual(error.details, {declared: 4097, allowed: 4096})
    })

    it('connection closed mid-frame: connection-closed error for every pending request', async () => {
      server.inject('retrieve', {kind: 'close-mid-frame'})
      await fails(backend().resolveMany!(bulk), 5, 'SANCTUM_CONNECTION_CLOSED')
    })

    it('connection closed with a request unanswered', async () => {
      server.inject('list', {kind: 'hang-up'})
      await fails(backend().list!(), 5, 'SANCTUM_CONNECTION_CLOSED')
    })

    it('a daemon that never answers: timeout after timeoutMs, no hang', async () => {
      server.inject('retrieve', {kind: 'never-answer'})
      const started = Date.now()
      const error = await fails(backend({timeoutMs: 300}).get!(ref('openai/api_key')), 5, 'SANCTUM_TIMEOUT')
      assert.ok(Date.now() - started < 3000)
      assert.match(error.message, /did not answer retrieve within 300 ms/)
    })

    it('a daemon that never answers the handshake times out too', async () => {
      server.inject('authenticate', {kind: 'never-answer'})
      await fails(backend({timeoutMs: 200}).list!(), 5, 'SANCTUM_TIMEOUT')
    })

    it('garbage bytes: typed protocol errors', async () => {
      server.inject('retrieve', {kind: 'raw', bytes: Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')})
      await fails(backend().get!(ref('openai/api_key')), 5, 'SANCTUM_FRAME_TOO_LARGE')
      server.inject('retrieve', {kind: 'raw', bytes: Buffer.from([0, 0, 0, 5, 0x68, 0x65, 0x6c, 0x6c, 0x6f])})
      await fails(backend().get!(ref('openai/api_key')), 5, 'SANCTUM_PROTOCOL')
      server.inject('retrieve', {kind: 'raw', bytes: Buffer.from([0, 0, 0, 0])})
      await fails(backend().get!(ref('openai/api_key')), 5, 'SANCTUM_PROTOCOL')
    })

    it('bad hex (A) is a protocol error, and its lease is still released', async () => {
      server.config.credentials['openai/api_key']!.wireValue = 'zz-not-hex'
      const b = backend()
      const error = await fails(b.get!(ref('openai/api_key')), 5, 'SANCTUM_PROTOCOL')
      assert.match(error.message, /not hex/)
      server.config.credentials['openai/api_key']!.wireValue = 'ff'
      await fails(backend().get!(ref('openai/api_key')), 5, 'SANCTUM_PROTOCOL')
      await Promise.all(opened.splice(0).map((x) => x.close()))
      assert.equal(server.outstandingLeases().length, 0)
    })

    it('a non-string value (B) is passed through JSON.stringify', async () => {
      server.config.dialect = 'b'
      server.config.credentials['openai/api_key']!.wireValue = {user: 'u', n: 1}
      assert.equal((await backend().get!(ref('openai/api_key'))).toString(), '{"user":"u","n":1}')
    })

    it('a retrieve result without lease_id is a protocol error', async () => {
      server.inject('retrieve', {kind: 'result', result: {value: VECTOR.valueHex}})
      await fails(backend().get!(ref('openai/api_key')), 5, 'SANCTUM_PROTOCOL')
    })

    it('dialect B success:false: a backend error with the output as detail', async () => {
      server.config.dialect = 'b'
      const error = await fails(
        backend().use!(ref('openai/api_key'), {operation: 'sign', params: {algorithm: 'md5', data: 'x'}}),
        5,
        'SANCTUM_USE_FAILED',
      )
      assert.match(error.message, /unsupported algorithm md5/)
    })

    it('nothing listening: unreachable (5), fast', async () => {
      await fails(backend({socket: join(home, 'nope.sock')}).list!(), 5, 'SANCTUM_UNREACHABLE')
      await server.close()
      await fails(backend({host: '127.0.0.1', port: server.tcpPort}).list!(), 5, 'SANCTUM_UNREACHABLE')
    })

    it('a request larger than maxFrameBytes is refused locally: nothing sent', async () => {
      const b = backend({maxFrameBytes: 2048})
      await b.get!(ref('openai/api_key'))
      const before = server.stats.requests
      await fails(
        b.use!(ref('openai/api_key'), {
          operation: 'http_request',
          params: {body: 'x'.repeat(4096), url: target.url},
        }),
        2,
        'SANCTUM_REQUEST_TOO_LARGE',
      )
      assert.equal(server.stats.requests, before)
    })
  })

  describe('local refusals (no wire traffic)', () => {
    it('a key file others can read is refused before connecting', async () => {
      const open = await writeSeedFile(join(home, 'keys'), 'open.key', VECTOR.seedHex, 0o644)
      await fails(backend({keyPath: open}).list!(), 4, 'SANCTUM_KEY_TOO_OPEN')
      assert.equal(server.stats.connections, 0)
    })

    it('use operations other than the five: not supported (2)', async () => {
      const error = await fails(
        backend().use!(ref('openai/api_key'), {operation: 'verify', params: {}}),
        2,
        'NOT_SUPPORTED',
      )
      assert.match(error.message, /not supported by sanctum/)
      assert.equal(server.stats.connections, 0)
    })

    it('set and delete: "not supported over the agent protocol" with the vault-host commands', () => {
      const b = backend()
      const set = b.explainUnsupported!('set', ref('team/key'))
      assert.equal(set.exitCode, 2)
      assert.match(set.message, /not supported over the agent protocol/)
      assert.match(set.suggestion ?? '', /sanctum store team\/key/)
      const del = b.explainUnsupported!('delete', ref('team/key'))
      assert.match(del.suggestion ?? '', /sanctum store team\/key.*sanctum remove team\/key/)
      assert.equal(b.capabilities.set, false)
      assert.equal(b.capabilities.delete, false)
      assert.equal(server.stats.connections, 0)
    })

    it('no agent configured: a config error (3)', async () => {
      await fails(backend({agent: undefined}).list!(), 3, 'SANCTUM_AGENT_REQUIRED')
    })
  })

  describe('status', () => {
    it('reachable and signed in, with the dialect', async () => {
      server.config.dialect = 'b'
      assert.deepEqual(await backend().status(), {
        details: {agent: AGENT, dialect: 'b', endpoint: `unix:${server.socketPath}`},
        identity: AGENT,
        reachable: true,
        signedIn: true,
      })
    })

    it('reachable but refused; unreachable', async () => {
      const wrong = await writeSeedFile(join(home, 'keys'), 'wrong.key', OTHER_SEED_HEX)
      const refused = await backend({keyPath: wrong}).status()
      assert.equal(refused.reachable, true)
      assert.equal(refused.signedIn, false)
      const open = await writeSeedFile(join(home, 'keys'), 'open2.key', VECTOR.seedHex, 0o644)
      const badKey = await backend({keyPath: open}).status()
      assert.equal(badKey.reachable, true)
      assert.match(badKey.message ?? '', /chmod 600/)
      const down = await backend({socket: join(home, 'nope.sock')}).status()
      assert.equal(down.reachable, false)
      assert.match(down.message ?? '', /Cannot reach/)
    })
  })
})
