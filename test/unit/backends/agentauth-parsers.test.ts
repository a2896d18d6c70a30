import fc from 'fast-check'
/**
 * The agentauth parsers under hostile input (fast-check): JWT claims, every response parser, the
 * error-body reader, Retry-After, webhook signatures and the stored-session reader. Whatever the
 * input, they return a value of the promised shape or throw an AgentVaultError — never anything
 * else — and no message quotes the input.
 */
import assert from 'node:assert/strict'
import {createHmac} from 'node:crypto'

import type {HttpAnswer} from '../../../src/backends/agentauth/http-client.js'

import {retryAfterMs} from '../../../src/backends/agentauth/http-client.js'
import {errorFromAnswer, serverMessage} from '../../../src/backends/agentauth/http-errors.js'
import {decodeJwtClaims} from '../../../src/backends/agentauth/jwt.js'
import {checkPermissions} from '../../../src/backends/agentauth/permissions.js'
import {
  parseActivityPage,
  parseAgent,
  parseAgentList,
  parseAgentUpdate,
  parseCatalogue,
  parseHealth,
  parseRefresh,
  parseRegister,
  parseVerify,
  parseWebhookCreated,
  parseWebhookEvents,
  parseWebhookList,
  parseWebhookRotated,
} from '../../../src/backends/agentauth/responses.js'
import {normaliseBaseUrl} from '../../../src/backends/agentauth/settings.js'
import {parseStoredSession} from '../../../src/backends/agentauth/token-store.js'
import {
  parseSignature,
  splitSecretAndBody,
  verifyWebhookSignature,
} from '../../../src/backends/agentauth/webhook-signature.js'
import {AgentVaultError} from '../../../src/core/errors.js'

const MARKER = 'hostile-marker-93c1'

/**
 * `fn(input)` returns, or throws an AgentVaultError whose message does not quote the marker (unless
 * `mayQuote`: a permission is no secret and naming it helps).
 */
function onlyTyped(fn: () => unknown, mayQuote = false): void {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof AgentVaultError, `untyped: ${String(error)}`)
    if (!mayQuote)
      assert.ok(!error.message.includes(MARKER), `the message quotes the input: ${error.message}`)
  }
}

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** JSON values biased towards the shapes the parsers look for, with hostile leaves. */
const leaf = fc.oneof(
  fc.string(),
  fc.constant(MARKER),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant('***'),
  fc.constant('2026-11-22T06:00:34.749+00:00'),
)
const hostile = fc.letrec((tie) => ({
  value: fc.oneof(
    {depthSize: 'small'},
    leaf,
    fc.array(tie('value'), {maxLength: 4}),
    fc.dictionary(
      fc.constantFrom(
        'agent_id',
        'api_key',
        'access_token',
        'refresh_token',
        'token',
        'agent',
        'agents',
        'logs',
        'activity',
        'pagination',
        'total',
        'has_more',
        'webhooks',
        'webhook',
        'secret',
        'id',
        'url',
        'events',
        'permissions',
        'status',
        'verified',
        'timestamp',
        'success',
        'credentials',
        'error',
        'message',
        'details',
        '__proto__',
        'constructor',
      ),
      tie('value'),
      {maxKeys: 8},
    ),
  ),
})).value

