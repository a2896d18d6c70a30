import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {request} from 'node:http'

import {
  type AgentSecretsWorld,
  createAgentSecretsWorld,
  type FakeProxy,
} from '../../servers/agentsecrets/harness.js'
import {startUpstream, type Upstream} from '../../servers/http-upstream/index.js'

const TOKEN = `as_sess_${'ab'.repeat(16)}`
const SECRETS = {
  API_KEY: 'dbl-canary-api',
  BASIC: 'user:dbl-canary-pw',
  EMPTY: '',
  NOCOLON: 'dbl-canary-nocolon',
}

interface Answer {
  body: string
  headers: Record<string, string | string[] | undefined>
  status: number
}

function post(port: number, path: string, headers: Record<string, string>, body = ''): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request({headers, host: '127.0.0.1', method: 'POST', path, port}, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () =>
        resolve({
          body: Buffer.concat(chunks).toString('utf8'),
          headers: response.headers,
          status: response.statusCode ?? 0,
        }),
      )
    })
    outgoing.on('error', reject)
    outgoing.end(body)
  })
}

function runFake(
  world: AgentSecretsWorld,
  args: string[],
  input?: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{code: null | number; stderr: string; stdout: string}> {
  const child = spawn('agentsecrets', args, {
    env: {...process.env, ...world.env, ...env},
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
  child.stdin.end(input)
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) =>
      resolve({
        code,
        stderr: Buffer.concat(err).toString('utf8'),
        stdout: Buffer.concat(out).toString('utf8'),
      }),
    )
  })
}

