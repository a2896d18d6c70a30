/**
 * The openbao backend through the built binary, against the protocol-faithful test server
 * (test/servers/openbao) running in this process over HTTP and HTTPS on loopback. Every command's
 * output, the audit log, config.json, every file of the home and DEBUG=* output are swept for the
 * canaries (secret values, tokens, password, secret ID) at the end.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {createServer, type IncomingHttpHeaders, type Server} from 'node:http'
import {join} from 'node:path'

import {type CliOptions, type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {type ExpectedFailure, expectFailure, filesUnder, parseJson} from '../helpers/e2e.js'
import {
  BULK_FIELDS,
  BULK_PATHS,
  bulkPath,
  bulkValue,
  caFiles,
  CANARY,
  PASSWORD,
  ROLE_ID,
  SECRET_ID,
  type SeededTokens,
  seedStandard,
  startNode,
  startSeededServer,
  USERNAME,
} from '../servers/openbao/harness.js'
import {type OpenBaoTestServer, ServerState} from '../servers/openbao/server.js'

const MASK = '<concealed by agentvault>'

interface StatusJson {
  profiles: Array<{
    details?: Record<string, unknown>
    identity?: string
    message?: string
    name: string
    problem: null | string
    signedIn: boolean
    tokenExpiry?: string
  }>
}

interface Target {
  close(): Promise<void>
  received: IncomingHttpHeaders[]
  url: string
}

/** A plain HTTP server that records request headers (the target of `call`). */
async function startTarget(): Promise<Target> {
  const received: IncomingHttpHeaders[] = []
  const server: Server = createServer((request, response) => {
    received.push(request.headers)
    response.writeHead(200, {'content-type': 'application/json'})
    response.end('{"ok":true}')
  })
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
    received,
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
  }
}

