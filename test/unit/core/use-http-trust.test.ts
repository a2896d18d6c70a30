/**
 * The engine's HTTPS requests to a server under an extra CA (a profile's caCert, --cacert): one TLS
 * context per set of extra CAs, however many connections and requests. Given as `ca`, every
 * connection built a context of its own from all of Node's ~140 roots (~20 ms of CPU each) and
 * every request joined them into its agent's pool name: a `proxy` or `mcp` over a private CA spent
 * ~1 ms of CPU per request on it.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {createRequire, syncBuiltinESMExports} from 'node:module'

import {AgentVaultError} from '../../../src/core/errors.js'
import {
  closeConnections,
  type RequestGuards,
  reuseConnections,
  sendRequest,
} from '../../../src/core/use/http-client.js'
import {startUpstream, type Upstream} from '../../servers/http-upstream/index.js'

// Counted on the module object, which Node's tls.connect calls for a connection's context;
// syncBuiltinESMExports carries it to the `import('node:tls')` of the code under test.
const tls = createRequire(import.meta.url)('node:tls') as typeof import('node:tls')

function guards(ca: string[]): RequestGuards {
  return {
    allowPrivateNetworks: true,
    ca,
    carriesSecret: () => false,
    checkRedirect() {},
    maxRedirects: 0,
    maxResponseBytes: 1024 * 1024,
    timeoutMs: 10_000,
  }
}

describe('core/use http client: trust in an extra CA', function () {
  this.timeout(30_000)
  let upstream: Upstream
  let made = 0
  const original = tls.createSecureContext

  before(async () => {
    upstream = await startUpstream({tls: true})
    tls.createSecureContext = (...args) => {
      made++
      return original(...args)
    }

    syncBuiltinESMExports()
  })

  after(async () => {
    tls.createSecureContext = original
    syncBuiltinESMExports()
    closeConnections()
    await upstream.close()
  })

  const send = (ca: string[]) =>
    sendRequest(
      {
        credentialHeaders: new Set(),
        credentialInBody: false,
        headers: [],
        method: 'GET',
        url: new URL(upstream.url('/trust', {secure: true})),
      },
      guards(ca),
    )

  it('makes one TLS context for many connections and requests, in a pool and without one', async () => {
    const ca = [readFileSync(upstream.caFile!, 'utf8')]
    made = 0
    reuseConnections()
    // Eight at once: eight connections of one kept-alive agent, then more requests on them.
    const first = await Promise.all(Array.from({length: 8}, () => send(ca)))
    const again = await Promise.all(Array.from({length: 8}, () => send(ca)))
    for (const response of [...first, ...again]) assert.equal(response.status, 200)
    assert.ok(upstream.requests.length >= 16)
    closeConnections()
    // Without a pool (one-shot commands): a connection per request, still the same context.
    for (let i = 0; i < 3; i++) assert.equal((await send(ca)).status, 200)
    assert.equal(made, 1, 'TLS contexts made for one set of extra CAs')
  })

  it('still trusts only the roots and the extra CAs given: another CA fails verification', async () => {
    const other = [readFileSync(upstream.otherCaFile!, 'utf8')]
    await assert.rejects(send(other), (error: unknown) => {
      assert.ok(error instanceof AgentVaultError, String(error))
      assert.match(error.code, /CERT|TLS/)
      return true
    })
  })
})
