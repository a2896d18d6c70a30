/**
 * `run --placeholders` end to end (issue 15): real clients (curl, Python requests, Node) as the
 * child, talking through agentvault's proxy to the recording HTTPS upstream, whose private CA
 * agentvault trusts through the `tls` profile's caCert. The canaries must reach the upstream and
 * nothing else: not the child's environment, its output, the temp files or the audit log.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {collect, startCli} from '../helpers/cli.js'
import {ensureClients, pythonWithRequests} from '../helpers/clients.js'
import {accepts, filesUnder, watchOutput} from '../helpers/e2e.js'
import {
  CANARY,
  createUseWorld,
  leakedForms,
  SCOPED_CANARY,
  type UseWorld,
} from '../servers/http-upstream/fixture.js'

const PLACEHOLDER = /avph_K_[\da-f]{32}/
const K = 'K=local://K?profile=tls'
const S = 'S=local://SCOPED?profile=tls'

function assertNoCanary(text: string, where: string): void {
  for (const form of [...leakedForms(CANARY), ...leakedForms(SCOPED_CANARY)])
    assert.ok(!text.includes(form), `a canary form leaked into ${where}: ${text.slice(0, 400)}`)
}

describe('e2e: run --placeholders', () => {
  let world: UseWorld
  let env: NodeJS.ProcessEnv
  const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    world.cli(['run', '--placeholders', ...args], {env: extra})

  before(async function () {
    // Installs curl, python3-requests and bubblewrap when missing (as root with apt-get), else fails
    // with what to install: this suite never skips silently.
    this.timeout(600_000)
    ensureClients()
    execFileSync('openssl', ['version'], {stdio: 'ignore'})
    world = await createUseWorld()
    env = {AGENTVAULT_HOME: world.home, AGENTVAULT_NO_KEYCHAIN: '1', NO_COLOR: '1'}
  })

  after(() => world?.dispose())

  it('curl: header, query and JSON body arrive with the real value; the echo comes back as the placeholder', async () => {
    const url = world.upstream.url('/echo', {secure: true})
    const script = `curl -sS --fail-with-body -H "Authorization: Bearer $K" -H 'Content-Type: application/json' -d "{\\"token\\":\\"$K\\"}" "${url}?key=$K"`
    const result = await run(['--env', K, '--', 'sh', '-c', script])
    assert.equal(result.code, 0, result.stderr)
    const received = world.upstream.last('/echo')
    assert.equal(received.secure, true)
    assert.equal(received.headers.authorization, `Bearer ${CANARY}`)
    assert.equal(new URL(received.path, 'https://x').searchParams.get('key'), CANARY)
    assert.equal((JSON.parse(received.body.toString('utf8')) as {token: string}).token, CANARY)
    const echo = JSON.parse(result.stdout) as {
      body: string
      headers: {authorization: string}
      token_base64: string
    }
    const placeholder = PLACEHOLDER.exec(echo.headers.authorization)?.[0]
    assert.ok(placeholder, result.stdout)
    assert.equal(echo.headers.authorization, `Bearer ${placeholder}`)
    assert.equal(echo.token_base64, placeholder, 'the base64 form of the value comes back as the placeholder')
    assertNoCanary(result.stdout + result.stderr, 'the output')
    assert.equal(result.stderr, '', 'agentvault adds nothing to stderr on the way')
  })

  it('Python requests (proxy and CA bundle from the environment) reaches the upstream the same way', async () => {
    const python = pythonWithRequests()
    const url = world.upstream.url('/py', {secure: true})
    const code = [
      'import os, requests',
      'k = os.environ["K"]',
      `r = requests.post(${JSON.stringify(url)}, params={"q": k}, headers={"X-Api-Key": k}, json={"nested": {"k": k}})`,
      'print(r.status_code, r.text)',
    ].join('\n')
    const result = await run(['--env', K, '--', python, '-c', code])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /^200 ok/)
    const received = world.upstream.last('/py')
    assert.equal(received.headers['x-api-key'], CANARY)
    assert.equal(new URL(received.path, 'https://x').searchParams.get('q'), CANARY)
    assert.deepEqual(JSON.parse(received.body.toString('utf8')), {nested: {k: CANARY}})
  })

  it('Node (CONNECT through HTTPS_PROXY, trust from NODE_EXTRA_CA_CERTS) reaches the upstream the same way', async () => {
    const target = new URL(world.upstream.url('/node', {secure: true}))
    const code = `
      const http = require('node:http'), https = require('node:https'), tls = require('node:tls')
      const proxy = new URL(process.env.HTTPS_PROXY)
      // A fresh agent: where Node honours the proxy variables itself (NODE_USE_ENV_PROXY, Node
      // 22.21+/24.5+), the global one would send this CONNECT through the proxy to the proxy.
      http.request({agent: new http.Agent(), host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: ${JSON.stringify(target.host)}})
        .on('connect', (res, socket) => {
          const req = https.request({host: ${JSON.stringify(target.hostname)}, path: '/node', headers: {'x-token': process.env.K},
            createConnection: () => tls.connect({socket, servername: undefined, host: ${JSON.stringify(target.hostname)}})},
            (response) => { let text = ''; response.on('data', (c) => text += c); response.on('end', () => { console.log(response.statusCode, text); socket.destroy() }) })
          req.end()
        }).end()`
    const result = await run(['--env', K, '--', process.execPath, '-e', code])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout.trim(), '200 ok')
    assert.equal(world.upstream.last('/node').headers['x-token'], CANARY)
  })

  it('Node that honours the proxy variables itself (NODE_USE_ENV_PROXY, 22.21+/24.5+): a plain https.get works', async function () {
    const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
    if (major < 22 || (major === 22 && minor < 21) || (major === 24 && minor < 5)) this.skip()
    const target = world.upstream.url('/node-env', {secure: true})
    const code = `require('node:https').get(${JSON.stringify(target)}, {headers: {'x-token': process.env.K}}, (response) => {
      let text = ''; response.on('data', (c) => text += c); response.on('end', () => console.log(response.statusCode, text)) })`
    const result = await run(['--env', K, '--', process.execPath, '-e', code])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout.trim(), '200 ok')
    assert.equal(world.upstream.last('/node-env').headers['x-token'], CANARY)
  })

  it('the child environment holds only placeholders, proxy and trust variables; the CA key never touches disk; all is gone after exit', async () => {
    const child = startCli(
      [
        'run',
        '--placeholders',
        '--env',
        K,
        '--env',
        S,
        '--',
        'sh',
        '-c',
        'echo "pid=$$"; read line; echo done',
      ],
      {
        env: {...env, NO_PROXY: 'localhost,127.0.0.1', no_proxy: '*'},
        openStdin: true,
      },
    )
    const done = collect(child)
    const output = watchOutput(child)
    await output.until((text) => /pid=\d+\n/.test(text), 'the child pid')
    const pid = /pid=(\d+)/.exec(output.text())![1]
    const environ = await readFile(`/proc/${pid}/environ`)
    assertNoCanary(environ.toString('latin1'), '/proc/<child>/environ')
    const vars = new Map(
      environ
        .toString('utf8')
        .split('\0')
        .filter(Boolean)
        .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
    )
    assert.match(vars.get('K') ?? '', new RegExp(`^${PLACEHOLDER.source}$`))
    assert.match(vars.get('S') ?? '', /^avph_S_[\da-f]{32}$/)
    const proxyUrl = vars.get('HTTPS_PROXY') ?? ''
    assert.match(proxyUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
    for (const name of ['HTTP_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy'])
      assert.equal(vars.get(name), proxyUrl, name)
    assert.equal(vars.get('NODE_USE_ENV_PROXY'), '1')
    assert.ok(!vars.has('NO_PROXY') && !vars.has('no_proxy'), 'NO_PROXY would let the child bypass the proxy')
    const bundle = vars.get('SSL_CERT_FILE')!
    for (const name of ['REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO'])
      assert.equal(vars.get(name), bundle)
    const dir = dirname(bundle)
    assert.equal((await stat(dir)).mode & 0o777, 0o700)
    const files = await readdir(dir)
    assert.ok(files.length > 0)
    for (const file of files) {
      assert.equal((await stat(join(dir, file))).mode & 0o777, 0o600, file)
      assert.doesNotMatch(await readFile(join(dir, file), 'utf8'), /PRIVATE KEY/, file)
    }

    assert.match(await readFile(vars.get('NODE_EXTRA_CA_CERTS')!, 'utf8'), /BEGIN CERTIFICATE/)
    assert.match(
      await readFile(bundle, 'utf8'),
      /(BEGIN CERTIFICATE[\s\S]*){10}/,
      'the bundle keeps the system roots',
    )
    for (const file of await filesUnder(world.home))
      assert.doesNotMatch(
        await readFile(file, 'latin1'),
        /PRIVATE KEY|agentvault run .* \(placeholders/,
        file,
      )

    child.stdin!.end('go\n')
    const result = await done
    assert.equal(result.code, 0, result.stderr)
    assert.equal(existsSync(dir), false, 'the temp dir is removed at exit')
    assert.equal(await accepts(Number(new URL(proxyUrl).port)), false, 'the proxy is gone')
  })

  it('a placeholder sent to a host its secret does not allow: 403, nothing sent, the child goes on, audited denied', async () => {
    const before = world.upstream.requests.length
    const intercepted = world.upstream.url('/exfil', {secure: true}) // 127.0.0.1: K may go there, S may not
    const plain = world.upstream.url('/exfil-plain', {host: '127.0.0.2'}) // K may not go to 127.0.0.2
    const script = [
      `curl -sS -o /dev/null -w '%{http_code}\\n' -H "X-Steal: $S" "${intercepted}"`,
      `curl -sS -w '%{http_code}\\n' "${plain}?k=$K"`,
      'echo still-running',
    ].join('; ')
    const result = await run(['--env', K, '--env', S, '--', 'sh', '-c', script])
    assert.equal(result.code, 0, result.stderr)
    const lines = result.stdout.trim().split('\n')
    assert.equal(lines[0], '403', result.stdout)
    assert.match(
      lines[1] ?? '',
      /^agentvault refused this request: it carries the placeholder of K \(local:\/\/K/,
    )
    // The way to allow it keeps the value (secrets set would ask for it again).
    assert.match(lines[1] ?? '', /agentvault secrets edit NAME --allow-domain HOST/)
    assert.equal(lines[2], '403')
    assert.equal(lines[3], 'still-running')
    assert.equal(world.upstream.requests.length, before, 'the upstream received nothing')
    assert.match(
      result.stderr,
      /Refused a request of the command to 127\.0\.0\.1:\d+: it carried the placeholder of S/,
    )
    const audit = (await readFile(join(world.home, 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    const denied = audit.filter((record) => record.outcome === 'denied' && record.operation === 'placeholder')
    assert.ok(
      denied.some(
        (record) =>
          String(record.references).includes('SCOPED') && String(record.target_host).startsWith('127.0.0.1:'),
      ),
      JSON.stringify(denied),
    )
    assert.ok(
      denied.some(
        (record) =>
          String(record.references).includes('local://K') &&
          String(record.target_host).startsWith('127.0.0.2:'),
      ),
    )
    assertNoCanary(JSON.stringify(audit), 'the audit log')
    // The same secret goes where it is allowed.
    const allowed = await run([
      '--env',
      S,
      '--',
      'sh',
      '-c',
      `curl -sS -H "X-S: $S" "${world.upstream.url('/scoped', {host: '127.0.0.2', secure: true})}"`,
    ])
    assert.equal(allowed.code, 0, allowed.stderr)
    assert.equal(world.upstream.last('/scoped').headers['x-s'], SCOPED_CANARY)
  })

  it('a Host header naming another host than the target: the value goes with the target’s own Host (no vhost fronting past the allowed host)', async () => {
    // K may go to 127.0.0.1 only. On a shared front (CDN, reverse proxy) the Host header picks the
    // site: a child must not send K to 127.0.0.1's address with `Host: elsewhere.example`.
    const https = world.upstream.url('/fronted', {secure: true})
    const plain = world.upstream.url('/fronted-plain')
    const script = [
      `curl -sS -o /dev/null -H 'Host: elsewhere.example' -H "X-K: $K" "${https}"`,
      `curl -sS -o /dev/null -H 'Host: elsewhere.example' -H "X-K: $K" "${plain}"`,
    ].join('; ')
    const result = await run(['--env', K, '--', 'sh', '-c', script])
    assert.equal(result.code, 0, result.stderr)
    for (const [path, url] of [
      ['/fronted', https],
      ['/fronted-plain', plain],
    ] as const) {
      const seen = world.upstream.requests.filter((request) => request.path === path)
      assert.ok(seen.length > 0, `${path} reached the upstream`)
      for (const request of seen) {
        if (request.headers['x-k'] !== CANARY) continue
        assert.equal(
          request.headers.host,
          new URL(url).host,
          `${path}: the value went with Host ${request.headers.host}`,
        )
      }
    }
  })

  it('a burst of refused requests is audited whole, in one chain, also when agentvault is stopped right after', async () => {
    const readDenied = async () =>
      (await readFile(join(world.home, 'audit.log'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((record) => record.outcome === 'denied' && String(record.references).includes('SCOPED'))
    const before = (await readDenied()).length
    const burst = 25
    const url = world.upstream.url('/exfil-burst', {secure: true}) // 127.0.0.1: S may not go there
    const script = [
      `for i in $(seq ${burst}); do curl -sS -o /dev/null -w '%{http_code}\\n' -H "X-Steal: $S" "${url}" & done`,
      'wait',
      'echo sent',
      'exec sleep 30',
    ].join('; ')
    const child = startCli(['run', '--placeholders', '--env', K, '--env', S, '--', 'sh', '-c', script], {env})
    const done = collect(child)
    const output = watchOutput(child)
    await output.until((text) => text.includes('sent\n'), 'the burst')
    // Every request has had its 403, so every refusal is queued for the audit log: stop now.
    child.kill('SIGTERM')
    const result = await done
    assert.equal(result.code, 143, result.stderr)
    assert.deepEqual(result.stdout.trim().split('\n'), [...Array.from({length: burst}, () => '403'), 'sent'])
    assert.equal((await readDenied()).length - before, burst, 'one audit line per refused request')
    const verify = await world.cli(['audit', 'verify'], {env: {}})
    assert.equal(verify.code, 0, verify.stdout + verify.stderr)
  })

  it('the real server is verified (no caCert: 502) and the SSRF guard holds (private address: 403, audited)', async () => {
    const before = world.upstream.requests.length
    const url = world.upstream.url('/verify', {secure: true})
    const script = `curl -sS -w '\\n%{http_code}\\n' -H "X-K: $K" "${url}"; echo still-running`
    // Profile lp allows 127.0.0.1 and private networks but does not trust the upstream's CA.
    const untrusted = await run(['--env', 'K=local://K?profile=lp', '--', 'sh', '-c', script])
    assert.equal(untrusted.code, 0, untrusted.stderr)
    assert.match(
      untrusted.stdout,
      /^agentvault: TLS verification of 127\.0\.0\.1:\d+ failed \([A-Z_]+\)\. .*caCert.*\n\n502\nstill-running\n$/,
    )
    // Verified all the same when the environment says NODE_TLS_REJECT_UNAUTHORIZED=0 (for some
    // other tool): the value never goes to a server nobody verified.
    const unverified = await run(['--env', 'K=local://K?profile=lp', '--', 'sh', '-c', script], {
      NODE_TLS_REJECT_UNAUTHORIZED: '0',
    })
    assert.equal(unverified.code, 0, unverified.stderr)
    assert.match(
      unverified.stdout,
      /^agentvault: TLS verification of 127\.0\.0\.1:\d+ failed[\s\S]*\n502\nstill-running\n$/,
    )
    // Profile noprivate allows the host but not private addresses.
    const ssrf = await run(['--env', 'K=local://K?profile=noprivate', '--', 'sh', '-c', script])
    assert.equal(ssrf.code, 0, ssrf.stderr)
    assert.match(
      ssrf.stdout,
      /Refused to connect: 127\.0\.0\.1:\d+ is a loopback address[\s\S]*\n403\nstill-running\n$/,
    )
    assert.equal(world.upstream.requests.length, before, 'nothing reached the upstream')
    const audit = await readFile(join(world.home, 'audit.log'), 'utf8')
    assert.match(audit, /"error_code":"PRIVATE_ADDRESS".*"operation":"placeholder"/)
    assertNoCanary(
      untrusted.stdout +
        untrusted.stderr +
        unverified.stdout +
        unverified.stderr +
        ssrf.stdout +
        ssrf.stderr +
        audit,
      'output or audit',
    )
  })

  it('a host no placeholder concerns is tunnelled untouched: the client sees the upstream’s own certificate', async () => {
    const url = world.upstream.url('/tunnel', {host: 'localhost', secure: true})
    const script = [
      // Trusting only the upstream's CA works: the certificate is the upstream's own…
      `curl -sS --cacert "${world.upstream.caFile}" "${url}"; echo`,
      // …and the run's bundle (which holds the run's CA, not the upstream's) does not.
      `curl -sS -o /dev/null "${url}"; echo "exit=$?"`,
    ].join('; ')
    const result = await run(['--env', K, '--', 'sh', '-c', script])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'ok\nexit=60\n', result.stderr)
    assert.equal(world.upstream.last('/tunnel').secure, true)
  })

  it('exit codes pass through; SIGTERM/SIGINT to agentvault reach the child (143/130) and still remove the proxy and temp files', async () => {
    const exit = await run(['--env', K, '--', 'sh', '-c', 'exit 7'])
    assert.equal(exit.code, 7)
    for (const [signal, expected] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      const child = startCli(
        [
          'run',
          '--placeholders',
          '--env',
          K,
          '--',
          'sh',
          '-c',
          'echo "$SSL_CERT_FILE $HTTPS_PROXY"; exec sleep 30',
        ],
        {env},
      )
      const done = collect(child)
      const output = watchOutput(child)
      await output.until((text) => text.includes('\n'), 'the trust file and proxy')
      const [bundle, proxyUrl] = output.text().trim().split(' ') as [string, string]
      assert.ok(existsSync(bundle))
      child.kill(signal)
      const result = await done
      assert.equal(result.code, expected, result.stderr)
      assert.equal(existsSync(dirname(bundle)), false)
      assert.equal(await accepts(Number(new URL(proxyUrl).port)), false)
    }
  })

  it('a gzip response is decoded and its echoes rewritten; --env-file and --mask compose', async () => {
    const envFile = join(world.home, '..', 'placeholders.env')
    await writeFile(envFile, `K=local://K?profile=tls\nPLAIN=plain-value\n`)
    const url = world.upstream.url('/gzip', {secure: true})
    const script = `echo "$PLAIN"; curl -sS -H "Authorization: Bearer $K" "${url}"`
    for (const mask of ['always', 'never']) {
      const result = await run(['--env-file', envFile, '--mask', mask, '--', 'sh', '-c', script])
      assert.equal(result.code, 0, result.stderr)
      const [plain, body] = result.stdout.split('\n') as [string, string]
      assert.equal(plain, 'plain-value')
      const echo = JSON.parse(body) as {headers: {authorization: string}}
      assert.match(echo.headers.authorization, new RegExp(`^Bearer ${PLACEHOLDER.source}$`))
      assert.equal(world.upstream.last('/gzip').headers.authorization, `Bearer ${CANARY}`)
      assertNoCanary(result.stdout, `the output with --mask ${mask}`)
    }
  })

  for (const secure of [false, true]) {
    const over = secure ? 'intercepted HTTPS' : 'plain HTTP'
    it(`${over}: a value echoed in a header name or the reason phrase comes back as the placeholder`, async () => {
      const script = ['/header-name', '/reason']
        .map((path) => `curl -sS -D - -H "Authorization: Bearer $K" "${world.upstream.url(path, {secure})}"`)
        .join('; echo; ')
      const result = await run(['--env', K, '--', 'sh', '-c', script])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(world.upstream.last('/reason').headers.authorization, `Bearer ${CANARY}`)
      assert.match(result.stdout, new RegExp(`^x-session-${PLACEHOLDER.source}: active\r$`, 'im'))
      assert.match(result.stdout, /^HTTP\/1\.1 200 OK\r$/m)
      assertNoCanary(result.stdout.toLowerCase(), 'the response headers (lower-cased)')
      assertNoCanary(result.stdout, 'the response headers')
    })

    it(`${over}: stacked gzip is decoded and rewritten; an undeclared gzip echo or an unknown coding is refused (502, audited)`, async () => {
      const url = (query: string): string => `${world.upstream.url('/gzip', {secure})}?${query}`
      const fetch = (query: string): string =>
        `curl -sS -w '\n%{http_code}\n' -H "Authorization: Bearer $K" "${url(query)}"`
      const stacked = await run(['--env', K, '--', 'sh', '-c', fetch('layers=2&declare=gzip,%20gzip')])
      assert.equal(stacked.code, 0, stacked.stderr)
      const [body, status] = stacked.stdout.split('\n') as [string, string]
      assert.equal(status, '200')
      assert.match(
        (JSON.parse(body) as {headers: {authorization: string}}).headers.authorization,
        new RegExp(`^Bearer ${PLACEHOLDER.source}$`),
      )
      for (const query of ['layers=1&declare=none', 'layers=2&declare=gzip', 'layers=1&declare=compress']) {
        const result = await run(['--env', K, '--', 'sh', '-c', fetch(query)])
        assert.equal(result.code, 0, result.stderr)
        const lines = result.stdout.trim().split('\n')
        assert.equal(lines.at(-1), '502', `${query}: ${result.stdout}`)
        assert.match(lines[0] ?? '', /^agentvault refused the response from 127\.0\.0\.1:\d+: /, query)
        assert.match(result.stderr, /Refused the response of 127\.0\.0\.1:\d+ to the command/)
      }

      // A compressed body with no value in it is relayed as it came.
      const harmless = await run([
        '--env',
        K,
        '--',
        'sh',
        '-c',
        `curl -sS -H "Authorization: Bearer $K" "${url('layers=1&declare=none&plain=1')}" | gzip -dc`,
      ])
      assert.equal(harmless.stdout, 'nothing echoed here')
      const audit = (await readFile(join(world.home, 'audit.log'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
      assert.ok(
        audit.some(
          (record) =>
            record.outcome === 'denied' &&
            record.error_code === 'SECRET_IN_COMPRESSED_BODY' &&
            record.status === 502,
        ),
        JSON.stringify(audit.slice(-3)),
      )
      assert.ok(audit.some((record) => record.error_code === 'UNSCANNABLE_RESPONSE'))
    })
  }

  it('plain http:// carries a value only to a loopback host, or with AGENTVAULT_PLACEHOLDERS_ALLOW_HTTP=1 (403, audited)', async () => {
    // 192.0.2.1 (documentation range) is refused by the SSRF guard too, so nothing leaves this machine:
    // the point is which check refuses it.
    const script = `curl -sS -w '\\n%{http_code}\\n' "http://192.0.2.1/plain?k=$K"`
    const args = [
      '--allow-host',
      '192.0.2.1',
      '--env',
      'K=local://K?profile=strict',
      '--',
      'sh',
      '-c',
      script,
    ]
    const refused = await run(args)
    assert.equal(refused.code, 0, refused.stderr)
    const lines = refused.stdout.trim().split('\n')
    assert.equal(lines.at(-1), '403')
    assert.match(
      lines[0] ?? '',
      /^agentvault refused this request: it would send the value of K .* over plain http:\/\/ to 192\.0\.2\.1/,
    )
    assert.match(refused.stderr, /\(PLACEHOLDER_PLAIN_HTTP\)/)
    const audit = await readFile(join(world.home, 'audit.log'), 'utf8')
    assert.match(audit, /"error_code":"PLACEHOLDER_PLAIN_HTTP"/)
    const optedIn = await run(args, {AGENTVAULT_PLACEHOLDERS_ALLOW_HTTP: '1'})
    assert.equal(optedIn.stdout.trim().split('\n').at(-1), '403')
    assert.doesNotMatch(optedIn.stderr, /PLACEHOLDER_PLAIN_HTTP/)
    assert.match(optedIn.stderr, /192\.0\.2\.1/, 'the SSRF guard refuses it next')
  })

  it('run --help states the limits: transformations by an allowed host, plain HTTP, --isolate’s terminal', async () => {
    const help = await world.cli(['run', '--help'])
    assert.equal(help.code, 0, help.stderr)
    const text = help.stdout.replaceAll(/\s+/g, ' ')
    assert.match(text, /reverses it, an LLM asked to spell it backwards or in UTF-16/)
    assert.match(text, /serve it from a sibling host the value is not allowed for/)
    assert.match(text, /secrets set --allow-domain/)
    assert.match(text, /AGENTVAULT_PLACEHOLDERS_ALLOW_HTTP=1/)
    assert.match(text, /own PID namespace with its own \/proc and \/dev/)
  })

  it('hostile proxy requests get a clear error and the child keeps running', async () => {
    const code = `
      const net = require('node:net')
      const proxy = new URL(process.env.HTTP_PROXY)
      const ask = (text) => new Promise((resolve) => {
        const socket = net.connect(proxy.port, proxy.hostname, () => socket.write(text))
        let seen = ''
        socket.on('data', (chunk) => { seen += chunk; if (seen.includes('\\r\\n')) { socket.destroy(); resolve(seen.split('\\r\\n')[0]) } })
        socket.on('close', () => resolve(seen.split('\\r\\n')[0]))
      })
      ;(async () => {
        for (const text of ['CONNECT /etc/passwd HTTP/1.1\\r\\n\\r\\n', 'CONNECT a@b:1 HTTP/1.1\\r\\n\\r\\n', 'GET /relative HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n', 'GET ftp://x/ HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n', 'GET ws://127.0.0.1:1/ HTTP/1.1\\r\\nHost: x\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\n\\r\\n'])
          console.log(await ask(text))
        console.log('alive')
      })()`
    const result = await run(['--env', K, '--', process.execPath, '-e', code])
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(result.stdout.trim().split('\n'), [
      'HTTP/1.1 400 Bad Request',
      'HTTP/1.1 400 Bad Request',
      'HTTP/1.1 400 Bad Request',
      'HTTP/1.1 400 Bad Request',
      'HTTP/1.1 501 Not Implemented',
      'alive',
    ])
  })

  it('--isolate without bubblewrap fails clearly before starting anything (exit 2)', async () => {
    const result = await world.cli(
      ['run', '--isolate', '--env', K, '--', process.execPath, '-e', 'console.log("started")'],
      {
        env: {PATH: '/nonexistent'},
      },
    )
    assert.equal(result.code, 2, result.stderr)
    assert.equal(result.stdout, '')
    assert.match(
      result.stderr,
      /^Error: --isolate is not available here: bubblewrap \(bwrap\) is not installed\nTry this: .*bubblewrap/m,
    )
  })

  it('--isolate hides the agentvault home and the session-bus (keychain) socket from the child (bubblewrap)', async () => {
    // A stand-in for the D-Bus session socket that the OS keychain is reached through.
    const bus = join(world.home, '..', 'fake-bus')
    await writeFile(bus, 'keychain-socket-stand-in\n')
    const script = [
      `ls -A "${world.home}" | wc -l`,
      `cat "${join(world.home, 'config.json')}" 2>/dev/null || echo hidden`,
      `cat "${bus}"; echo "bus=\${DBUS_SESSION_BUS_ADDRESS:-unset}"`,
    ].join('; ')
    const busEnv = {DBUS_SESSION_BUS_ADDRESS: `unix:path=${bus}`}
    const result = await world.cli(
      ['run', '--isolate', '--placeholders', '--env', K, '--', 'sh', '-c', script],
      {
        env: busEnv,
      },
    )
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, '0\nhidden\nbus=unset\n')
    const plain = await world.cli(['run', '--env', K, '--', 'sh', '-c', script], {env: busEnv})
    assert.notEqual(plain.stdout, result.stdout, 'without --isolate both are visible (the test can fail)')
    assert.match(plain.stdout, /keychain-socket-stand-in/)
  })

  it('--isolate: the child sees no process outside its sandbox, so /proc/<pid>/root, mem and environ lead nowhere', async () => {
    // The probe's bypass: walk up the PPid chain (or scan /proc) to agentvault's node process and read
    // the home through /proc/<pid>/root, the memory through /proc/<pid>/mem, the credentials through
    // /proc/<pid>/environ.
    const code = `
      // probe-marker-7a1
      const fs = require('node:fs')
      const home = process.argv[1]
      const read = (path) => { try { return fs.readFileSync(path) } catch { return undefined } }
      const cmdline = (pid) => String(read('/proc/' + pid + '/cmdline') ?? '').split('\\0')
      // This probe (and bubblewrap's init, whose argv holds it) carry the marker: the others are outside.
      const pids = fs.readdirSync('/proc').filter((name) => /^\\d+$/.test(name))
        .filter((pid) => !cmdline(pid).some((arg) => arg.includes('probe-marker-' + '7a1')))
      const agentvault = pids.filter((pid) => cmdline(pid).some((arg) => arg.endsWith('/run.js') || arg.endsWith('/run.cjs')))
      const homes = pids.filter((pid) => read('/proc/' + pid + '/root' + home + '/config.json') !== undefined)
      const environs = pids.filter((pid) => String(read('/proc/' + pid + '/environ') ?? '').includes(home))
      const chain = []
      for (let pid = String(process.ppid); pid !== '0' && chain.length < 20; ) {
        chain.push(pid)
        pid = (/PPid:\\s*(\\d+)/.exec(String(read('/proc/' + pid + '/status') ?? '')) ?? [])[1] ?? '0'
      }
      console.log(JSON.stringify({agentvault, homes, environs, chainSeesAgentvault: chain.some((pid) => agentvault.includes(pid)), pids: pids.length}))
    `
    const args = ['--env', K, '--', process.execPath, '-e', code, world.home]
    const plain = await world.cli(['run', ...args])
    assert.equal(plain.code, 0, plain.stderr)
    const outside = JSON.parse(plain.stdout) as {agentvault: string[]; homes: string[]}
    assert.ok(
      outside.agentvault.length > 0,
      'without --isolate the child finds agentvault (the test can fail)',
    )
    assert.ok(outside.homes.length > 0, 'without --isolate /proc/<pid>/root reaches the home')
    const result = await world.cli(['run', '--isolate', '--placeholders', ...args])
    assert.equal(result.code, 0, result.stderr)
    const inside = JSON.parse(result.stdout) as Record<string, unknown>
    assert.deepEqual(
      {...inside, pids: undefined},
      {agentvault: [], chainSeesAgentvault: false, environs: [], homes: [], pids: undefined},
    )
    assertNoCanary(result.stdout, 'the isolated child’s output')
  })

  it('--isolate: exit codes and SIGTERM still pass through', async () => {
    const exit = await world.cli(['run', '--isolate', '--env', K, '--', 'sh', '-c', 'exit 7'])
    assert.equal(exit.code, 7, exit.stderr)
    const child = startCli(['run', '--isolate', '--env', K, '--', 'sh', '-c', 'echo ready; exec sleep 30'], {
      env,
    })
    const done = collect(child)
    const output = watchOutput(child)
    await output.until((text) => text.includes('ready\n'), 'the isolated child')
    child.kill('SIGTERM')
    const result = await done
    assert.equal(result.code, 143, result.stderr)
  })
})
