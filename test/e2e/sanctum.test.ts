/**
 * The sanctum backend through the built binary, against the protocol-faithful test daemon
 * (test/servers/sanctum) running in this process on a Unix socket and TCP. Every command's
 * output, the audit log, config.json and DEBUG=* output are checked for the canary at the end.
 */
import assert from 'node:assert/strict'
import {createHash, pbkdf2Sync, randomBytes} from 'node:crypto'
import {mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import {join} from 'node:path'

import {
  type CliOptions,
  type CliResult,
  collect,
  ROOT,
  runCli,
  startCli,
  tempHome,
  waitForOutput,
} from '../helpers/cli.js'
import {type ExpectedFailure, expectFailure, filesUnder, parseJson} from '../helpers/e2e.js'
import {OTHER_SEED_HEX, VECTOR} from '../servers/sanctum/fixtures.js'
import {
  AGENT,
  BULK_COUNT,
  bulkPath,
  bulkValue,
  CANARY,
  type HttpTarget,
  startHttpTarget,
  startStandardServer,
  writeSeedFile,
} from '../servers/sanctum/harness.js'
import {type SanctumTestServer, type ServerDialect} from '../servers/sanctum/server.js'

const MASK = '<concealed by agentvault>'
const PASSPHRASE_CANARY = 'canary-passphrase-4f2d8b1e6a'

/** A `.key.enc` (protocols/sanctum.md §9): salt ‖ nonce ‖ secretbox(seed) under PBKDF2-HMAC-SHA256(passphrase). */
function encryptSeedFile(seedHex: string, passphrase: string): string {
  const nacl = createRequire(import.meta.url)('tweetnacl') as typeof import('tweetnacl')
  const salt = randomBytes(16)
  const nonce = randomBytes(24)
  const key = pbkdf2Sync(passphrase, salt, 100_000, 32, 'sha256')
  const box = nacl.secretbox(Buffer.from(seedHex, 'hex'), nonce, key)
  return Buffer.concat([salt, nonce, Buffer.from(box)]).toString('hex')
}

interface LoginJson {
  details: Record<string, unknown>
  identity: string
  kind: string
  message: string
  profile: string
}

interface ListJson {
  backend: string
  profile: string
  secrets: Array<{description?: string; name: string; tags?: string[]; type?: string}>
}

interface StatusJson {
  profiles: Array<{
    details?: Record<string, unknown>
    identity?: string
    kind: string
    name: string
    reachable: boolean
    signedIn: boolean
  }>
}

/** `run` a child that proves it got the 20 values (a hash) and prints them too (to be masked). */
function bulkRunArgs(prefix = 'sanctum://'): string[] {
  const args: string[] = []
  for (let i = 0; i < BULK_COUNT; i++) args.push('--env', `K${i}=${prefix}${bulkPath(i)}`)
  const script = `const v = Array.from({length: ${BULK_COUNT}}, (_, i) => process.env['K' + i]); console.log(require('node:crypto').createHash('sha256').update(v.join('|')).digest('hex')); console.log(v.join(' '))`
  return ['run', ...args, '--', process.execPath, '-e', script]
}

/** The canary in any form it travels in: text, hex (dialect A) or base64. */
const CANARY_FORMS = [
  CANARY,
  Buffer.from(CANARY).toString('hex'),
  Buffer.from(CANARY).toString('base64').slice(0, 24),
]
const leaks = (text: string): boolean => CANARY_FORMS.some((form) => text.includes(form))

const BULK_DIGEST = createHash('sha256')
  .update(Array.from({length: BULK_COUNT}, (_, i) => bulkValue(i)).join('|'))
  .digest('hex')

describe('e2e: sanctum', function () {
  this.timeout(120_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: SanctumTestServer
  let target: HttpTarget
  let keyPath: string
  /** Every command's result, for the canary sweep; `revealed` ones may print the value on stdout. */
  const results: Array<{result: CliResult; revealed: boolean}> = []

  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({...t.env, HOME: t.home, ...extra})
  const cli = async (args: string[], options: CliOptions & {revealed?: boolean} = {}): Promise<CliResult> => {
    const result = await runCli(args, {...options, env: env(options.env)})
    results.push({result, revealed: options.revealed ?? false})
    return result
  }

  const failure = async (args: string[], expected: ExpectedFailure, options: CliOptions = {}) => {
    const outcome = await expectFailure(args, {...options, env: env(options.env)}, expected)
    results.push({result: outcome.plain, revealed: false}, {result: outcome.json, revealed: false})
    return outcome
  }

  before(async () => {
    t = await tempHome()
    target = await startHttpTarget()
    server = await startStandardServer({ssrfAllowlist: [new URL(target.url).host]})
    keyPath = await writeSeedFile(join(t.home, '.sanctum', 'keys'), `${AGENT}.key`)
  })

  after(async () => {
    await server.close()
    await target.close()
    await t.dispose()
  })

  beforeEach(() => {
    server.reset()
    Object.assign(server.config, {
      dialect: 'both',
      locked: false,
      rateLimit: undefined,
      write: {kind: 'whole'},
    })
  })

  describe('login sanctum', () => {
    it('tries the handshake before saving: an unknown agent saves nothing (4)', async () => {
      await failure(
        ['login', 'sanctum', '--agent', 'stranger', '--socket', server.socketPath, '--key-path', keyPath],
        {
          code: 4,
          errorCode: 'AUTH_FAILED',
          message: /unknown agent/,
        },
      )
      await assert.rejects(stat(join(t.env.AGENTVAULT_HOME as string, 'config.json')))
    })

    it('a key file others can read: refused before any connection (4)', async () => {
      const open = await writeSeedFile(join(t.home, 'open'), 'open.key', VECTOR.seedHex, 0o644)
      await failure(
        ['login', 'sanctum', '--agent', AGENT, '--socket', server.socketPath, '--key-path', open],
        {
          code: 4,
          errorCode: 'SANCTUM_KEY_TOO_OPEN',
          message: /accessible by other users \(mode 0644\); run: chmod 600/,
        },
      )
      assert.equal(server.stats.connections, 0)
    })

    it('signs in and saves agent, socket and key path in the profile', async () => {
      const login = parseJson<LoginJson>(
        await cli([
          'login',
          'sanctum',
          '--agent',
          AGENT,
          '--socket',
          server.socketPath,
          '--key-path',
          keyPath,
          '--json',
        ]),
      )
      assert.equal(login.kind, 'sanctum')
      assert.equal(login.identity, AGENT)
      assert.deepEqual(login.details, {
        agent: AGENT,
        dialect: 'a',
        endpoint: `unix:${server.socketPath}`,
        profile: 'sanctum',
        saved: true,
      })
      assert.equal(server.stats.handshakes, 1)
      assert.equal(server.outstandingLeases().length, 0)
      const config = JSON.parse(await readFile(join(t.env.AGENTVAULT_HOME as string, 'config.json'), 'utf8'))
      assert.deepEqual(config.profiles.sanctum, {kind: 'sanctum', agent: AGENT, socket: server.socketPath})
      assert.equal(config.defaults.sanctum, 'sanctum')
      // keyPath is the default location (~/.sanctum/keys/<agent>.key), so it is not stored.
      assert.equal(keyPath, join(t.home, '.sanctum', 'keys', `${AGENT}.key`))
    })

    it('--generate-key writes a 0600 seed, prints the public key and the register hint; saved once registered', async () => {
      const other = await tempHome()
      try {
        const options = {env: {...other.env, HOME: other.home}}
        const first = await runCli(
          ['login', 'sanctum', '--agent', 'new-bot', '--socket', server.socketPath, '--generate-key'],
          options,
        )
        results.push({result: first, revealed: false})
        assert.equal(first.code, 0, first.stderr)
        const path = join(other.home, '.sanctum', 'keys', 'new-bot.key')
        assert.equal((await stat(path)).mode & 0o777, 0o600)
        const hex = /Public key \(hex\): +([0-9a-f]{64})/.exec(first.stderr)?.[1]
        const base64 = /Public key \(base64\): +(\S+)/.exec(first.stderr)?.[1]
        assert.ok(hex && base64, first.stderr)
        assert.equal(Buffer.from(base64, 'base64').toString('hex'), hex)
        assert.match(first.stderr, /sanctum agent register new-bot/)
        assert.match(first.stderr, /profile was not saved/)
        assert.ok(
          !(await readFile(path, 'utf8')).includes(hex),
          'the file holds the seed, not the public key',
        )
        await assert.rejects(stat(join(other.env.AGENTVAULT_HOME as string, 'config.json')))

        server.registerAgent('new-bot', hex)
        server.config.policies.push({agent: 'new-bot', paths: ['openai/*']})
        const again = parseJson<LoginJson>(
          await runCli(
            ['login', 'sanctum', '--agent', 'new-bot', '--socket', server.socketPath, '--json'],
            options,
          ),
        )
        assert.equal(again.details.saved, true)
        const reveal = await runCli(['secrets', 'get', 'sanctum://openai/api_key', '--reveal'], options)
        assert.equal(reveal.stdout, VECTOR.valueText)
        const refuse = await runCli(
          ['login', 'sanctum', '--agent', 'new-bot', '--socket', server.socketPath, '--generate-key'],
          options,
        )
        assert.equal(refuse.code, 2)
        assert.match(refuse.stderr, /already exists; refusing to overwrite/)
      } finally {
        await other.dispose()
      }
    })

    it('login --key-passphrase-stdin with a .key.enc keeps the decrypted key: later get/run/status need no passphrase; logout removes it; the passphrase leaks nowhere', async () => {
      const other = await tempHome()
      try {
        const keys = join(other.home, '.sanctum', 'keys')
        await mkdir(keys, {recursive: true, mode: 0o700})
        const encFile = join(keys, 'enc-agent.key.enc')
        await writeFile(encFile, `${encryptSeedFile(VECTOR.seedHex, PASSPHRASE_CANARY)}\n`, {mode: 0o600})
        server.registerAgent('enc-agent', VECTOR.publicKeyHex)
        server.config.policies.push({agent: 'enc-agent', paths: ['openai/*']})
        const runs: CliResult[] = []
        const av = async (args: string[], options: CliOptions = {}) => {
          const result = await runCli(args, {
            ...options,
            env: {...other.env, HOME: other.home, ...options.env},
          })
          runs.push(result)
          return result
        }

        const loginArgs = ['login', 'sanctum', '--agent', 'enc-agent', '--socket', server.socketPath]
        const wrong = await av([...loginArgs, '--key-passphrase-stdin'], {input: 'wrong horse\n'})
        assert.equal(wrong.code, 4)
        assert.match(wrong.stderr, /cannot decrypt .*enc-agent\.key\.enc: wrong passphrase or damaged file/)
        const login = parseJson<LoginJson>(
          await av([...loginArgs, '--key-passphrase-stdin', '--json'], {input: `${PASSPHRASE_CANARY}\n`}),
        )
        assert.equal(login.details.keptKey, true)
        assert.match(login.message, /Kept the decrypted agent key in the credential store/)

        // No SANCTUM_KEY_PASSPHRASE from here on (tempHome's env has none; baseEnv drops SANCTUM_*).
        const reveal = await av(['secrets', 'get', 'sanctum://openai/api_key', '--reveal'])
        assert.equal(reveal.code, 0, reveal.stderr)
        assert.equal(reveal.stdout, VECTOR.valueText)
        const run = await av([
          'run',
          '--env',
          'K=sanctum://openai/api_key',
          '--',
          process.execPath,
          '-e',
          'process.stdout.write(String(process.env.K.length))',
        ])
        assert.equal(run.code, 0, run.stderr)
        assert.equal(run.stdout, String(VECTOR.valueText.length))
        const traced = await av(['secrets', 'get', 'sanctum://openai/api_key', '--reveal'], {
          env: {DEBUG: '*'},
        })
        assert.equal(traced.code, 0, traced.stderr)
        const status = parseJson<StatusJson>(await av(['status', '--json']))
        assert.equal(status.profiles.find((p) => p.name === 'sanctum')?.signedIn, true)

        // A changed .key.enc (a new salt and nonce: the same seed, another file) does not use the kept key.
        const original = await readFile(encFile, 'utf8')
        await writeFile(encFile, `${encryptSeedFile(VECTOR.seedHex, PASSPHRASE_CANARY)}\n`, {mode: 0o600})
        const changed = await av(['secrets', 'get', 'sanctum://openai/api_key', '--reveal'])
        assert.equal(changed.code, 4)
        assert.match(changed.stderr, /needs a passphrase/)
        await writeFile(encFile, original, {mode: 0o600})
        assert.equal((await av(['secrets', 'get', 'sanctum://openai/api_key', '--reveal'])).code, 0)

        const logout = await av(['logout', 'sanctum', '--json'])
        assert.equal(logout.code, 0, logout.stderr)
        assert.equal((JSON.parse(logout.stdout) as {cleared: boolean}).cleared, true)
        const after = await av(['secrets', 'get', 'sanctum://openai/api_key', '--reveal'])
        assert.equal(after.code, 4)
        assert.match(after.stderr, /needs a passphrase/)
        assert.match(after.stderr, /login sanctum --key-passphrase-stdin/)
        // SANCTUM_KEY_PASSPHRASE still works on its own.
        const fromEnv = await av(['secrets', 'get', 'sanctum://openai/api_key', '--reveal'], {
          env: {SANCTUM_KEY_PASSPHRASE: PASSPHRASE_CANARY},
        })
        assert.equal(fromEnv.stdout, VECTOR.valueText)

        // The passphrase (and the seed) in clear: in no output and no file under either home.
        const secrets = [
          PASSPHRASE_CANARY,
          VECTOR.seedHex,
          Buffer.from(VECTOR.seedHex, 'hex').toString('base64'),
        ]
        for (const result of runs)
          for (const secret of secrets) {
            assert.ok(!result.stdout.includes(secret), `stdout of a command: ${result.stdout}`)
            assert.ok(!result.stderr.includes(secret), `stderr of a command: ${result.stderr.slice(0, 500)}`)
          }

        const seedBytes = Buffer.from(VECTOR.seedHex, 'hex')
        for (const file of await filesUnder(other.home)) {
          const bytes = await readFile(file)
          for (const secret of secrets)
            assert.ok(!bytes.includes(secret), `${secret.slice(0, 6)}… in ${file}`)
          assert.ok(!bytes.includes(seedBytes), `the raw seed in ${file}`)
        }
      } finally {
        await other.dispose()
      }
    })

    it('login sanctum --help says the decrypted key is kept in the credential store and logout removes it', async () => {
      const help = await cli(['login', 'sanctum', '--help'])
      assert.equal(help.code, 0, help.stderr)
      assert.match(help.stdout, /--key-passphrase-stdin/)
      assert.match(
        help.stdout.replaceAll(/\s+/g, ' '),
        /keeps the decrypted key \(never the passphrase\) in the credential store/,
      )
      assert.match(help.stdout.replaceAll(/\s+/g, ' '), /`agentvault logout` removes it/)
      assert.doesNotMatch(help.stdout, /--token-stdin|--base-url|--address|--transport|--key-source/)
    })

    it('profiles for the fault tests: another key, another agent, a short timeout, TCP, nowhere', async () => {
      const wrongKey = await writeSeedFile(join(t.home, 'other'), 'wrong.key', OTHER_SEED_HEX)
      const socket = `socket=${server.socketPath}`
      for (const [name, settings] of [
        ['wrongkey', [socket, `agent=${AGENT}`, `keyPath=${wrongKey}`]],
        ['stranger', [socket, 'agent=stranger', `keyPath=${keyPath}`]],
        ['impatient', [socket, `agent=${AGENT}`, 'timeoutMs=500']],
        ['overtcp', [`agent=${AGENT}`, 'host=127.0.0.1', `port=${server.tcpPort}`]],
        ['nowhere', [`socket=${join(t.home, 'no-daemon.sock')}`, `agent=${AGENT}`]],
      ] as const) {
        const added = await cli([
          'profiles',
          'add',
          name,
          '--kind',
          'sanctum',
          ...settings.flatMap((s) => ['--set', s]),
        ])
        assert.equal(added.code, 0, added.stderr)
      }
    })
  })

  for (const dialect of ['a', 'b'] as ServerDialect[]) {
    describe(`dialect ${dialect} (client on auto)`, () => {
      beforeEach(() => {
        server.config.dialect = dialect
      })

      it('status: reachable, signed in as the agent, dialect in use', async () => {
        // Other profiles of this suite may be unusable (status then exits non-zero); this one is fine.
        const status = JSON.parse((await cli(['status', '--json'])).stdout) as StatusJson
        const row = status.profiles.find((p) => p.name === 'sanctum')
        assert.equal(row?.reachable, true)
        assert.equal(row?.signedIn, true)
        assert.equal(row?.identity, AGENT)
        assert.equal((row as {problem?: null | string} | undefined)?.problem, null)
        assert.equal(row?.details?.dialect, dialect)
        const stranger = status.profiles.find((p) => p.name === 'stranger')
        assert.equal(stranger?.reachable, true)
        assert.equal(stranger?.signedIn, false)
      })

      it('secrets list: paths, types, tags, descriptions; never values', async () => {
        const table = await cli(['secrets', 'list', '--profile', 'sanctum'])
        assert.equal(table.code, 0, table.stderr)
        assert.match(table.stdout, /^NAME +TYPE +VERSION +UPDATED +TAGS +ALLOWED DOMAINS +DESCRIPTION$/m)
        assert.match(table.stdout, /^openai\/api_key +api_key +ai +prod$/m)
        const list = parseJson<ListJson>(
          await cli(['secrets', 'list', 'canary/', '--profile', 'sanctum', '--json']),
        )
        assert.deepEqual(list.secrets, [
          {
            name: 'canary/token',
            type: 'token',
            description: 'the canary',
            tags: ['test', 'canary'],
            created: '2026-01-01T00:00:00Z',
          },
        ])
        assert.equal(server.stats.connections, 2)
        assert.equal(server.stats.handshakes, 2)
      })

      it('secrets get --reveal: the value; the lease released before the command exits', async () => {
        const reveal = await cli(['secrets', 'get', 'sanctum://canary/token', '--reveal'], {revealed: true})
        assert.equal(reveal.code, 0, reveal.stderr)
        assert.equal(reveal.stdout, CANARY)
        assert.equal(server.leases.size, 1)
        assert.equal(server.outstandingLeases().length, 0)
        assert.deepEqual(server.stats, {
          challenges: 1,
          connections: 1,
          handshakes: 1,
          requests: 4 + (dialect === 'b' ? 1 : 0),
        })
      })

      it('secrets get --ttl: the TTL is requested, the lease still released', async () => {
        const reveal = await cli(
          ['secrets', 'get', 'sanctum://openai/api_key', '--reveal', '--ttl', '7', '--json'],
          {revealed: true},
        )
        assert.deepEqual(parseJson(reveal), {
          reference: 'sanctum://openai/api_key',
          encoding: 'utf8',
          value: VECTOR.valueText,
        })
        const retrieve = server.requests().find((r) => String(r.method).endsWith('retrieve'))
        assert.equal((retrieve?.params as Record<string, unknown>).ttl, 7)
        assert.equal([...server.leases.values()][0]?.ttl, 7)
        assert.equal(server.outstandingLeases().length, 0)
      })

      it(`run with ${BULK_COUNT} references: one connection, one handshake; leases held while the child runs, released after`, async () => {
        const args = bulkRunArgs()
        // The child waits for stdin, so the leases can be counted while it runs.
        const script = args.at(-1) as string
        const child = startCli(
          [
            ...args.slice(0, -1),
            `${script}; process.stdin.resume(); process.stdin.on('end', () => console.log('done'))`,
          ],
          {
            env: env(),
            openStdin: true,
          },
        )
        const done = collect(child)
        await waitForOutput(child, BULK_DIGEST)
        assert.equal(server.outstandingLeases().length, BULK_COUNT)
        child.stdin?.end()
        const result = await done
        results.push({result, revealed: false})
        assert.equal(result.code, 0, result.stderr)
        assert.equal(
          result.stdout,
          `${BULK_DIGEST}\n${Array.from({length: BULK_COUNT}, () => MASK).join(' ')}\ndone\n`,
        )
        assert.equal(server.stats.connections, 1)
        assert.equal(server.stats.handshakes, 1)
        assert.equal(server.outstandingLeases().length, 0)
        assert.equal(server.leases.size, BULK_COUNT)
      })

      it('use: http_request, http_header, sign, encrypt and decrypt performed by the daemon', async function () {
        if (!(await hasCommand('use'))) this.skip()
        const http = parseJson<Record<string, unknown>>(
          await cli([
            'use',
            'sanctum://canary/token',
            'http_request',
            '--param',
            `url=${target.url}/echo`,
            '--param',
            'method=POST',
            '--param',
            'body=hi',
            '--param',
            'header_type=custom',
            '--param',
            'header_name=X-Token',
            '--json',
          ]),
        )
        assert.equal(http.status, 201)
        assert.equal(target.received.at(-1)?.headers['x-token'], CANARY, 'the daemon injected the credential')
        const header = parseJson<Record<string, unknown>>(
          await cli([
            'use',
            'sanctum://openai/api_key',
            'http_header',
            '--param',
            'header_type=basic',
            '--reveal',
            '--json',
          ]),
        )
        assert.deepEqual(header, {header_name: 'Authorization', header_value: `Basic ${VECTOR.basicBase64}`})
        const signed = parseJson<Record<string, unknown>>(
          await cli([
            'use',
            'sanctum://canary/token',
            'sign',
            '--param',
            'algorithm=hmac-sha512',
            '--param',
            'data=payload',
            '--json',
          ]),
        )
        assert.equal(
          signed.signature,
          (await import('node:crypto')).createHmac('sha512', CANARY).update('payload').digest('base64'),
        )
        const encrypted = parseJson<Record<string, unknown>>(
          await cli([
            'use',
            'sanctum://canary/token',
            'encrypt',
            '--param',
            'plaintext=round trip',
            '--json',
          ]),
        )
        const decrypted = parseJson<Record<string, unknown>>(
          await cli([
            'use',
            'sanctum://canary/token',
            'decrypt',
            '--param',
            `ciphertext=${String(encrypted.ciphertext)}`,
            '--json',
          ]),
        )
        assert.equal(decrypted.plaintext, 'round trip')
        assert.equal(server.leases.size, 0, 'use never retrieves')
      })

      it('call: the daemon performs the request with the credential as a header; never retrieved', async function () {
        if (!(await hasCommand('call'))) this.skip()
        const received = target.received.length
        const result = parseJson<Record<string, unknown>>(
          await cli([
            'call',
            `${target.url}/echo`,
            '-X',
            'POST',
            '-d',
            'hi',
            '--secret-header',
            'X-Token: sanctum://canary/token',
            '--json',
          ]),
        )
        assert.equal(result.status, 201)
        assert.equal(target.received.length, received + 1)
        assert.equal(target.received.at(-1)?.headers['x-token'], CANARY, 'the daemon injected the credential')
        assert.equal(server.leases.size, 0, 'call never retrieves')
        const refused = await cli(['call', `${target.url}/echo`, '--query', 'k=sanctum://canary/token'])
        assert.equal(refused.code, 2)
        assert.match(refused.stderr, /not supported by sanctum/)
        assert.equal(target.received.length, received + 1, 'nothing sent for a refused injection style')
      })

      it('secrets set / delete: "not supported over the agent protocol", nothing sent (2)', async () => {
        const set = await failure(
          ['secrets', 'set', 'sanctum://team/new'],
          {code: 2, errorCode: 'NOT_SUPPORTED', message: /not supported over the agent protocol/},
          {input: 'value'},
        )
        assert.match(set.plain.stderr, /sanctum store team\/new/)
        const del = await failure(['secrets', 'delete', 'sanctum://team/old', '--yes'], {
          code: 2,
          errorCode: 'NOT_SUPPORTED',
        })
        assert.match(del.plain.stderr, /sanctum remove team\/old/)
        assert.equal(server.stats.connections, 0)
      })
    })
  }

  describe('TCP', () => {
    it('a profile with host and port', async () => {
      const result = await cli(['secrets', 'get', 'sanctum://openai/api_key?profile=overtcp', '--reveal'], {
        revealed: true,
      })
      assert.equal(result.stdout, VECTOR.valueText)
      assert.equal(server.outstandingLeases().length, 0)
    })

    it(`env only (no config, no login): run resolves ${BULK_COUNT} references from SANCTUM_* vars`, async () => {
      const bare = await tempHome()
      try {
        const result = await runCli(bulkRunArgs(), {
          env: {
            ...bare.env,
            HOME: t.home,
            SANCTUM_AGENT: AGENT,
            SANCTUM_HOST: '127.0.0.1',
            SANCTUM_PORT: String(server.tcpPort),
          },
        })
        results.push({result, revealed: false})
        assert.equal(result.code, 0, result.stderr)
        assert.ok(result.stdout.startsWith(`${BULK_DIGEST}\n`))
        assert.equal(server.stats.connections, 1)
        assert.equal(server.outstandingLeases().length, 0)
      } finally {
        await bare.dispose()
      }
    })
  })

  describe('faults: a clear error, the right exit code, no hang', () => {
    const get = ['secrets', 'get', 'sanctum://openai/api_key', '--reveal']

    it('wrong key: 4', async () => {
      await failure([...get, '--profile', 'wrongkey'], {
        code: 4,
        errorCode: 'AUTH_FAILED',
        message: /bad signature/,
      })
    })

    it('unknown agent: 4 (run too, with nothing on stdout)', async () => {
      await failure(['secrets', 'list', '--profile', 'stranger'], {
        code: 4,
        errorCode: 'AUTH_FAILED',
        message: /unknown agent/,
      })
      const run = await cli(['run', '--env', 'X=sanctum://openai/api_key?profile=stranger', '--', 'true'])
      assert.equal(run.code, 4)
      assert.equal(run.stdout, '')
      assert.match(run.stderr, /^Error: .*\nTry this: /)
    })

    it('ACCESS_DENIED: 7, with the daemon’s detail, suggestion and docs link', async () => {
      const {plain, error} = await failure(['secrets', 'get', 'sanctum://denied/secret', '--reveal'], {
        code: 7,
        errorCode: 'ACCESS_DENIED',
      })
      assert.match(plain.stderr, /Access denied — no policy lets test-agent retrieve denied\/secret/)
      assert.match(
        plain.stderr,
        /Try this: test server: access_denied\nDocs: https:\/\/docs\.sanctum\.test\/errors\/ACCESS_DENIED/,
      )
      assert.deepEqual(error.details?.context, {action: 'retrieve', path: 'denied/secret'})
    })

    it('VAULT_LOCKED: 5', async () => {
      server.config.locked = true
      await failure(get, {code: 5, errorCode: 'VAULT_LOCKED', message: /Vault is locked/})
    })

    it('SESSION_EXPIRED mid-run: signs in again once, then succeeds', async () => {
      server.expireSessionsAfter(5)
      const result = await cli(bulkRunArgs())
      assert.equal(result.code, 0, result.stderr)
      assert.ok(result.stdout.startsWith(`${BULK_DIGEST}\n`))
      assert.equal(server.stats.connections, 1)
      assert.equal(server.stats.handshakes, 2)
      assert.equal(server.outstandingLeases().length, 0)
    })

    it('LEASE_EXPIRED: 5', async () => {
      server.inject(
        'retrieve',
        {kind: 'error', error: {code: 'LEASE_EXPIRED', message: 'Lease expired'}},
        {count: 2},
      )
      await failure(get, {code: 5, errorCode: 'LEASE_EXPIRED'})
    })

    it('RATE_LIMITED: 8', async () => {
      server.config.rateLimit = {limit: 3, windowMs: 60_000}
      const result = await cli(bulkRunArgs())
      assert.equal(result.code, 8)
      assert.equal(result.stdout, '')
      assert.match(result.stderr, /Rate limit exceeded/)
      assert.equal(server.outstandingLeases().length, 0, 'the 3 leases taken are released')
    })

    it('an oversized frame: 5', async () => {
      server.inject('retrieve', {kind: 'oversize', declared: 16 * 1024 * 1024 + 1}, {count: 2})
      await failure(get, {
        code: 5,
        errorCode: 'SANCTUM_FRAME_TOO_LARGE',
        message: /16777217 bytes exceeds the limit of 16777216/,
      })
    })

    it('a response split byte by byte: works', async () => {
      server.config.write = {kind: 'bytes', pauseMs: 0}
      const result = await cli(get, {revealed: true})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, VECTOR.valueText)
    })

    it('the connection closed mid-frame: 5', async () => {
      server.inject('retrieve', {kind: 'close-mid-frame'}, {count: 2})
      await failure(get, {code: 5, errorCode: 'SANCTUM_CONNECTION_CLOSED'})
    })

    it('a daemon that never answers: timeout, 5', async () => {
      server.inject('retrieve', {kind: 'never-answer'}, {count: 2})
      const started = Date.now()
      await failure(['secrets', 'get', 'sanctum://openai/api_key?profile=impatient', '--reveal'], {
        code: 5,
        errorCode: 'SANCTUM_TIMEOUT',
        message: /did not answer retrieve within 500 ms/,
      })
      assert.ok(Date.now() - started < 20_000)
    })

    it('garbage bytes: 5', async () => {
      server.inject(
        'retrieve',
        {kind: 'raw', bytes: Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')},
        {count: 2},
      )
      await failure(get, {code: 5, errorCode: 'SANCTUM_FRAME_TOO_LARGE'})
      server.inject(
        'retrieve',
        {kind: 'raw', bytes: Buffer.from([0, 0, 0, 4, 0x6e, 0x75, 0x6c, 0x6c])},
        {count: 2},
      )
      await failure(get, {code: 5, errorCode: 'SANCTUM_PROTOCOL', message: /not a JSON object/})
    })

    it('nothing listening: 5, suggesting how to start the daemon', async () => {
      const {plain} = await failure([...get, '--profile', 'nowhere'], {
        code: 5,
        errorCode: 'SANCTUM_UNREACHABLE',
      })
      assert.match(plain.stderr, /sanctum daemon start/)
    })
  })

  describe('canary', () => {
    for (const dialect of ['a', 'b'] as ServerDialect[]) {
      it(`DEBUG=* output of list, get, use, run and an error never shows the value (dialect ${dialect})`, async () => {
        server.config.dialect = dialect
        const debugEnv = {DEBUG: '*'}
        const list = await cli(['secrets', 'list', '--profile', 'sanctum'], {env: debugEnv})
        assert.match(list.stderr, /agentvault:sanctum/)
        assert.match(list.stderr, /→ (credential\.)?list id=\d+ \d+ bytes/)
        await cli(['secrets', 'get', 'sanctum://canary/token', '--reveal'], {env: debugEnv, revealed: true})
        await cli(bulkRunArgs(), {env: debugEnv})
        const denied = await cli(['secrets', 'get', 'sanctum://denied/secret', '--reveal'], {env: debugEnv})
        assert.equal(denied.code, 7)
        if (await hasCommand('use')) {
          const sign = await cli(['use', 'sanctum://canary/token', 'sign', '--param', 'data=x'], {
            env: debugEnv,
          })
          assert.equal(sign.code, 0, sign.stderr)
        }
      })
    }

    it('appears in no stderr, no masked stdout, no audit.log and no config.json', async () => {
      assert.ok(results.length > 30)
      for (const {result, revealed} of results) {
        assert.ok(!leaks(result.stderr), `stderr leaked the canary: ${result.stderr}`)
        if (!revealed) assert.ok(!leaks(result.stdout), `stdout leaked the canary: ${result.stdout}`)
      }

      const home = t.env.AGENTVAULT_HOME as string
      const audit = await readFile(join(home, 'audit.log'), 'utf8')
      assert.match(audit, /sanctum:\/\/canary\/token/)
      assert.ok(!leaks(audit))
      assert.ok(!leaks(await readFile(join(home, 'config.json'), 'utf8')))
    })
  })
})

let commands: Set<string> | undefined
async function hasCommand(id: string): Promise<boolean> {
  commands ??= new Set(
    Object.keys(JSON.parse(await readFile(join(ROOT, 'oclif.manifest.json'), 'utf8')).commands),
  )
  return commands.has(id)
}
