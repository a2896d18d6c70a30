import fc from 'fast-check'
import assert from 'node:assert/strict'
import {request} from 'node:http'
import {connect} from 'node:net'

import {createRunCa} from '../../../src/core/placeholders/ca.js'
import {type RunningProxy, startProxy} from '../../../src/core/placeholders/proxy.js'
import {makePlaceholder, type Stand} from '../../../src/core/placeholders/tokens.js'
import {startUpstream, type Upstream} from '../../servers/http-upstream/index.js'

const CANARY = 'proxy-canary-5d1e9a'

/** Send raw bytes to the proxy; the first line of its answer ('' when it just closed). */
function ask(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(text))
    let seen = ''
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1')
      if (seen.includes('\r\n')) socket.destroy()
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(seen.split('\r\n')[0] ?? ''))
  })
}

describe('core/placeholders/proxy', () => {
  let upstream: Upstream
  let proxy: RunningProxy
  let stand: Stand
  const denied: string[] = []

  before(async () => {
    upstream = await startUpstream()
    stand = {name: 'K', placeholder: makePlaceholder('K'), reference: 'local://K', value: Buffer.from(CANARY)}
    proxy = await startProxy({
      allows: (_stand, hostname) => hostname === '127.0.0.1',
      allowsPrivate: () => true,
      ca: await createRunCa(),
      maxBodyBytes: 1024,
      onDenied: (attempt) => denied.push(attempt.host),
      stands: [stand],
      trustedCas: [],
    })
  })

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
