import assert from 'node:assert/strict'
import {readFile, stat, writeFile} from 'node:fs/promises'
import {networkInterfaces} from 'node:os'
import {join} from 'node:path'

import {runCli} from '../helpers/cli.js'
import {accepts, filesUnder, until} from '../helpers/e2e.js'
import {proxyCall, type ProxyReply, rawExchange, type StartedProxy, startProxy} from '../helpers/proxy.js'
import {
  BASIC_USER,
  CANARY,
  createUseWorld,
  leakedForms,
  SCOPED_CANARY,
  type UseWorld,
} from '../servers/http-upstream/fixture.js'

const MARKER = '[REDACTED_BY_AGENTSECRETS]'

function assertNoCanary(text: string, where: string): void {
  for (const form of [...leakedForms(CANARY), ...leakedForms(SCOPED_CANARY)])
    assert.ok(!text.includes(form), `a form of a canary in ${where}`)
}

describe('e2e: proxy', function () {
  this.timeout(120_000)
  let world: UseWorld
  let proxy: StartedProxy
  /** Every body the proxy answered, for the canary sweep. */
  const replies: ProxyReply[] = []
  const env = (): NodeJS.ProcessEnv => ({
    AGENTVAULT_HOME: world.home,
    AGENTVAULT_NO_KEYCHAIN: '1',
    NO_COLOR: '1',
  })
  const send = async (
    headers: Record<string, string>,
    extra: {body?: string; method?: string; path?: string} = {},
  ) => {
    const reply = await proxyCall(proxy.port, {
      ...extra,
      headers: {...(proxy.token && {'X-AS-Session-Token': proxy.token}), ...headers},
    })
    replies.push(reply)
    return reply
  }

  const target = (path: string, host?: string) => ({'X-AS-Target-URL': world.upstream.url(path, {host})})

  before(async () => {
    world = await createUseWorld()
    proxy = await startProxy(env())
  })

  after(async () => {
    const result = await proxy.stop()
    assert.equal(result.code, 0, result.stderr)
    await world.dispose()
  })

  describe('endpoints', () => {
    it('GET /health: 200 {"project","status":"ok"} without a token; other paths 404 text', async () => {
      const health = await proxyCall(proxy.port, {path: '/health'})
      assert.equal(health.status, 200)
      assert.deepEqual(JSON.parse(health.text), {project: 'local', status: 'ok'})
      const other = await proxyCall(proxy.port, {path: '/proxyx'})
      assert.equal(other.status, 404)
      assert.equal(other.text, '404 page not found\n')
      assert.match(String(other.headers['content-type']), /^text\/plain/)
    })

    it('pid file 0600 in the home, status shows it, a second start is refused (3)', async () => {
      assert.equal((await stat(join(world.home, 'proxy.pid'))).mode & 0o777, 0o600)
      const status = JSON.parse((await runCli(['proxy', 'status', '--json'], {env: env()})).stdout) as Record<
        string,
        unknown
      >
      assert.equal(status.running, true)
      assert.equal(status.port, proxy.port)
      assert.equal(status.healthy, true)
      assert.equal(status.sessionTokenRequired, true)
      assert.equal(status.sessionToken, undefined, 'the token only with --show-token')
      assert.match(proxy.token ?? '', /^as_sess_[\da-f]{32}$/)
      const again = await runCli(['proxy', 'start', '--port', '0'], {env: env()})
      assert.equal(again.code, 3)
      assert.match(again.stderr, /^Error: A proxy already runs.*\nTry this: /m)
    })
  })

  describe('the six injection styles, as AgentSecrets applies them', () => {
    it('X-AS-Inject-Bearer (bare name of the proxy profile)', async () => {
      const reply = await send({...target('/bearer'), 'X-AS-Inject-Bearer': 'K'})
      assert.equal(reply.status, 200, reply.text)
      assert.equal(reply.text, 'ok')
      assert.equal(world.upstream.last('/bearer').headers.authorization, `Bearer ${CANARY}`)
    })

    it('X-AS-Inject-Basic: base64 of the stored user:pass', async () => {
      const reply = await send({...target('/basic'), 'X-AS-Inject-Basic': 'local://B'})
      assert.equal(reply.status, 200, reply.text)
      const expected = `Basic ${Buffer.from(`${BASIC_USER}:${CANARY}`).toString('base64')}`
      assert.equal(world.upstream.last('/basic').headers.authorization, expected)
    })

    it('X-AS-Inject-Header-<Name>', async () => {
      const reply = await send({...target('/header'), 'X-AS-Inject-Header-x-api-key': 'K'})
      assert.equal(reply.status, 200, reply.text)
      assert.equal(world.upstream.last('/header').headers['x-api-key'], CANARY)
    })

    it('X-AS-Inject-Query-<param>: the Go-canonical name (key → Key), other parameters kept', async () => {
      const reply = await send({...target('/query?page=2'), 'X-AS-Inject-Query-key': 'K'})
      assert.equal(reply.status, 200, reply.text)
      const received = new URL(world.upstream.last('/query').path, 'http://x')
      assert.equal(received.searchParams.get('Key'), CANARY)
      assert.equal(received.searchParams.get('page'), '2')
    })

    it('X-AS-Inject-Body-<path>: `-` is `.`, names canonical, caller body kept', async () => {
      const reply = await send(
        {...target('/body'), 'Content-Type': 'application/json', 'X-AS-Inject-Body-auth-token': 'K'},
        {body: '{"model":"m"}', method: 'POST'},
      )
      assert.equal(reply.status, 200, reply.text)
      const received = world.upstream.last('/body')
      assert.equal(received.method, 'POST')
      assert.deepEqual(JSON.parse(received.body.toString('utf8')), {Auth: {Token: CANARY}, model: 'm'})
    })

    it('X-AS-Inject-Form-<field>', async () => {
      const reply = await send(
        {
          ...target('/form'),
          'Content-Type': 'application/x-www-form-urlencoded',
          'X-AS-Inject-Form-client_secret': 'K',
        },
        {body: 'grant_type=client_credentials', method: 'POST'},
      )
      assert.equal(reply.status, 200, reply.text)
      const form = new URLSearchParams(world.upstream.last('/form').body.toString('utf8'))
      assert.equal(form.get('Client_secret'), CANARY)
      assert.equal(form.get('grant_type'), 'client_credentials')
    })

    it('several styles in one request; X-AS-Method wins; caller headers forwarded, X-AS-* not', async () => {
      const reply = await send(
        {
          ...target('/combo'),
          'X-AS-Method': 'put',
          'X-AS-Inject-Bearer': 'local://K',
          'X-AS-Inject-Header-X-Second': 'local://B?profile=lp',
          'X-AS-Inject-Query-api_key': 'K',
          'X-AS-Agent-ID': 'agent-7',
          'X-Trace': 'abc',
        },
        {method: 'POST'},
      )
      assert.equal(reply.status, 200, reply.text)
      const received = world.upstream.last('/combo')
      assert.equal(received.method, 'PUT')
      assert.equal(received.headers.authorization, `Bearer ${CANARY}`)
      assert.equal(received.headers['x-second'], `${BASIC_USER}:${CANARY}`)
      assert.equal(new URL(received.path, 'http://x').searchParams.get('Api_key'), CANARY)
      assert.equal(received.headers['x-trace'], 'abc')
      assert.ok(!Object.keys(received.headers).some((name) => name.startsWith('x-as-')))
    })
  })

  describe('responses and errors in AgentSecrets shapes', () => {
    it('upstream 4xx/5xx and headers pass through', async () => {
      for (const code of [404, 503]) {
        const reply = await send({...target(`/status?code=${code}`), 'X-AS-Inject-Bearer': 'K'})
        assert.equal(reply.status, code)
        assert.equal(reply.text, `status ${code}`)
      }
    })

    it('redaction: echoes in the body and in headers become [REDACTED_BY_AGENTSECRETS]', async () => {
      const reply = await send({...target('/echo'), 'X-AS-Inject-Bearer': 'K'})
      assert.equal(reply.status, 200)
      assert.equal(reply.headers['x-echo-token'], MARKER)
      assert.ok(reply.text.includes(MARKER))
      assertNoCanary(reply.text, 'the echo body')
      assert.equal(Number(reply.headers['content-length']), reply.body.length)
    })

    it('a header *name* echoing a secret: 200 with a valid concealed name, never "502 OK"', async () => {
      const reply = await send({...target('/header-name'), 'X-AS-Inject-Bearer': 'K'})
      assert.equal(reply.status, 200, reply.text)
      assert.equal(reply.text, 'ok')
      const names = Object.keys(reply.headers)
      assertNoCanary(names.join('\n'), 'the response header names')
      assert.ok(
        names.some((name) => name.includes('redacted_by_agentsecrets')),
        `a concealed name in ${names.join(', ')}`,
      )
      // The raw status line: a 2xx reason phrase only with a 2xx status.
      const raw = await rawExchange(
        proxy.port,
        `GET /proxy HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nX-AS-Session-Token: ${proxy.token}\r\nX-AS-Target-URL: ${world.upstream.url('/header-name')}\r\nX-AS-Inject-Bearer: K\r\nConnection: close\r\n\r\n`,
      )
      assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/)
      assertNoCanary(raw, 'the raw response')
    })

    it('keeps connections to the upstream alive between requests (the address guard still runs each time)', async () => {
      for (const path of ['/reuse-1', '/reuse-2', '/reuse-3']) {
        const reply = await send({...target(path), 'X-AS-Inject-Bearer': 'K'})
        assert.equal(reply.status, 200, reply.text)
      }

      const ports = ['/reuse-1', '/reuse-2', '/reuse-3'].map((path) => world.upstream.last(path).remotePort)
      assert.equal(new Set(ports).size, 1, `one connection, got client ports ${ports.join(', ')}`)
      // The same origin, a kept-alive socket to it in the pool: still refused for a profile without
      // private networks.
      const before = world.upstream.requests.length
      const blocked = await send({...target('/reuse-4'), 'X-AS-Inject-Bearer': 'local://K?profile=noprivate'})
      assert.equal(blocked.status, 403, blocked.text)
      assert.equal((JSON.parse(blocked.text) as Record<string, string>).error, 'ssrf_protection_blocked')
      assert.equal(world.upstream.requests.length, before, 'nothing sent')
    })

    it('400 shape A: no target, no injection, unknown style', async () => {
      const noTarget = await send({'X-AS-Inject-Bearer': 'K'})
      assert.equal(noTarget.status, 400)
      assert.equal(noTarget.text, '{"error":"X-AS-Target-URL header is required"}\n')
      const noInjection = await send(target('/x'))
      assert.equal(noInjection.status, 400)
      assert.equal(noInjection.text, '{"error":"At least one X-AS-Inject-* header is required"}\n')
      const unknown = await send({...target('/x'), 'X-AS-Inject-Cookie': 'K'})
      assert.equal(unknown.status, 400)
      assert.match(JSON.parse(unknown.text).error, /Unknown injection header X-As-Inject-Cookie/)
    })

    it('401 shape A without the token or with a wrong one; nothing sent upstream', async () => {
      const before = world.upstream.requests.length
      for (const token of [undefined, 'as_sess_00000000000000000000000000000000', `${proxy.token}x`]) {
        const reply = await proxyCall(proxy.port, {
          headers: {
            ...target('/never'),
            'X-AS-Inject-Bearer': 'K',
            ...(token && {'X-AS-Session-Token': token}),
          },
        })
        replies.push(reply)
        assert.equal(reply.status, 401)
        assert.equal(reply.text, '{"error":"Invalid or missing session token"}\n')
      }

      assert.equal(world.upstream.requests.length, before)
    })

    it('403 shape B domain_not_in_allowlist (keys alphabetical, no newline)', async () => {
      const reply = await send({...target('/x'), 'X-AS-Inject-Bearer': 'SCOPED'})
      assert.equal(reply.status, 403)
      assert.ok(!reply.text.endsWith('\n'))
      const body = JSON.parse(reply.text) as Record<string, string>
      assert.deepEqual(Object.keys(body), ['domain', 'error', 'message'])
      assert.equal(body.error, 'domain_not_in_allowlist')
      assert.equal(body.domain, '127.0.0.1')
      assert.match(body.message ?? '', /^127\.0\.0\.1 is not in the allowlist of local:\/\/SCOPED/)
    })

    it('403 empty_allowlist: no list on the secret, none on its profile, no --allow-host', async () => {
      const reply = await send({...target('/x'), 'X-AS-Inject-Bearer': 'local://K?profile=strict'})
      assert.equal(reply.status, 403)
      const body = JSON.parse(reply.text) as Record<string, string>
      assert.deepEqual(Object.keys(body), ['domain', 'error', 'message'])
      assert.equal(body.error, 'empty_allowlist')
      assert.equal(body.domain, '127.0.0.1')
    })

    it('403 ssrf_protection_blocked after DNS (localhost → 127.0.0.1 in a profile without private networks)', async () => {
      const reply = await send({
        ...target('/x', 'localhost'),
        'X-AS-Inject-Bearer': 'local://K?profile=noprivate',
      })
      assert.equal(reply.status, 403)
      const body = JSON.parse(reply.text) as Record<string, string>
      assert.equal(body.error, 'ssrf_protection_blocked')
      assert.equal(body.domain, `localhost:${new URL(world.upstream.url('/')).port}`)
    })

    it("502 shape A secret 'KEY' not found; 502 injection failed", async () => {
      const missing = await send({...target('/x'), 'X-AS-Inject-Bearer': 'NOPE'})
      assert.equal(missing.status, 502)
      assert.ok(missing.text.endsWith('\n'))
      assert.match((JSON.parse(missing.text) as {error: string}).error, /^secret 'NOPE' not found/)
      const basic = await send({...target('/x'), 'X-AS-Inject-Basic': 'K'})
      assert.equal(basic.status, 502)
      assert.match((JSON.parse(basic.text) as {error: string}).error, /^injection failed: /)
    })

    it('502 failed to reach upstream', async () => {
      const reply = await send({'X-AS-Target-URL': 'http://127.0.0.1:1/x', 'X-AS-Inject-Bearer': 'K'})
      assert.equal(reply.status, 502)
      assert.match((JSON.parse(reply.text) as {error: string}).error, /^failed to reach upstream: /)
    })

    it('a redirect to a host the secret may not go to: 403 domain_not_in_allowlist, not followed', async () => {
      const elsewhere = world.upstream.url('/elsewhere', {host: '127.0.0.2'})
      const reply = await send({
        ...target(`/redirect?to=${encodeURIComponent(elsewhere)}`),
        'X-AS-Inject-Bearer': 'K',
      })
      assert.equal(reply.status, 403, reply.text)
      assert.equal((JSON.parse(reply.text) as {error: string}).error, 'domain_not_in_allowlist')
      assert.throws(() => world.upstream.last('/elsewhere'))
    })

    it('no CORS headers, ever (a preflight gets none)', async () => {
      const preflight = await proxyCall(proxy.port, {
        headers: {
          'Access-Control-Request-Headers': 'x-as-target-url',
          'Access-Control-Request-Method': 'GET',
          Origin: 'http://evil.example',
        },
        method: 'OPTIONS',
      })
      assert.ok(!Object.keys(preflight.headers).some((name) => name.startsWith('access-control-')))
      assert.notEqual(preflight.status, 200)
    })
  })

  describe('hostile input', () => {
    it('Host header other than 127.0.0.1/localhost/[::1]:PORT is refused (DNS rebinding)', async () => {
      for (const host of [`evil.example:${proxy.port}`, '127.0.0.1', `127.0.0.1:${proxy.port + 1}`]) {
        const answer = await rawExchange(
          proxy.port,
          `GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        )
        assert.match(answer, /^HTTP\/1\.1 403 /, host)
      }

      for (const host of [`localhost:${proxy.port}`, `[::1]:${proxy.port}`]) {
        const answer = await rawExchange(
          proxy.port,
          `GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        )
        assert.match(answer, /^HTTP\/1\.1 200 /, host)
      }
    })

    it('listens on 127.0.0.1 only: other loopback and interface addresses are refused', async () => {
      const others = ['127.0.0.2']
      for (const list of Object.values(networkInterfaces()))
        for (const item of list ?? []) if (item.family === 'IPv4' && !item.internal) others.push(item.address)
      for (const address of others)
        await assert.rejects(rawExchange(proxy.port, 'GET /health HTTP/1.1\r\n\r\n', address), /ECONNREFUSED/)
    })

    it('CR/LF in a header name, a value or the target URL: 400, nothing injected, still serving', async () => {
      const before = world.upstream.requests.length
      for (const line of [
        `X-AS-Target-URL: ${world.upstream.url('/crlf')}\rX-Injected: 1`,
        `X-AS-Target-URL: ${world.upstream.url('/crlf')}\r\nX-Bad\nName: 1`,
        `X-AS-Target-URL: ${world.upstream.url('/crlf')}\r\nX-Trace: a\rb`,
      ]) {
        const answer = await rawExchange(
          proxy.port,
          `GET /proxy HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nX-AS-Session-Token: ${proxy.token}\r\nX-AS-Inject-Bearer: K\r\n${line}\r\nConnection: close\r\n\r\n`,
        )
        assert.match(answer, /^HTTP\/1\.1 400 /)
      }

      const encoded = await send({
        'X-AS-Target-URL': `${world.upstream.url('/crlf')}%0d%0aX-Injected:%201`,
        'X-AS-Inject-Bearer': 'K',
      })
      assert.equal(encoded.status, 200)
      const received = world.upstream.last('/crlf')
      assert.equal(received.headers['x-injected'], undefined)
      assert.equal(world.upstream.requests.length, before + 1, 'only the percent-encoded one was sent')
    })

    it('oversized headers get 431, an oversized body 413', async () => {
      const big = await rawExchange(
        proxy.port,
        `GET /proxy HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`,
      )
      assert.match(big, /^HTTP\/1\.1 431 /)
      // A declared length over the cap is refused before a byte of the body is read.
      const declared = await rawExchange(
        proxy.port,
        `POST /proxy HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nX-AS-Session-Token: ${proxy.token}\r\nX-AS-Target-URL: ${world.upstream.url('/big-body')}\r\nX-AS-Inject-Bearer: K\r\nContent-Length: ${10 * 1024 * 1024 + 1}\r\n\r\nxxxx`,
      )
      assert.match(declared, /^HTTP\/1\.1 413 /)
      assert.match(declared, /\{"error":"Request body exceeds 10485760 bytes"\}\n$/)
    })

    it('a slow client (slowloris) holds no one up: others are served and audited meanwhile', async () => {
      const {connect} = await import('node:net')
      const slow = connect({host: '127.0.0.1', port: proxy.port})
      await new Promise<void>((resolve) => {
        slow.once('connect', () => resolve())
      })
      slow.write(`GET /proxy HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nX-AS-Target-`)
      const linesBefore = (await proxy.untilRequestLines(0)).length
      const replies = await Promise.all(
        Array.from({length: 5}, (_, i) => send({...target(`/while-slow-${i}`), 'X-AS-Inject-Bearer': 'K'})),
      )
      for (const reply of replies) assert.equal(reply.status, 200)
      const lines = await proxy.untilRequestLines(linesBefore + 5)
      assert.equal(lines.filter((line) => line.includes(' 200 ok ')).length >= 5, true)
      assert.equal(slow.destroyed, false, 'the slow client is still connected while the others were served')
      slow.destroy()
    })
  })

  describe('audit and logs', () => {
    it('one audit event per request: command proxy, agent id, references, host, status, outcome', async () => {
      const before = (await proxy.untilRequestLines(0)).length
      await send({...target('/audited'), 'X-AS-Inject-Bearer': 'K', 'X-AS-Agent-ID': 'audit-bot'})
      await send({...target('/x'), 'X-AS-Inject-Bearer': 'SCOPED', 'X-AS-Agent-ID': 'audit-bot'})
      await proxy.untilRequestLines(before + 2)
      const logs = await runCli(['proxy', 'logs', '--json', '--limit', '2'], {env: env()})
      assert.equal(logs.code, 0, logs.stderr)
      const events = logs.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
      assert.equal(events.length, 2)
      const [ok, denied] = events as [Record<string, unknown>, Record<string, unknown>]
      assert.equal(ok.command, 'proxy')
      assert.equal(ok.agent_id, 'audit-bot')
      assert.deepEqual(ok.references, ['local://K'])
      assert.equal(ok.target_host, new URL(world.upstream.url('/')).host)
      assert.equal(ok.status, 200)
      assert.equal(ok.outcome, 'ok')
      assert.equal(denied.outcome, 'denied')
      assert.equal(denied.status, 403)
      assert.equal(denied.error_code, 'HOST_NOT_ALLOWED')
      const audit = await runCli(['audit', '--command', 'proxy', '--json'], {env: env()})
      assert.ok(audit.stdout.trim().split('\n').length >= 2)
      const verify = await runCli(['audit', 'verify'], {env: env()})
      assert.equal(verify.code, 0, verify.stdout)
    })

    it('an agent id holding an injected value is concealed in the log line and the audit event', async () => {
      const before = (await proxy.untilRequestLines(0)).length
      for (const form of [CANARY, encodeURIComponent(CANARY)]) {
        const reply = await send({
          ...target('/agent-echo'),
          'X-AS-Agent-ID': `agent-${form}`,
          'X-AS-Inject-Bearer': 'K',
        })
        assert.equal(reply.status, 200, reply.text)
      }

      const lines = await proxy.untilRequestLines(before + 2)
      assertNoCanary(lines.join('\n'), 'the proxy request lines')
      assert.match(lines.at(-1) ?? '', / agent=agent-\[REDACTED_BY_AGENTSECRETS\]/)
      const logs = await runCli(['proxy', 'logs', '--json', '--limit', '2'], {env: env()})
      assertNoCanary(logs.stdout, 'proxy logs')
      const events = logs.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
      for (const event of events) assert.equal(event.agent_id, `agent-${MARKER}`)
      const verify = await runCli(['audit', 'verify'], {env: env()})
      assert.equal(verify.code, 0, verify.stdout)
    })

    it('canary: in no log line, audit line, error body or file under the home', async () => {
      await proxy.untilRequestLines(1)
      assertNoCanary(proxy.stderr(), 'the proxy stderr')
      for (const reply of replies)
        if (reply.status !== 200 || reply.text.includes(MARKER))
          assertNoCanary(reply.text, `a ${reply.status} body`)
      for (const file of await filesUnder(world.home)) {
        if (file.endsWith('vault.json') || file.endsWith('vault.key')) continue
        assertNoCanary(await readFile(file, 'latin1'), file)
      }
    })
  })
})

