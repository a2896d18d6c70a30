/**
 * A running proxy keeps what it read of the vault between requests (the sealed index, opened
 * metadata): every change made meanwhile by another process (`secrets set`, `edit`, `delete`)
 * must still be what the very next request sees.
 */
import assert from 'node:assert/strict'

import {proxyCall, type StartedProxy, startProxy} from '../helpers/proxy.js'
import {createUseWorld, type UseWorld} from '../servers/http-upstream/fixture.js'

describe('e2e: proxy sees vault changes made while it runs', function () {
  this.timeout(120_000)
  let world: UseWorld
  let proxy: StartedProxy
  const env = (): NodeJS.ProcessEnv => ({
    AGENTVAULT_HOME: world.home,
    AGENTVAULT_NO_KEYCHAIN: '1',
    NO_COLOR: '1',
  })
  const must = async (args: string[], input?: string): Promise<void> => {
    const result = await world.cli(args, {...(input !== undefined && {input})})
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
  }

  /** One proxied request injecting `key` as a bearer to the upstream's `path` on 127.0.0.1. */
  const bearer = (key: string, path: string) =>
    proxyCall(proxy.port, {
      headers: {
        'X-AS-Inject-Bearer': key,
        'X-AS-Session-Token': proxy.token ?? '',
        'X-AS-Target-URL': world.upstream.url(path),
      },
    })

  before(async () => {
    world = await createUseWorld()
    proxy = await startProxy(env())
  })

  after(async () => {
    const result = await proxy.stop()
    assert.equal(result.code, 0, result.stderr)
    await world.dispose()
  })

  it('a secret added, changed, re-scoped, deleted: the next request sees each change', async () => {
    // Warm: the vault read, K's metadata opened and kept.
    const warm = await bearer('K', '/changes-warm')
    assert.equal(warm.status, 200, warm.text)

    const absent = await bearer('LATE', '/changes-0')
    assert.equal(absent.status, 502, absent.text)
    assert.match((JSON.parse(absent.text) as {error: string}).error, /^secret 'LATE' not found/)

    await must(['secrets', 'set', 'LATE'], 'late-value-1')
    const added = await bearer('LATE', '/changes-1')
    assert.equal(added.status, 200, added.text)
    assert.equal(world.upstream.last('/changes-1').headers.authorization, 'Bearer late-value-1')

    await must(['secrets', 'set', 'LATE'], 'late-value-2')
    const changed = await bearer('LATE', '/changes-2')
    assert.equal(changed.status, 200, changed.text)
    assert.equal(world.upstream.last('/changes-2').headers.authorization, 'Bearer late-value-2')

    // Its metadata was opened (and kept) by the requests above: a narrower list applies at once.
    const sent = world.upstream.requests.length
    await must(['secrets', 'edit', 'LATE', '--allow-domain', '127.0.0.2'])
    const narrowed = await bearer('LATE', '/changes-3')
    assert.equal(narrowed.status, 403, narrowed.text)
    assert.equal((JSON.parse(narrowed.text) as {error: string}).error, 'domain_not_in_allowlist')
    assert.equal(world.upstream.requests.length, sent, 'nothing sent')

    await must(['secrets', 'edit', 'LATE', '--allow-domain', '127.0.0.1'])
    const widened = await bearer('LATE', '/changes-4')
    assert.equal(widened.status, 200, widened.text)
    assert.equal(world.upstream.last('/changes-4').headers.authorization, 'Bearer late-value-2')

    await must(['secrets', 'delete', 'LATE', '--yes'])
    const deleted = await bearer('LATE', '/changes-5')
    assert.equal(deleted.status, 502, deleted.text)
    assert.match((JSON.parse(deleted.text) as {error: string}).error, /^secret 'LATE' not found/)
    assert.throws(() => world.upstream.last('/changes-5'))

    // The other secrets were never disturbed.
    const still = await bearer('K', '/changes-6')
    assert.equal(still.status, 200, still.text)
  })
})
