/**
 * An attacker's probe of where `call`, `use`, `proxy` and `mcp` send a secret: the agent chooses
 * the request, and wins when a value reaches the wire somewhere it may not be — here, in clear text
 * ahead of TLS. Every byte a client sends to the wire tap below is kept and searched for the canary.
 */
import assert from 'node:assert/strict'
import {connect, createServer, type Server, type Socket} from 'node:net'

import {startMcp} from '../helpers/mcp.js'
import {proxyCall, type StartedProxy, startProxy} from '../helpers/proxy.js'
import {CANARY, createUseWorld, type UseWorld} from '../servers/http-upstream/fixture.js'

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

/** The status lines of everything the server answers on one connection, until it closes it. */
function statusLines(port: number, bytes: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    let seen = ''
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1')
    })
    socket.once('error', reject)
    socket.once('close', () => resolve(seen.match(/HTTP\/1\.1 \d{3}/g) ?? []))
  })
}

const hostOf = (world: UseWorld, host: string): string => new URL(world.upstream.url('/', {host})).host
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

    it('mcp http_request with header {Host: REF}: a tool error (RESERVED_HEADER), nothing sent', async () => {
      const session = await startMcp(['--allow', 'local://HOSTLIKE'], {
        AGENTVAULT_HOME: world.home,
        AGENTVAULT_NO_KEYCHAIN: '1',
        NO_COLOR: '1',
      })
      try {
        const result = (await session.client.callTool({
          arguments: {header: {Host: 'local://HOSTLIKE'}, url: tapUrl(tap)},
          name: 'http_request',
        })) as {isError?: boolean; structuredContent?: {error?: {code?: string}}}
        assert.equal(result.isError, true)
        assert.equal(result.structuredContent?.error?.code, 'RESERVED_HEADER')
      } finally {
        const transcript = await session.close()
        assert.ok(!JSON.stringify(transcript).includes(HOSTLIKE_CANARY))
      }

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

  describe('spellings of the allowed host and its near misses (K may go to 127.0.0.1 only)', () => {
    it('other spellings of 127.0.0.1 reach 127.0.0.1 and nothing else', async () => {
      const port = hostOf(world, '127.0.0.1').split(':')[1]!
      for (const host of ['2130706433', '0x7f.1', '0177.0.0.1', '127.1', '127.0.0.1.', '127%2e0.0.1']) {
        const result = await world.cli(['call', `http://${host}:${port}/spelled?h=${host}`, '--bearer', 'K'])
        assert.equal(result.code, 0, `${host}: ${result.stderr}`)
        const received = world.upstream.last(`/spelled?h=${host}`)
        assert.equal(received.host, '127.0.0.1')
        assert.equal(received.headers.authorization, `Bearer ${CANARY}`)
      }
    })

    it('near misses are refused before any value is read: user parts, fragments, backslashes, other IPs', async () => {
      const allowed = hostOf(world, '127.0.0.1')
      const other = hostOf(world, '127.0.0.2')
      const port = other.split(':')[1]!
      const before = world.upstream.requests.length
      for (const [url, code] of [
        [`http://${allowed}@${other}/`, 2],
        [`http://${other}#@${allowed}/`, 7],
        [`http://${other}\\@${allowed}/`, 7],
        [`http://${other}%2f@${allowed}/`, 2],
        [`http://0x7f.0.0.2:${port}/`, 7],
        [`http://2130706434:${port}/`, 7],
        [`http://[::ffff:127.0.0.1]:${port}/`, 7],
        [`http://127.0.0.1.nip.io:${port}/`, 7],
        [`http://127.0.0.1.${other}/`, 2],
        [`http://127.0.0.2\t:${port}/`, 7],
      ] as const) {
        const result = await world.cli(['call', url, '--bearer', 'K', '--json'])
        assert.equal(result.code, code, `${url}: ${result.stdout}`)
        assert.ok(!result.stdout.includes(CANARY))
      }

      assert.equal(world.upstream.requests.length, before, 'nothing was sent')
    })
  })

  describe('a port in an allowlist entry (loopback: any other port may be a listener of the agent itself)', () => {
    let allowedPort: string

    before(async () => {
      allowedPort = hostOf(world, '127.0.0.1').split(':')[1]!
      const set = await world.cli(
        ['secrets', 'set', 'PORTED', '--allow-domain', `127.0.0.1:${allowedPort}`],
        {
          input: CANARY,
        },
      )
      assert.equal(set.code, 0, set.stderr)
    })

    it('call: the entry’s port is served, another port of the same host is refused (exit 7)', async () => {
      const ok = await world.cli(['call', `http://127.0.0.1:${allowedPort}/ported`, '--bearer', 'PORTED'])
      assert.equal(ok.code, 0, ok.stderr)
      assert.equal(world.upstream.last('/ported').headers.authorization, `Bearer ${CANARY}`)
      const refused = await world.cli([
        'call',
        `http://127.0.0.1:${tap.port}/`,
        '--bearer',
        'PORTED',
        '--json',
      ])
      assert.equal(refused.code, 7, refused.stdout)
      assert.equal(JSON.parse(refused.stdout).error.code, 'HOST_NOT_ALLOWED')
      assert.match(JSON.parse(refused.stdout).error.message, new RegExp(`127\\.0\\.0\\.1:${tap.port}`))
      assert.equal(tap.bytes().length, 0, 'nothing reached the other port')
    })

    it('run --placeholders: the command’s own listener on another loopback port gets nothing', async () => {
      const child = `
const net = require('node:net'), http = require('node:http')
let got = ''
const own = net.createServer((socket) => socket.on('data', (data) => { got += data; socket.end('HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n') }))
own.listen(0, '127.0.0.1', () => {
  const proxy = new URL(process.env.HTTP_PROXY)
  // agent: false — where Node honours NODE_USE_ENV_PROXY (22.21+, 24.5+) the global agent would send
  // this request to the proxy through the proxy itself.
  const ask = (url) => new Promise((resolve) => http.get({agent: false, host: proxy.hostname, port: proxy.port, path: url}, (r) => { r.resume(); r.on('end', () => resolve(r.statusCode)) }))
  Promise.all([ask('http://127.0.0.1:' + own.address().port + '/own?k=' + process.env.K), ask(process.argv[1] + '?k=' + process.env.K)])
    .then((statuses) => { console.log(JSON.stringify({statuses, got: got.length})); own.close() })
})`
      const result = await world.cli([
        'run',
        '--placeholders',
        '--env',
        'K=local://PORTED',
        '--',
        process.execPath,
        '-e',
        child,
        `http://127.0.0.1:${allowedPort}/ported-run`,
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(JSON.parse(result.stdout), {got: 0, statuses: [403, 200]})
      assert.equal(world.upstream.last('/ported-run').path, `/ported-run?k=${encodeURIComponent(CANARY)}`)
    })
  })

  describe('proxy: one connection, several requests, ambiguous framing', () => {
    let proxy: StartedProxy
    const request = (target: string, extra = ''): string =>
      `GET /proxy HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\n${proxy.token ? `X-AS-Session-Token: ${proxy.token}\r\n` : ''}X-AS-Target-URL: ${target}\r\nX-AS-Inject-Bearer: K\r\n${extra}`

    before(async () => {
      proxy = await startProxy({AGENTVAULT_HOME: world.home, AGENTVAULT_NO_KEYCHAIN: '1', NO_COLOR: '1'})
    })

    after(async () => {
      await proxy?.stop()
    })

    afterEach(() => {
      const other = world.upstream.requests.filter((received) => received.host === '127.0.0.2')
      assert.ok(!JSON.stringify(other).includes(CANARY), 'the value reached 127.0.0.2')
    })

    it('pipelined requests are each judged on their own target: the second, to another host, is refused', async () => {
      const allowed = world.upstream.url('/pipelined-1')
      const other = world.upstream.url('/pipelined-2', {host: '127.0.0.2'})
      const answers = await statusLines(
        proxy.port,
        `${request(allowed)}\r\n${request(other)}\r\n${request(allowed.replace('-1', '-3'), 'Connection: close\r\n')}\r\n`,
      )
      assert.deepEqual(answers, ['HTTP/1.1 200', 'HTTP/1.1 403', 'HTTP/1.1 200'])
      assert.equal(world.upstream.last('/pipelined-3').headers.authorization, `Bearer ${CANARY}`)
    })

    it('two X-AS-Target-URL headers: only the first counts, as in AgentSecrets', async () => {
      const allowed = world.upstream.url('/first-target')
      const other = world.upstream.url('/second-target', {host: '127.0.0.2'})
      assert.deepEqual(
        await statusLines(
          proxy.port,
          `${request(allowed, `X-AS-Target-URL: ${other}\r\nConnection: close\r\n`)}\r\n`,
        ),
        ['HTTP/1.1 200'],
      )
      assert.equal(world.upstream.last('/first-target').host, '127.0.0.1')
      assert.deepEqual(
        await statusLines(
          proxy.port,
          `${request(other, `X-AS-Target-URL: ${allowed}\r\nConnection: close\r\n`)}\r\n`,
        ),
        ['HTTP/1.1 403'],
      )
    })

    it('a request smuggled behind CL+TE, two lengths or an absolute-form line is never served', async () => {
      const other = world.upstream.url('/smuggled', {host: '127.0.0.2'})
      const hidden = `${request(other)}\r\n`
      const before = world.upstream.requests.length
      for (const bytes of [
        `POST /proxy HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`,
        `POST /proxy HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nContent-Length: 0\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
        `GET ${other} HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nX-AS-Inject-Bearer: K\r\nConnection: close\r\n\r\n`,
      ]) {
        const answers = await statusLines(proxy.port, bytes)
        assert.ok(
          answers.length > 0 && answers.every((line) => /40[034]$/.test(line)),
          `${bytes.slice(0, 40)}: ${answers.join(',')}`,
        )
      }

      assert.equal(world.upstream.requests.length, before, 'nothing was sent')
    })
  })
})
