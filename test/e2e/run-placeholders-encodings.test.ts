/**
 * `run --placeholders` when a client hides the placeholder in an encoding on its way out: Basic
 * credentials (curl -u, Python requests' auth=, a URL's user part) carry it in base64. Where the
 * secret is allowed it must arrive as the value; anywhere else the request is refused, and the
 * value never comes back to the child.
 */
import assert from 'node:assert/strict'

import {ensureClients, pythonWithRequests} from '../helpers/clients.js'
import {CANARY, createUseWorld, leakedForms, type UseWorld} from '../servers/http-upstream/fixture.js'

const K = 'K=local://K?profile=tls'
const basic = (credentials: string): string => `Basic ${Buffer.from(credentials).toString('base64')}`

describe('e2e: run --placeholders, placeholders hidden in encodings', function () {
  this.timeout(120_000)
  let world: UseWorld
  const run = (args: string[]) => world.cli(['run', '--placeholders', ...args])
  const received = (marker: string) =>
    world.upstream.requests.filter((request) => request.path.includes(marker))

  before(async function () {
    this.timeout(600_000)
    ensureClients()
    world = await createUseWorld()
  })

  after(() => world?.dispose())

  it('Basic credentials from curl -u, a URL user part and requests auth= arrive with the value (allowed host)', async () => {
    const url = world.upstream.url('/echo', {secure: true})
    const withUser = new URL(url)
    withUser.username = 'svc'
    const curl = await run([
      '--env',
      K,
      '--',
      'sh',
      '-c',
      `curl -sS -u "svc:$K" '${url}?basic=curl-u' && curl -sS "${withUser.origin.replace('//', '//svc:$K@')}/echo?basic=curl-url"`,
    ])
    assert.equal(curl.code, 0, curl.stderr)
    const python = `import os, requests
r = requests.get(${JSON.stringify(url)}, params={"basic": "requests"}, auth=("svc", os.environ["K"]), timeout=30)
print(r.status_code)`
    const py = await run(['--env', K, '--', pythonWithRequests(), '-c', python])
    assert.equal(py.code, 0, py.stderr)
    assert.equal(py.stdout.trim(), '200')
    for (const marker of ['basic=curl-u', 'basic=curl-url', 'basic=requests']) {
      const [request] = received(marker)
      assert.equal(request?.headers.authorization, basic(`svc:${CANARY}`), marker)
    }

    // The upstream echoed the credentials: the child gets none of the value's forms back.
    assert.match(curl.stdout, /"authorization":"Basic [^"]+"/, 'the echo came back')
    for (const result of [curl, py])
      for (const form of [...leakedForms(CANARY), basic(`svc:${CANARY}`).slice(6)])
        assert.ok(!(result.stdout + result.stderr).includes(form))
  })

  it('the same credentials to a host the secret does not allow: 403, audited denied, nothing sent', async () => {
    const other = world.upstream.url('/echo?basic=elsewhere', {host: '127.0.0.2'})
    const result = await run([
      '--env',
      K,
      '--',
      'sh',
      '-c',
      `curl -sS -o /dev/null -w '%{http_code}' -u "svc:$K" '${other}'`,
    ])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, '403')
    assert.deepEqual(received('basic=elsewhere'), [])
    const audit = await world.cli(['audit', '--json', '--status', 'denied'])
    assert.match(audit.stdout, /127\.0\.0\.2/)
  })

  it('a redirect to another host: curl -L follows with the placeholder (the Location echo turned back), and is refused there', async () => {
    // Plain http:// there, so that the proxy sees the request (HTTPS to a host no secret allows is
    // tunnelled unseen, and would carry only the placeholder).
    const elsewhere = world.upstream.url('/echo', {host: '127.0.0.2'})
    const start = `${world.upstream.url('/redirect', {secure: true})}?status=307&keep_query=1&to=${encodeURIComponent(elsewhere)}`
    const result = await run([
      '--env',
      K,
      '--',
      'sh',
      '-c',
      `curl -sS -L -o /dev/null -w '%{http_code} %{num_redirects}' -H "Authorization: Bearer $K" "${start}&k=$K"`,
    ])
    assert.equal(result.code, 0, result.stderr)
    // Followed once, then refused by the proxy: the value only ever went to 127.0.0.1.
    assert.equal(result.stdout, '403 1')
    const first = world.upstream.requests.find((request) => request.path.startsWith('/redirect?status=307'))
    assert.ok(first?.path.includes(encodeURIComponent(CANARY)), 'the allowed host got the value')
    assert.deepEqual(
      world.upstream.requests.filter((request) => request.host === '127.0.0.2'),
      [],
      'nothing reached the other host',
    )
  })
})