describe('e2e: openbao', function () {
  this.timeout(180_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: OpenBaoTestServer
  let tokens: SeededTokens
  const nodes: OpenBaoTestServer[] = []
  /** Every command's result, for the canary sweep; `revealed` ones may print a value on stdout. */
  const results: Array<{args: string[]; result: CliResult; revealed: boolean}> = []

  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({...t.env, HOME: t.home, ...extra})
  const cli = async (args: string[], options: CliOptions & {revealed?: boolean} = {}): Promise<CliResult> => {
    const result = await runCli(args, {...options, env: env(options.env)})
    results.push({args, result, revealed: options.revealed ?? false})
    return result
  }

  const ok = async (args: string[], options: CliOptions & {revealed?: boolean} = {}): Promise<CliResult> => {
    const result = await cli(args, options)
    assert.equal(result.code, 0, `${args.join(' ')}\nstderr: ${result.stderr}\nstdout: ${result.stdout}`)
    return result
  }

  const failure = async (args: string[], expected: ExpectedFailure, options: CliOptions = {}) => {
    const outcome = await expectFailure(args, {...options, env: env(options.env)}, expected)
    results.push(
      {args, result: outcome.plain, revealed: false},
      {args, result: outcome.json, revealed: false},
    )
    return outcome
  }

  const node = async (
    state: ServerState,
    name: string,
    mode: Parameters<typeof startNode>[2],
    tls = false,
  ) => {
    const started = await startNode(state, name, mode, tls)
    nodes.push(started)
    return started
  }

  /** Every secret this suite must never leak: values, tokens (seeded and issued), password, secret ID. */
  const canaries = (): string[] => [
    CANARY,
    PASSWORD,
    SECRET_ID,
    ...[server, ...nodes].flatMap((s) => [...s.state.tokens.keys()]),
  ]

  before(async () => {
    t = await tempHome()
    ;({server, tokens} = await startSeededServer({name: 'active'}))
  })

  after(async () => {
    await Promise.all([server, ...nodes].map((s) => s.close()))
    await t.dispose()
  })

  beforeEach(() => {
    server.faults = {}
    server.resetLog()
  })

  describe('login and status', () => {
    it('token from stdin: stored in the credential store, never in config.json; status shows TTL and policies', async () => {
      const login = await ok(
        ['login', 'openbao', '--profile', 'tok', '--address', server.url, '--token-stdin'],
        {
          input: `${tokens.writer}\n`,
        },
      )
      assert.match(login.stderr, /Signed in to OpenBao .* as token-writer/)
      const config = JSON.parse(await readFile(join(t.env.AGENTVAULT_HOME as string, 'config.json'), 'utf8'))
      assert.deepEqual(config.profiles.tok, {address: server.url, kind: 'openbao'})
      assert.equal(config.defaults.openbao, 'tok')
      const status = parseJson<StatusJson>(await ok(['status', '--json'])).profiles.find(
        (p) => p.name === 'tok',
      )
      assert.equal(status?.signedIn, true)
      assert.equal(status?.identity, 'token-writer')
      assert.ok(typeof status?.details?.ttl === 'number' && status.details.ttl > 3500)
      assert.deepEqual(status?.details?.policies, ['default', 'writer'])
      assert.match(
        (await ok(['status'])).stdout,
        /tok\s+openbao\s+yes\s+token-writer\s+\S+\s+.*ttl 3\d{3}s; policies default,writer; renewable/,
      )
    })

    it('userpass (password from stdin) and approle (secret ID from env, then from stdin) work non-interactively', async () => {
      const user = await ok(
        [
          'login',
          'openbao',
          '--profile',
          'up',
          '--address',
          server.url,
          '--method',
          'userpass',
          '--username',
          USERNAME,
          '--password-stdin',
        ],
        {input: PASSWORD},
      )
      assert.match(user.stderr, /as userpass-alice \(userpass; policies default, writer/)
      const role = await ok(
        [
          'login',
          'openbao',
          '--profile',
          'ar',
          '--address',
          server.url,
          '--method',
          'approle',
          '--role-id',
          ROLE_ID,
        ],
        {
          env: {AGENTVAULT_SECRET_ID: SECRET_ID},
        },
      )
      assert.match(role.stderr, /as approle-ci/)
      await ok(
        [
          'login',
          'openbao',
          '--profile',
          'ar2',
          '--address',
          server.url,
          '--method',
          'approle',
          '--secret-id-stdin',
        ],
        {
          env: {AGENTVAULT_ROLE_ID: ROLE_ID},
          input: SECRET_ID,
        },
      )
      for (const profile of ['up', 'ar', 'ar2'])
        assert.equal(
          (await ok(['secrets', 'get', 'openbao://secret/myapp/api#user', '--reveal', '--profile', profile]))
            .stdout,
          'svc',
        )
      await failure(
        [
          'login',
          'openbao',
          '--profile',
          'bad',
          '--address',
          server.url,
          '--method',
          'userpass',
          '--username',
          USERNAME,
          '--password-stdin',
        ],
        {code: 4, errorCode: 'AUTH_FAILED'},
        {input: 'wrong'},
      )
      await failure(['login', 'openbao', '--profile', 'none', '--address', server.url], {
        code: 2,
        errorCode: 'VALUE_REQUIRED',
      })
    })
  })

  describe('secrets', () => {
    it('version pinning; a deleted current version is exit 6 without fallback; destroy; FIELD_NOT_FOUND', async () => {
      const ref = 'openbao://secret/e2e/pin'
      for (const n of [1, 2, 3]) {
        const set = await ok(['secrets', 'set', ref, '--json-stdin', '--json'], {
          input: JSON.stringify({token: `${CANARY}-v${n}`}),
        })
        assert.equal(JSON.parse(set.stdout).version, n)
      }

      assert.equal(
        (await ok(['secrets', 'get', `${ref}?version=2#token`, '--reveal'], {revealed: true})).stdout,
        `${CANARY}-v2`,
      )
      const whole = await ok(['secrets', 'get', ref, '--reveal'], {revealed: true})
      assert.deepEqual(JSON.parse(whole.stdout), {token: `${CANARY}-v3`})
      const soft = await ok(['secrets', 'delete', ref], {})
      assert.match(soft.stderr, /Soft-deleted the current version/)
      server.resetLog()
      const deleted = await failure(['secrets', 'get', `${ref}#token`, '--reveal'], {
        code: 6,
        errorCode: 'SECRET_VERSION_DELETED',
      })
      assert.equal(deleted.error.details?.version, 3)
      assert.equal(
        server.log.filter((e) => e.path === 'secret/data/e2e/pin').length,
        2,
        'one read per run (plain, --json), no fallback',
      )
      assert.ok(server.log.every((e) => e.query === ''))
      await failure(['secrets', 'delete', ref, '--destroy', '--versions', '2'], {
        code: 2,
        errorCode: 'CONFIRMATION_REQUIRED',
      })
      await ok(['secrets', 'delete', ref, '--destroy', '--versions', '2', '--yes'])
      await failure(['secrets', 'get', `${ref}?version=2#token`, '--reveal'], {
        code: 6,
        errorCode: 'SECRET_VERSION_DESTROYED',
      })
      await failure(['secrets', 'get', `${ref}?version=1#nope`, '--reveal'], {
        code: 6,
        errorCode: 'FIELD_NOT_FOUND',
      })
      const versions = parseJson<{versions: Array<{state: string; version: number}>}>(
        await ok(['secrets', 'versions', ref, '--json']),
      )
      assert.deepEqual(
        versions.versions.map((v) => `${v.version}:${v.state}`),
        ['1:active', '2:destroyed', '3:deleted'],
      )
      assert.match((await ok(['secrets', 'versions', ref])).stdout, /3 \(current\)\s+deleted/)
      // A deleted current version stops a field update; a stale --cas is CAS_MISMATCH.
      await failure(
        ['secrets', 'set', `${ref}#token`],
        {code: 6, errorCode: 'SECRET_VERSION_DELETED'},
        {input: 'x'},
      )
      await failure(
        ['secrets', 'set', 'openbao://secret/myapp/db#password', '--cas', '7'],
        {code: 2, errorCode: 'CAS_MISMATCH'},
        {
          input: 'x',
        },
      )
    })

    it('the value size cap holds for openbao too (--json-stdin and #field): exit 2, nothing written', async () => {
      const ref = 'openbao://secret/e2e/capped'
      await failure(
        ['secrets', 'set', ref, '--json-stdin', '--max-value-bytes', '16'],
        {code: 2, errorCode: 'VALUE_TOO_LARGE', message: /16 bytes/},
        {input: JSON.stringify({token: 'x'.repeat(32)})},
      )
      await failure(
        ['secrets', 'set', `${ref}#token`],
        {code: 2, errorCode: 'VALUE_TOO_LARGE'},
        {env: {AGENTVAULT_MAX_VALUE_BYTES: '16'}, input: 'y'.repeat(64)},
      )
      await failure(['secrets', 'get', `${ref}#token`, '--reveal'], {code: 6})
    })

    it('lists folders (recursively on request) and never values', async () => {
      const list = parseJson<{secrets: Array<{name: string}>}>(
        await ok(['secrets', 'list', 'openbao://secret/myapp', '--json']),
      )
      assert.deepEqual(
        list.secrets.map((s) => s.name),
        ['api', 'db'],
      )
      const all = parseJson<{secrets: Array<{name: string}>}>(
        await ok(['secrets', 'list', 'openbao://secret', '-r', '--json']),
      )
      assert.ok(all.secrets.some((s) => s.name === 'bulk/key-09'))
      assert.match((await ok(['secrets', 'list', '--profile', 'tok', 'secret'])).stdout, /bulk\/\s+folder/)
    })

    it('a read-only token gets exit 7 on secrets set; an expired token exit 4 with the login hint', async () => {
      await ok(['login', 'openbao', '--profile', 'ro', '--address', server.url, '--token-stdin'], {
        input: tokens.reader,
      })
      await failure(
        ['secrets', 'set', 'openbao://secret/myapp/api#token', '--profile', 'ro'],
        {code: 7, errorCode: 'PERMISSION_DENIED'},
        {
          input: 'new-value',
        },
      )
      const short = server.state.createToken({displayName: 'short', policies: ['reader'], ttl: 60})
      await ok(['login', 'openbao', '--profile', 'short', '--address', server.url, '--token-stdin'], {
        input: short.id,
      })
      server.state.clock.advance(61)
      const expired = await failure(
        ['secrets', 'get', 'openbao://secret/myapp/api#user', '--reveal', '--profile', 'short'],
        {
          code: 4,
          errorCode: 'AUTH_REQUIRED',
        },
      )
      assert.match(expired.plain.stderr, /Try this: Run `agentvault login openbao --profile short`/)
      // An unusable profile makes status exit 4 (not signed in), with every row still printed.
      const statusRun = await cli(['status', '--json'])
      assert.equal(statusRun.code, 4, statusRun.stderr)
      const status = (JSON.parse(statusRun.stdout) as StatusJson).profiles.find((p) => p.name === 'short')
      assert.equal(status?.problem, 'auth')
      assert.equal(status?.signedIn, false)
      assert.match(status?.message ?? '', /invalid or expired/)
    })

    it('the mount guard refuses other mounts (exit 7); auditPaths "ref" records resource_refs only', async () => {
      await ok([
        'profiles',
        'add',
        'guarded',
        '--kind',
        'openbao',
        '--set',
        `address=${server.url}`,
        '--set',
        'allowedMounts=["kv"]',
        '--set',
        'auditPaths=ref',
      ])
      await ok(['login', 'openbao', '--profile', 'guarded', '--token-stdin'], {input: tokens.reader})
      await failure(['secrets', 'get', 'openbao://secret/myapp/api#user?profile=guarded', '--reveal'], {
        code: 7,
        errorCode: 'MOUNT_NOT_ALLOWED',
      })
      const audit =
        (await readFile(join(t.env.AGENTVAULT_HOME as string, 'audit.log'), 'utf8'))
          .trim()
          .split('\n')
          .at(-1) ?? ''
      const record = JSON.parse(audit) as {references?: string[]; resource_refs?: string[]}
      assert.equal(record.references, undefined)
      assert.match(record.resource_refs?.[0] ?? '', /^[\da-f]{16}$/)
    })
  })

  describe('run, use and call', () => {
    it('run: 50 references over 10 paths with 20 ms latency → 10 concurrent reads; values masked, never in argv', async () => {
      const args: string[] = []
      for (let i = 0; i < BULK_PATHS; i++)
        for (let f = 0; f < BULK_FIELDS; f++)
          args.push('--env', `K${i}_${f}=openbao://secret/${bulkPath(i)}#f${f}`)
      const script = `const v=[];for(let i=0;i<${BULK_PATHS};i++)for(let f=0;f<${BULK_FIELDS};f++)v.push(process.env['K'+i+'_'+f]);console.log(require('node:crypto').createHash('sha256').update(v.join('|')).digest('hex'));console.log(v[0]);console.log(JSON.stringify(process.argv))`
      const expected: string[] = []
      for (let i = 0; i < BULK_PATHS; i++)
        for (let f = 0; f < BULK_FIELDS; f++) expected.push(bulkValue(i, f))
      // The gate answers no read before all ten wait at once: they must be concurrent.
      server.faults = {delay: {ms: 20, route: /\/data\//}, gate: {count: 10, route: /\/data\//}}
      const result = await ok(['run', ...args, '--', process.execPath, '-e', script])
      const lines = result.stdout.trim().split('\n')
      assert.equal(lines[0], createHash('sha256').update(expected.join('|')).digest('hex'))
      assert.equal(lines[1], MASK)
      assert.ok(!(lines[2] ?? '').includes(CANARY), 'no value in the child’s argv')
      const reads = server.log.filter((e) => e.path.includes('/data/'))
      assert.equal(reads.length, 10, 'one read per path')
      assert.equal(server.maxInFlight, 10, 'all ten reads overlapped on the server')
    })

    it('run --mask never shows values to the child only through its environment', async () => {
      const result = await ok(
        [
          'run',
          '--mask',
          'never',
          '--env',
          'K=openbao://secret/myapp/api#token',
          '--',
          process.execPath,
          '-e',
          'console.log(process.env.K, JSON.stringify(process.argv))',
        ],
        {revealed: true},
      )
      const [value, argv] = result.stdout.trim().split(' ')
      assert.equal(value, CANARY)
      assert.ok(!(argv ?? '').includes(CANARY))
      const whole = await cli(['run', '--env', 'K=openbao://secret/myapp/api', '--', 'true'])
      assert.equal(whole.code, 2)
      assert.match(whole.stderr, /^Error: .*names a whole secret; name one of its fields\nTry this: /m)
    })

    it('call --bearer with an openbao reference: the value reaches the target, not the caller', async () => {
      const target = await startTarget()
      try {
        await ok([
          'profiles',
          'add',
          'calls',
          '--kind',
          'openbao',
          '--set',
          `address=${server.url}`,
          '--set',
          'allowPrivateNetworks=true',
        ])
        await ok(['login', 'openbao', '--profile', 'calls', '--token-stdin'], {input: tokens.reader})
        const result = await cli([
          'call',
          `${target.url}/v1/models`,
          '--bearer',
          'openbao://secret/myapp/api#token?profile=calls',
          '--allow-host',
          '127.0.0.1',
        ])
        assert.equal(result.code, 0, result.stderr)
        assert.equal(target.received.at(-1)?.authorization, `Bearer ${CANARY}`)
        assert.ok(!result.stdout.includes(CANARY))
      } finally {
        await target.close()
      }
    })
  })

  describe('HA, namespaces, wrapping and TLS', () => {
    it('[sealed, standby, active]: reads succeed; the token never reaches a host outside the list', async () => {
      const outsider = await node(new ServerState(), 'outsider', {kind: 'active'})
      const sealed = await node(server.state, 'sealed', {kind: 'sealed'})
      const standby = await node(server.state, 'standby', {active: server.url, kind: 'standby'})
      const hostile = await node(server.state, 'hostile', {kind: 'redirect', location: outsider.url})
      await ok(
        [
          'login',
          'openbao',
          '--profile',
          'ha',
          '--address',
          sealed.url,
          '--address',
          standby.url,
          '--address',
          server.url,
          '--token-stdin',
        ],
        {
          input: tokens.reader,
        },
      )
      assert.equal(
        (await ok(['secrets', 'get', 'openbao://secret/myapp/api#user?profile=ha', '--reveal'])).stdout,
        'svc',
      )
      assert.ok(standby.log.some((e) => e.status === 307))
      await ok(
        [
          'login',
          'openbao',
          '--profile',
          'ha2',
          '--address',
          sealed.url,
          '--address',
          hostile.url,
          '--address',
          server.url,
          '--token-stdin',
        ],
        {
          input: tokens.reader,
        },
      )
      assert.equal(
        (await ok(['secrets', 'get', 'openbao://secret/myapp/api#user?profile=ha2', '--reveal'])).stdout,
        'svc',
      )
      assert.ok(hostile.log.some((e) => e.status === 307))
      assert.equal(outsider.log.length, 0, 'the outsider never saw a request')
      for (const listed of [sealed, standby, hostile])
        assert.deepEqual(listed.tokensSeen(), [tokens.reader], listed.url)
    })

    it('the profile’s namespace arrives as X-Vault-Namespace on every request', async () => {
      server.state.addNamespace('team-a')
      server.state.putSecret('secret', 'app', {k: CANARY}, 'team-a')
      server.state.setPolicy('reader', [{path: 'secret/*', capabilities: ['read', 'list']}], 'team-a')
      server.state.addAppRole(
        {name: 'ns-ci', policies: ['reader'], roleId: ROLE_ID, secretIds: [SECRET_ID]},
        {namespace: 'team-a'},
      )
      await ok(
        [
          'login',
          'openbao',
          '--profile',
          'ns',
          '--address',
          server.url,
          '--namespace',
          'team-a',
          '--method',
          'approle',
          '--role-id',
          ROLE_ID,
        ],
        {
          env: {AGENTVAULT_SECRET_ID: SECRET_ID},
        },
      )
      await ok(['secrets', 'get', 'openbao://secret/app#k?profile=ns', '--reveal'], {revealed: true})
      await ok(['secrets', 'list', 'openbao://secret?profile=ns'])
      await ok(['secrets', 'versions', 'openbao://secret/app?profile=ns'])
      await ok(['run', '--env', 'K=openbao://secret/app#k?profile=ns', '--', 'true'])
      assert.ok(server.log.length >= 6)
      for (const entry of server.log) {
        assert.equal(entry.headers['x-vault-namespace'], 'team-a', `${entry.method} ${entry.path}`)
        assert.equal(entry.headers['x-vault-request'], 'true')
      }
    })

    it('--wrap-ttl 60s prints a token; secrets unwrap returns the value once; a second unwrap fails cleanly', async () => {
      const wrapped = await ok(['secrets', 'get', 'openbao://secret/myapp/api', '--wrap-ttl', '60s'], {
        revealed: true,
      })
      const token = wrapped.stdout.trim()
      assert.match(token, /^s\.\S+$/)
      await failure(
        ['secrets', 'unwrap', '--reveal', '--expect', 'openbao://secret/myapp/db'],
        {code: 7, errorCode: 'WRAP_PATH_MISMATCH'},
        {input: token},
      )
      const unwrapped = await ok(
        ['secrets', 'unwrap', '--reveal', '--field', 'token', '--expect', 'openbao://secret/myapp/api'],
        {
          input: `${token}\n`,
          revealed: true,
        },
      )
      assert.equal(unwrapped.stdout, CANARY)
      await failure(
        ['secrets', 'unwrap', '--reveal'],
        {code: 4, errorCode: 'WRAP_TOKEN_INVALID'},
        {input: token},
      )
      const json = parseJson<{token: string; ttl: number}>(
        await ok(['secrets', 'get', 'openbao://secret/myapp/api', '--wrap-ttl', '5m', '--json'], {
          revealed: true,
        }),
      )
      assert.equal(json.ttl, 300)
      await failure(['secrets', 'get', 'openbao://secret/myapp/api#token', '--wrap-ttl', '60s'], {
        code: 2,
        errorCode: 'WRAP_FIELD',
      })
      await failure(['secrets', 'unwrap'], {code: 2, errorCode: 'REVEAL_REQUIRED'}, {input: json.token})
    })

    it('HTTPS: --ca-cert verifies; VAULT_SKIP_VERIFY=false keeps verification on against the self-signed server', async () => {
      const state = new ServerState()
      const tlsTokens = seedStandard(state)
      const secure = await node(state, 'tls', {kind: 'active'}, true)
      const isolated = await tempHome()
      try {
        const isolatedEnv = (extra: NodeJS.ProcessEnv) => ({
          ...isolated.env,
          HOME: isolated.home,
          BAO_ADDR: secure.url,
          BAO_TOKEN: tlsTokens.reader,
          ...extra,
        })
        const get = ['secrets', 'get', 'openbao://secret/myapp/api#user', '--reveal']
        for (const extra of [
          {},
          {VAULT_SKIP_VERIFY: 'false'},
          {BAO_SKIP_VERIFY: '0'},
          {VAULT_SKIP_VERIFY: 'yes'},
        ]) {
          const outcome = await expectFailure(
            get,
            {env: isolatedEnv(extra)},
            {code: 3, errorCode: 'TLS_VERIFY_FAILED'},
          )
          results.push({args: get, result: outcome.plain, revealed: false})
        }

        assert.equal(secure.log.length, 0, 'no request reached the server unverified')
        const withCa = await runCli(get, {env: isolatedEnv({BAO_CACERT: caFiles().ca})})
        assert.equal(withCa.code, 0, withCa.stderr)
        assert.equal(withCa.stdout, 'svc')
        const skipped = await runCli(get, {env: isolatedEnv({VAULT_SKIP_VERIFY: 'true'})})
        assert.equal(skipped.code, 0, skipped.stderr)
        assert.match(skipped.stderr, /TLS certificate verification is OFF/)
        results.push({args: get, result: skipped, revealed: true})
        await ok(
          [
            'login',
            'openbao',
            '--profile',
            'tls',
            '--address',
            secure.url,
            '--ca-cert',
            caFiles().ca,
            '--token-stdin',
          ],
          {input: tlsTokens.reader},
        )
        assert.equal(
          (await ok(['secrets', 'get', 'openbao://secret/myapp/api#user?profile=tls', '--reveal'])).stdout,
          'svc',
        )
      } finally {
        await isolated.dispose()
      }
    })
  })

  describe('canaries', () => {
    it('DEBUG=* output of every openbao path carries no token and no value', async () => {
      const debug = {DEBUG: '*'}
      const runs = [
        await cli(['secrets', 'get', 'openbao://secret/myapp/api#token?profile=ha', '--reveal'], {
          env: debug,
          revealed: true,
        }),
        await cli(['run', '--env', 'K=openbao://secret/myapp/api#token', '--', 'true'], {env: debug}),
        await cli(['secrets', 'set', 'openbao://secret/dbg#k'], {env: debug, input: `${CANARY}-dbg`}),
        await cli(['login', 'openbao', '--profile', 'dbg', '--address', server.url, '--token-stdin'], {
          env: debug,
          input: tokens.root,
        }),
      ]
      for (const result of runs) assert.equal(result.code, 0, result.stderr)
      // status exits 4 here: an earlier test left the profile `short` with an expired token.
      const status = await cli(['status'], {env: debug})
      assert.equal(status.code, 4, status.stderr)
      runs.push(status)
      assert.ok(
        runs.some((r) => r.stderr.includes('agentvault:openbao')),
        'debug output was on',
      )
    })

    it('no token, password, secret ID or value in stderr, unrevealed stdout, audit.log, config.json or any file', async () => {
      const secrets = canaries()
      assert.ok(results.length > 40)
      for (const {args, result, revealed} of results) {
        for (const secret of secrets) {
          assert.ok(
            !result.stderr.includes(secret),
            `stderr of ${args.join(' ')} leaks ${secret.slice(0, 12)}…`,
          )
          if (!revealed)
            assert.ok(
              !result.stdout.includes(secret),
              `stdout of ${args.join(' ')} leaks ${secret.slice(0, 12)}…`,
            )
        }
      }

      const files = await filesUnder(t.home)
      assert.ok(files.some((f) => f.endsWith('audit.log')) && files.some((f) => f.endsWith('config.json')))
      for (const file of files) {
        const text = await readFile(file, 'latin1')
        for (const secret of secrets)
          assert.ok(!text.includes(secret), `${file} holds ${secret.slice(0, 12)}…`)
      }
    })
  })
})
