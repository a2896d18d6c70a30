/**
 * Canaries for the agentauth backend (product.md §10): every API key, access token, refresh token
 * and webhook secret the test server hands out is a canary. Each path — login (stdin, env, wrong
 * key), status, run (stored and env-only tokens), call, every `agents` command, refresh (proactive
 * and after a 401), failing refresh, audit, logout — runs plainly and with DEBUG=*, and none of
 * them may show up in stderr, in stdout (except the one value a command exists to print), in any
 * file of the home (config.json, audit.log, …), or in the argv of any process while `run` runs.
 */
import assert from 'node:assert/strict'
import {type ChildProcess} from 'node:child_process'
import {existsSync} from 'node:fs'
import {readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type CliResult, collect, runCli, startCli, tempHome, waitForOutput} from '../helpers/cli.js'
import {filesUnder} from '../helpers/e2e.js'
import {type FakeClock, GENERATIONS, startReceiver, startServer} from '../servers/agentauth/harness.js'
import {type AgentAuthTestServer} from '../servers/agentauth/server.js'

const MASK = '<concealed by agentvault>'

/** Clear text, hex, base64 and base64url of each value. */
function forms(value: string): Array<[string, string]> {
  const bytes = Buffer.from(value)
  return [
    ['clear', value],
    ['hex', bytes.toString('hex')],
    ['base64', bytes.toString('base64').replace(/=+$/, '')],
    ['base64url', bytes.toString('base64url')],
  ]
}

interface Check {
  code?: number
  env?: NodeJS.ProcessEnv
  input?: Buffer | string
  /** Values this command exists to print on stdout (a new API key, a webhook secret). */
  printed?: (result: CliResult) => string[]
  /** Not an oclif command (`run`), so DEBUG=* shows no oclif lines. */
  withoutOclif?: boolean
}

/** The webhook id in `agents webhooks register --json` output. */
const idOf = (result: CliResult | undefined): string =>
  (JSON.parse(result!.stdout) as {webhook: {id: string}}).webhook.id

/** A command printing $T in clear, base64, URL- and JSON-encoded, on stdout and stderr. */
const PRINTER = [
  process.execPath,
  '-e',
  `const v = process.env.T
   console.log(v); console.log(Buffer.from(v).toString('base64')); console.log(encodeURIComponent(v)); console.log(JSON.stringify({v}))
   console.error(v)`,
]

