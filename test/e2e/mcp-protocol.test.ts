/**
 * `agentvault mcp` as MCP clients exercise the protocol around the tools, and as a hostile client
 * and a hostile upstream push it: the lifecycle (nothing but ping before initialize, one
 * initialize), error messages as the SDK Client shows them, cursors, task-augmented calls, a client
 * that stops reading its answers, stdin closed mid-call, upstreams that never answer, dribble or
 * never end, and references that name other backends and profiles than --allow admits — each with
 * the canary swept from every answer, stderr under DEBUG=* and the audit log. The tools themselves
 * are in mcp.test.ts; client shutdown and cancellation in mcp-clients.test.ts.
 */
import type {CallToolResult} from '@modelcontextprotocol/sdk/types.js'
import type {ChildProcess} from 'node:child_process'

import {Client} from '@modelcontextprotocol/sdk/client/index.js'
import {StdioClientTransport} from '@modelcontextprotocol/sdk/client/stdio.js'
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import {join} from 'node:path'
import {brotliCompressSync, deflateRawSync, deflateSync, gzipSync} from 'node:zlib'

import {baseEnv, BIN, ROOT, withNodeOnPath} from '../helpers/cli.js'
import {until} from '../helpers/e2e.js'
import {auditLines as auditOf, CLIENT_INFO, RawMcp, startMcp} from '../helpers/mcp.js'
import {CANARY, createUseWorld, leakedForms, type UseWorld} from '../servers/http-upstream/fixture.js'

const LEAKS = [
  ...leakedForms(CANARY),
  Buffer.from(CANARY).toString('hex'),
  Buffer.from(CANARY).toString('hex').toUpperCase(),
  JSON.stringify(CANARY).slice(1, -1),
]

function assertNoLeak(text: string, where: string): void {
  for (const form of LEAKS) assert.ok(!text.includes(form), `${where} holds a form of the secret`)
}

const INIT = {capabilities: {}, clientInfo: CLIENT_INFO, protocolVersion: '2025-06-18'}

