import fc from 'fast-check'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {request} from 'node:http'
import {createRequire, syncBuiltinESMExports} from 'node:module'
import {connect, isIP} from 'node:net'
import {connect as tlsConnect} from 'node:tls'

import {createRunCa, type RunCa} from '../../../src/core/placeholders/ca.js'
import {type ProxyOptions, type RunningProxy, startProxy} from '../../../src/core/placeholders/proxy.js'
import {makePlaceholder, type Stand} from '../../../src/core/placeholders/tokens.js'
import {startStaleUpstream, startUpstream, type Upstream} from '../../servers/http-upstream/index.js'

const CANARY = 'proxy-canary-5d1e9a'

/**
 * Send raw bytes to the proxy; the first line of its answer ('' when it just closed). `keepOpen`:
 * the write side stays open until the answer (else it ends after the request).
 */
function ask(port: number, text: string, keepOpen = false): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => (keepOpen ? socket.write(text) : socket.end(text)))
    let seen = ''
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1')
      if (seen.includes('\r\n')) socket.destroy()
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(seen.split('\r\n')[0] ?? ''))
  })
}

/**
 * One request `line` inside TLS intercepted by the proxy at `port` for `target` (host:port), trusting the
 * run's CA: its status line and the certificate the proxy presented.
 */
function throughTunnel(
  port: number,
  ca: RunCa,
  target: string,
  line: string,
): Promise<{fingerprint: string; status: string}> {
  const hostname = target.slice(0, target.lastIndexOf(':'))
  return new Promise((resolve, reject) => {
    request({host: '127.0.0.1', method: 'CONNECT', path: target, port})
      .on('connect', (_response, socket) => {
        const secure = tlsConnect(
          {ca: ca.certificatePem, host: hostname, servername: isIP(hostname) === 0 ? hostname : '', socket},
          () => secure.write(`${line}\r\nHost: ${target}\r\nConnection: close\r\n\r\n`),
        )
        let seen = ''
        let fingerprint = ''
        secure.on('secureConnect', () => {
          fingerprint = secure.getPeerCertificate().fingerprint256
        })
        secure.on('data', (chunk: Buffer) => {
          seen += chunk.toString('latin1')
        })
        secure.on('error', reject)
        secure.on('close', () => resolve({fingerprint, status: seen.split('\r\n')[0] ?? ''}))
      })
      .on('error', reject)
      .end()
  })
}