for (const generation of GENERATIONS) {
  describe(`e2e: agentauth canaries (${generation} server)`, () => {
    let t: Awaited<ReturnType<typeof tempHome>>
    let home: string
    let server: AgentAuthTestServer
    let clock: FakeClock
    let receiver: Awaited<ReturnType<typeof startReceiver>>
    let admin: {agentId: string; apiKey: string}
    /** Keys and secrets handed out by commands (the server keeps only hashes of keys). */
    const handedOut: string[] = []
    const live: ChildProcess[] = []
    /** Commands whose DEBUG=* output had agentauth's own debug lines (so redaction was exercised). */
    let debugLines = 0

    const canaries = (): string[] => [
      admin.apiKey,
      ...handedOut,
      ...server.state.issuedTokens,
      ...[...server.state.webhooks.values()].map((h) => h.secret),
    ]

    function assertClean(text: Buffer | string, where: string, except: string[] = []): void {
      const haystack = typeof text === 'string' ? text : text.toString('latin1')
      for (const canary of canaries()) {
        if (except.includes(canary)) continue
        for (const [form, needle] of forms(canary))
          assert.ok(!haystack.includes(needle), `a canary (${form}) appears in ${where}`)
      }
    }

    /** Run plainly and with DEBUG=*; scan stderr and stdout. */
    async function check(
      command: ((debug: boolean) => string[]) | string[],
      options: Check = {},
    ): Promise<CliResult[]> {
      const results: CliResult[] = []
      for (const debug of [false, true]) {
        const args = typeof command === 'function' ? command(debug) : command
        const label = `${debug ? 'DEBUG=* ' : ''}agentvault ${args.join(' ')}`
        const result = await runCli(args, {
          env: {...t.env, ...options.env, ...(debug ? {DEBUG: '*'} : {})},
          ...(options.input === undefined ? {} : {input: options.input}),
        })
        assert.equal(
          result.code,
          options.code ?? 0,
          `${label}: exit ${result.code}; ${result.stderr.slice(-1500)}`,
        )
        const printed = options.printed?.(result) ?? []
        handedOut.push(...printed)
        assertClean(result.stderr, `stderr of ${label}`)
        assertClean(result.stdoutBytes, `stdout of ${label}`, printed)
        if (debug && !options.withoutOclif)
          assert.match(result.stderr, /oclif/, `${label} printed debug output`)
        if (debug && result.stderr.includes('agentvault:agentauth')) debugLines++
        results.push(result)
      }

      return results
    }

    const loginArgs = ['login', 'agentauth', '--profile', 'aa', '--agent-id', '', '--api-key-stdin']

    before(async () => {
      t = await tempHome()
      home = t.env.AGENTVAULT_HOME!
      const generous = {limit: 100_000, windowMs: 900_000}
      ;({clock, server} = await startServer(generation, {authLimit: generous, globalLimit: generous}))
      receiver = await startReceiver()
      admin = server.seedAgent({name: 'canary-admin', permissions: ['*:*:*']})
      loginArgs[5] = admin.agentId
      const added = await runCli(
        [
          'profiles',
          'add',
          'aa',
          '--kind',
          'agentauth',
          '--default',
          '--set',
          `baseUrl=${server.url}`,
          '--set',
          'allowPrivateNetworks=true',
          '--set',
          'allowedDomains=["127.0.0.1"]',
        ],
        {env: t.env},
      )
      assert.equal(added.code, 0, added.stderr)
    })

    afterEach(() => {
      for (const child of live.splice(0))
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })

    after(async () => {
      await server.close()
      await receiver.close()
      await t.dispose()
    })

    it('login: the key on stdin, from env, and a wrong key', async () => {
      await check(loginArgs, {input: `${admin.apiKey}\n`})
      await check(['login', 'agentauth', '--profile', 'env-login', '--json'], {
        env: {
          AGENTAUTH_AGENT_ID: admin.agentId,
          AGENTAUTH_API_KEY: admin.apiKey,
          AGENTAUTH_BASE_URL: server.url,
        },
      })
      await check(loginArgs, {code: 4, input: 'sk_canary_wrong_key\n'})
      await check(loginArgs, {input: `${admin.apiKey}\n`})
    })

    it('status and whoami', async () => {
      await check(['status'])
      await check(['whoami', '--json'])
    })

    it('run with the stored token (masked) and with env-only tokens', async () => {
      for (const [result] of [
        await check(['run', '--env', 'T=agentauth://access-token', '--', ...PRINTER], {withoutOclif: true}),
      ])
        assert.equal(result!.stdout.split(MASK).length - 1, 4, result!.stdout)
      await check(['run', '--env', 'T=agentauth://access-token?profile=agentauth', '--', ...PRINTER], {
        env: {
          AGENTAUTH_AGENT_ID: admin.agentId,
          AGENTAUTH_API_KEY: admin.apiKey,
          AGENTAUTH_BASE_URL: server.url,
        },
        withoutOclif: true,
      })
    })

    it('call --bearer agentauth://access-token', async () => {
      const p = generation === 'v1' ? '/v1' : ''
      await check([
        'call',
        `${server.url}${p}/agents/${admin.agentId}`,
        '--bearer',
        'agentauth://access-token',
      ])
      await check([
        'call',
        `${server.url}${p}/agents/${admin.agentId}`,
        '--bearer',
        'agentauth://access-token',
        '--json',
      ])
    })

    it('every agents command; the key and secrets only where the command prints them', async () => {
      const [first] = await check(
        ['agents', 'register', '--name', 'canary-bot', '--owner-email', 'ops@example.com'],
        {
          printed: (result) => [/api_key\s+(\S+)/.exec(result.stdout)?.[1] ?? ''],
        },
      )
      await check(
        ['agents', 'register', '--name', 'canary-bot-2', '--owner-email', 'ops@example.com', '--json'],
        {
          printed: (result) => [(JSON.parse(result.stdout) as {api_key: string}).api_key],
        },
      )
      const created = /agent_id\s+(\S+)/.exec(first!.stdout)![1]!
      await check(['agents', 'list'])
      await check(['agents', 'list', '--json'])
      await check(['agents', 'get', created])
      await check(['agents', 'tier', created, 'pro', '--json'])
      await check(['agents', 'revoke', created])
      await check(['agents', 'permissions'])
      await check(['agents', 'webhooks', 'events'])
      const event = generation === 'v1' ? 'agent.updated' : 'agent.verified'
      const [hook, otherHook] = await check(
        ['agents', 'webhooks', 'register', '--url', receiver.url, '--event', event, '--json'],
        {
          printed: (result) => [(JSON.parse(result.stdout) as {secret: string}).secret],
        },
      )
      const id = idOf(hook)
      await check(['agents', 'webhooks', 'list'])
      await check(['agents', 'webhooks', 'list', '--json'])
      await check(['agents', 'webhooks', 'rotate-secret', id], {printed: (result) => [result.stdout.trim()]})
      const {secret} = server.state.webhooks.get(id)!
      const body = Buffer.from('{"event":"agent.verified","timestamp":"1","data":{}}')
      const signature = (await import('node:crypto')).createHmac('sha256', secret).update(body).digest('hex')
      await check(['agents', 'webhooks', 'verify', '--secret-stdin', '--signature', signature], {
        input: Buffer.concat([Buffer.from(`${secret}\n`), body]),
      })
      await check(['agents', 'webhooks', 'verify', '--secret-stdin', '--signature', signature], {
        code: 7,
        input: Buffer.concat([Buffer.from(`${secret}\n`), body, Buffer.from(' ')]),
      })
      await check((debug) => ['agents', 'webhooks', 'delete', debug ? idOf(otherHook) : id])
      await check(['agents', 'get', 'agt_missing'], {code: 6})
    })

    it('refresh: proactive (2 s token) and after a 401 (server clock ahead)', async () => {
      server.accessTtlSeconds = 2
      await check(loginArgs, {input: `${admin.apiKey}\n`})
      clock.advance(10_000)
      await check(['agents', 'list'])
      server.accessTtlSeconds = 3600
      await check(loginArgs, {input: `${admin.apiKey}\n`})
      clock.advance(2 * 3_600_000)
      await check(['agents', 'get', admin.agentId])
      assert.ok(server.requestsTo(/\/agents\/refresh$/).length >= 3)
    })

    it('audit: local, agentauth source and all', async () => {
      await check(['audit'])
      await check(['audit', '--source', 'agentauth', '--profile', 'aa', '--json'])
      await check(['audit', '--source', 'all'])
    })

    it('no process has a token in its argv while `run` executes; the child has it in its environment', async function () {
      if (!existsSync('/proc/self/cmdline')) this.skip()
      const script = join(t.home, 'wait-for-stdin.cjs')
      await writeFile(
        script,
        "process.stdout.write('ready\\n'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0))\n",
      )
      const child = startCli(['run', '--env', 'T=agentauth://access-token', '--', process.execPath, script], {
        env: t.env,
        openStdin: true,
      })
      live.push(child)
      const done = collect(child)
      await waitForOutput(child, 'ready')
      let environ = ''
      for (const pid of (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry))) {
        let argv: Buffer
        try {
          argv = await readFile(`/proc/${pid}/cmdline`)
        } catch {
          continue
        }

        assertClean(argv, `argv of pid ${pid}`)
        if (argv.includes(script) && !argv.includes('bin/run.js'))
          environ = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '')
      }

      const token = /(?:^|\0)T=([^\0]+)/.exec(environ)?.[1]
      assert.ok(token && server.state.issuedTokens.includes(token), 'the command received a current token')
      child.stdin?.end()
      const result = await done
      assert.equal(result.code, 0, result.stderr)
      assertClean(result.stderr, 'stderr of run')
    })

    it('a refresh refused for an inactive agent, and logout', async () => {
      server.setAgentStatus(admin.agentId, generation === 'v1' ? 'suspended' : 'revoked')
      clock.advance(2 * 3_600_000)
      // The stored token still looks fresh locally: the server's 401 leads to the refresh it refuses.
      // Both generations: the session has ended (exit 4), whatever status the server answers with.
      await check(['agents', 'list'], {code: 4})
      server.setAgentStatus(admin.agentId, 'active')
      await check(['logout', 'agentauth', '--profile', 'aa'])
      await check(['logout', 'agentauth', '--profile', 'env-login'])
    })

    it('no file in the home holds a key, token or secret (config.json, audit.log, credentials.enc …)', async () => {
      const files = await filesUnder(home)
      const names = new Set(files.map((file) => file.slice(home.length + 1)))
      for (const expected of ['config.json', 'audit.log'])
        assert.ok(names.has(expected), `${expected} exists`)
      for (const file of files) assertClean(await readFile(file), file)
      assert.ok(canaries().length > 10, 'the scan had canaries to look for')
      assert.ok(debugLines > 15, 'agentauth debug output was scanned')
    })
  })
}
