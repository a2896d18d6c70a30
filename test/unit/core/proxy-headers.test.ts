import fc from 'fast-check'
import assert from 'node:assert/strict'

import {AgentVaultError, DeniedError, SecretNotFoundError, UsageError} from '../../../src/core/errors.js'
import {
  canonicalHeaderKey,
  injectionFlags,
  parseProxyHeaders,
  ProxyRequestError,
} from '../../../src/core/proxy/headers.js'
import {answerFor} from '../../../src/core/proxy/responses.js'
import {parseInjections} from '../../../src/core/use/specs.js'

const TARGET = {'x-as-target-url': ['https://api.example.com/v1']}

describe('proxy: X-AS-* headers', () => {
  it("canonicalises names as Go's textproto does (protocols/agentsecrets.md §5.3)", () => {
    assert.equal(canonicalHeaderKey('x-as-inject-query-api_key'), 'X-As-Inject-Query-Api_key')
    assert.equal(canonicalHeaderKey('x-as-inject-body-auth-token'), 'X-As-Inject-Body-Auth-Token')
    assert.equal(canonicalHeaderKey('X-AS-INJECT-HEADER-X-API-KEY'), 'X-As-Inject-Header-X-Api-Key')
    assert.equal(canonicalHeaderKey('a.b_c-d'), 'A.b_c-D')
  })

  it('reads every style, first values only, targets canonical, body `-` as `.`', () => {
    const spec = parseProxyHeaders(
      {
        ...TARGET,
        'x-as-inject-bearer': ['K1', 'K2'],
        'x-as-inject-header-x-api-key': ['local://K'],
        'x-as-inject-query-key': ['Q'],
        'x-as-inject-body-auth-token': ['B'],
        'x-as-method': ['post'],
        'x-as-agent-id': ['bot\r\nX: 1'],
        'x-trace': ['a', 'b'],
        host: ['127.0.0.1:8765'],
        'content-length': ['3'],
        'x-as-session-token': ['as_sess_x'],
      },
      'GET',
    )
    assert.deepEqual(spec.injections, [
      {key: 'K1', style: 'bearer'},
      {key: 'local://K', style: 'header', target: 'X-Api-Key'},
      {key: 'Q', style: 'query', target: 'Key'},
      {key: 'B', style: 'body', target: 'Auth.Token'},
    ])
    assert.equal(spec.method, 'POST')
    assert.equal(spec.agentId, 'bot??X: 1')
    assert.deepEqual(spec.headers, [['x-trace', 'a']])
  })

  it('AgentSecrets’ own 400 texts', () => {
    assert.throws(() => parseProxyHeaders({'x-as-inject-bearer': ['K']}, 'GET'), {
      message: 'X-AS-Target-URL header is required',
    })
    assert.throws(() => parseProxyHeaders(TARGET, 'GET'), {
      message: 'At least one X-AS-Inject-* header is required',
    })
    assert.throws(() => parseProxyHeaders({...TARGET, 'x-as-inject-query-': ['K']}, 'GET'), ProxyRequestError)
    assert.throws(
      () => parseProxyHeaders({...TARGET, 'x-as-inject-bearer': ['  ']}, 'GET'),
      ProxyRequestError,
    )
  })

  it('property: any header map parses or fails with ProxyRequestError; flags always parse back', () => {
    const name = fc.stringMatching(/^[!#$%&'*+.^_`|~\dA-Za-z-]{1,20}$/).map((text) => text.toLowerCase())
    const injectName = fc
      .tuple(fc.constantFrom('bearer', 'basic', 'header-', 'query-', 'body-', 'form-', 'cookie-', ''), name)
      .map(([style, rest]) => `x-as-inject-${style}${style.endsWith('-') ? rest : ''}`)
    const value = fc.string({maxLength: 30})
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.oneof(name, injectName, fc.constant('x-as-target-url')),
          fc.array(value, {maxLength: 2}),
        ),
        (headers) => {
          try {
            const spec = parseProxyHeaders(headers, 'GET')
            assert.ok(spec.injections.length > 0)
            for (const [header] of spec.headers) assert.ok(!header.startsWith('x-as-'))
            try {
              parseInjections(injectionFlags(spec.injections))
            } catch (error) {
              assert.ok(error instanceof UsageError || error instanceof ProxyRequestError, String(error))
            }
          } catch (error) {
            if (!(error instanceof ProxyRequestError)) throw error
            assert.ok(!/[\r\n]/.test(error.message))
          }
        },
      ),
      {numRuns: 500},
    )
  })
})

describe('proxy: error answers', () => {
  const injections = [{key: 'K', style: 'bearer' as const}]
  const body = (error: AgentVaultError): Record<string, string> =>
    JSON.parse(answerFor(error, injections).answer.body.toString('utf8')) as Record<string, string>

  it('allowlist refusals are shape B with the slug and the host', () => {
    const denied = new DeniedError('HOST_NOT_ALLOWED', 'Refused', {
      details: {allowlist: 'profile', host: 'api.example.com', reference: 'local://K'},
    })
    assert.equal(answerFor(denied, injections).answer.status, 403)
    assert.deepEqual(Object.keys(body(denied)), ['domain', 'error', 'message'])
    assert.equal(body(denied).error, 'domain_not_in_allowlist')
    const empty = new DeniedError('HOST_NOT_ALLOWED', 'Refused', {details: {allowlist: 'empty', host: 'h'}})
    assert.equal(body(empty).error, 'empty_allowlist')
    assert.equal(
      body(new DeniedError('PRIVATE_ADDRESS', 'Refused', {details: {host: 'h'}})).error,
      'ssrf_protection_blocked',
    )
  })

  it("not found is 502 `secret 'KEY' not found` with the key as sent", () => {
    const {answer} = answerFor(new SecretNotFoundError('local://K'), injections)
    assert.equal(answer.status, 502)
    assert.match(answer.body.toString('utf8'), /^\{"error":"secret 'K' not found/)
    assert.ok(answer.body.toString('utf8').endsWith('\n'))
  })

  it('property: a message with control characters never splits the body', () => {
    fc.assert(
      fc.property(fc.string(), (message) => {
        const {answer} = answerFor(new UsageError('X', message), injections)
        const text = answer.body.toString('utf8')
        assert.equal(text.indexOf('\n'), text.length - 1)
        JSON.parse(text)
      }),
    )
  })
})

describe('proxy: upstream headers passed on', () => {
  it('a concealed name becomes a valid token; names and values Node refuses are dropped and counted', async () => {
    const {validateHeaderName, validateHeaderValue} = await import('node:http')
    const {forwardableHeaders} = await import('../../../src/core/proxy/server.js')
    assert.deepEqual(
      forwardableHeaders({
        'content-length': '3',
        'x-ok': ['a', 'b'],
        'x-session-[REDACTED_BY_AGENTSECRETS]': 'active',
        'x bad': 'v',
        'x-nl': 'a\r\nb',
      }),
      [
        ['x-ok', 'a'],
        ['x-ok', 'b'],
        ['x-session-REDACTED_BY_AGENTSECRETS', 'active'],
        ['X-AgentVault-Dropped-Headers', '2'],
      ],
    )
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.array(fc.string()))), (headers) => {
        for (const [name, value] of forwardableHeaders(headers)) {
          validateHeaderName(name)
          validateHeaderValue(name, value)
        }
      }),
    )
  })
})
