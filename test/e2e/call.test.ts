import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {CliResult} from '../helpers/cli.js'

import {
  BASIC_USER,
  CANARY,
  createUseWorld,
  leakedForms,
  MASK,
  SCOPED_CANARY,
  type UseWorld,
} from '../servers/http-upstream/fixture.js'

/** Exit 7, `Error: …` then `Try this: …`, nothing on stdout, no value anywhere. */
function refused(result: CliResult): void {
  assert.equal(result.code, 7, result.stderr)
  assert.match(result.stderr, /^Error: .+\nTry this: .+/m)
  assert.equal(result.stdout, '')
  for (const form of [...leakedForms(CANARY), ...leakedForms(SCOPED_CANARY)])
    assert.ok(!result.stderr.includes(form))
}

describe('e2e: call', () => {
  let world: UseWorld
  const call = (args: string[], input?: string) => world.cli(['call', ...args], {input})
  const url = (path: string, host?: string) => world.upstream.url(path, {host})
  const secure = (path: string) => world.upstream.url(path, {secure: true})
  const jsonError = async (args: string[]): Promise<{code: string; exit: null | number}> => {
    const result = await call([...args, '--json'])
    return {code: (JSON.parse(result.stdout) as {error: {code: string}}).error.code, exit: result.code}
  }

  before(async () => {
    world = await createUseWorld()
  })

  after(() => world.dispose())

  describe('injection styles arrive exactly as specified', () => {
    it('--bearer', async () => {
      const result = await call([url('/bearer'), '--bearer', 'K'])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, 'ok')
      assert.equal(world.upstream.last('/bearer').headers.authorization, `Bearer ${CANARY}`)
    })

    it('--basic (the secret is user:password)', async () => {
      const result = await call([url('/basic'), '--basic', 'local://B'])
      assert.equal(result.code, 0, result.stderr)
      const expected = `Basic ${Buffer.from(`${BASIC_USER}:${CANARY}`).toString('base64')}`
      assert.equal(world.upstream.last('/basic').headers.authorization, expected)
    })

    it('--secret-header Name: REF', async () => {
      const result = await call([url('/header'), '--secret-header', 'X-Api-Key: local://K'])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stderr, '')
      assert.equal(world.upstream.last('/header').headers['x-api-key'], CANARY)
    })

    it('-H/--header is a plain header, as in curl (and --plain-header still works)', async () => {
      const result = await call([
        url('/plain'),
        '--bearer',
        'K',
        '--header',
        'Content-Type: application/json',
        '-H',
        'X-Trace: t-2',
        '--plain-header',
        'X-Key: K',
        '-d',
        '{}',
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stderr, '')
      const {headers} = world.upstream.last('/plain')
      assert.equal(headers['content-type'], 'application/json')
      assert.equal(headers['x-trace'], 't-2')
      assert.equal(headers['x-key'], 'K', 'a bare name in a plain header is text, not a secret')
    })

    it('the old --header "Name: scheme://REF" still sends the secret, with a deprecation warning', async () => {
      const result = await call([url('/old-header'), '--header', 'X-Api-Key: local://K'])
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stderr, /^Warning: .*deprecated.*--secret-header 'X-Api-Key: local:\/\/K'/m)
      assert.equal(world.upstream.last('/old-header').headers['x-api-key'], CANARY)
      for (const form of leakedForms(CANARY)) assert.ok(!result.stderr.includes(form))
    })

    it('--query name=REF (percent-encoded, other parameters kept)', async () => {
      const result = await call([url('/query?page=2'), '--query', 'api_key=K'])
      assert.equal(result.code, 0, result.stderr)
      const received = new URL(world.upstream.last('/query').path, 'http://x')
      assert.equal(received.searchParams.get('api_key'), CANARY)
      assert.equal(received.searchParams.get('page'), '2')
    })

    it('--body-field path=REF into the -d JSON body', async () => {
      const result = await call([
        url('/body'),
        '-d',
        '{"model":"m","auth":{"kind":"t"}}',
        '--body-field',
        'auth.token=K',
      ])
      assert.equal(result.code, 0, result.stderr)
      const received = world.upstream.last('/body')
      assert.equal(received.method, 'POST')
      assert.equal(received.headers['content-type'], 'application/json')
      assert.deepEqual(JSON.parse(received.body.toString()), {model: 'm', auth: {kind: 't', token: CANARY}})
    })

    it('--form-field name=REF into the -d form body', async () => {
      const result = await call([
        url('/form'),
        '-d',
        'grant_type=client_credentials',
        '--form-field',
        'client_secret=K',
      ])
      assert.equal(result.code, 0, result.stderr)
      const received = world.upstream.last('/form')
      assert.equal(received.headers['content-type'], 'application/x-www-form-urlencoded')
      const form = new URLSearchParams(received.body.toString())
      assert.equal(form.get('grant_type'), 'client_credentials')
      assert.equal(form.get('client_secret'), CANARY)
    })

    it('several styles in one call all arrive, with plain -H headers, -X and a body from stdin', async () => {
      const result = await call(
        [
          url('/combo'),
          '-X',
          'put',
          '--bearer',
          'K',
          '--query',
          'sig=local://B',
          '--secret-header',
          'X-Scoped: K',
          '-H',
          'X-Trace: t-1',
          '--data-stdin',
        ],
        'raw body',
      )
      assert.equal(result.code, 0, result.stderr)
      const received = world.upstream.last('/combo')
      assert.equal(received.method, 'PUT')
      assert.equal(received.headers.authorization, `Bearer ${CANARY}`)
      assert.equal(received.headers['x-scoped'], CANARY)
      assert.equal(received.headers['x-trace'], 't-1')
      assert.equal(new URL(received.path, 'http://x').searchParams.get('sig'), `${BASIC_USER}:${CANARY}`)
      assert.equal(received.body.toString(), 'raw body')
    })

    it('--data-file sends the file as-is', async () => {
      const file = join(world.home, '..', 'body.bin')
      await writeFile(file, Buffer.from([0, 1, 2, 255]))
      const result = await call([
        url('/file'),
        '--bearer',
        'K',
        '--data-file',
        file,
        '-H',
        'Content-Type: application/octet-stream',
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(world.upstream.last('/file').body, Buffer.from([0, 1, 2, 255]))
    })
  })

  describe('refusals: exit 7 with a "Try this", nothing sent', () => {
    it('a host the secret is not allowed to reach', async () => {
      const before = world.upstream.requests.length
      refused(await call([url('/x'), '--bearer', 'local://K?profile=strict']))
      assert.deepEqual(await jsonError([url('/x'), '--bearer', 'local://K?profile=strict']), {
        code: 'HOST_NOT_ALLOWED',
        exit: 7,
      })
      assert.equal(world.upstream.requests.length, before)
    })

    it("a secret's own allowedDomains wins over the profile and --allow-host", async () => {
      refused(await call([url('/scoped'), '--bearer', 'SCOPED', '--allow-host', '127.0.0.1']))
      const ok = await call([url('/scoped', '127.0.0.2'), '--bearer', 'SCOPED'])
      assert.equal(ok.code, 0, ok.stderr)
      assert.equal(world.upstream.last('/scoped').headers.authorization, `Bearer ${SCOPED_CANARY}`)
    })

    it('a refusal by the secret’s own list names the command that adds the host, and that command works', async () => {
      const stored = await world.cli(['secrets', 'set', 'EDITABLE', '--allow-domain', '*.example.com'], {
        input: SCOPED_CANARY,
      })
      assert.equal(stored.code, 0, stored.stderr)
      const denied = await call([url('/editable'), '--bearer', 'EDITABLE'])
      refused(denied)
      const suggested = /^Try this: .*, run: (agentvault secrets edit .+)$/m.exec(denied.stderr)?.[1]
      // The port too (not the scheme's default): the new entry admits that port only.
      assert.equal(
        suggested,
        `agentvault secrets edit local://EDITABLE --allow-domain '*.example.com' --allow-domain 127.0.0.1:${new URL(url('/')).port}`,
      )
      // The words as a shell would pass them (the pattern's quotes removed).
      const words = suggested
        .split(' ')
        .slice(1)
        .map((word) => word.replaceAll("'", ''))
      const edited = await world.cli(words)
      assert.equal(edited.code, 0, edited.stderr)
      const sent = await call([url('/editable'), '--bearer', 'EDITABLE'])
      assert.equal(sent.code, 0, sent.stderr)
      assert.equal(world.upstream.last('/editable').headers.authorization, `Bearer ${SCOPED_CANARY}`)
    })

    it('--allow-host admits a host for a secret without a list (the private-address guard still applies)', async () => {
      const result = await call([url('/allow', '127.0.0.2'), '--bearer', 'K', '--allow-host', '127.0.0.2'])
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(
        await jsonError([url('/x'), '--bearer', 'local://K?profile=strict', '--allow-host', '127.0.0.1']),
        {
          code: 'PRIVATE_ADDRESS',
          exit: 7,
        },
      )
    })

    it('a private address, including a host name that resolves to 127.0.0.1', async () => {
      const before = world.upstream.requests.length
      const literal = await call([url('/x'), '--bearer', 'local://K?profile=noprivate'])
      refused(literal)
      assert.match(literal.stderr, /127\.0\.0\.1:\d+ is a loopback address/)
      assert.match(literal.stderr, /allowPrivateNetworks/)
      const named = await call([url('/x', 'localhost'), '--bearer', 'local://K?profile=noprivate'])
      refused(named)
      assert.match(named.stderr, /localhost:\d+ resolves to (127\.0\.0\.1|::1), a loopback address/)
      assert.equal(world.upstream.requests.length, before)
    })

    it('a redirect to 169.254.169.254, even when that host is allowed and private networks are', async () => {
      const args = [
        url('/redirect?to=http://169.254.169.254/latest/meta-data/'),
        '--bearer',
        'K',
        '--allow-host',
        '169.254.169.254',
      ]
      const result = await call(args)
      refused(result)
      assert.match(result.stderr, /cloud metadata/)
      assert.deepEqual(await jsonError(args), {code: 'METADATA_ADDRESS', exit: 7})
    })

    it('a cross-host redirect to a host the secret may not reach', async () => {
      const before = world.upstream.requests.length
      const args = [url(`/redirect?to=${encodeURIComponent(url('/stolen', 'localhost'))}`), '--bearer', 'K']
      const result = await call(args)
      refused(result)
      assert.match(result.stderr, /redirect from 127\.0\.0\.1:\d+ to localhost:\d+/)
      assert.deepEqual(await jsonError(args), {code: 'REDIRECT_NOT_ALLOWED', exit: 7})
      assert.equal(world.upstream.requests.length - before, 2, 'only the two redirecting requests')
    })

    it('a cross-host redirect that would carry the secret along (query echoed into Location; 307 with a body field)', async () => {
      const target = encodeURIComponent(url('/stolen', '127.0.0.2'))
      const viaQuery = [
        url(`/redirect?keep_query=1&to=${target}`),
        '--query',
        'key=K',
        '--allow-host',
        '127.0.0.2',
      ]
      refused(await call(viaQuery))
      assert.deepEqual(await jsonError(viaQuery), {code: 'REDIRECT_WITH_CREDENTIALS', exit: 7})
      const viaBody = [
        url(`/redirect?status=307&to=${target}`),
        '--body-field',
        'token=K',
        '--allow-host',
        '127.0.0.2',
      ]
      assert.deepEqual(await jsonError(viaBody), {code: 'REDIRECT_WITH_CREDENTIALS', exit: 7})
      assert.ok(!world.upstream.requests.some((request) => request.path.startsWith('/stolen')))
    })

    it('an allowed cross-host redirect is followed with the credential headers dropped', async () => {
      const result = await call([
        url(`/redirect?to=${encodeURIComponent(url('/landed', '127.0.0.2'))}`),
        '--bearer',
        'K',
        '--allow-host',
        '127.0.0.2',
      ])
      assert.equal(result.code, 0, result.stderr)
      const landed = world.upstream.last('/landed')
      assert.equal(landed.host, '127.0.0.2')
      assert.equal(landed.headers.authorization, undefined)
      const same = await call([url('/redirect?to=/same-origin'), '--bearer', 'K'])
      assert.equal(same.code, 0, same.stderr)
      assert.equal(world.upstream.last('/same-origin').headers.authorization, `Bearer ${CANARY}`)
    })
  })

  describe('responses', () => {
    it('an upstream echoing the credential (body and header) is redacted; --json says redacted: true', async () => {
      const plain = await call([url('/echo'), '--bearer', 'K', '-i'])
      assert.equal(plain.code, 0, plain.stderr)
      assert.match(plain.stdout, /^HTTP\/1\.1 200 OK\r\n/)
      assert.match(plain.stdout, new RegExp(`x-echo-token: ${MASK}\\r\\n`))
      assert.match(plain.stdout, /"authorization":"Bearer <concealed by agentvault>"/)
      assert.match(plain.stderr, /concealed/)
      const json = await call([url('/echo'), '--bearer', 'K', '--query', 'k=K', '--json'])
      assert.equal(json.code, 0, json.stderr)
      const result = JSON.parse(json.stdout) as {
        body: string
        headers: Record<string, string>
        redacted: boolean
        status: number
      }
      assert.equal(result.status, 200)
      assert.equal(result.redacted, true)
      assert.equal(result.headers['x-echo-token'], MASK)
      assert.equal((JSON.parse(result.body) as {token_base64: string}).token_base64, MASK)
      for (const output of [plain.stdout, plain.stderr, json.stdout, json.stderr])
        for (const form of leakedForms(CANARY)) assert.ok(!output.includes(form), form)
    })

    it('a gzip body is decoded before redaction', async () => {
      const result = await call([url('/gzip'), '--bearer', 'K', '--json'])
      const parsed = JSON.parse(result.stdout) as {body: string; redacted: boolean}
      assert.equal(parsed.redacted, true)
      assert.match(parsed.body, /Bearer <concealed by agentvault>/)
    })

    it('exit 22 for HTTP ≥ 400 (body still printed) unless --no-fail; 3xx without Location is 0', async () => {
      const failed = await call([url('/status?code=404'), '--bearer', 'K'])
      assert.equal(failed.code, 22)
      assert.equal(failed.stdout, 'status 404')
      const json = await call([url('/status?code=503'), '--bearer', 'K', '--json'])
      assert.equal(json.code, 22)
      assert.equal((JSON.parse(json.stdout) as {status: number}).status, 503)
      assert.equal((await call([url('/status?code=404'), '--bearer', 'K', '--no-fail'])).code, 0)
      assert.equal((await call([url('/status?code=304'), '--bearer', 'K'])).code, 0)
    })

    it('binary bodies pass through byte for byte; --json gives base64 with bodyEncoding', async () => {
      const all = Buffer.from(Array.from({length: 256}, (_, i) => i))
      const raw = await call([url('/binary'), '--bearer', 'K'])
      assert.deepEqual(raw.stdoutBytes, all)
      const json = JSON.parse((await call([url('/binary'), '--bearer', 'K', '--json'])).stdout) as {
        body: string
        bodyEncoding: string
      }
      assert.equal(json.bodyEncoding, 'base64')
      assert.deepEqual(Buffer.from(json.body, 'base64'), all)
    })

    it('timeout (exit 5) and response size cap (exit 7) fail with clear errors', async () => {
      const slow = await call([url('/slow?ms=5000'), '--bearer', 'K', '--timeout', '1'])
      assert.equal(slow.code, 5, slow.stderr)
      assert.match(
        slow.stderr,
        /No complete response from 127\.0\.0\.1:\d+ within 1 s\nTry this: .*--timeout/,
      )
      const big = await call([url('/big?bytes=5000'), '--bearer', 'K', '--max-response-bytes', '1000'])
      assert.equal(big.code, 7, big.stderr)
      assert.match(big.stderr, /exceeds the 1000-byte cap\nTry this: .*--max-response-bytes/)
    })
  })

  describe('HTTPS with a private CA', () => {
    it('works with --cacert', async () => {
      const result = await call([secure('/tls'), '--bearer', 'K', '--cacert', world.upstream.caFile!])
      assert.equal(result.code, 0, result.stderr)
      const received = world.upstream.last('/tls')
      assert.equal(received.secure, true)
      assert.equal(received.headers.authorization, `Bearer ${CANARY}`)
    })

    it('works with the profile setting caCert', async () => {
      const result = await call([secure('/tls-profile'), '--bearer', 'local://K?profile=tls'])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(world.upstream.last('/tls-profile').secure, true)
    })

    it('fails with a clear TLS error (exit 3) without it, before sending anything', async () => {
      const before = world.upstream.requests.length
      const result = await call([secure('/tls-none'), '--bearer', 'K'])
      assert.equal(result.code, 3, result.stderr)
      assert.match(
        result.stderr,
        /^Error: TLS verification failed for 127\.0\.0\.1:\d+ \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)\nTry this: .*--cacert/,
      )
      assert.equal(world.upstream.requests.length, before)
      const missing = await call([
        secure('/tls-none'),
        '--bearer',
        'K',
        '--cacert',
        join(world.home, 'nope.pem'),
      ])
      assert.equal(missing.code, 3)
      assert.match(missing.stderr, /Cannot read the CA certificate file/)
    })

    it('NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment (set for another tool) verifies all the same', async () => {
      const before = world.upstream.requests.length
      const result = await world.cli(['call', secure('/tls-env'), '--bearer', 'K'], {
        env: {NODE_TLS_REJECT_UNAUTHORIZED: '0'},
      })
      assert.equal(result.code, 3, result.stderr)
      // (After Node's own warning about the variable, which agentvault's requests do not follow.)
      assert.match(result.stderr, /^Error: TLS verification failed for 127\.0\.0\.1:\d+/m)
      // Not a byte of the request (the bearer value) went to the server it could not verify.
      assert.equal(world.upstream.requests.length, before)
    })
  })

  it('audits operation, reference names, target host, status and outcome — never a value', async () => {
    await call([url('/audited'), '--bearer', 'K', '--header', 'X-B: local://B'])
    await call([url('/x'), '--bearer', 'local://K?profile=strict'])
    const lines = (await readFile(join(world.home, 'audit.log'), 'utf8')).trim().split('\n')
    const [ok, denied] = lines.slice(-2).map((line) => JSON.parse(line) as Record<string, unknown>)
    assert.equal(ok?.command, 'call')
    assert.equal(ok?.operation, 'http_request')
    assert.deepEqual([...(ok?.references as string[])].sort(), ['local://B', 'local://K'])
    assert.match(String(ok?.target_host), /^127\.0\.0\.1:\d+$/)
    assert.equal(ok?.status, 200)
    assert.equal(ok?.outcome, 'ok')
    assert.equal(denied?.outcome, 'denied')
    assert.equal(denied?.error_code, 'HOST_NOT_ALLOWED')
    assert.equal(denied?.exit_code, 7)
    const log = lines.join('\n')
    for (const form of leakedForms(CANARY)) assert.ok(!log.includes(form))
  })

  it('usage errors: no credential, conflicting styles, bad specs (exit 2)', async () => {
    for (const args of [
      [url('/x')],
      [url('/x'), '--body-field', 'a=K', '--form-field', 'b=K'],
      [url('/x'), '--header', 'no colon'],
      [url('/x'), '--secret-header', 'X-Key:'],
      [url('/x'), '--bearer', 'K', '--basic', 'B'],
      ['ftp://127.0.0.1/', '--bearer', 'K'],
    ]) {
      const result = await call(args)
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
      assert.match(result.stderr, /Try this: /)
    }

    const badPattern = await world.cli(
      ['secrets', 'set', 'X', '--allow-domain', 'https://api.example.com/'],
      {input: 'v'},
    )
    assert.equal(badPattern.code, 2, badPattern.stderr)
    assert.match(badPattern.stderr, /Not a host or \*\.suffix pattern/)
    assert.equal((await call([url('/x'), '--bearer', 'K', '--allow-host', 'http://x'])).code, 2)
  })
})