describe('agentauth parsers under hostile input', () => {
  it('decodeJwtClaims: only claims with a finite exp, or a typed error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.tuple(fc.string(), hostile, fc.string()).map(([h, p, s]) => `${b64(h)}.${b64(p)}.${b64(s)}`),
        ),
        (token) => {
          onlyTyped(() => {
            const claims = decodeJwtClaims(token)
            assert.ok(Number.isFinite(claims.exp))
            if (claims.agent_id !== undefined) assert.equal(typeof claims.agent_id, 'string')
          })
        },
      ),
      {numRuns: 2000},
    )
    const good = `${b64({alg: 'HS256'})}.${b64({agent_id: 'agt_1', exp: 2, tier: 'pro', type: 'refresh'})}.sig`
    assert.deepEqual(decodeJwtClaims(good), {agent_id: 'agt_1', exp: 2, tier: 'pro', type: 'refresh'})
    for (const bad of [
      '',
      'a.b',
      `a.${b64([1])}.c`,
      `a.${b64({exp: '1'})}.c`,
      `a.${b64({exp: 1})}.c.d`,
      `a.${b64({exp: 1})}.c=`,
    ])
      assert.throws(
        () => decodeJwtClaims(bad),
        (error: AgentVaultError) => error.code === 'UNEXPECTED_RESPONSE',
      )
  })

  it('every response parser: the promised shape or UNEXPECTED_RESPONSE', () => {
    const parsers: Array<(body: unknown) => unknown> = [
      parseVerify,
      parseRefresh,
      parseRegister,
      parseAgentList,
      parseAgent,
      (body) => parseAgentUpdate(body, 'revoke the agent'),
      parseActivityPage,
      parseWebhookCreated,
      parseWebhookList,
      (body) => parseWebhookRotated(body, '7'),
      parseWebhookEvents,
      parseCatalogue,
      parseHealth,
    ]
    fc.assert(
      fc.property(hostile, (body) => {
        for (const parse of parsers)
          try {
            parse(body)
          } catch (error) {
            assert.ok(error instanceof AgentVaultError, `untyped: ${String(error)}`)
            assert.equal(error.code, 'UNEXPECTED_RESPONSE')
            assert.equal(error.exitCode, 5)
          }
      }),
      {numRuns: 3000},
    )
  })

  it('parsers read both generations’ shapes', () => {
    assert.deepEqual(
      parseRegister({
        agent: {agent_id: 'agt_1', name: 'x', status: 'active'},
        credentials: {api_key: 'ak_1'},
      }),
      {
        agent_id: 'agt_1',
        api_key: 'ak_1',
        name: 'x',
        status: 'active',
      },
    )
    assert.equal(
      parseRegister({agent_id: 'agt_2', api_key: 'sk_2', created_at: '2026-11-22T06:00:34.749+00:00'})
        .created_at,
      '2026-11-22T06:00:34.749Z',
    )
    assert.deepEqual(parseRefresh({token: {access_token: 'a', refresh_token: 'r'}}), {
      access_token: 'a',
      refresh_token: 'r',
    })
    const legacyPage = parseActivityPage({
      activity: [
        {
          agent_id: 'a',
          id: 1,
          ip_address: null,
          reason: 'success',
          success: true,
          timestamp: '2026-11-22T06:00:43.225+00:00',
        },
      ],
      pagination: {count: 1, has_more: false, limit: 100, offset: 0, total: 1},
    })
    assert.deepEqual(legacyPage, {
      entries: [
        {
          agent_id: 'a',
          id: 1,
          ip_address: null,
          reason: 'success',
          success: true,
          timestamp: '2026-11-22T06:00:43.225Z',
        },
      ],
      hasMore: false,
      total: 1,
    })
    assert.deepEqual(
      parseCatalogue({
        permissions: {github: ['github:repos:read'], slack: ['slack:messages:read', 'github:repos:read']},
      }),
      ['github:repos:read', 'slack:messages:read'],
    )
    assert.deepEqual(parseWebhookRotated({secret: 's', webhook_id: 'uuid-1'}, 'x').webhook, {id: 'uuid-1'})
    assert.equal(parseWebhookList({webhooks: [{events: ['a'], id: 3, secret: '***', url: 'u'}]})[0]!.id, '3')
    assert.throws(() => parseWebhookCreated({id: 1, events: [], url: 'u', secret: '***'}))
    assert.throws(() => parseVerify({token: {access_token: 'a'}, agent: {agent_id: 'x'}, valid: true}))
  })

  it('serverMessage and errorFromAnswer: typed, bounded, free of control characters', () => {
    fc.assert(
      fc.property(
        hostile,
        fc.integer({max: 599, min: 100}),
        fc.boolean(),
        fc.string(),
        (body, status, json, statusText) => {
          const answer: HttpAnswer = {
            body,
            generation: 'v1',
            headers: {'ratelimit-reset': '5'},
            json,
            retries: 3,
            routeMiss: false,
            status,
            statusText,
          }
          const {details, text} = serverMessage(answer)
          for (const line of [text, ...details]) {
            assert.ok(line.length <= 301)
            assert.doesNotMatch(line, /[\u0000-\u001F]/)
          }

          const error = errorFromAnswer(answer, {operation: 'list agents', profile: 'p', route: 'jwt'}, 0)
          assert.ok(error instanceof AgentVaultError)
          assert.ok(error.suggestion)
        },
      ),
      {numRuns: 2000},
    )
  })

  it('retryAfterMs: undefined or 0–30 000 ms', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.nat().map(String),
          fc.date().map((d) => (Number.isNaN(d.getTime()) ? 'x' : d.toUTCString())),
        ),
        fc.nat(),
        (value, now) => {
          const ms = retryAfterMs(value, now)
          if (ms !== undefined) assert.ok(ms >= 0 && ms <= 30_000)
        },
      ),
    )
    assert.equal(retryAfterMs('1', 0), 1000)
    assert.equal(retryAfterMs(['2', '9'], 0), 2000)
  })

  it('stored sessions, base URLs and permissions: a value or a typed error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          hostile.map((v) => JSON.stringify(v)),
        ),
        (text) => {
          const session = parseStoredSession(text)
          if (session) assert.equal(typeof session.access_token, 'string')
          onlyTyped(() => normaliseBaseUrl(`${text}${MARKER}`, 'AGENTAUTH_BASE_URL'))
          onlyTyped(() => checkPermissions([text]), true)
        },
      ),
    )
    assert.equal(normaliseBaseUrl('https://a.example.com/v1/', 'x'), 'https://a.example.com')
    assert.equal(normaliseBaseUrl('https://a.example.com/auth/v1', 'x'), 'https://a.example.com/auth')
    assert.throws(
      () => normaliseBaseUrl(`https://user:${MARKER}@a.example.com`, 'x'),
      (error: AgentVaultError) => !error.message.includes(MARKER),
    )
    assert.deepEqual(checkPermissions(['github:repos:read', '*:*:*', 'svc-1:res_2:*']), [
      'github:repos:read',
      '*:*:*',
      'svc-1:res_2:*',
    ])
    for (const bad of ['github:repos', 'GitHub:repos:read', 'a::b', 'a:b:c:d', ' a:b:c'])
      assert.throws(
        () => checkPermissions([bad]),
        (error: AgentVaultError) => error.code === 'BAD_PERMISSION' && error.exitCode === 2,
      )
  })

  it('webhook signatures: exact HMAC over the raw bytes, constant-time, hostile input typed', () => {
    const secret = Buffer.from('whsec_0123')
    const body = Buffer.from('{"event":"agent.verified"}')
    const hex = createHmac('sha256', secret).update(body).digest('hex')
    verifyWebhookSignature(secret, body, parseSignature(hex))
    verifyWebhookSignature(secret, body, parseSignature(`sha256=${hex.toUpperCase()}`))
    assert.throws(
      () => verifyWebhookSignature(secret, Buffer.concat([body, Buffer.from(' ')]), parseSignature(hex)),
      (error: AgentVaultError) => error.code === 'SIGNATURE_MISMATCH' && error.exitCode === 7,
    )
    const split = splitSecretAndBody(Buffer.from('whsec_0123\r\n{"a":1}\n'))
    assert.equal(split.secret.toString(), 'whsec_0123')
    assert.equal(split.body.toString(), '{"a":1}\n')
    assert.equal(
      splitSecretAndBody(Buffer.from('whsec_0123\n'), Buffer.from('x')).secret.toString(),
      'whsec_0123',
    )
    fc.assert(
      fc.property(fc.string(), fc.uint8Array(), fc.uint8Array(), (signature, stdin, raw) => {
        onlyTyped(() => {
          const {body: b, secret: s} = splitSecretAndBody(Buffer.from(stdin))
          verifyWebhookSignature(s, b, parseSignature(signature))
        })
        onlyTyped(() =>
          verifyWebhookSignature(secret, Buffer.from(raw), parseSignature(`${MARKER}${signature}`)),
        )
      }),
    )
  })
})
