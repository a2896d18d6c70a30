/**
 * `agentvault mcp` through the built binary, driven by the MCP SDK's own Client over a real stdio
 * child (through a recording relay, so the whole transcript of both directions is swept for the
 * canary), against the recording loopback upstream. Backends: `local` here; openbao and sanctum in
 * mcp-backends.test.ts.
 */
import type {CallToolResult} from '@modelcontextprotocol/sdk/types.js'

import assert from 'node:assert/strict'
import {createHmac} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {ROOT, runCli} from '../helpers/cli.js'
import {until} from '../helpers/e2e.js'
import {CLIENT_INFO, type McpSession, RawMcp, startMcp, type Transcript} from '../helpers/mcp.js'
import {
  BASIC_USER,
  CANARY,
  createUseWorld,
  leakedForms,
  MASK,
  SCOPED_CANARY,
  type UseWorld,
} from '../servers/http-upstream/fixture.js'

interface ToolErrorBody {
  error: {category: string; code: string; message: string; suggestion: string}
}

const LEAKS = [...leakedForms(CANARY), ...leakedForms(SCOPED_CANARY), JSON.stringify(CANARY).slice(1, -1)]

function assertNoLeak(text: string, where: string): void {
  for (const form of LEAKS) assert.ok(!text.includes(form), `${where} holds a form of a secret value`)
}

/** A successful tool result: structuredContent, and the same JSON as text. */
function structured<T>(result: CallToolResult): T {
  assert.notEqual(result.isError, true, JSON.stringify(result.content))
  const [text] = result.content as Array<{text: string; type: string}>
  assert.equal(text?.type, 'text')
  assert.deepEqual(JSON.parse(text.text), result.structuredContent)
  return result.structuredContent as T
}

/** A tool error: isError, product.md §9's code, category, message and suggestion, and a text form. */
function toolError(result: CallToolResult): ToolErrorBody['error'] {
  assert.equal(result.isError, true, JSON.stringify(result))
  const {error} = result.structuredContent as unknown as ToolErrorBody
  assert.match(error.code, /^[A-Z][A-Z0-9_]+$/)
  assert.ok(
    ['auth', 'config', 'denied', 'not_found', 'rate_limited', 'unavailable', 'usage'].includes(
      error.category,
    ),
  )
  assert.ok(error.message.length > 0 && error.suggestion.length > 0)
  const [text] = result.content as Array<{text: string}>
  assert.match(
    text?.text ?? '',
    new RegExp(`^Error \\(${error.code}, ${error.category}\\): .+\\nTry this: .+`),
  )
  return error
}

