/**
 * `agentvault proxy` with `agentsecrets://` keys: the request is handed to AgentSecrets' own proxy
 * (the fake of test/servers/agentsecrets), which injects; agentvault never sees the value.
 */
import assert from 'node:assert/strict'

import {proxyCall, type StartedProxy, startProxy} from '../helpers/proxy.js'
import {type AgentSecretsE2e, CANARIES, setupAgentSecretsE2e} from '../servers/agentsecrets/e2e-fixture.js'

describe('e2e: proxy with agentsecrets keys', function () {
  this.timeout(60_000)
  let as: AgentSecretsE2e
  let proxy: StartedProxy

  before(async () => {
    as = await setupAgentSecretsE2e()
    // --port 0: AGENTSECRETS_PORT names AgentSecrets' proxy here, not ours.
    proxy = await startProxy(as.proxyEnv())
  })

  after(async () => {
    await proxy.stop()
    await as.dispose()
  })

  it('forwards to AgentSecrets, which injects; its allowlist block keeps its shape', async () => {
    const headers = (target: string, key: string) => ({
      'X-AS-Inject-Bearer': key,
      'X-AS-Session-Token': proxy.token ?? '',
      'X-AS-Target-URL': target,
    })
    const reply = await proxyCall(proxy.port, {
      headers: headers(as.upstream.url('/as-echo'), 'agentsecrets://API_KEY'),
    })
    assert.equal(reply.status, 200, reply.text)
    assert.equal(as.upstream.last('/as-echo').headers.authorization, `Bearer ${CANARIES.API_KEY}`)
    as.expectNoCanary(reply.text, 'the proxied body')
    const blocked = await proxyCall(proxy.port, {
      headers: headers(as.upstream.url('/x', {host: '127.0.0.2'}), 'agentsecrets://API_KEY'),
    })
    assert.equal(blocked.status, 403, blocked.text)
    const body = JSON.parse(blocked.text) as Record<string, string>
    assert.equal(body.error, 'domain_not_in_allowlist')
    assert.equal(body.domain, '127.0.0.2')
    const missing = await proxyCall(proxy.port, {
      headers: headers(as.upstream.url('/x'), 'agentsecrets://NOPE'),
    })
    assert.equal(missing.status, 502, missing.text)
    assert.match(
      (JSON.parse(missing.text) as {error: string}).error,
      /^secret 'agentsecrets:\/\/NOPE' not found/,
    )
    as.expectNoCanary(proxy.stderr(), 'the proxy log')
  })
})
