/**
 * `agentvault proxy` with real HTTP clients, as programs written for AgentSecrets call it: Python
 * `requests` (what AgentSecrets' Python SDK uses) and curl.
 */
import assert from 'node:assert/strict'
import {execFile, spawn} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {ensureClients, pythonWithRequests} from '../helpers/clients.js'
import {until} from '../helpers/e2e.js'
import {type StartedProxy, startProxy} from '../helpers/proxy.js'
import {CANARY, createUseWorld, leakedForms, type UseWorld} from '../servers/http-upstream/fixture.js'

const MARKER = '[REDACTED_BY_AGENTSECRETS]'

const PYTHON = `
import json, os, requests
base = "http://127.0.0.1:%s" % os.environ["PROXY_PORT"]
headers = {
    "X-AS-Session-Token": os.environ["PROXY_TOKEN"],
    "X-AS-Target-URL": os.environ["TARGET"],
    "X-AS-Method": "POST",
    "X-AS-Inject-Bearer": "K",
    "X-AS-Inject-Body-auth-token": "K",
    "X-AS-Agent-ID": "python-requests",
}
ok = requests.post(base + "/proxy", headers=headers, json={"model": "m"}, timeout=30)
denied = requests.get(base + "/proxy", headers={**headers, "X-AS-Inject-Bearer": "SCOPED", "X-AS-Inject-Body-auth-token": "SCOPED"}, timeout=30)
unauthorised = requests.get(base + "/proxy", headers={k: v for k, v in headers.items() if k != "X-AS-Session-Token"}, timeout=30)
print(json.dumps({
    "ok": {"status": ok.status_code, "echo": ok.headers.get("X-Echo-Token"), "body": ok.json()},
    "denied": {"status": denied.status_code, "body": denied.json()},
    "unauthorised": {"status": unauthorised.status_code, "body": unauthorised.json()},
}))
`

