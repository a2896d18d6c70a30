import assert from 'node:assert/strict'

import type {Profile} from '../../../src/core/config.js'

import {AgentVaultError} from '../../../src/core/errors.js'
import {type EngineOptions, performHttp, planHttp, type SecretPolicy} from '../../../src/core/use-engine.js'
import {
  closeConnections,
  type OutgoingRequest,
  type RequestGuards,
  reuseConnections,
  sendRequest,
} from '../../../src/core/use/http-client.js'
import {until} from '../../helpers/e2e.js'
import {startStaleUpstream, startUpstream, type Upstream} from '../../servers/http-upstream/index.js'

const CANARY = 'canary-http-unit-5d1e'

function rejectsWith(code: string, exitCode: number) {
  return (error: unknown) => {
    assert.ok(error instanceof AgentVaultError, String(error))
    assert.equal(error.code, code, error.message)
    assert.equal(error.exitCode, exitCode)
    assert.ok(error.suggestion, 'has a Try this')
    assert.ok(!error.message.includes(CANARY))
    return true
  }
}

/** A resolver that answers every name with 127.0.0.1. */
async function resolve(): Promise<Array<{address: string; family: number}>> {
  return [{address: '127.0.0.1', family: 4}]
}

function guards(extra: Partial<RequestGuards> = {}): RequestGuards {
  return {
    allowPrivateNetworks: true,
    carriesSecret: () => false,
    checkRedirect() {},
    maxRedirects: 5,
    maxResponseBytes: 1024 * 1024,
    timeoutMs: 5000,
    ...extra,
  }
}

function get(url: string, extra: Partial<OutgoingRequest> = {}): OutgoingRequest {
  return {
    credentialHeaders: new Set(),
    credentialInBody: false,
    headers: [],
    method: 'GET',
    url: new URL(url),
    ...extra,
  }
}