describe('core/placeholders/proxy', () => {
  let upstream: Upstream
  let proxy: RunningProxy
  let stand: Stand
  let ca: RunCa
  const denied: string[] = []

  before(async () => {
    upstream = await startUpstream({tls: true})
    ca = await createRunCa()
    stand = {name: 'K', placeholder: makePlaceholder('K'), reference: 'local://K', value: Buffer.from(CANARY)}
    proxy = await startProxy(proxyOptions())
  })

  function proxyOptions(): ProxyOptions {
    return {
      allows: (_stand, hostname) => hostname === '127.0.0.1',
      allowsPlainHttp: false,
      allowsPrivate: () => true,
      ca,
      maxBodyBytes: 1024,
      onDenied: (attempt) => denied.push(attempt.host),
      stands: [stand],
      trustedCas: [readFileSync(upstream.caFile!, 'utf8')],
    }
  }

  after(async () => {
    await proxy?.close()
    await upstream?.close()
  })

  function send(
    url: string,
    headers: Record<string, string>,
    body: string,
  ): Promise<{body: string; status: number}> {
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {headers, host: '127.0.0.1', method: 'POST', path: url, port: proxy.port},
        (response) => {
          let text = ''
          response.on('data', (chunk: Buffer) => {
            text += chunk.toString('utf8')
          })
          response.on('end', () => resolve({body: text, status: response.statusCode ?? 0}))
        },
      )
      outgoing.on('error', reject)
      outgoing.end(body)
    })
  }

  it('builds the upstream trust context (roots + caCert) at the first intercepted HTTPS request, and once', async () => {
    // Counted on the module object; syncBuiltinESMExports carries it to the proxy's import('node:tls').
    const tls = createRequire(import.meta.url)('node:tls') as typeof import('node:tls')
    const original = tls.createSecureContext
    let trusting = 0
    tls.createSecureContext = (options) => {
      if (Array.isArray(options?.ca) && options.ca.length > 1) trusting++
      return original(options)
    }

    syncBuiltinESMExports()
    let fresh: RunningProxy | undefined
    try {
      fresh = await startProxy(proxyOptions())
      assert.equal(trusting, 0, 'none made at start (a command may make no HTTPS request)')
      const target = new URL(upstream.url('/', {secure: true})).host
      for (let i = 0; i < 3; i++)
        assert.match(
          (await throughTunnel(fresh.port, ca, target, `GET /trust-${i} HTTP/1.1`)).status,
          / 200 /,
        )
      assert.equal(trusting, 1)
    } finally {
      tls.createSecureContext = original
      syncBuiltinESMExports()
      await fresh?.close()
    }
  })

  it('does not swap placeholders inside non-textual bodies (a documented limit), but does in headers', async () => {
    const result = await send(
      upstream.url('/binary-body'),
      {'content-type': 'application/octet-stream', 'x-k': stand.placeholder},
      `raw ${stand.placeholder}`,
    )
    assert.equal(result.status, 200)
    const received = upstream.last('/binary-body')
    assert.equal(received.body.toString(), `raw ${stand.placeholder}`)
    assert.equal(received.headers['x-k'], CANARY)
  })

  it('drops the headers a Connection header names (and the fixed hop-by-hop ones), keeps the rest', async () => {
    for (const connection of ['keep-alive', 'keep-alive, X-Hop', 'X-Hop, close', 'close']) {
      const result = await send(
        upstream.url('/hop'),
        {connection, 'keep-alive': 'timeout=5', 'x-end': stand.placeholder, 'x-hop': stand.placeholder},
        '',
      )
      assert.equal(result.status, 200)
      const {headers} = upstream.last('/hop')
      assert.equal(headers['x-end'], CANARY, connection)
      assert.equal(headers['x-hop'], connection.includes('X-Hop') ? undefined : CANARY, connection)
      assert.equal(headers['keep-alive'], undefined, connection)
    }
  })

  it('swaps a placeholder inside Basic credentials (curl -u, requests auth=, git), and refuses it for another host', async () => {
    const basic = (text: string): string => `Basic ${Buffer.from(text, 'latin1').toString('base64')}`
    for (const [credentials, expected] of [
      [`svc:${stand.placeholder}`, `svc:${CANARY}`],
      [`${stand.placeholder}:x-oauth-basic`, `${CANARY}:x-oauth-basic`],
      [`svc:${stand.placeholder}`.slice(0, -1), `svc:${stand.placeholder}`.slice(0, -1)],
    ] as const) {
      const result = await send(upstream.url('/basic-auth'), {authorization: basic(credentials)}, '')
      assert.equal(result.status, 200)
      assert.equal(upstream.last('/basic-auth').headers.authorization, basic(expected))
    }

    // The same credentials to a host the secret does not allow: refused, audited, nothing sent.
    const before = upstream.requests.length
    denied.length = 0
    const other = await send(
      upstream.url('/basic-auth', {host: '127.0.0.2'}),
      {authorization: `basic  ${Buffer.from(`svc:${stand.placeholder}`).toString('base64')}`},
      '',
    )
    assert.equal(other.status, 403)
    assert.equal(upstream.requests.length, before)
    assert.equal(denied.length, 1)
  })

  it('leaves a body alone whose repeated Content-Encoding headers declare any coding', async () => {
    const body = `raw ${stand.placeholder}`
    const url = upstream.url('/two-codings')
    const line = await ask(
      proxy.port,
      [
        `POST ${url} HTTP/1.1`,
        `Host: ${new URL(url).host}`,
        'Content-Type: text/plain',
        'Content-Encoding: identity',
        'Content-Encoding: gzip',
        `Content-Length: ${body.length}`,
        '',
        body,
      ].join('\r\n'),
      true,
    )
    assert.equal(line, 'HTTP/1.1 200 OK')
    assert.equal(upstream.last('/two-codings').body.toString(), body)
  })

  it('sends a bodiless POST with Content-Length: 0, as Node would, not as an empty chunked body', async () => {
    const url = upstream.url('/no-body')
    const line = await ask(
      proxy.port,
      `POST ${url}?k=${stand.placeholder} HTTP/1.1\r\nHost: ${new URL(url).host}\r\n\r\n`,
      true,
    )
    assert.equal(line, 'HTTP/1.1 200 OK')
    const received = upstream.last('/no-body')
    assert.equal(received.headers['content-length'], '0')
    assert.equal(received.headers['transfer-encoding'], undefined)
  })

  it('rewrites echoes in a body too big to hold (streamed), and keeps Content-Length where there is no body', async () => {
    const bytes = 300_000
    const big = await send(
      `${upstream.url('/big')}?bytes=${bytes}&echo=1`,
      {authorization: `Bearer ${stand.placeholder}`},
      '',
    )
    assert.equal(big.status, 200)
    assert.equal(big.body.length, bytes - 3 * CANARY.length + 3 * stand.placeholder.length)
    assert.equal(big.body.split(stand.placeholder).length, 4, 'three echoes, each turned back')
    assert.ok(!big.body.includes(CANARY))
    const head = await new Promise<{length?: string; status?: number}>((resolve, reject) => {
      request(
        {
          host: '127.0.0.1',
          method: 'HEAD',
          path: `${upstream.url('/big')}?bytes=5000&echo=1`,
          port: proxy.port,
        },
        (response) => {
          response.resume()
          response.on('end', () =>
            resolve({length: response.headers['content-length'], status: response.statusCode}),
          )
        },
      )
        .on('error', reject)
        .end()
    })
    assert.deepEqual(head, {length: '5000', status: 200})
  })

  /** A raw request line inside TLS intercepted for the upstream's HTTPS port; the status line back. */
  function askIntercepted(line: string): Promise<string> {
    const target = new URL(upstream.url('/', {secure: true})).host
    return new Promise((resolve, reject) => {
      request({host: '127.0.0.1', method: 'CONNECT', path: target, port: proxy.port})
        .on('connect', (_response, socket) => {
          const secure = tlsConnect({ca: ca.certificatePem, host: '127.0.0.1', servername: '', socket}, () =>
            secure.write(`${line}\r\nHost: ${target}\r\nConnection: close\r\n\r\n`),
          )
          let seen = ''
          secure.on('data', (chunk: Buffer) => {
            seen += chunk.toString('latin1')
          })
          secure.on('error', reject)
          secure.on('close', () => resolve(seen.split('\r\n')[0] ?? ''))
        })
        .on('error', reject)
        .end()
    })
  }

  it('inside intercepted TLS, serves origin-form and refuses an absolute URL naming another host', async () => {
    assert.equal(await askIntercepted(`GET /inside?k=${stand.placeholder} HTTP/1.1`), 'HTTP/1.1 200 OK')
    assert.equal(new URL(upstream.last('/inside').path, 'https://x').searchParams.get('k'), CANARY)
    const before = upstream.requests.length
    const other = upstream.url('/elsewhere', {host: '127.0.0.2', secure: true})
    assert.equal(
      await askIntercepted(`GET ${other}?k=${stand.placeholder} HTTP/1.1`),
      'HTTP/1.1 400 Bad Request',
    )
    assert.equal(upstream.requests.length, before)
  })

  it('concurrent first requests to one host share one leaf certificate, made once', async () => {
    const target = new URL(upstream.url('/', {secure: true})).host
    const answers = await Promise.all(
      Array.from({length: 4}, (_, i) => throughTunnel(proxy.port, ca, target, `GET /leaf-${i} HTTP/1.1`)),
    )
    for (const answer of answers) assert.equal(answer.status, 'HTTP/1.1 200 OK')
    assert.equal(new Set(answers.map((answer) => answer.fingerprint)).size, 1, 'one leaf')
    assert.notEqual(answers[0]!.fingerprint, '')
  })

  it('reuses a verified upstream connection for requests that carry values; an unverified server gets none', async () => {
    const target = new URL(upstream.url('/', {secure: true})).host
    for (const path of ['/reuse-1', '/reuse-2'])
      assert.equal(
        (await throughTunnel(proxy.port, ca, target, `GET ${path}?k=${stand.placeholder} HTTP/1.1`)).status,
        'HTTP/1.1 200 OK',
      )
    assert.equal(new URL(upstream.last('/reuse-2').path, 'https://x').searchParams.get('k'), CANARY)
    assert.equal(upstream.last('/reuse-1').remotePort, upstream.last('/reuse-2').remotePort, 'one connection')
    // A proxy that does not trust the upstream's CA: every request is refused, none reaches it.
    const untrusting = await startProxy({...proxyOptions(), trustedCas: []})
    try {
      const before = upstream.requests.length
      for (let i = 0; i < 2; i++) {
        const answer = await throughTunnel(
          untrusting.port,
          ca,
          target,
          `GET /unverified?k=${stand.placeholder} HTTP/1.1`,
        )
        assert.equal(answer.status, 'HTTP/1.1 502 Bad Gateway')
      }

      assert.equal(upstream.requests.length, before)
    } finally {
      await untrusting.close()
    }
  })

  it('a connection opened for a request without values is not reused to carry one past the SSRF guard', async () => {
    const refused: string[] = []
    const guarded = await startProxy({
      ...proxyOptions(),
      allows: (_stand, hostname) => hostname === 'localhost' || hostname === '127.0.0.1',
      allowsPrivate: () => false,
      onDenied: (attempt) => refused.push(attempt.code),
    })
    try {
      for (const host of ['localhost', '127.0.0.1']) {
        const target = new URL(upstream.url('/', {host, secure: true})).host
        // No value: the child's own business, no guard; the connection stays open in its pool.
        assert.equal(
          (await throughTunnel(guarded.port, ca, target, 'GET /plain HTTP/1.1')).status,
          'HTTP/1.1 200 OK',
        )
        const before = upstream.requests.length
        for (let i = 0; i < 2; i++) {
          const answer = await throughTunnel(
            guarded.port,
            ca,
            target,
            `GET /guarded?k=${stand.placeholder} HTTP/1.1`,
          )
          assert.equal(answer.status, 'HTTP/1.1 403 Forbidden', host)
        }

        assert.equal(upstream.requests.length, before, `nothing with the value reached ${host}`)
      }

      assert.deepEqual(refused, ['PRIVATE_ADDRESS', 'PRIVATE_ADDRESS', 'PRIVATE_ADDRESS', 'PRIVATE_ADDRESS'])
    } finally {
      await guarded.close()
    }
  })

  it('values over plain http:// reach only loopback addresses, whatever DNS answers for a loopback name', async () => {
    const refused: string[] = []
    let answer = '8.8.8.8'
    const plain = await startProxy({
      ...proxyOptions(),
      allows: (_stand, hostname) => hostname === 'app.localhost',
      onDenied: (attempt) => refused.push(attempt.code),
      // `app.localhost` passes the name check; glibc asks DNS for it ("files dns").
      resolve: async () => [{address: answer, family: 4}],
    })
    try {
      const {port} = new URL(upstream.url('/', {host: '127.0.0.2'}))
      const ask = (): Promise<string> =>
        new Promise((resolve) => {
          request({
            headers: {authorization: `Bearer ${stand.placeholder}`},
            host: '127.0.0.1',
            path: `http://app.localhost:${port}/plain-http`,
            port: plain.port,
          })
            .on('response', (response) => {
              response.resume()
              resolve(String(response.statusCode))
            })
            .on('error', (error) => resolve(error.message))
            .end()
        })
      assert.equal(await ask(), '403')
      assert.deepEqual(refused, ['PLACEHOLDER_PLAIN_HTTP'])
      answer = '127.0.0.2'
      assert.equal(await ask(), '200')
      assert.equal(upstream.last('/plain-http').headers.authorization, `Bearer ${CANARY}`)
    } finally {
      await plain.close()
    }
  })

  it('sends an idempotent request again when the kept-alive connection it reused was closed by the server; not a POST', async () => {
    const stale = await startStaleUpstream()
    const target = stale.url
    const status = (method: string) =>
      new Promise<number>((resolve, reject) => {
        request({agent: false, host: '127.0.0.1', method, path: target, port: proxy.port}, (response) => {
          response.resume()
          response.on('end', () => resolve(response.statusCode ?? 0))
        })
          .on('error', reject)
          .end()
      })
    try {
      assert.deepEqual([await status('GET'), await status('GET'), await status('DELETE')], [200, 200, 200])
      assert.equal(stale.served(), 3, 'the second and third went again on a new connection each')
      // A POST may have been acted on: it is not sent twice.
      assert.equal(await status('POST'), 502)
      assert.equal(stale.served(), 3)
    } finally {
      await stale.close()
    }
  })

  it('refuses bodies over the cap with 413 and sends nothing', async () => {
    const before = upstream.requests.length
    const result = await send(upstream.url('/big-body'), {'content-type': 'text/plain'}, 'x'.repeat(2000))
    assert.equal(result.status, 413)
    assert.equal(upstream.requests.length, before)
  })

  it('answers any hostile request line with a status (or a close) and keeps serving (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('CONNECT', 'GET', 'POST', 'OPTIONS', 'X'),
        fc.string({maxLength: 60}).filter((target) => !/[\s\0]/.test(target)),
        async (method, target) => {
          const line = await ask(proxy.port, `${method} ${target} HTTP/1.1\r\nHost: x\r\n\r\n`)
          assert.ok(line === '' || /^HTTP\/1\.1 \d{3}\b/.test(line), line)
        },
      ),
      {numRuns: 60},
    )
    const ok = await send(upstream.url('/still-up'), {}, '')
    assert.equal(ok.status, 200)
  })
})
