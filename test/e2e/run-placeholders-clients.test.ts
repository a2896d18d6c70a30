/**
 * `run --placeholders` under the load and habits of real clients (run-placeholders.test.ts covers
 * each client's first request): children that make many requests at once through the proxy, and a
 * child that bypasses the proxy, which must only ever send placeholders.
 */
import assert from 'node:assert/strict'

import {ensureClients, pythonWithRequests} from '../helpers/clients.js'
import {CANARY, createUseWorld, leakedForms, type UseWorld} from '../servers/http-upstream/fixture.js'

const K = 'K=local://K?profile=tls'
const PLACEHOLDER = /^avph_K_[\da-f]{32}$/

describe('e2e: run --placeholders with busy and stubborn clients', function () {
  this.timeout(120_000)
  let world: UseWorld
  const run = (args: string[]) => world.cli(['run', '--placeholders', ...args])
  /** Requests of this test (by a marker in the query) and the Authorization each carried. */
  const received = (marker: string) =>
    world.upstream.requests.filter((request) => request.path.includes(marker))

  before(async function () {
    // Installs curl and python3-requests when missing (as root), else fails with what to install.
    this.timeout(600_000)
    ensureClients()
    world = await createUseWorld()
  })

  after(() => world?.dispose())

  it('many requests at once — curl --parallel, 40 Python threads, 100 Node CONNECT tunnels — each gets the value on the wire and its own answer', async () => {
    const url = world.upstream.url('/echo', {secure: true})
    const curlUrls = Array.from({length: 60}, (_, i) => [
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}\\n',
      `${url}?curl-par=${i}`,
    ]).flat()
    const curl = await run([
      '--env',
      K,
      '--',
      'sh',
      '-c',
      'curl -sS --parallel --parallel-max 60 -H "Authorization: Bearer $K" "$@" | sort | uniq -c',
      'sh',
      ...curlUrls,
    ])
    assert.equal(curl.code, 0, curl.stderr)
    assert.equal(curl.stdout.trim(), '60 200')

    const python = `
import os, json, requests, concurrent.futures as pool
k = os.environ["K"]
def one(i):
    r = requests.get(${JSON.stringify(url)}, params={"py-par": i}, headers={"Authorization": "Bearer " + k}, timeout=60)
    return [r.status_code, json.loads(r.text)["path"] == "/echo?py-par=%d" % i, r.json()["headers"]["authorization"] == "Bearer " + k]
with pool.ThreadPoolExecutor(40) as threads:
    print(json.dumps(sorted(set(tuple(x) for x in threads.map(one, range(200))))))
`
    const py = await run(['--env', K, '--', pythonWithRequests(), '-c', python])
    assert.equal(py.code, 0, py.stderr)
    assert.deepEqual(
      JSON.parse(py.stdout),
      [[200, true, true]],
      'each answer to its own request, echo rewritten',
    )

    const target = new URL(url)
    const node = `
const http = require('node:http'), https = require('node:https'), tls = require('node:tls')
const proxy = new URL(process.env.HTTPS_PROXY)
const one = (i) => new Promise((resolve) => {
  http.request({agent: false, host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: ${JSON.stringify(target.host)}})
    .on('connect', (_, socket) => {
      https.request({host: ${JSON.stringify(target.hostname)}, path: '/echo?node-par=' + i, headers: {authorization: 'Bearer ' + process.env.K},
        createConnection: () => tls.connect({socket, host: ${JSON.stringify(target.hostname)}, servername: undefined})}, (response) => {
        let text = ''
        response.on('data', (c) => (text += c))
        response.on('end', () => { socket.destroy(); resolve(response.statusCode + ' ' + (JSON.parse(text).path === '/echo?node-par=' + i)) })
      }).on('error', (e) => resolve(e.message)).end()
    }).on('error', (e) => resolve(e.message)).end()
})
Promise.all(Array.from({length: 100}, (_, i) => one(i))).then((all) => console.log(JSON.stringify([...new Set(all)])))
`
    const nodeRun = await run(['--env', K, '--', process.execPath, '-e', node])
    assert.equal(nodeRun.code, 0, nodeRun.stderr)
    assert.deepEqual(JSON.parse(nodeRun.stdout), ['200 true'])

    for (const [marker, count] of [
      ['curl-par=', 60],
      ['py-par=', 200],
      ['node-par=', 100],
    ] as const) {
      const requests = received(marker)
      assert.equal(requests.length, count, marker)
      for (const request of requests) assert.equal(request.headers.authorization, `Bearer ${CANARY}`, marker)
    }

    for (const result of [curl, py, nodeRun])
      for (const form of leakedForms(CANARY)) assert.ok(!(result.stdout + result.stderr).includes(form))
  })

  it('a child that bypasses the proxy (curl --noproxy) sends only its placeholder: the value never leaves agentvault', async () => {
    const url = world.upstream.url('/echo?bypass=1')
    const result = await run([
      '--env',
      K,
      '--',
      'sh',
      '-c',
      `curl -sS --noproxy '*' -H "Authorization: Bearer $K" '${url}'`,
    ])
    assert.equal(result.code, 0, result.stderr)
    const [request] = received('bypass=1')
    assert.match(String(request?.headers.authorization).replace(/^Bearer /, ''), PLACEHOLDER)
    assert.ok(!String(request?.headers.authorization).includes(CANARY))
  })
})