/** The event loop's next turn: a finished response's socket is back in its agent's idle list. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    setImmediate(resolve)
  })
}

describe('core/use http client and engine (against a loopback upstream)', () => {
  let upstream: Upstream
  const profile: Profile = {
    implicit: false,
    kind: 'local',
    name: 'lp',
    settings: {allowPrivateNetworks: true, allowedDomains: ['127.0.0.1']},
  }
  const policy: SecretPolicy = {profile, reference: 'local://K'}
  const options: EngineOptions = {
    allowHosts: [],
    caCertFiles: [],
    maxResponseBytes: 1024 * 1024,
    timeoutMs: 5000,
  }

  before(async () => {
    upstream = await startUpstream({tls: true})
  })

  after(() => upstream.close())

  it('connects to exactly the addresses it checked: one resolution, pinned (no rebinding gap)', async () => {
    const lookups: string[] = []
    const {port} = new URL(upstream.url('/', {host: '127.0.0.2'}))
    const response = await sendRequest(
      get(`http://rebind.test:${port}/pinned`),
      guards({
        async resolve(hostname) {
          lookups.push(hostname)
          return [{address: '127.0.0.2', family: 4}]
        },
      }),
    )
    assert.equal(response.status, 200)
    assert.deepEqual(lookups, ['rebind.test'])
    const received = upstream.last('/pinned')
    assert.equal(received.host, '127.0.0.2')
    assert.equal(received.headers.host, `rebind.test:${port}`)
  })

  it('kept-alive (proxy): a request that takes an idle socket asks DNS no more, and still passes the guard', async () => {
    const lookups: string[] = []
    const {port} = new URL(upstream.url('/', {host: '127.0.0.2'}))
    const counting = guards({
      async resolve(hostname) {
        lookups.push(hostname)
        return [{address: '127.0.0.2', family: 4}]
      },
    })
    reuseConnections()
    try {
      for (let i = 0; i < 3; i++) {
        assert.equal((await sendRequest(get(`http://rebind.test:${port}/kept-${i}`), counting)).status, 200)
        await nextTurn()
      }

      // The first request resolved; the others took its idle socket, connected to 127.0.0.2.
      assert.deepEqual(lookups, ['rebind.test'])
      assert.equal(upstream.last('/kept-2').host, '127.0.0.2')
      // Another profile's guard refuses private addresses: the idle socket is not taken, and the
      // fresh resolution is refused before connecting.
      await assert.rejects(
        sendRequest(get(`http://rebind.test:${port}/refused`), {...counting, allowPrivateNetworks: false}),
        rejectsWith('PRIVATE_ADDRESS', 7),
      )
      assert.deepEqual(lookups, ['rebind.test', 'rebind.test'])
      // No idle socket left (closed): resolved again.
      closeConnections()
      assert.equal((await sendRequest(get(`http://rebind.test:${port}/again`), counting)).status, 200)
      assert.deepEqual(lookups, ['rebind.test', 'rebind.test', 'rebind.test'])
    } finally {
      closeConnections()
    }
  })

  it('pooled (proxy, mcp): an idempotent request goes again when the server closed the connection it reused; a POST does not', async () => {
    const stale = await startStaleUpstream()
    const {url} = stale
    reuseConnections()
    try {
      for (const method of ['GET', 'GET', 'PUT']) {
        assert.equal((await sendRequest(get(url, {method}), guards())).status, 200, method)
        await nextTurn()
      }

      assert.equal(stale.served(), 3, 'each went again on a new connection')
      await assert.rejects(
        sendRequest(get(url, {body: Buffer.from('x'), method: 'POST'}), guards()),
        rejectsWith('UPSTREAM_UNREACHABLE', 5),
      )
      assert.equal(stale.served(), 3, 'a POST is not sent twice')
    } finally {
      closeConnections()
      await stale.close()
    }
  })

  it('a pinned connection still verifies TLS against the host name', async () => {
    const {readFile} = await import('node:fs/promises')
    const ca = [await readFile(upstream.caFile!, 'utf8')]
    const named = upstream.url('/tls-name', {host: 'localhost', secure: true})
    assert.equal((await sendRequest(get(named), guards({ca, resolve}))).status, 200)
    await assert.rejects(
      sendRequest(get(named.replace('localhost', 'wrong-name.test')), guards({ca, resolve})),
      rejectsWith('TLS_VERIFY_FAILED', 3),
    )
    await assert.rejects(sendRequest(get(named), guards({resolve})), rejectsWith('TLS_VERIFY_FAILED', 3))
  })

  it('refuses a host when any resolved address is private, before connecting', async () => {
    const before = upstream.requests.length
    await assert.rejects(
      sendRequest(
        get('http://mixed.test/'),
        guards({
          allowPrivateNetworks: false,
          resolve: async () => [
            {address: '8.8.8.8', family: 4},
            {address: '127.0.0.1', family: 4},
          ],
        }),
      ),
      rejectsWith('PRIVATE_ADDRESS', 7),
    )
    await assert.rejects(
      sendRequest(get('http://[::ffff:169.254.169.254]/'), guards()),
      rejectsWith('METADATA_ADDRESS', 7),
    )
    await assert.rejects(sendRequest(get('http://0.0.0.0/'), guards()), rejectsWith('RESERVED_ADDRESS', 7))
    assert.equal(upstream.requests.length, before)
  })

  it('plain http:// with a credential reaches only loopback addresses, whatever DNS answers for the name', async () => {
    // `app.localhost` passes the name check for plain HTTP; glibc asks DNS for it ("files dns").
    const {port} = new URL(upstream.url('/', {host: '127.0.0.2'}))
    const bearer = (hostname: string) =>
      get(`http://${hostname}:${port}/plain-loopback`, {
        credentialHeaders: new Set(['authorization']),
        headers: [['Authorization', `Bearer ${CANARY}`]],
      })
    await assert.rejects(
      sendRequest(
        bearer('app.localhost'),
        guards({resolve: async () => [{address: '8.8.8.8', family: 4}], timeoutMs: 2000}),
      ),
      rejectsWith('PLAIN_HTTP', 7),
    )
    await assert.rejects(
      sendRequest(
        bearer('app.localhost'),
        guards({
          resolve: async () => [
            {address: '127.0.0.2', family: 4},
            {address: '8.8.4.4', family: 4},
          ],
          timeoutMs: 2000,
        }),
      ),
      rejectsWith('PLAIN_HTTP', 7),
    )
    const local = await sendRequest(
      bearer('app.localhost'),
      guards({resolve: async () => [{address: '127.0.0.2', family: 4}]}),
    )
    assert.equal(local.status, 200)
    assert.equal(upstream.last('/plain-loopback').headers.authorization, `Bearer ${CANARY}`)
  })

  it('times out with a clear error, and caps the response size', async () => {
    const started = Date.now()
    await assert.rejects(
      sendRequest(get(upstream.url('/slow?ms=3000')), guards({timeoutMs: 300})),
      rejectsWith('REQUEST_TIMEOUT', 5),
    )
    assert.ok(Date.now() - started < 2000)
    await assert.rejects(
      sendRequest(get(upstream.url('/big?bytes=5000')), guards({maxResponseBytes: 1000})),
      rejectsWith('RESPONSE_TOO_LARGE', 7),
    )
    const exact = await sendRequest(get(upstream.url('/big?bytes=1000')), guards({maxResponseBytes: 1000}))
    assert.equal(exact.body.length, 1000)
  })

  it('a signal cancels: the request in flight is dropped (the upstream sees it closed), an aborted one never leaves', async () => {
    const controller = new AbortController()
    const pending = sendRequest(
      get(upstream.url('/slow?ms=60000&unit-cancel')),
      guards({signal: controller.signal}),
    )
    await until(() => upstream.requests.some((request) => request.path.includes('unit-cancel')))
    controller.abort()
    await assert.rejects(pending, rejectsWith('CANCELLED', 130))
    await until(() => upstream.last('/slow?ms=60000&unit-cancel').droppedEarly === true)

    const before = upstream.requests.length
    await assert.rejects(
      sendRequest(get(upstream.url('/never-sent')), guards({signal: AbortSignal.abort()})),
      rejectsWith('CANCELLED', 130),
    )
    await nextTurn()
    assert.equal(upstream.requests.length, before)
  })

  it('a 303 turns POST into GET without the body; a 307 re-sends method and body', async () => {
    const post = (status: number): OutgoingRequest =>
      get(upstream.url(`/redirect?status=${status}&to=/echo`), {
        body: Buffer.from('payload'),
        headers: [['Content-Type', 'text/plain']],
        method: 'POST',
      })
    await sendRequest(post(303), guards())
    let echoed = upstream.last('/echo')
    assert.equal(echoed.method, 'GET')
    assert.equal(echoed.body.length, 0)
    assert.equal(echoed.headers['content-type'], undefined)
    await sendRequest(post(307), guards())
    echoed = upstream.last('/echo')
    assert.equal(echoed.method, 'POST')
    assert.equal(echoed.body.toString(), 'payload')
  })

  it('stops after 5 redirects, and refuses non-HTTP redirect targets', async () => {
    const before = upstream.requests.length
    await assert.rejects(
      sendRequest(get(upstream.url('/loop')), guards()),
      rejectsWith('TOO_MANY_REDIRECTS', 5),
    )
    assert.equal(upstream.requests.length - before, 6, 'the first request and 5 redirects')
    await assert.rejects(
      sendRequest(get(upstream.url('/redirect?to=file:///etc/passwd')), guards()),
      rejectsWith('REDIRECT_SCHEME', 7),
    )
  })

  it('drops credential headers (and Cookie) on a cross-origin redirect, keeps them on the same origin', async () => {
    const request = (to: string): OutgoingRequest =>
      get(upstream.url(`/redirect?to=${encodeURIComponent(to)}`), {
        credentialHeaders: new Set(['x-api-key']),
        headers: [
          ['X-Api-Key', CANARY],
          ['Cookie', 'session=1'],
          ['X-Plain', 'kept'],
        ],
      })
    await sendRequest(request('/echo?same'), guards())
    assert.equal(upstream.last('/echo?same').headers['x-api-key'], CANARY)
    await sendRequest(request(upstream.url('/echo?other', {host: '127.0.0.2'})), guards())
    const crossed = upstream.last('/echo?other')
    assert.equal(crossed.host, '127.0.0.2')
    assert.equal(crossed.headers['x-api-key'], undefined)
    assert.equal(crossed.headers.cookie, undefined)
    assert.equal(crossed.headers['x-plain'], 'kept')
  })

  it('performHttp: decodes a gzip body the server sent anyway, then redacts it', async () => {
    const plan = planHttp({
      injections: [{reference: 'local://K', style: 'bearer'}],
      url: upstream.url('/gzip'),
    })
    const outcome = await performHttp(plan, new Map([['local://K', Buffer.from(CANARY)]]), [policy], options)
    assert.equal(outcome.status, 200)
    assert.equal(outcome.headers['content-encoding'], undefined)
    assert.equal(outcome.redacted, true)
    const text = outcome.body.toString()
    assert.match(text, /Bearer <concealed by agentvault>/)
    assert.ok(!text.includes(CANARY))
    assert.ok(!text.includes(Buffer.from(CANARY).toString('base64')))
  })

  it('performHttp: redacts exactly the response header values that hold the value, the others pass as they are', async () => {
    const plan = planHttp({
      injections: [{reference: 'local://K', style: 'bearer'}],
      url: upstream.url('/echo'),
    })
    const echoed = await performHttp(plan, new Map([['local://K', Buffer.from(CANARY)]]), [policy], options)
    assert.equal(echoed.headers['x-echo-token'], '<concealed by agentvault>')
    assert.equal(echoed.headers['content-type'], 'application/json')
    assert.equal(echoed.redacted, true)
    // No header holds it: nothing redacted, nothing flagged, every value as sent.
    const plain = await performHttp(
      planHttp({injections: [{reference: 'local://K', style: 'bearer'}], url: upstream.url('/binary')}),
      new Map([['local://K', Buffer.from(CANARY)]]),
      [policy],
      options,
    )
    assert.equal(plain.headers['content-type'], 'application/octet-stream')
    assert.equal(plain.redacted, false)
  })

  it('performHttp: injected credentials replace a user header of the same name; Accept-Encoding asks for identity', async () => {
    const plan = planHttp({
      headers: [['authorization', 'Bearer user-supplied']],
      injections: [{reference: 'local://K', style: 'bearer'}],
      url: upstream.url('/echo?replace'),
    })
    await performHttp(plan, new Map([['local://K', Buffer.from(CANARY)]]), [policy], options)
    const received = upstream.last('/echo?replace')
    assert.equal(received.headers.authorization, `Bearer ${CANARY}`)
    assert.equal(received.headers['accept-encoding'], 'identity')
  })

  it('performHttp: refuses a value that would break a header, without quoting it', async () => {
    const plan = planHttp({
      injections: [{reference: 'local://K', style: 'bearer'}],
      url: upstream.url('/echo'),
    })
    await assert.rejects(
      performHttp(
        plan,
        new Map([['local://K', Buffer.from(`${CANARY}\r\nX-Injected: 1`)]]),
        [policy],
        options,
      ),
      rejectsWith('SECRET_NOT_HEADER_SAFE', 2),
    )
    const basic = planHttp({
      injections: [{reference: 'local://K', style: 'basic'}],
      url: upstream.url('/echo'),
    })
    await assert.rejects(
      performHttp(basic, new Map([['local://K', Buffer.from(CANARY)]]), [policy], options),
      rejectsWith('BASIC_NEEDS_USER_PASSWORD', 2),
    )
  })
})