describe('e2e: mcp', function () {
  this.timeout(60_000)
  let world: UseWorld
  const transcripts: Transcript[] = []
  const sessions: McpSession[] = []
  const env = () => ({AGENTVAULT_HOME: world.home, AGENTVAULT_NO_KEYCHAIN: '1', NO_COLOR: '1'})

  const start = async (args: string[]): Promise<McpSession> => {
    const session = await startMcp(args, env())
    sessions.push(session)
    return session
  }

  const stop = async (session: McpSession): Promise<Transcript> => {
    sessions.splice(sessions.indexOf(session), 1)
    const transcript = await session.close()
    transcripts.push(transcript)
    return transcript
  }

  const call = (session: McpSession, name: string, args: Record<string, unknown>) =>
    session.client.callTool({arguments: args, name}) as Promise<CallToolResult>

  const auditLines = async (): Promise<Array<Record<string, unknown>>> =>
    (await readFile(join(world.home, 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)

  before(async () => {
    world = await createUseWorld()
  })

  after(async () => {
    await Promise.all(sessions.map((session) => session.close()))
    await world.dispose()
  })

  describe('initialize and tools/list', () => {
    it('answers initialize with its name, version, tools capability and instructions', async () => {
      const session = await start(['--allow', 'local://K'])
      const info = session.client.getServerVersion()
      assert.equal(info?.name, 'agentvault')
      assert.match(info?.version ?? '', /^\d+\.\d+\.\d+/)
      assert.ok(session.client.getServerCapabilities()?.tools)
      assert.match(session.client.getInstructions() ?? '', /list_secrets/)
      await stop(session)
    })

    it('lists three tools, and run_command only with --allow-run; each with a schema and a description', async () => {
      const plain = await start(['--allow', 'local://K'])
      const {tools} = await plain.client.listTools()
      assert.deepEqual(
        tools.map((tool) => tool.name),
        ['list_secrets', 'http_request', 'use_secret'],
      )
      const http = tools.find((tool) => tool.name === 'http_request')
      assert.deepEqual(Object.keys(http?.inputSchema.properties ?? {}), [
        'url',
        'method',
        'headers',
        'body',
        'bearer',
        'basic',
        'header',
        'query',
        'body_field',
        'form_field',
      ])
      const use = tools.find((tool) => tool.name === 'use_secret')
      const operations = (use?.inputSchema.properties?.operation as {enum: string[]}).enum
      assert.deepEqual(operations, ['sign', 'verify', 'encrypt', 'decrypt', 'http_request'])
      for (const tool of tools) {
        assert.equal(tool.inputSchema.type, 'object')
        assert.ok((tool.description ?? '').length > 80, tool.name)
      }

      const refused = await plain.client.callTool({arguments: {command: ['true']}, name: 'run_command'}).then(
        () => assert.fail('run_command answered without --allow-run'),
        (error: Error & {code?: number}) => error,
      )
      assert.equal(refused.code, -32_602)
      assert.match(refused.message, /--allow-run/)
      await stop(plain)

      const running = await start(['--allow', 'local://K', '--allow-run'])
      const names = (await running.client.listTools()).tools.map((tool) => tool.name)
      assert.deepEqual(names, ['list_secrets', 'http_request', 'use_secret', 'run_command'])
      await stop(running)
    })
  })

  describe('tools on local against a loopback upstream', () => {
    let session: McpSession

    before(async () => {
      session = await start(['--allow', 'local://*', '--allow-run'])
    })

    after(async () => {
      await stop(session)
    })

    it('list_secrets: references and metadata of every allowed secret, never a value; prefix filters', async () => {
      const all = structured<{secrets: Array<{allowedDomains?: string[]; name: string; reference: string}>}>(
        await call(session, 'list_secrets', {}),
      )
      assert.deepEqual(
        all.secrets.map((secret) => secret.reference),
        ['local://B', 'local://K', 'local://SCOPED'],
      )
      assert.deepEqual(all.secrets.find((secret) => secret.name === 'SCOPED')?.allowedDomains, ['127.0.0.2'])
      const some = structured<{secrets: Array<{name: string}>}>(
        await call(session, 'list_secrets', {prefix: 'S'}),
      )
      assert.deepEqual(
        some.secrets.map((secret) => secret.name),
        ['SCOPED'],
      )
    })

    it('http_request: every injection style arrives, the echo comes back redacted', async () => {
      const result = structured<{
        body: string
        headers: Record<string, string>
        redacted: boolean
        status: number
      }>(
        await call(session, 'http_request', {
          body: '{"model":"m"}',
          body_field: {'auth.token': 'K'},
          bearer: 'local://K',
          header: {'X-Scoped': 'K'},
          headers: {'X-Trace': 't-1'},
          method: 'post',
          query: {sig: 'local://B'},
          url: world.upstream.url('/echo?page=2'),
        }),
      )
      assert.equal(result.status, 200)
      assert.equal(result.redacted, true)
      assert.ok(result.body.includes(MASK))
      assert.equal(result.headers['x-echo-token'], MASK)
      const received = world.upstream.last('/echo')
      assert.equal(received.method, 'POST')
      assert.equal(received.headers.authorization, `Bearer ${CANARY}`)
      assert.equal(received.headers['x-scoped'], CANARY)
      assert.equal(received.headers['x-trace'], 't-1')
      const query = new URL(received.path, 'http://x').searchParams
      assert.equal(query.get('sig'), `${BASIC_USER}:${CANARY}`)
      assert.equal(query.get('page'), '2')
      assert.deepEqual(JSON.parse(received.body.toString()), {auth: {token: CANARY}, model: 'm'})

      structured(
        await call(session, 'http_request', {
          basic: 'B',
          body: 'grant_type=client_credentials',
          form_field: {client_secret: 'K'},
          url: world.upstream.url('/form'),
        }),
      )
      const form = world.upstream.last('/form')
      assert.equal(
        form.headers.authorization,
        `Basic ${Buffer.from(`${BASIC_USER}:${CANARY}`).toString('base64')}`,
      )
      const fields = new URLSearchParams(form.body.toString())
      assert.equal(fields.get('client_secret'), CANARY)
      assert.equal(fields.get('grant_type'), 'client_credentials')
    })

    it('use_secret: sign, verify, encrypt, decrypt and http_request with the value never returned', async () => {
      const signed = structured<{signature: string}>(
        await call(session, 'use_secret', {operation: 'sign', params: {data: 'payload'}, reference: 'K'}),
      )
      assert.equal(signed.signature, createHmac('sha256', CANARY).update('payload').digest('base64'))
      const verified = structured<{valid: boolean}>(
        await call(session, 'use_secret', {
          operation: 'verify',
          params: {data: 'payload', signature: signed.signature},
          reference: 'local://K',
        }),
      )
      assert.equal(verified.valid, true)
      const sealed = structured<{ciphertext: string}>(
        await call(session, 'use_secret', {
          operation: 'encrypt',
          params: {plaintext: 'round trip'},
          reference: 'K',
        }),
      )
      const opened = structured<{plaintext: string}>(
        await call(session, 'use_secret', {
          operation: 'decrypt',
          params: {ciphertext: sealed.ciphertext},
          reference: 'K',
        }),
      )
      assert.equal(opened.plaintext, 'round trip')
      const http = structured<{status: number}>(
        await call(session, 'use_secret', {
          operation: 'http_request',
          params: {header_name: 'X-Key', header_type: 'custom', url: world.upstream.url('/use')},
          reference: 'K',
        }),
      )
      assert.equal(http.status, 200)
      assert.equal(world.upstream.last('/use').headers['x-key'], CANARY)
    })

    it('use_secret never offers http_header: a schema violation, answered as a tool error (protocol 2025-11-25, SEP-1303)', async () => {
      const error = toolError(await call(session, 'use_secret', {operation: 'http_header', reference: 'K'}))
      assert.equal(error.code, 'INVALID_ARGUMENTS')
      assert.match(error.message, /operation/)
    })

    it('run_command: exit code, masked stdout and stderr, no shell, a minimal environment', async () => {
      const script =
        'console.log("out:" + process.env.TOKEN); console.error("err:" + Buffer.from(process.env.TOKEN).toString("base64")); console.log(process.env.AGENTVAULT_HOME === undefined ? "clean" : "leaky"); process.exit(3)'
      const result = structured<{exit_code: number; stderr: string; stdout: string; timed_out: boolean}>(
        await call(session, 'run_command', {
          command: [process.execPath, '-e', script],
          env: {TOKEN: 'local://K'},
        }),
      )
      assert.equal(result.exit_code, 3)
      assert.equal(result.timed_out, false)
      assert.equal(result.stdout, `out:${MASK}\nclean\n`)
      assert.equal(result.stderr, `err:${MASK}\n`)
      const literal = structured<{stdout: string}>(
        await call(session, 'run_command', {command: ['echo', '$HOME', '|', 'cat']}),
      )
      assert.equal(literal.stdout, '$HOME | cat\n', 'no shell expands or pipes the argv')
    })

    it('run_command keeps the last 64 KiB of a stream and says how much it dropped; a signal and a timeout are reported', async () => {
      const big = structured<{stdout: string; stdout_truncated_bytes: number}>(
        await call(session, 'run_command', {
          command: [process.execPath, '-e', 'process.stdout.write("a".repeat(100000) + "END")'],
        }),
      )
      assert.equal(Buffer.byteLength(big.stdout), 64 * 1024)
      assert.ok(big.stdout.endsWith('END'))
      assert.equal(big.stdout_truncated_bytes, 100_003 - 64 * 1024)
      const killed = structured<{exit_code: null; signal: string}>(
        await call(session, 'run_command', {
          command: [process.execPath, '-e', 'process.kill(process.pid, "SIGKILL")'],
        }),
      )
      assert.deepEqual([killed.exit_code, killed.signal], [null, 'SIGKILL'])
      const slow = structured<{timed_out: boolean}>(
        await call(session, 'run_command', {
          command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'],
          timeout_seconds: 1,
        }),
      )
      assert.equal(slow.timed_out, true)
      // A background process that keeps the output open (and the secrets in its environment) does
      // not outlast the timeout: the call answers, and the whole process group is stopped.
      const background = structured<{stdout: string; timed_out: boolean}>(
        await call(session, 'run_command', {
          command: ['sh', '-c', 'sleep 1000 & echo "$!"'],
          env: {TOKEN: 'local://K'},
          timeout_seconds: 1,
        }),
      )
      assert.equal(background.timed_out, true)
      const sleeper = Number(background.stdout.trim())
      assert.ok(Number.isInteger(sleeper) && sleeper > 0, background.stdout)
      // Gone, or a zombie its new parent has yet to reap.
      await until(async () => {
        const stat = await readFile(`/proc/${sleeper}/stat`, 'utf8').catch(() => '')
        return stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
      })
      const missing = toolError(await call(session, 'run_command', {command: ['agentvault-no-such-program']}))
      assert.equal(missing.code, 'COMMAND_FAILED_TO_START')
    })
  })

  describe('policy: decided at server start, refused as tool errors', () => {
    it('with no --allow every secret is refused, naming the flag the human must add', async () => {
      const session = await start([])
      const before = world.upstream.requests.length
      const error = toolError(
        await call(session, 'http_request', {bearer: 'K', url: world.upstream.url('/x')}),
      )
      assert.equal(error.code, 'NOT_ALLOWED_BY_SERVER')
      assert.equal(error.category, 'denied')
      assert.match(error.message, /started without --allow/)
      assert.match(error.suggestion, /--allow 'local:\/\/K'/)
      assert.equal(world.upstream.requests.length, before, 'nothing was sent')
      const list = structured<{secrets: unknown[]}>(await call(session, 'list_secrets', {}))
      assert.deepEqual(list.secrets, [])
      const transcript = await stop(session)
      assert.match(transcript.stderr, /No --allow pattern/)
    })

    it("--allow-host '*' (or any non-host) is refused at start with 2, as profiles add refuses it", async () => {
      for (const host of ['*', 'https://api.example.com/']) {
        const result = await runCli(['mcp', '--allow', 'local://K', '--allow-host', host], {env: env()})
        assert.equal(result.code, 2, result.stderr)
        assert.match(result.stderr, /^Error: Not a host or \*\.suffix pattern.*\nTry this: /m)
        assert.equal(result.stdout, '', 'no protocol output')
      }
    })

    it('--help says plainly that --allow-run gives the agent your shell (use a sandbox)', async () => {
      const help = await runCli(['mcp', '--help'], {env: env()})
      const flat = help.stdout.replaceAll(/\s+/g, ' ')
      assert.match(flat, /--allow-run .*gives the agent your shell/)
      assert.match(flat, /--allow is then only advisory/)
      assert.match(flat, /only inside a sandbox/)
      const readme = (await readFile(join(ROOT, 'README.md'), 'utf8')).replaceAll(/\s+/g, ' ')
      assert.match(readme, /`--allow-run` gives the agent your shell/)
      assert.match(readme, /secrets get .*--reveal/)
    })

    it('a pattern admits only what it matches, in one call as in another', async () => {
      const session = await start(['--allow', 'local://K*'])
      structured(await call(session, 'use_secret', {operation: 'sign', params: {data: 'x'}, reference: 'K'}))
      const error = toolError(
        await call(session, 'http_request', {bearer: 'K', query: {b: 'B'}, url: world.upstream.url('/x')}),
      )
      assert.equal(error.code, 'NOT_ALLOWED_BY_SERVER')
      assert.match(error.message, /may not use local:\/\/B:/)
      const listed = structured<{secrets: Array<{name: string}>}>(await call(session, 'list_secrets', {}))
      assert.deepEqual(
        listed.secrets.map((secret) => secret.name),
        ['K'],
      )
      const otherProfile = toolError(
        await call(session, 'use_secret', {
          operation: 'sign',
          params: {data: 'x'},
          reference: 'local://K?profile=strict',
        }),
      )
      assert.equal(otherProfile.code, 'NOT_ALLOWED_BY_SERVER')
      await stop(session)
    })

    it('host rules are those of call: refused without a list, admitted by --allow-host given at start', async () => {
      const strict = await start(['--allow', 'local://*?profile=strict', '--allow', 'local://K'])
      const refused = toolError(
        await call(strict, 'http_request', {
          bearer: 'local://K?profile=strict',
          url: world.upstream.url('/x'),
        }),
      )
      assert.equal(refused.code, 'HOST_NOT_ALLOWED')
      assert.equal(refused.category, 'denied')
      const otherHost = toolError(
        await call(strict, 'http_request', {
          bearer: 'K',
          url: world.upstream.url('/allow', {host: '127.0.0.2'}),
        }),
      )
      assert.equal(otherHost.code, 'HOST_NOT_ALLOWED', "127.0.0.2 is not in the profile's allowedDomains")
      await stop(strict)

      const widened = await start([
        '--allow',
        'local://SCOPED',
        '--allow',
        'local://K',
        '--allow-host',
        '127.0.0.2',
      ])
      const admitted = structured<{status: number}>(
        await call(widened, 'http_request', {
          bearer: 'K',
          url: world.upstream.url('/allow', {host: '127.0.0.2'}),
        }),
      )
      assert.equal(admitted.status, 200)
      assert.equal(world.upstream.last('/allow').headers.authorization, `Bearer ${CANARY}`)
      const own = toolError(
        await call(widened, 'http_request', {bearer: 'SCOPED', url: world.upstream.url('/x')}),
      )
      assert.equal(own.code, 'HOST_NOT_ALLOWED', "a secret's own allowedDomains win over --allow-host")
      await stop(widened)
    })

    it('a bad --allow pattern stops the server at start with exit 2', async () => {
      const raw = new RawMcp(['--allow', 'nonsense'], env())
      const code = await raw.close()
      assert.equal(code, 2)
    })
  })

  describe('malformed requests get protocol errors and the server keeps serving', () => {
    it('bad JSON, not JSON-RPC, a batch, unknown tool, schema violations, a 10 MB argument, an oversized line', async function () {
      this.timeout(120_000)
      const raw = new RawMcp(['--allow', 'local://K'], env())
      const init = await raw.request(1, 'initialize', {
        capabilities: {},
        clientInfo: CLIENT_INFO,
        protocolVersion: '2025-06-18',
      })
      assert.ok(init.result)
      raw.send(JSON.stringify({jsonrpc: '2.0', method: 'notifications/initialized'}))

      raw.send('{"jsonrpc": "2.0", "id": 2, "method": ')
      assert.equal((await raw.next((r) => r.error?.code === -32_700, 'parse error')).id, null)
      raw.send(JSON.stringify({id: 3, method: 'tools/list'}))
      assert.equal((await raw.next((r) => r.id === 3, 'no jsonrpc')).error?.code, -32_600)
      raw.send(JSON.stringify([{id: 4, jsonrpc: '2.0', method: 'tools/list'}]))
      assert.match(
        (await raw.next((r) => r.error?.code === -32_600 && /batch/.test(r.error.message), 'batch')).error
          ?.message ?? '',
        /batch/,
      )
      assert.equal((await raw.request(5, 'no/such/method')).error?.code, -32_601)
      const unknown = await raw.request(6, 'tools/call', {arguments: {}, name: 'reveal_secret'})
      assert.equal(unknown.error?.code, -32_602)
      assert.equal(
        (await raw.request(7, 'tools/call', {arguments: 'x', name: 'use_secret'})).error?.code,
        -32_602,
      )
      assert.equal((await raw.request(8, 'tools/call', {name: 42})).error?.code, -32_602)
      const extra = await raw.request(9, 'tools/call', {
        arguments: {operation: 'sign', reference: 'K', surprise: true},
        name: 'use_secret',
      })
      assert.equal(extra.error?.code, -32_602)
      assert.match(extra.error?.message ?? '', /surprise/)

      const big = await raw.request(10, 'tools/call', {
        arguments: {operation: 'sign', params: {data: 'x'.repeat(10 * 1024 * 1024)}, reference: 'K'},
        name: 'use_secret',
      })
      assert.equal(big.error?.code, -32_602)
      assert.match(big.error?.message ?? '', /limit is 1048576 bytes/)

      // Larger than any message the transport reads: skipped to its end, never buffered whole.
      raw.send(Buffer.alloc(17 * 1024 * 1024, 'y'))
      raw.send('\n')
      await raw.next((r) => r.id === null && /larger than/.test(r.error?.message ?? ''), 'oversized line')

      const list = await raw.request(11, 'tools/list')
      assert.equal((list.result?.tools as unknown[]).length, 3)
      const sign = await raw.request(12, 'tools/call', {
        arguments: {operation: 'sign', params: {data: 'payload'}, reference: 'K'},
        name: 'use_secret',
      })
      assert.equal(
        (sign.result?.structuredContent as {signature: string}).signature,
        createHmac('sha256', CANARY).update('payload').digest('base64'),
      )
      assert.equal(await raw.close(), 0)
      for (const response of raw.responses) assertNoLeak(JSON.stringify(response), 'a response')
    })
  })

  describe('AGENTVAULT_MCP_ALLOW', () => {
    it('takes several patterns separated by commas or spaces, as --allow repeated would', async () => {
      const session = await startMcp([], {...env(), AGENTVAULT_MCP_ALLOW: 'local://K, local://SCOP*'})
      sessions.push(session)
      const listed = structured<{secrets: Array<{reference: string}>}>(
        await call(session, 'list_secrets', {}),
      )
      assert.deepEqual(
        listed.secrets.map((secret) => secret.reference),
        ['local://K', 'local://SCOPED'],
      )
      await stop(session)
    })
  })

  describe('stopping', () => {
    it('a second SIGTERM while a tool call is in flight: the call still finishes and is audited', async () => {
      const raw = new RawMcp(['--allow', 'local://K'], env())
      let stderr = ''
      raw.child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8')
      })
      let gone = false
      const exited = new Promise<[null | number, NodeJS.Signals | null]>((resolve) => {
        raw.child.once('exit', (code, signal) => {
          gone = true
          resolve([code, signal])
        })
      })
      assert.ok(
        (
          await raw.request(1, 'initialize', {
            capabilities: {},
            clientInfo: CLIENT_INFO,
            protocolVersion: '2025-06-18',
          })
        ).result,
      )
      raw.send(JSON.stringify({jsonrpc: '2.0', method: 'notifications/initialized'}))
      const before = (await auditLines()).filter((line) => line.command === 'mcp').length
      raw.send(
        JSON.stringify({
          id: 2,
          jsonrpc: '2.0',
          method: 'tools/call',
          params: {
            arguments: {bearer: 'K', url: world.upstream.url('/slow?ms=1500&mcp-stop')},
            name: 'http_request',
          },
        }),
      )
      // The secret is on its way upstream.
      await until(() => world.upstream.requests.some((request) => request.path.includes('mcp-stop')))
      raw.child.kill('SIGTERM')
      // The first signal was taken: the server says it waits for the call in flight.
      await until(() => gone || stderr.includes('stopping after the 1 tool call(s) in flight'))
      assert.equal(gone, false, `the first SIGTERM did not wait for the call in flight: ${stderr}`)
      raw.child.kill('SIGTERM')
      const [code, signal] = await exited
      assert.equal(signal, null, 'the second SIGTERM killed the server before the call was audited')
      assert.equal(code, 0, stderr)
      const lines = (await auditLines()).filter((line) => line.command === 'mcp')
      assert.equal(lines.length, before + 1)
      assert.equal(lines.at(-1)?.tool, 'http_request')
      assert.equal(lines.at(-1)?.outcome, 'ok')
    })
  })

  describe('audit and canary sweep', () => {
    it('every tool call is audited as command mcp with tool, references, host, outcome and client', async () => {
      const lines = (await auditLines()).filter((line) => line.command === 'mcp')
      assert.ok(lines.length >= 15, `only ${lines.length} mcp audit lines`)
      for (const line of lines) assert.equal(line.client, `${CLIENT_INFO.name}/${CLIENT_INFO.version}`)
      const http = lines.find((line) => line.tool === 'http_request' && line.outcome === 'ok')
      assert.deepEqual([...((http?.references as string[]) ?? [])].sort(), ['local://B', 'local://K'])
      assert.match(String(http?.target_host), /^127\.0\.0\.1:\d+$/)
      assert.equal(http?.operation, 'http_request')
      const denied = lines.find((line) => line.error_code === 'NOT_ALLOWED_BY_SERVER')
      assert.equal(denied?.outcome, 'denied')
      assert.equal(denied?.exit_code, 7)
      assert.ok((denied?.references as string[]).length > 0)
      const run = lines.find(
        (line) => line.tool === 'run_command' && (line.references as string[] | undefined)?.length,
      )
      assert.equal(run?.operation, 'run')
      assert.ok(lines.some((line) => line.tool === 'list_secrets' && line.operation === 'list'))
      const rejected = lines.filter((line) => line.tool === 'use_secret' && line.exit_code === 2)
      assert.deepEqual(
        [...new Set(rejected.map((line) => line.error_code))].sort(),
        ['ARGUMENTS_TOO_LARGE', 'INVALID_ARGUMENTS'],
        'calls rejected for their arguments are audited too',
      )
      const verify = await world.cli(['audit', 'verify'])
      assert.equal(verify.code, 0, verify.stderr)
    })

    it('no canary form in any JSON-RPC message of any transcript (both directions), stderr or the audit log', async () => {
      assert.ok(transcripts.length >= 8)
      for (const [index, transcript] of transcripts.entries()) {
        assert.ok(transcript.sent.includes('"initialize"'), 'the relay recorded the client side')
        assert.ok(transcript.received.includes('"serverInfo"'), 'the relay recorded the server side')
        assertNoLeak(transcript.sent, `transcript ${index} (client → server)`)
        assertNoLeak(transcript.received, `transcript ${index} (server → client)`)
        assertNoLeak(transcript.stderr, `transcript ${index} stderr`)
      }

      assertNoLeak(await readFile(join(world.home, 'audit.log'), 'utf8'), 'the audit log')
    })
  })
})