describe('agentsecrets test doubles (protocols/agentsecrets.md §10)', () => {
  let world: AgentSecretsWorld
  let proxy: FakeProxy
  let upstream: Upstream

  before(async () => {
    upstream = await startUpstream()
    world = await createAgentSecretsWorld({secrets: {development: {...SECRETS}, production: {}, staging: {}}})
    proxy = await world.startProxy()
  })

  after(async () => {
    await world.dispose()
    await upstream.close()
  })

  const inject = (extra: Record<string, string>, path = '/echo') =>
    post(proxy.port, '/proxy', {'X-AS-Target-URL': upstream.url(path), ...extra})

  describe('fake proxy', () => {
    it('routes exact paths: /health (never gated), anything else 404 text', async () => {
      await world.update((state) => {
        state.sessionToken = TOKEN
      })
      const health = await post(proxy.port, '/health', {})
      assert.equal(health.status, 200)
      assert.deepEqual(Object.keys(JSON.parse(health.body)).sort(), [
        'last_sync',
        'project',
        'revoked_count',
        'revoked_ids',
        'status',
      ])
      const other = await post(proxy.port, '/proxy/', {})
      assert.equal(other.status, 404)
      assert.equal(other.body, '404 page not found\n')
      assert.match(String(other.headers['content-type']), /^text\/plain/)
      await world.update((state) => {
        delete state.sessionToken
      })
    })

    it('session-token mode: 401 shape A before anything else', async () => {
      await world.update((state) => {
        state.sessionToken = TOKEN
      })
      const refused = await post(proxy.port, '/proxy', {})
      assert.equal(refused.status, 401)
      assert.equal(refused.body, '{"error":"Invalid or missing session token"}\n')
      const accepted = await inject({'X-AS-Inject-Bearer': 'API_KEY', 'X-AS-Session-Token': TOKEN})
      assert.equal(accepted.status, 200)
      await world.update((state) => {
        delete state.sessionToken
      })
    })

    it('validation: 400 shape A texts', async () => {
      assert.deepEqual(
        await post(proxy.port, '/proxy', {'X-AS-Inject-Bearer': 'API_KEY'}).then((a) => [a.status, a.body]),
        [400, '{"error":"X-AS-Target-URL header is required"}\n'],
      )
      assert.deepEqual(await inject({}).then((a) => [a.status, a.body]), [
        400,
        '{"error":"At least one X-AS-Inject-* header is required"}\n',
      ])
    })

    it('allowlist before secret lookup: 403 B with alphabetical keys and a BLOCKED audit entry', async () => {
      const before = (await world.proxyLog()).length
      const blocked = await post(proxy.port, '/proxy', {
        'X-AS-Inject-Bearer': 'MISSING',
        'X-AS-Target-URL': upstream.url('/echo', {host: '127.0.0.2'}),
      })
      assert.equal(blocked.status, 403)
      assert.equal(
        blocked.body,
        '{"domain":"127.0.0.2","error":"domain_not_in_allowlist","message":"127.0.0.2 is not in your workspace allowlist. To authorize it, run: agentsecrets workspace allowlist add 127.0.0.2"}',
      )
      const entries = await world.proxyLog()
      assert.equal(entries.length, before + 1)
      assert.deepEqual(
        [
          entries.at(-1)?.status,
          entries.at(-1)?.status_code,
          entries.at(-1)?.duration_ms,
          entries.at(-1)?.reason,
        ],
        ['BLOCKED', 403, 0, 'domain_not_in_allowlist'],
      )
      await world.update((state) => {
        state.allowlist = []
      })
      assert.match((await inject({'X-AS-Inject-Bearer': 'API_KEY'})).body, /"error":"empty_allowlist"/)
      await world.update((state) => {
        state.allowlist = ['127.0.0.1']
      })
    })

    it('a missing secret: 502 with the version’s not-found text and no audit entry', async () => {
      const before = (await world.proxyLog()).length
      const three = await inject({'X-AS-Inject-Bearer': 'NOPE'})
      assert.equal(three.status, 502)
      assert.match(JSON.parse(three.body).error, /^\[SEC-404\] secret 'NOPE' not found in keychain/)
      await world.update((state) => {
        state.version = '2.1.0'
      })
      assert.match(
        JSON.parse((await inject({'X-AS-Inject-Bearer': 'NOPE'})).body).error,
        /^secret 'NOPE' not found/,
      )
      await world.update((state) => {
        state.version = '3.3.0'
      })
      assert.equal((await world.proxyLog()).length, before)
    })

    it('applies all six styles in one call, with Go-canonicalised targets, and forwards the rest', async () => {
      const answer = await post(
        proxy.port,
        '/proxy',
        {
          'Content-Type': 'application/json',
          'X-AS-Inject-Basic': 'BASIC',
          'X-AS-Inject-Body-auth-token': 'API_KEY',
          'X-AS-Inject-Header-x-api-key': 'API_KEY',
          'X-AS-Inject-Query-api_key': 'API_KEY',
          'X-AS-Method': 'post',
          'X-AS-Target-URL': upstream.url('/plain?z=1&a=2'),
          'X-Trace': 't1',
        },
        '{"b":{"c":1},"a":0}',
      )
      assert.equal(answer.status, 200)
      const seen = upstream.last('/plain')
      assert.equal(seen.method, 'POST')
      // Sorted byte-wise, as Go's url.Values.Encode does: upper case before lower case.
      assert.equal(seen.path, `/plain?Api_key=${SECRETS.API_KEY}&a=2&z=1`)
      assert.equal(seen.headers.authorization, `Basic ${Buffer.from(SECRETS.BASIC).toString('base64')}`)
      assert.equal(seen.headers['x-api-key'], SECRETS.API_KEY)
      assert.equal(seen.headers['x-trace'], 't1')
      assert.equal(seen.headers['content-type'], 'application/json')
      assert.equal(seen.body.toString(), `{"Auth":{"Token":"${SECRETS.API_KEY}"},"a":0,"b":{"c":1}}`)
      const form = await post(
        proxy.port,
        '/proxy',
        {
          'X-AS-Inject-Bearer': 'API_KEY',
          'X-AS-Inject-Form-client_secret': 'API_KEY',
          'X-AS-Target-URL': upstream.url('/form'),
        },
        'z=1&b=2',
      )
      assert.equal(form.status, 200)
      assert.equal(upstream.last('/form').body.toString(), `Client_secret=${SECRETS.API_KEY}&b=2&z=1`)
      assert.equal(upstream.last('/form').headers['content-type'], 'application/x-www-form-urlencoded')
      assert.equal(upstream.last('/form').headers.authorization, `Bearer ${SECRETS.API_KEY}`)
    })

    it('injection failures: basic without ":", empty bearer, a non-object JSON body', async () => {
      assert.match((await inject({'X-AS-Inject-Basic': 'NOCOLON'})).body, /injection failed/)
      assert.equal((await inject({'X-AS-Inject-Bearer': 'EMPTY'})).status, 502)
      const array = await post(
        proxy.port,
        '/proxy',
        {'X-AS-Inject-Body-a': 'API_KEY', 'X-AS-Target-URL': upstream.url('/x')},
        '[1]',
      )
      assert.equal(array.status, 502)
    })

    it('redacts echoes in body and (3.x) headers, recomputes Content-Length, audits credential_echo', async () => {
      const answer = await inject({'X-AS-Inject-Bearer': 'API_KEY'})
      assert.ok(!answer.body.includes(SECRETS.API_KEY))
      assert.ok(answer.body.includes('[REDACTED_BY_AGENTSECRETS]'))
      assert.equal(answer.headers['x-echo-token'], '[REDACTED_BY_AGENTSECRETS]')
      assert.equal(Number(answer.headers['content-length']), Buffer.byteLength(answer.body))
      const entry = (await world.proxyLog()).at(-1)
      assert.deepEqual(
        [entry?.status, entry?.reason, entry?.redacted, entry?.status_code],
        ['OK', 'credential_echo', true, 200],
      )
      assert.deepEqual(Object.keys(entry ?? {}).sort(), [
        'agent_id',
        'auth_styles',
        'domain',
        'duration_ms',
        'method',
        'reason',
        'redacted',
        'secret_keys',
        'status',
        'status_code',
        'target_url',
        'timestamp',
      ])
      assert.ok(
        !JSON.stringify(await world.proxyLog()).includes(SECRETS.API_KEY),
        'no value in the audit log',
      )
    })

    it('passes upstream errors through and reports an unreachable upstream as 502', async () => {
      const five = await inject({'X-AS-Inject-Bearer': 'API_KEY'}, '/status?code=500')
      assert.deepEqual([five.status, five.body], [500, 'status 500'])
      const gone = await post(proxy.port, '/proxy', {
        'X-AS-Inject-Bearer': 'API_KEY',
        'X-AS-Target-URL': 'http://127.0.0.1:1/',
      })
      assert.equal(gone.status, 502)
      assert.match(gone.body, /failed to reach upstream/)
    })

    it('3.x strictness switches', async () => {
      await world.update((state) => {
        state.switches = {httpsOnly: true}
      })
      assert.match((await inject({'X-AS-Inject-Bearer': 'API_KEY'})).body, /non_https_blocked/)
      await world.update((state) => {
        state.switches = {ssrf: true}
      })
      assert.match((await inject({'X-AS-Inject-Bearer': 'API_KEY'})).body, /ssrf_protection_blocked/)
      await world.update((state) => {
        state.switches = {}
      })
    })
  })

  describe('fake agentsecrets executable', () => {
    it('logs every invocation (argv and env names only) and answers --version and per-version --help', async () => {
      const before = (await world.invocations()).length
      assert.equal((await runFake(world, ['--version'])).stdout, 'agentsecrets version 3.3.0\n')
      assert.match((await runFake(world, ['call', '--help'])).stdout, /--output/)
      assert.match((await runFake(world, ['env', '--help'])).stdout, /--only/)
      const unknown = await runFake(world, ['log', '--help'])
      assert.deepEqual([unknown.code, unknown.stdout.startsWith('x unknown command')], [1, true])
      assert.match((await runFake(world, ['logs', '--help'])).stdout, /--json/)
      const log = (await world.invocations()).slice(before)
      assert.deepEqual(log[0]?.argv, ['--version'])
      assert.ok(log[0]?.envNames.includes('AGENTSECRETS_FAKE_STATE'))
      assert.equal(log[0]?.env, undefined)
      await world.update((state) => {
        state.version = '2.1.0'
      })
      assert.doesNotMatch((await runFake(world, ['call', '--help'])).stdout, /--output/)
      assert.doesNotMatch((await runFake(world, ['env', '--help'])).stdout, /--only/)
      assert.match((await runFake(world, ['log', '--help'])).stdout, /--json/)
      await world.update((state) => {
        state.version = '3.3.0'
      })
      assert.equal((await runFake(world, ['frobnicate'])).code, 1)
      assert.equal((await runFake(world, ['call', '--bogus', 'x'])).code, 1)
    })

    it('call (3.3.0): one JSON envelope, exit 1 on ≥400, status 0 when the proxy cannot be reached', async () => {
      const ok = await runFake(world, [
        'call',
        '--url',
        upstream.url('/echo'),
        '--bearer',
        'API_KEY',
        '--output',
        'json',
      ])
      assert.equal(ok.code, 0)
      const envelope = JSON.parse(ok.stdout.trim())
      assert.equal(envelope.status, 200)
      assert.equal(envelope.redacted, true)
      assert.deepEqual(Object.keys(envelope).sort(), ['body', 'duration_ms', 'headers', 'redacted', 'status'])
      const failed = await runFake(world, [
        'call',
        '--url',
        upstream.url('/status?code=503'),
        '--bearer',
        'API_KEY',
        '--output',
        'json',
      ])
      assert.equal(failed.code, 1)
      assert.equal(JSON.parse(failed.stdout).error, 'HTTP 503')
      assert.equal((await runFake(world, ['call', '--url', upstream.url('/x'), '--output', 'json'])).code, 1)
      assert.equal(
        (
          await runFake(world, [
            'call',
            '--url',
            upstream.url('/x'),
            '--header',
            'NoEquals',
            '--output',
            'json',
          ])
        ).code,
        1,
      )
      // A live pid file names a port nothing listens on.
      const {writeFile} = await import('node:fs/promises')
      await writeFile(`${world.home}/.agentsecrets/proxy.pid`, `${process.pid}\n0\n1\n`)
      const down = await runFake(world, [
        'call',
        '--url',
        upstream.url('/x'),
        '--bearer',
        'API_KEY',
        '--output',
        'json',
      ])
      await writeFile(`${world.home}/.agentsecrets/proxy.pid`, `${process.pid}\n0\n${proxy.port}\n`)
      const viaPid = await runFake(world, [
        'call',
        '--url',
        upstream.url('/echo'),
        '--bearer',
        'API_KEY',
        '--output',
        'json',
      ])
      const {rm} = await import('node:fs/promises')
      await rm(`${world.home}/.agentsecrets/proxy.pid`)
      assert.equal(down.code, 1)
      assert.equal(JSON.parse(down.stdout).status, 0)
      assert.match(JSON.parse(down.stdout).error, /^failed to connect to proxy/)
      assert.equal(JSON.parse(viaPid.stdout).status, 200)
    })

    it('call (2.1.0): text for every status, exit 0 even when blocked; a missing secret is x API call failed', async () => {
      await world.update((state) => {
        state.version = '2.1.0'
      })
      const text = await runFake(world, [
        'call',
        '--url',
        upstream.url('/status?code=404'),
        '--bearer',
        'API_KEY',
      ])
      const blocked = await runFake(world, [
        'call',
        '--url',
        upstream.url('/x', {host: '127.0.0.2'}),
        '--bearer',
        'API_KEY',
      ])
      const missing = await runFake(world, ['call', '--url', upstream.url('/x'), '--bearer', 'NOPE'])
      await runFake(world, ['call', '--url', upstream.url('/lower'), '--query', 'api_key=API_KEY'])
      await world.update((state) => {
        state.version = '3.3.0'
      })
      assert.deepEqual([text.code, text.stdout], [0, 'HTTP 404\n\nstatus 404\n'])
      assert.equal(blocked.code, 0)
      assert.match(blocked.stdout, /^HTTP 403\n\n\{"domain"/)
      assert.equal(missing.code, 1)
      assert.match(missing.stdout, /^x API call failed: secret 'NOPE' not found/)
      assert.equal(
        upstream.last('/lower').path,
        `/lower?api_key=${SECRETS.API_KEY}`,
        'the in-process engine keeps case',
      )
    })

    it('env (3.3.0): only the named keys, appended; warns about unknown ones; exit code and 255 on signal', async () => {
      const result = await runFake(world, [
        'env',
        '--only',
        'API_KEY,GHOST',
        '--',
        'sh',
        '-c',
        'echo "[$API_KEY][$BASIC]"; exit 5',
      ])
      assert.equal(result.code, 5)
      assert.match(result.stdout, /! Not in this project: GHOST/)
      assert.match(result.stdout, /Local Engine: Injecting 1 secrets: API_KEY/)
      assert.match(result.stdout, new RegExp(`\\[${SECRETS.API_KEY}\\]\\[\\]`))
      assert.equal(
        (await runFake(world, ['env', '--only=API_KEY', '--', 'sh', '-c', 'kill -TERM $$'])).code,
        255,
      )
      assert.equal((await runFake(world, ['env', '--', 'no-such-command-xyz'])).code, 1)
      assert.equal((await world.proxyLog()).findLast((entry) => entry.method === 'ENV')?.status_code, 255)
      await world.update((state) => {
        state.switches = {mask: true}
      })
      assert.match(
        (await runFake(world, ['env', '--only', 'API_KEY', '--', 'sh', '-c', 'echo "$API_KEY"'])).stdout,
        /\[REDACTED\]/,
      )
      await world.update((state) => {
        state.switches = {}
        state.version = '2.1.0'
      })
      const old = await runFake(world, ['env', '--only', 'API_KEY', '--', 'true'])
      await world.update((state) => {
        state.version = '3.3.0'
      })
      assert.equal(old.code, 1)
      assert.match(old.stdout, /command not found: --only/)
    })

    it('secrets list/set/delete, with production rules', async () => {
      const list = await runFake(world, ['secrets', 'list'])
      assert.match(list.stdout, /^Environment: development/)
      assert.match(list.stdout, /│ Key +│ DEV │ STAGING │ PROD │/)
      assert.match(
        (await runFake(world, ['secrets', 'set', 'NEW_ONE=v1', 'bad'])).stdout,
        /\* Set NEW_ONE\nx Invalid format 'bad'|x Invalid format 'bad'. Use KEY=VALUE.\n\* Set NEW_ONE/,
      )
      assert.equal((await world.state()).secrets.development?.NEW_ONE, 'v1')
      assert.equal(
        (await runFake(world, ['secrets', 'delete', 'NEW_ONE'])).stdout,
        '* Deleted NEW_ONE from cloud and local files.\n',
      )
      const missing = await runFake(world, ['secrets', 'delete', 'NEW_ONE'])
      assert.equal(missing.code, 1)
      assert.match(missing.stdout, /\[SEC-404\]/)
      const prod = {AGENTSECRETS_ENV: 'production'}
      assert.equal((await runFake(world, ['secrets', 'set', 'P=1'], undefined, prod)).code, 1)
      await world.update((state) => {
        state.version = '2.1.0'
        state.secrets.production = {P: 'x'}
      })
      assert.match((await runFake(world, ['secrets', 'delete', 'P'], '', prod)).stdout, /Delete cancelled\./)
      assert.match((await runFake(world, ['secrets', 'delete', 'P'], 'y\n', prod)).stdout, /\* Deleted P/)
      assert.equal(
        (await runFake(world, ['secrets', 'delete', 'P'], '', prod)).code,
        0,
        '2.1.0 reports failures with exit 0',
      )
      await world.update((state) => {
        state.version = '3.3.0'
        state.switches = {setStdin: true}
      })
      assert.match((await runFake(world, ['secrets', 'set', '--help'])).stdout, /--value-stdin/)
      await runFake(world, ['secrets', 'set', '--value-stdin', 'PIPED'], 'from-stdin')
      assert.equal((await world.state()).secrets.development?.PIPED, 'from-stdin')
      await world.update((state) => {
        state.switches = {}
        delete state.secrets.development!.PIPED
      })
    })

    it('log(s) --json and proxy logs, newest first, with filters; the banner switch', async () => {
      const ndjson = (await runFake(world, ['logs', '--json', '--limit', '2'])).stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
      assert.equal(ndjson.length, 2)
      assert.ok(Date.parse(ndjson[0].timestamp) >= Date.parse(ndjson[1].timestamp))
      const blocked = (await runFake(world, ['logs', '--json', '--blocked'])).stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
      assert.ok(blocked.every((entry) => entry.status === 'BLOCKED'))
      const table = (await runFake(world, ['proxy', 'logs', '--last', '3'])).stdout
      assert.match(
        table,
        /│ Time +│ Status +│ Method +│ Target URL +│ Secrets +│ Auth +│ Code +│ Reason +│ Duration +│/,
      )
      await world.update((state) => {
        state.switches = {banner: true}
      })
      assert.match(
        (await runFake(world, ['--version'])).stdout,
        /^Update Available: .*\n[\s\S]*agentsecrets version 3\.3\.0\n$/,
      )
      await world.update((state) => {
        state.switches = {}
      })
    })
  })
})