describe('e2e: proxy lifecycle', function () {
  this.timeout(60_000)
  let world: UseWorld
  const env = (): NodeJS.ProcessEnv => ({
    AGENTVAULT_HOME: world.home,
    AGENTVAULT_NO_KEYCHAIN: '1',
    NO_COLOR: '1',
  })

  before(async () => {
    world = await createUseWorld()
  })

  after(() => world.dispose())

  it("--allow-host '*' is refused at start with 2, as profiles add and mcp refuse it", async () => {
    const result = await runCli(['proxy', 'start', '--port', '0', '--allow-host', '*'], {env: env()})
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /^Error: Not a host or \*\.suffix pattern.*\nTry this: /m)
    await assert.rejects(stat(join(world.home, 'proxy.pid')), /ENOENT/)
  })

  it('status and stop with no proxy running', async () => {
    const status = await runCli(['proxy', 'status', '--json'], {env: env()})
    assert.deepEqual(JSON.parse(status.stdout), {running: false})
    const stop = await runCli(['proxy', 'stop'], {env: env()})
    assert.equal(stop.code, 0)
    assert.match(stop.stdout, /No proxy is running/)
  })

  it("stop never signals a process that is not this home's proxy (pid reuse): stale pid file removed, 3", async () => {
    const {spawn} = await import('node:child_process')
    const bystander = spawn('sleep', ['300'], {stdio: 'ignore'})
    const gone = new Promise((resolve) => {
      bystander.once('exit', resolve)
    })
    try {
      const pid = bystander.pid as number
      const record = {
        pid,
        port: 1,
        profile: 'local',
        started: '2026-12-07T00:00:00Z',
        token: `as_sess_${'0'.repeat(32)}`,
      }
      await writeFile(join(world.home, 'proxy.pid'), JSON.stringify(record), {mode: 0o600})
      const status = JSON.parse((await runCli(['proxy', 'status', '--json'], {env: env()})).stdout) as {
        healthy: boolean
      }
      assert.equal(status.healthy, false)
      const stop = await runCli(['proxy', 'stop'], {env: env()})
      assert.equal(stop.code, 3, stop.stdout + stop.stderr)
      assert.match(stop.stderr, new RegExp(`^Error: .*pid ${pid}.*not this home.s proxy.*\\nTry this: `, 'm'))
      assert.doesNotMatch(stop.stdout, /Proxy stopped/)
      assert.equal(bystander.exitCode, null, 'the unrelated process still runs')
      assert.equal(bystander.signalCode, null)
      process.kill(pid, 0)
      await assert.rejects(stat(join(world.home, 'proxy.pid')), /ENOENT/)
      const json = await runCli(['proxy', 'stop', '--json'], {env: env()})
      assert.equal(json.code, 0, 'the stale file is gone: nothing runs')
    } finally {
      bystander.kill('SIGKILL')
      await gone
    }
  })

  it('--no-session-token warns and serves clients that send no token; SIGTERM stops cleanly', async () => {
    const proxy = await startProxy(env(), [
      '--no-session-token',
      '--max-body-bytes',
      '1000',
      '--timeout',
      '1',
    ])
    assert.match(proxy.stderr(), /^Warning: Serving \/proxy without a session token/m)
    assert.equal(proxy.token, undefined)
    const reply = await proxyCall(proxy.port, {
      headers: {'X-AS-Inject-Bearer': 'K', 'X-AS-Target-URL': world.upstream.url('/notoken')},
    })
    assert.equal(reply.status, 200, reply.text)
    // A chunked body (no declared length) is counted as it arrives: over --max-body-bytes is 413.
    const chunk = 'y'.repeat(1500)
    const chunked = await rawExchange(
      proxy.port,
      `POST /proxy HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nX-AS-Target-URL: ${world.upstream.url('/chunked')}\r\nX-AS-Inject-Bearer: K\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
    )
    assert.match(chunked, /^HTTP\/1\.1 413 /)
    assert.throws(() => world.upstream.last('/chunked'))
    // --timeout: an upstream slower than the limit is 502 failed to reach upstream.
    const slow = await proxyCall(proxy.port, {
      headers: {'X-AS-Inject-Bearer': 'K', 'X-AS-Target-URL': world.upstream.url('/slow?ms=5000')},
    })
    assert.equal(slow.status, 502)
    assert.match(
      (JSON.parse(slow.text) as {error: string}).error,
      /^failed to reach upstream: No complete response/,
    )
    await proxy.untilRequestLines(3)
    proxy.child.kill('SIGTERM')
    const result = await proxy.exited
    assert.equal(result.code, 0, result.stderr)
    await assert.rejects(stat(join(world.home, 'proxy.pid')), /ENOENT/)
  })

  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    it(`${signal} right after a burst: every answered request is in the audit log and the request log, the chain verifies`, async () => {
      const count = async (): Promise<number> => {
        const audit = await runCli(['audit', '--command', 'proxy', '--json'], {env: env()})
        return audit.stdout.trim() === '' ? 0 : audit.stdout.trim().split('\n').length
      }

      const before = await count()
      const proxy = await startProxy(env())
      const replies = await Promise.all(
        Array.from({length: 40}, (_, i) =>
          proxyCall(proxy.port, {
            headers: {
              'X-AS-Inject-Bearer': 'K',
              'X-AS-Session-Token': proxy.token ?? '',
              'X-AS-Target-URL': world.upstream.url(`/burst-${signal}-${i}`),
            },
          }),
        ),
      )
      assert.deepEqual(new Set(replies.map((reply) => reply.status)), new Set([200]))
      // Signalled while the last events still wait for their batch (answers come before audit).
      proxy.child.kill(signal)
      const result = await proxy.exited
      assert.equal(result.code, 0, result.stderr)
      assert.equal(await count(), before + 40)
      // This proxy served the burst only: one request line each, also written before it exited.
      const lines = result.stderr.split('\n').filter((line) => /^\S+ 200 ok /.test(line))
      assert.equal(lines.length, 40, result.stderr)
      const verify = await runCli(['audit', 'verify'], {env: env()})
      assert.equal(verify.code, 0, verify.stdout)
    })

  it('a second Ctrl-C while a request is in flight: the request still gets its audit event', async () => {
    const count = async (): Promise<number> => {
      const audit = await runCli(['audit', '--command', 'proxy', '--json'], {env: env()})
      return audit.stdout.trim() === '' ? 0 : audit.stdout.trim().split('\n').length
    }

    const before = await count()
    const proxy = await startProxy(env())
    const reply = proxyCall(proxy.port, {
      headers: {
        'X-AS-Inject-Bearer': 'K',
        'X-AS-Session-Token': proxy.token ?? '',
        'X-AS-Target-URL': world.upstream.url('/slow?ms=3000&twice'),
      },
    }).catch((error: unknown) => error)
    // The secret is on its way upstream.
    await until(() => world.upstream.requests.some((request) => request.path.includes('twice')))
    proxy.child.kill('SIGINT')
    // The first Ctrl-C was taken: the proxy stopped listening (it waits for the request in flight).
    await until(async () => !(await accepts(proxy.port)))
    proxy.child.kill('SIGINT')
    const result = await proxy.exited
    await reply
    assert.equal(result.signal, null, 'the second Ctrl-C killed the proxy before it wrote the audit log')
    assert.equal(result.code, 0, result.stderr)
    assert.equal(await count(), before + 1)
  })

  it('--detach starts it in the background; status finds it; stop ends it', async () => {
    const started = await runCli(['proxy', 'start', '--port', '0', '--detach', '--json'], {env: env()})
    assert.equal(started.code, 0, started.stderr)
    const {pid, port} = JSON.parse(started.stdout) as {pid: number; port: number}
    const status = JSON.parse(
      (await runCli(['proxy', 'status', '--json', '--show-token'], {env: env()})).stdout,
    ) as {
      pid: number
      sessionToken: string
    }
    assert.equal(status.pid, pid)
    const reply = await proxyCall(port, {
      headers: {
        'X-AS-Inject-Bearer': 'K',
        'X-AS-Session-Token': status.sessionToken,
        'X-AS-Target-URL': world.upstream.url('/detached'),
      },
    })
    assert.equal(reply.status, 200, reply.text)
    const stop = await runCli(['proxy', 'stop', '--json'], {env: env()})
    assert.deepEqual(JSON.parse(stop.stdout), {pid, stopped: true})
    assert.throws(() => process.kill(pid, 0), /ESRCH/)
  })
})