/** Run a client without blocking this process: the upstream it calls lives in this event loop. */
function runClient(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{code: number; stderr: string; stdout: string}> {
  return new Promise((resolve) => {
    execFile(command, args, {encoding: 'utf8', env, timeout: 45_000}, (error, stdout, stderr) => {
      resolve({code: error ? Number(error.code ?? 1) : 0, stderr, stdout})
    })
  })
}

describe('e2e: proxy with real clients', function () {
  this.timeout(60_000)
  let world: UseWorld
  let proxy: StartedProxy
  /** curl's arguments for one /proxy request to `target` with the session token and one injection. */
  const curlTo = (target: string, inject: string): string[] => [
    `http://127.0.0.1:${proxy.port}/proxy`,
    '-H',
    `X-AS-Session-Token: ${proxy.token}`,
    '-H',
    `X-AS-Target-URL: ${target}`,
    '-H',
    inject,
  ]
  const env = () => ({AGENTVAULT_HOME: world.home, AGENTVAULT_NO_KEYCHAIN: '1', NO_COLOR: '1'})

  before(async function () {
    // Installs curl and python3-requests when missing (as root), else fails with what to install.
    this.timeout(600_000)
    ensureClients()
    world = await createUseWorld()
    proxy = await startProxy(env())
  })

  after(async () => {
    await proxy.stop()
    await world.dispose()
  })

  it('Python requests: injection, 403 block and 401 as AgentSecrets clients expect', async () => {
    const run = await runClient(pythonWithRequests(), ['-c', PYTHON], {
      ...process.env,
      PROXY_PORT: String(proxy.port),
      PROXY_TOKEN: proxy.token ?? '',
      TARGET: world.upstream.url('/echo'),
    })
    assert.equal(run.code, 0, `python3 failed (is python3-requests installed?): ${run.stderr}`)
    const result = JSON.parse(run.stdout) as {
      denied: {body: {error: string}; status: number}
      ok: {body: {body: string; method: string}; echo: string; status: number}
      unauthorised: {body: {error: string}; status: number}
    }
    assert.equal(result.ok.status, 200)
    assert.equal(result.ok.echo, MARKER)
    assert.equal(result.ok.body.method, 'POST')
    assert.equal(JSON.parse(result.ok.body.body.replaceAll(MARKER, 'X')).Auth.Token, 'X')
    assert.equal(world.upstream.last('/echo').headers.authorization, `Bearer ${CANARY}`)
    assert.equal(result.denied.status, 403)
    assert.equal(result.denied.body.error, 'domain_not_in_allowlist')
    assert.equal(result.unauthorised.status, 401)
    assert.equal(result.unauthorised.body.error, 'Invalid or missing session token')
    for (const form of leakedForms(CANARY)) assert.ok(!run.stdout.includes(form))
  })

  it('curl: query injection and an upstream 500 passed through', async () => {
    const run = await runClient('curl', [
      '-s',
      '-w',
      '\n%{http_code}',
      ...curlTo(world.upstream.url('/status?code=500'), 'X-AS-Inject-Query-key: K'),
    ])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stdout, 'status 500\n500')
    const received = new URL(world.upstream.last('/status').path, 'http://x')
    assert.equal(received.searchParams.get('Key'), CANARY)
  })

  it("curl -I (HEAD): the upstream's own Content-Length, no body, the connection kept for the next request", async () => {
    const run = await runClient('curl', [
      '-sS',
      '-I',
      ...curlTo(world.upstream.url('/big?bytes=4096&echo=1'), 'X-AS-Inject-Bearer: K'),
      '--next',
      '-sS',
      ...curlTo(world.upstream.url('/echo?after-head'), 'X-AS-Inject-Bearer: K'),
    ])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(world.upstream.last('/big').method, 'HEAD')
    const [head = '', body = ''] = run.stdout.split('\r\n\r\n')
    assert.match(head, /^HTTP\/1\.1 200 /)
    assert.match(head, /\r\ncontent-length: 4096(\r\n|$)/i, head)
    // The second request's answer follows at once: HEAD sent no body to skip.
    assert.equal((JSON.parse(body) as {path: string}).path, '/echo?after-head')

    // A GET whose X-AS-Method is HEAD: told of the empty body it gets (never left waiting for 4096 bytes).
    const told = await runClient('curl', [
      '-sS',
      '-m',
      '20',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{size_download}',
      `http://127.0.0.1:${proxy.port}/proxy`,
      '-H',
      `X-AS-Session-Token: ${proxy.token}`,
      '-H',
      `X-AS-Target-URL: ${world.upstream.url('/big?bytes=4096&echo=1')}`,
      '-H',
      'X-AS-Method: HEAD',
      '-H',
      'X-AS-Inject-Bearer: K',
    ])
    assert.equal(told.code, 0, told.stderr)
    assert.equal(told.stdout, '200 0')
  })

  it('curl as HTTP/1.0, with Expect: 100-continue and with a chunked body: each arrives whole, injected', async () => {
    const body = 'b'.repeat(2 * 1024 * 1024)
    const base = (path: string) => [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{http_version}\n',
      ...curlTo(world.upstream.url(path), 'X-AS-Inject-Bearer: K'),
    ]
    const old = await runClient('curl', [...base('/echo?http10'), '-0', '-d', 'form=1'])
    assert.equal(old.code, 0, old.stderr)
    assert.match(old.stdout, /^200 /)
    assert.equal(world.upstream.last('/echo?http10').body.toString(), 'form=1')
    assert.equal(world.upstream.last('/echo?http10').headers.authorization, `Bearer ${CANARY}`)

    const file = join(await mkdtemp(join(tmpdir(), 'agentvault-body-')), 'body')
    await writeFile(file, body)
    try {
      for (const [path, extra] of [
        ['/status?code=201&expect', ['-H', 'Expect: 100-continue']],
        ['/status?code=201&chunked', ['-H', 'Transfer-Encoding: chunked']],
      ] as const) {
        const run = await runClient('curl', [...base(path), ...extra, '--data-binary', `@${file}`])
        assert.equal(run.code, 0, run.stderr)
        assert.equal(run.stdout, '201 1.1\n', path)
        const received = world.upstream.last(path)
        assert.equal(received.body.length, body.length, path)
        assert.equal(received.headers['content-length'], String(body.length), path)
        assert.equal(received.headers.authorization, `Bearer ${CANARY}`, path)
      }
    } finally {
      await rm(dirname(file), {force: true, recursive: true})
    }
  })

  it('Python requests.Session keeps its connection alive, and carries on when the proxy restarts on the same port under it', async () => {
    const code = `
import os, sys, requests
session = requests.Session()
url = "http://127.0.0.1:%s/proxy" % os.environ["PROXY_PORT"]
def get(token, n):
    r = session.get(url, headers={"X-AS-Session-Token": token, "X-AS-Target-URL": os.environ["TARGET"] + "?n=%d" % n, "X-AS-Inject-Bearer": "K"}, timeout=30)
    return r.status_code
# Connections this session opened to the proxy: one for both requests (kept alive).
opened = lambda: sum(pool.num_connections for pool in session.get_adapter(url).poolmanager.pools._container.values())
print(get(os.environ["PROXY_TOKEN"], 1), get(os.environ["PROXY_TOKEN"], 2), opened(), flush=True)
token = sys.stdin.readline().strip()
print(get(token, 3), opened(), flush=True)
`
    const child = spawn(pythonWithRequests(), ['-c', code], {
      env: {
        ...process.env,
        PROXY_PORT: String(proxy.port),
        PROXY_TOKEN: proxy.token ?? '',
        TARGET: world.upstream.url('/echo/session'),
      },
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8')
    })
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString('utf8')
    })
    const exited = new Promise<null | number>((resolve) => {
      child.once('close', resolve)
    })
    await until(() => out.includes('\n') || child.exitCode !== null)
    assert.equal(out, '200 200 1\n', err)
    const [first, second] = world.upstream.requests.filter((r) => r.path.startsWith('/echo/session'))
    assert.ok(first && second)

    const {port} = proxy
    await proxy.stop()
    proxy = await startProxy(env(), ['--port', String(port)])
    child.stdin.end(`${proxy.token}\n`)
    assert.equal(await exited, 0, err)
    // The kept-alive connection died with the old proxy: urllib3 saw it dropped and reconnected it.
    assert.equal(out, '200 200 1\n200 1\n', err)
    assert.equal(world.upstream.last('/echo/session?n=3').headers.authorization, `Bearer ${CANARY}`)
  })
})
