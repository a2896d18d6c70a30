/**
 * A secret never goes over plain http:// to a host off this machine unless its profile says so
 * (`allowPlainHttp`): anyone on the network path reads an HTTP request. `call`, `use` and
 * `proxy` (AgentSecrets 3.x's non_https_blocked) refuse before any value is read; loopback stays
 * allowed, as for `run --placeholders`. The target here listens on this machine's first private,
 * non-loopback address (skipped when it has none).
 */
import type {CallToolResult} from '@modelcontextprotocol/sdk/types.js'

import assert from 'node:assert/strict'
import {createServer, type IncomingHttpHeaders, type Server} from 'node:http'
import {networkInterfaces} from 'node:os'

import {runCli, tempHome} from '../helpers/cli.js'
import {expectFailure} from '../helpers/e2e.js'
import {startMcp} from '../helpers/mcp.js'
import {proxyCall, startProxy} from '../helpers/proxy.js'

const CANARY = 'canary-plain-http-6e2f0a'

/** A private (RFC 1918 or fc00::/7) address of a network interface that is not loopback. */
function privateAddress(): string | undefined {
  for (const entries of Object.values(networkInterfaces()))
    for (const entry of entries ?? []) {
      if (entry.internal) continue
      const {address} = entry
      if (entry.family === 'IPv4' && /^(?:10\.|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.)/.test(address))
        return address
      if (entry.family === 'IPv6' && /^f[cd]/i.test(address)) return `[${address}]`
    }

  return undefined
}

describe('e2e: secrets over plain http:// only to loopback, unless the profile allows it', function () {
  this.timeout(60_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: Server
  const received: IncomingHttpHeaders[] = []
  let url = ''
  let host = ''

  before(async function () {
    const address = privateAddress()
    if (address === undefined) this.skip()
    host = address
    server = createServer((request, response) => {
      received.push(request.headers)
      response.end('ok')
    })
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, host.replaceAll(/[[\]]/g, ''), () => {
        const bound = server.address()
        resolve(typeof bound === 'object' && bound ? bound.port : 0)
      })
    })
    url = `http://${host}:${port}/v1/items`
    t = await tempHome()
    const domains = `allowedDomains=${JSON.stringify([host])}`
    for (const args of [
      ['secrets', 'set', 'K'],
      [
        'profiles',
        'add',
        'lan',
        '--kind',
        'local',
        '--default',
        '--set',
        'allowPrivateNetworks=true',
        '--set',
        domains,
      ],
    ]) {
      const result = await runCli(args, {env: t.env, input: CANARY})
      assert.equal(result.code, 0, result.stderr)
    }
  })

  after(async () => {
    server?.close()
    await t?.dispose()
  })

  it('call and use refuse with exit 7 PLAIN_HTTP, and the host receives nothing', async () => {
    for (const args of [
      ['call', url, '--bearer', 'K'],
      ['call', url, '--query', 'key=K'],
      ['use', 'K', 'http_request', '--param', `url=${url}`],
    ]) {
      const failure = await expectFailure(args, {env: t.env}, {code: 7, errorCode: 'PLAIN_HTTP'})
      assert.match(failure.plain.stderr, /plain http/i)
      assert.match(failure.plain.stderr, /allowPlainHttp/)
      for (const output of [failure.plain.stderr, failure.json.stdout]) assert.ok(!output.includes(CANARY))
    }

    assert.deepEqual(received, [], 'nothing was sent')
  })

  it('proxy answers 403 non_https_blocked, as AgentSecrets 3.x does', async () => {
    const proxy = await startProxy(t.env)
    try {
      const reply = await proxyCall(proxy.port, {
        headers: {
          'X-AS-Inject-Bearer': 'K',
          'X-AS-Session-Token': proxy.token ?? '',
          'X-AS-Target-URL': url,
        },
      })
      assert.equal(reply.status, 403, reply.text)
      assert.equal((JSON.parse(reply.text) as {error: string}).error, 'non_https_blocked')
    } finally {
      await proxy.stop()
    }

    assert.deepEqual(received, [], 'nothing was sent')
  })

  it('the mcp tools answer a PLAIN_HTTP tool error (http_request and use_secret)', async () => {
    const session = await startMcp(['--allow', 'local://K'], t.env)
    try {
      for (const [name, args] of [
        ['http_request', {bearer: 'K', url}],
        ['use_secret', {operation: 'http_request', params: {url}, reference: 'K'}],
      ] as const) {
        const result = (await session.client.callTool({arguments: args, name})) as CallToolResult
        assert.equal(result.isError, true, JSON.stringify(result))
        const {error} = result.structuredContent as {error: {category: string; code: string}}
        assert.deepEqual([error.code, error.category], ['PLAIN_HTTP', 'denied'])
      }
    } finally {
      const transcript = await session.close()
      assert.ok(!transcript.received.includes(CANARY))
    }

    assert.deepEqual(received, [], 'nothing was sent')
  })

  it('a profile with allowPlainHttp=true sends it (the test can fail)', async () => {
    const set = await runCli(['profiles', 'set', 'lan', 'allowPlainHttp=true'], {env: t.env})
    assert.equal(set.code, 0, set.stderr)
    const result = await runCli(['call', url, '--bearer', 'K'], {env: t.env})
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'ok')
    assert.equal(received.at(-1)?.authorization, `Bearer ${CANARY}`)
  })
})
