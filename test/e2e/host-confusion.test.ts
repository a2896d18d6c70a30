/**
 * An attacker's probe of where `call`, `use`, `proxy` and `mcp` send a secret: the agent chooses
 * the request, and wins when a value reaches the wire somewhere it may not be — here, in clear text
 * ahead of TLS. Every byte a client sends to the wire tap below is kept and searched for the canary.
 */
import assert from 'node:assert/strict'
import {createServer, type Server, type Socket} from 'node:net'

import {proxyCall, type StartedProxy, startProxy} from '../helpers/proxy.js'
import {createUseWorld, type UseWorld} from '../servers/http-upstream/fixture.js'

/** A canary shaped like a host name: what a server name (SNI) could carry as it is. */
const HOSTLIKE_CANARY = 'sni-canary-7c1d0e.example'

/** A TCP listener on 127.0.0.1 that keeps every byte it receives and hangs up after the first read. */
interface WireTap {
  bytes(): Buffer
  close(): Promise<void>
  port: number
}

async function wireTap(): Promise<WireTap> {
  const received: Buffer[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.once('close', () => sockets.delete(socket))
    socket.once('data', (chunk: Buffer) => {
      received.push(chunk)
      socket.destroy()
    })
  })
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : 0)
    })
  })
  return {
    bytes: () => Buffer.concat(received),
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
    port,
  }
}

const tapUrl = (tap: WireTap): string => `https://127.0.0.1:${tap.port}/`

describe('e2e: host confusion (where a secret may go)', function () {
  this.timeout(120_000)
  let world: UseWorld
  let tap: WireTap

  before(async () => {
    world = await createUseWorld()
    const set = await world.cli(['secrets', 'set', 'HOSTLIKE'], {input: HOSTLIKE_CANARY})
    assert.equal(set.code, 0, set.stderr)
    tap = await wireTap()
  })

  after(async () => {
    await tap?.close()
    await world?.dispose()
  })

  const assertOffTheWire = (): void => {
    assert.ok(!tap.bytes().includes(HOSTLIKE_CANARY), 'the canary went onto the wire in clear text')
  }

  describe('a secret injected as the Host header (Node would make it the TLS server name, sent in clear)', () => {
    it('call --secret-header "Host: REF" is refused (exit 2) before anything is sent', async () => {
      const result = await world.cli([
        'call',
        tapUrl(tap),
        '--secret-header',
        'Host: HOSTLIKE',
        '--timeout',
        '5',
      ])
      assert.equal(result.code, 2, result.stderr)
      assert.match(result.stderr, /^Error: .*Host.*\nTry this: /m)
      const json = await world.cli(['call', tapUrl(tap), '--secret-header', 'host: HOSTLIKE', '--json'])
      assert.equal(JSON.parse(json.stdout).error.code, 'RESERVED_HEADER')
      assert.ok(!result.stderr.includes(HOSTLIKE_CANARY))
      assertOffTheWire()
    })

    it('so are the other framing headers a secret could be put in', async () => {
      for (const name of ['Content-Length', 'Transfer-Encoding', 'Connection']) {
        const result = await world.cli([
          'call',
          tapUrl(tap),
          '--secret-header',
          `${name}: HOSTLIKE`,
          '--json',
        ])
        assert.equal(result.code, 2, `${name}: ${result.stderr}`)
        assert.equal(JSON.parse(result.stdout).error.code, 'RESERVED_HEADER')
      }

      assertOffTheWire()
    })

    it('use REF http_request with header_name=Host is refused the same way', async () => {
      const result = await world.cli([
        'use',
        'HOSTLIKE',
        'http_request',
        '--param',
        `url=${tapUrl(tap)}`,
        '--param',
        'header_type=custom',
        '--param',
        'header_name=Host',
        '--timeout',
        '5',
      ])
      assert.equal(result.code, 2, result.stderr)
      assertOffTheWire()
    })

    describe('proxy: X-AS-Inject-Header-Host', () => {
      let proxy: StartedProxy

      before(async () => {
        proxy = await startProxy({AGENTVAULT_HOME: world.home, AGENTVAULT_NO_KEYCHAIN: '1', NO_COLOR: '1'})
      })

      after(async () => {
        await proxy?.stop()
      })

      it('answers 400 and sends nothing', async () => {
        const reply = await proxyCall(proxy.port, {
          headers: {
            ...(proxy.token && {'X-AS-Session-Token': proxy.token}),
            'X-AS-Inject-Header-Host': 'HOSTLIKE',
            'X-AS-Target-URL': tapUrl(tap),
          },
        })
        assert.equal(reply.status, 400, reply.text)
        assert.ok(!reply.text.includes(HOSTLIKE_CANARY))
        assertOffTheWire()
      })
    })
  })
})