describe('e2e: mcp protocol, lifecycle and limits', function () {
  this.timeout(60_000)
  let world: UseWorld
  const servers: Server[] = []
  const raws: RawMcp[] = []
  const env = (extra: NodeJS.ProcessEnv = {}) => ({
    AGENTVAULT_HOME: world.home,
    AGENTVAULT_NO_KEYCHAIN: '1',
    NO_COLOR: '1',
    ...extra,
  })
  const auditLines = () => auditOf(world.home)

  /** A raw line client, initialized unless told otherwise; its stderr kept. */
  const raw = async (args: string[], options: {env?: NodeJS.ProcessEnv; init?: boolean} = {}) => {
    const client = new RawMcp(args, env(options.env))
    raws.push(client)
    let stderr = ''
    client.child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
    })
    if (options.init !== false) {
      assert.ok((await client.request(0, 'initialize', INIT)).result)
      client.send(JSON.stringify({jsonrpc: '2.0', method: 'notifications/initialized'}))
    }

    return {client, stderr: () => stderr}
  }

  /** A loopback upstream of the test's own making; stopped after the suite. */
  const upstream = async (handler: Parameters<typeof createServer>[1]): Promise<string> => {
    const server = createServer(handler)
    servers.push(server)
    await new Promise<void>((resolve) => {
      server.listen(0, '127.0.0.1', () => resolve())
    })
    return `http://127.0.0.1:${(server.address() as {port: number}).port}`
  }

  before(async () => {
    world = await createUseWorld()
  })

  after(async () => {
    await Promise.all(raws.map((client) => client.close()))
    for (const server of servers) {
      server.closeAllConnections()
      server.close()
    }

    await world.dispose()
  })

  it('a protocol error reaches the SDK Client as one sentence: no doubled "MCP error -32602:", no schema dump', async () => {
    const transport = new StdioClientTransport({
      args: ['mcp', '--allow', 'local://K'],
      command: BIN,
      cwd: ROOT,
      env: withNodeOnPath(baseEnv(env())) as Record<string, string>,
      stderr: 'pipe',
    })
    const client = new Client(CLIENT_INFO)
    await client.connect(transport)
    try {
      await assert.rejects(client.callTool({arguments: {}, name: 'reveal_secret'}), (error: Error) => {
        assert.equal(error.message, 'MCP error -32602: Unknown tool: "reveal_secret"')
        return true
      })
    } finally {
      await client.close()
    }

    // On the wire: the message alone, for a tools/call the SDK's own checks would have answered too.
    const {client: line} = await raw(['--allow', 'local://K'])
    const wrongName = await line.request(1, 'tools/call', {arguments: {}, name: 42})
    assert.equal(wrongName.error?.code, -32_602)
    assert.equal(
      wrongName.error?.message,
      'Invalid tools/call request: params must hold a tool name and an arguments object',
    )
    for (const response of line.responses)
      assert.doesNotMatch(response.error?.message ?? '', /MCP error/, JSON.stringify(response))
  })

  it('before initialize only ping is answered (no tool runs, nothing is audited); a second initialize is refused', async () => {
    const before = (await auditLines()).length
    const {client} = await raw(['--allow', 'local://K'], {init: false})
    assert.deepEqual((await client.request(1, 'ping')).result, {})
    const early = await client.request(2, 'tools/call', {
      arguments: {operation: 'sign', params: {data: 'x'}, reference: 'K'},
      name: 'use_secret',
    })
    assert.equal(early.error?.code, -32_600, JSON.stringify(early))
    assert.match(early.error?.message ?? '', /before initialize; send initialize first/)
    assert.equal((await client.request(3, 'tools/list')).error?.code, -32_600)
    assert.equal((await auditLines()).length, before, 'a call before initialize ran')

    assert.ok((await client.request(4, 'initialize', INIT)).result)
    const again = await client.request(5, 'initialize', {...INIT, clientInfo: {name: 'other', version: '9'}})
    assert.equal(again.error?.code, -32_600)
    assert.match(again.error?.message ?? '', /already initialized/)
    const call = await client.request(6, 'tools/call', {arguments: {}, name: 'list_secrets'})
    assert.notEqual((call.result as CallToolResult | undefined)?.isError, true, JSON.stringify(call))
    const line = (await auditLines()).at(-1)
    assert.equal(
      line?.client,
      `${CLIENT_INFO.name}/${CLIENT_INFO.version}`,
      'the second initialize renamed the client',
    )
    assert.equal(await client.close(), 0)
  })

  it('tools/list: everything in one answer (no nextCursor); a cursor it never gave out is invalid params (-32602)', async () => {
    const {client} = await raw(['--allow', 'local://K'])
    const listed = await client.request(1, 'tools/list')
    assert.equal((listed.result?.tools as unknown[]).length, 3)
    assert.equal(listed.result?.nextCursor, undefined)
    const cursor = await client.request(2, 'tools/list', {cursor: 'page-2'})
    assert.equal(cursor.error?.code, -32_602, JSON.stringify(cursor).slice(0, 300))
    assert.match(cursor.error?.message ?? '', /cursor/)
    // Capabilities not advertised are not served.
    for (const [id, method] of ['resources/list', 'prompts/list', 'logging/setLevel'].entries())
      assert.equal((await client.request(10 + id, method, {level: 'debug'})).error?.code, -32_601, method)
  })

  it('a task-augmented tools/call (this server declares no tasks capability) is performed and answered as a plain one', async () => {
    const {client} = await raw(['--allow', 'local://K'])
    const answer = await client.request(1, 'tools/call', {
      arguments: {operation: 'sign', params: {data: 'payload'}, reference: 'K'},
      name: 'use_secret',
      task: {ttl: 60_000},
    })
    assert.equal(answer.error, undefined, JSON.stringify(answer))
    assert.equal(typeof (answer.result?.structuredContent as {signature?: unknown}).signature, 'string')
  })

  it('a client that stops reading its answers is not read from either: its further requests wait in the pipe, and are all answered once it reads', async () => {
    const {client, stderr} = await raw(['--allow', 'local://K'], {env: {DEBUG: 'agentvault:mcp'}})
    const total = 20_000
    const stdout = client.child.stdout!
    stdout.pause()
    const stdin = client.child.stdin!
    for (let id = 1; id <= total; id++)
      stdin.write(`${JSON.stringify({id, jsonrpc: '2.0', method: 'tools/list'})}\n`)
    // Unfixed, the server reads every request and queues every answer (~14 KB each) in memory:
    // stdin drains. Fixed, it stops reading once stdout is full and says so under DEBUG.
    await until(() => stdin.writableLength === 0 || /not reading its answers/.test(stderr()))
    assert.ok(
      stdin.writableLength > 0,
      `the server read all ${total} requests of a client that reads none of its answers`,
    )
    stdout.resume()
    await client.next((response) => response.id === total, 'the last request')
    assert.equal(client.responses.filter((response) => Array.isArray(response.result?.tools)).length, total)
    // One wait for stdout to drain, not a listener per answer waiting behind it.
    assert.doesNotMatch(stderr(), /MaxListenersExceededWarning/)
    assert.equal(await client.close(), 0)
  })

  it('400 tool calls at once from the SDK Client: each answered, each audited (no append gives up on a lock its own server holds), the chain intact', async () => {
    const before = (await auditLines()).length
    const session = await startMcp(['--allow', 'local://K'], env())
    // The SDK's client transport waits for its own stdin to drain with a listener per request:
    // quiet Node's warning about them here (it is about this test process, not the server).
    ;(session.client.transport as unknown as {_process?: ChildProcess})._process?.stdin?.setMaxListeners(0)
    const total = 400
    const results = (await Promise.all(
      Array.from({length: total}, (_, index) =>
        session.client.callTool(
          index % 2 === 0
            ? {
                arguments: {operation: 'sign', params: {data: `n${index}`}, reference: 'K'},
                name: 'use_secret',
              }
            : {arguments: {bearer: 'K', url: world.upstream.url(`/echo?n=${index}`)}, name: 'http_request'},
        ),
      ),
    )) as CallToolResult[]
    for (const result of results) assert.notEqual(result.isError, true, JSON.stringify(result.content))
    const transcript = await session.close()
    assert.doesNotMatch(transcript.stderr, /Could not write the audit log/)
    const lines = (await auditLines()).slice(before)
    assert.equal(lines.length, total)
    assert.deepEqual(lines.map((line) => line.tool).sort(), [
      ...Array.from({length: total / 2}, () => 'http_request'),
      ...Array.from({length: total / 2}, () => 'use_secret'),
    ])
    const verify = await world.cli(['audit', 'verify'])
    assert.equal(verify.code, 0, verify.stderr)
    assertNoLeak(transcript.received, 'the answers')
  })

  it('stdin closed mid-call (no signal): the call finishes, is answered and audited, and the server exits 0', async () => {
    const {client, stderr} = await raw(['--allow', 'local://K'], {env: {DEBUG: '*'}})
    client.send(
      JSON.stringify({
        id: 1,
        jsonrpc: '2.0',
        method: 'tools/call',
        params: {
          arguments: {bearer: 'K', url: world.upstream.url('/slow?ms=300&stdin-closed')},
          name: 'http_request',
        },
      }),
    )
    await until(() => world.upstream.requests.some((request) => request.path.includes('stdin-closed')))
    assert.equal(await client.close(), 0)
    const answer = client.responses.find((response) => response.id === 1)
    assert.equal((answer?.result?.structuredContent as {status: number}).status, 200)
    const line = (await auditLines()).at(-1)
    assert.equal(line?.tool, 'http_request')
    assert.equal(line?.outcome, 'ok')
    assertNoLeak(stderr(), 'stderr under DEBUG=*')
    assertNoLeak(JSON.stringify(client.responses), 'the answers')
  })

  it('upstreams that never answer, dribble a byte at a time, or never end: tool errors within --timeout / the size cap, never the secret', async () => {
    const silent = await upstream(() => {})
    const dribble = await upstream((_request, response) => {
      response.writeHead(200, {'content-type': 'text/plain'})
      const timer = setInterval(() => response.write(CANARY.slice(0, 1)), 100)
      response.once('close', () => clearInterval(timer))
    })
    const endless = await upstream((request, response) => {
      response.writeHead(200, {'content-type': 'text/plain'})
      const chunk = Buffer.from(`${request.headers.authorization} `.repeat(2048))
      const pump = (): void => {
        while (!response.destroyed && response.write(chunk));
      }

      response.on('drain', pump)
      pump()
    })
    const {client, stderr} = await raw(
      [
        '--allow',
        'local://K',
        '--allow-domain',
        '127.0.0.1',
        '--timeout',
        '2',
        '--max-response-bytes',
        '1000000',
      ],
      {env: {DEBUG: '*'}},
    )
    const expected: Array<[string, string]> = [
      [silent, 'REQUEST_TIMEOUT'],
      [dribble, 'REQUEST_TIMEOUT'],
      [endless, 'RESPONSE_TOO_LARGE'],
    ]
    const answers = await Promise.all(
      expected.map(([url], index) =>
        client.request(index + 1, 'tools/call', {
          arguments: {bearer: 'K', url: `${url}/x`},
          name: 'http_request',
        }),
      ),
    )
    for (const [index, answer] of answers.entries()) {
      const result = answer.result as CallToolResult | undefined
      assert.equal(result?.isError, true, JSON.stringify(answer))
      assert.equal((result?.structuredContent as {error: {code: string}}).error.code, expected[index]?.[1])
    }

    // use_secret's http_request has the same limits.
    const used = await client.request(9, 'tools/call', {
      arguments: {operation: 'http_request', params: {url: `${silent}/y`}, reference: 'K'},
      name: 'use_secret',
    })
    assert.equal(
      ((used.result as CallToolResult).structuredContent as {error: {code: string}}).error.code,
      'REQUEST_TIMEOUT',
    )
    assert.equal(await client.close(), 0)
    assertNoLeak(JSON.stringify(client.responses), 'the answers')
    assertNoLeak(stderr(), 'stderr under DEBUG=*')
  })

  it("an upstream's echo of the secret in every encoding a real program writes: concealed, or the body refused when compressed without a Content-Encoding", async () => {
    /** The echo as an API would write it: JSON holding the token among other text. */
    const page = (token: string) =>
      Buffer.from(JSON.stringify({note: 'session details follow '.repeat(20), token, trace: 'x'.repeat(200)}))
    const forms: Record<
      string,
      (token: string) => {body: Buffer | string; headers?: Record<string, string>}
    > = {
      base64url: (token) => ({body: Buffer.from(token).toString('base64url')}),
      brotli: (token) => ({body: brotliCompressSync(page(token))}),
      'brotli-declared': (token) => ({
        body: brotliCompressSync(page(token)),
        headers: {'content-encoding': 'br'},
      }),
      'deflate-raw': (token) => ({body: deflateRawSync(page(token))}),
      'deflate-raw-declared': (token) => ({
        body: deflateRawSync(page(token)),
        headers: {'content-encoding': 'deflate'},
      }),
      'deflate-corrupt': () => ({
        body: Buffer.of(0xff, 0xff, 0xff, 0x00),
        headers: {'content-encoding': 'deflate'},
      }),
      'deflate-zlib': (token) => ({body: deflateSync(page(token))}),
      'deflate-zlib-declared': (token) => ({
        body: deflateSync(page(token)),
        headers: {'content-encoding': 'deflate'},
      }),
      'go-json': (token) => ({body: JSON.stringify({token}).replaceAll('&', String.raw`\u0026`)}),
      'gzip-in-deflate-raw': (token) => ({body: deflateRawSync(gzipSync(page(token)))}),
      'hex-lower': (token) => ({body: Buffer.from(token).toString('hex')}),
      'hex-upper': (token) => ({body: Buffer.from(token).toString('hex').toUpperCase()}),
      html: (token) => ({body: `<p>${token.replaceAll('&', '&amp;')}</p>`}),
      'url-encoded': (token) => ({body: encodeURIComponent(token)}),
    }
    const url = await upstream((request, response) => {
      const token = String(request.headers.authorization ?? '').replace(/^Bearer /, '')
      const form = forms[(request.url ?? '').slice(1)]!(token)
      response.writeHead(200, form.headers ?? {'content-type': 'application/octet-stream'})
      response.end(form.body)
    })
    const {client, stderr} = await raw(['--allow', 'local://K', '--allow-domain', '127.0.0.1'], {
      env: {DEBUG: '*'},
    })
    const refused = new Map([
      ['brotli', 'SECRET_IN_COMPRESSED_BODY'],
      ['deflate-corrupt', 'BAD_RESPONSE_ENCODING'],
      ['deflate-raw', 'SECRET_IN_COMPRESSED_BODY'],
      ['deflate-zlib', 'SECRET_IN_COMPRESSED_BODY'],
      ['gzip-in-deflate-raw', 'SECRET_IN_COMPRESSED_BODY'],
    ])
    for (const [index, name] of Object.keys(forms).entries()) {
      const answer = await client.request(index + 1, 'tools/call', {
        arguments: {bearer: 'K', url: `${url}/${name}`},
        name: 'http_request',
      })
      const result = answer.result?.structuredContent as {error?: {code: string}; redacted?: boolean}
      if (refused.has(name)) assert.equal(result.error?.code, refused.get(name), name)
      else assert.equal(result.redacted, true, `${name}: ${JSON.stringify(result)}`)
    }

    // A binary body that holds no secret comes back whole (as base64).
    const plain = deflateRawSync(Buffer.from('nothing secret in here '.repeat(10)))
    const other = await upstream((_request, response) => {
      response.end(plain)
    })
    const binary = await client.request(50, 'tools/call', {
      arguments: {bearer: 'K', url: `${other}/plain`},
      name: 'http_request',
    })
    const body = binary.result?.structuredContent as {body: string; bodyEncoding: string}
    assert.equal(body.bodyEncoding, 'base64')
    assert.deepEqual(Buffer.from(body.body, 'base64'), plain)
    assert.equal(await client.close(), 0)
    assertNoLeak(JSON.stringify(client.responses), 'the answers')
    assertNoLeak(stderr(), 'stderr under DEBUG=*')
  })

  it('references to other profiles, backends and spellings than --allow admits are refused or name the same secret; none leaks', async () => {
    const {client, stderr} = await raw(['--allow', 'local://K'], {env: {DEBUG: '*'}})
    const sign = (id: number, reference: unknown) =>
      client.request(id, 'tools/call', {
        arguments: {operation: 'sign', params: {data: 'p'}, reference},
        name: 'use_secret',
      })
    const refused = [
      'local://K?profile=strict',
      'K?profile=strict',
      'local://k',
      'local://%4B',
      'local://\u212A',
      'local://Ｋ',
      'local://K%00',
      'local://K\u0000',
      'local://K?Profile=strict',
      'local://K?profile=lp&profile=strict',
      'local://B',
      'openbao://secret/K#value',
      'vault://secret/K',
      'sanctum://K',
      'agentsecrets://K',
      'agentauth://access-token',
      'env://K',
      'file:///etc/passwd',
      'x'.repeat(5000),
    ]
    for (const [index, reference] of refused.entries()) {
      const answer = await sign(100 + index, reference)
      const error = (answer.result?.structuredContent as undefined | {error?: {code: string}})?.error
      assert.ok(answer.error ?? error, `${reference.slice(0, 40)} was used: ${JSON.stringify(answer)}`)
    }

    // The same secret, spelled otherwise: admitted as the one --allow names.
    for (const [index, reference] of ['K', 'local://K', 'LOCAL://K', 'local://K?profile=lp'].entries()) {
      const answer = await sign(200 + index, reference)
      assert.equal(
        typeof (answer.result?.structuredContent as {signature?: string}).signature,
        'string',
        reference,
      )
    }

    for (const [index, reference] of [5, null, ['K'], {ref: 'K'}, true].entries())
      assert.ok((await sign(300 + index, reference)).result?.isError ?? true)
    assert.equal(await client.close(), 0)
    assertNoLeak(JSON.stringify(client.responses), 'the answers')
    assertNoLeak(stderr(), 'stderr under DEBUG=*')
    assertNoLeak(await readFile(join(world.home, 'audit.log'), 'utf8'), 'the audit log')
  })
})
