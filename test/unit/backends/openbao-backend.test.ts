/**
 * The openbao backend (its node-vault adapter included) against the protocol-faithful test
 * server over real HTTP and HTTPS on loopback (test/servers/openbao): versions, deletion states,
 * policies and tokens, HA failover and the redirect guard, retries, namespaces, wrapping, TLS, and
 * node-vault's own env reading kept out of every decision.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {BackendContext} from '../../../src/core/backend.js'

import {
  createBackend,
  type OpenBaoBackend,
  type OpenBaoBackendOptions,
} from '../../../src/backends/openbao/index.js'
import {parseReference} from '../../../src/core/references.js'
import {
  BULK_FIELDS,
  BULK_PATHS,
  bulkPath,
  bulkValue,
  caFiles,
  CANARY,
  ROLE_ID,
  SECRET_ID,
  type SeededTokens,
  seedStandard,
  startNode,
  startSeededServer,
} from '../../servers/openbao/harness.js'
import {type OpenBaoTestServer, ServerState} from '../../servers/openbao/server.js'

const ref = (text: string) => parseReference(text)

interface Typed extends Error {
  category: string
  code: string
  details?: Record<string, unknown>
  exitCode: number
  suggestion?: string
}

/** Await `promise` and check it fails with a typed error of this exit code and code. */
async function fails(promise: Promise<unknown>, exitCode: number, code: string): Promise<Typed> {
  try {
    await promise
  } catch (error) {
    const typed = error as Typed
    assert.equal(typeof typed.code, 'string', `not typed: ${String(error)}`)
    assert.equal(typed.code, code, typed.message)
    assert.equal(typed.exitCode, exitCode, `${typed.code}: ${typed.message}`)
    const text = JSON.stringify({
      details: typed.details,
      message: typed.message,
      suggestion: typed.suggestion,
    })
    assert.ok(!text.includes(CANARY), `leaks the canary: ${text}`)
    return typed
  }

  assert.fail(`expected ${code}`)
}

/** A port nothing listens on (connection refused). */
async function closedPort(): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
  })
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 1}`
}

describe('openbao backend', function () {
  this.timeout(30_000)
  let home: string
  let server: OpenBaoTestServer
  let tokens: SeededTokens
  let warnings: string[]
  const backends: OpenBaoBackend[] = []
  const extraServers: OpenBaoTestServer[] = []

  const contextFor = (
    settings: Record<string, unknown>,
    env: NodeJS.ProcessEnv = {},
    name = 'prod-bao',
  ): BackendContext => ({
    env: {AGENTVAULT_NO_KEYCHAIN: '1', HOME: home, ...env},
    home: join(home, 'av'),
    interactive: false,
    profile: {implicit: false, kind: 'openbao', name, settings},
    warn: (message) => warnings.push(message),
  })

  const open = (
    token?: string,
    settings: Record<string, unknown> = {},
    options: OpenBaoBackendOptions & {env?: NodeJS.ProcessEnv; name?: string} = {},
  ): OpenBaoBackend => {
    const env = {...(token === undefined ? {} : {BAO_TOKEN: token}), ...options.env}
    const where = settings.addresses === undefined ? {address: server.url} : {}
    const backend = createBackend(contextFor({...where, ...settings}, env, options.name), options)
    backends.push(backend)
    return backend
  }

  const node = async (
    state: ServerState,
    name: string,
    mode: Parameters<typeof startNode>[2],
    tls = false,
  ) => {
    const started = await startNode(state, name, mode, tls)
    extraServers.push(started)
    return started
  }

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'agentvault-openbao-'))
    warnings = []
    ;({server, tokens} = await startSeededServer())
  })

  afterEach(async () => {
    await Promise.all(backends.splice(0).map((backend) => backend.close()))
    await Promise.all([server, ...extraServers.splice(0)].map((s) => s.close()))
    await rm(home, {force: true, recursive: true})
  })

  describe('versions and deletion states (§6, §7)', () => {
    it('pins versions; a soft-deleted current version is SECRET_VERSION_DELETED without fallback; destroy; undelete', async () => {
      const backend = open(tokens.writer)
      for (const n of [1, 2, 3]) {
        const written = await backend.set!(
          ref('openbao://secret/pinned#token'),
          Buffer.from(`${CANARY}-v${n}`),
          {},
        )
        assert.equal(written.version, n)
      }

      assert.equal(
        (await backend.get!(ref('openbao://secret/pinned#token?version=2'))).toString(),
        `${CANARY}-v2`,
      )
      assert.equal((await backend.get!(ref('openbao://secret/pinned#token'))).toString(), `${CANARY}-v3`)
      await backend.delete!(ref('openbao://secret/pinned'))
      server.resetLog()
      const deleted = await fails(
        backend.get!(ref('openbao://secret/pinned#token')),
        6,
        'SECRET_VERSION_DELETED',
      )
      assert.equal(deleted.details?.version, 3)
      assert.deepEqual(
        server.log.map((e) => `${e.method} ${e.path}?${e.query}`),
        ['GET secret/data/pinned?'],
        'one read, no fallback to version 2',
      )
      assert.equal(
        (await backend.get!(ref('openbao://secret/pinned#token?version=2'))).toString(),
        `${CANARY}-v2`,
      )
      await backend.delete!(ref('openbao://secret/pinned'), {destroy: true, versions: [2]})
      await fails(backend.get!(ref('openbao://secret/pinned#token?version=2')), 6, 'SECRET_VERSION_DESTROYED')
      await backend.undelete(ref('openbao://secret/pinned'), [2, 3])
      assert.equal((await backend.get!(ref('openbao://secret/pinned#token'))).toString(), `${CANARY}-v3`)
      await fails(backend.get!(ref('openbao://secret/pinned#token?version=2')), 6, 'SECRET_VERSION_DESTROYED')
      const history = await backend.versions!(ref('openbao://secret/pinned#token'))
      assert.equal(history.reference, 'openbao+kv2://secret/pinned')
      assert.deepEqual(
        history.versions.map((v) => [v.version, v.state]),
        [
          [1, 'active'],
          [2, 'destroyed'],
          [3, 'active'],
        ],
      )
      await backend.delete!(ref('openbao://secret/pinned?version=1'))
      assert.equal((await backend.versions!(ref('openbao://secret/pinned'))).versions[0]?.state, 'deleted')
      await backend.delete!(ref('openbao://secret/pinned'), {allVersions: true})
      await fails(backend.versions!(ref('openbao://secret/pinned')), 6, 'SECRET_NOT_FOUND')
    })

    it('FIELD_NOT_FOUND for a missing #field; SECRET_NOT_FOUND for a missing key; the whole map only for secrets get', async () => {
      const backend = open(tokens.reader)
      await fails(backend.get!(ref('openbao://secret/myapp/api#nope')), 6, 'FIELD_NOT_FOUND')
      await fails(backend.get!(ref('openbao://secret/myapp/none#token')), 6, 'SECRET_NOT_FOUND')
      await fails(backend.get!(ref('openbao://secret/myapp/api')), 2, 'FIELD_REQUIRED')
      const whole = JSON.parse(
        (await backend.get!(ref('openbao://secret/myapp/api'), {whole: true})).toString(),
      )
      assert.deepEqual(whole, {port: 8443, token: CANARY, user: 'svc'})
      assert.equal((await backend.get!(ref('openbao://secret/myapp/api#port'))).toString(), '8443')
      await fails(backend.get!(ref('openbao://other/app#k')), 6, 'SECRET_NOT_FOUND')
    })

    it('a scheduled deletion reads until the server clock passes it', async () => {
      server.state.addMount('short', {deleteVersionAfter: 60})
      server.state.putSecret('short', 'app', {k: CANARY})
      const backend = open(tokens.root)
      assert.equal((await backend.get!(ref('openbao://short/app#k'))).toString(), CANARY)
      server.state.clock.advance(61)
      await fails(backend.get!(ref('openbao://short/app#k')), 6, 'SECRET_VERSION_DELETED')
    })

    it('set: #field merges into the current map with cas = its version; --cas; JSON object without #field', async () => {
      const backend = open(tokens.writer)
      await backend.set!(ref('openbao://secret/myapp/api#extra'), Buffer.from('x'), {})
      assert.equal(
        server.log.at(-1)?.body,
        JSON.stringify({data: {token: CANARY, user: 'svc', port: 8443, extra: 'x'}, options: {cas: 1}}),
      )
      await fails(
        backend.set!(ref('openbao://secret/myapp/api#extra'), Buffer.from('y'), {cas: 1}),
        2,
        'CAS_MISMATCH',
      )
      const whole = await backend.set!(ref('openbao://secret/myapp/api'), Buffer.from('{"only":"this"}'), {
        cas: 2,
        json: true,
      })
      assert.equal(whole.version, 3)
      assert.deepEqual(
        JSON.parse((await backend.get!(ref('openbao://secret/myapp/api'), {whole: true})).toString()),
        {only: 'this'},
      )
      await fails(
        backend.set!(ref('openbao://secret/myapp/api'), Buffer.from(`not json ${CANARY}`), {}),
        2,
        'JSON_OBJECT_REQUIRED',
      )
      await fails(
        backend.set!(ref('openbao://secret/myapp/api#k?version=1'), Buffer.from('x'), {}),
        2,
        'SET_VERSION',
      )
      await fails(
        backend.set!(ref('openbao://secret/myapp/api#k'), Buffer.from([0xff, 0xfe]), {}),
        2,
        'VALUE_NOT_TEXT',
      )
      const created = await backend.set!(ref('openbao://secret/fresh#k'), Buffer.from('v'), {})
      assert.equal(created.version, 1)
      assert.match(server.log.at(-1)?.body ?? '', /"options":\{"cas":0\}/)
      server.state.setPolicy('writer', [
        {path: 'secret/*', capabilities: ['create', 'read', 'update', 'delete', 'list']},
      ])
      server.state.ns().mounts.get('secret')!.casRequired = true
      await fails(
        backend.set!(ref('openbao://secret/myapp/api'), Buffer.from('{"a":1}'), {}),
        2,
        'BACKEND_REJECTED',
      )
    })

    it('deleting with a #field, --destroy without versions, or --all-versions with versions is a usage error', async () => {
      const backend = open(tokens.writer)
      await fails(backend.delete!(ref('openbao://secret/myapp/api#token')), 2, 'DELETE_FIELD')
      await fails(backend.delete!(ref('openbao://secret/myapp/api'), {destroy: true}), 2, 'DELETE_VERSIONS')
      await fails(
        backend.delete!(ref('openbao://secret/myapp/api'), {allVersions: true, versions: [1]}),
        2,
        'DELETE_VERSIONS',
      )
      await fails(
        backend.delete!(ref('openbao://secret/myapp/api?version=1'), {versions: [1]}),
        2,
        'DELETE_VERSIONS',
      )
      assert.equal(server.log.length, 0, 'nothing sent')
    })
  })

  describe('tokens and policies (§8, §12)', () => {
    it('a read-only token gets PERMISSION_DENIED (exit 7) on set, decided by one lookup-self', async () => {
      const backend = open(tokens.reader)
      await fails(
        backend.set!(ref('openbao://secret/myapp/api#token'), Buffer.from('x'), {}),
        7,
        'PERMISSION_DENIED',
      )
      assert.deepEqual(
        server.log.map((e) => `${e.method} ${e.path} ${e.status}`),
        ['GET secret/data/myapp/api 200', 'POST secret/data/myapp/api 403', 'GET auth/token/lookup-self 200'],
      )
    })

    it('an expired token is AUTH_REQUIRED (exit 4) with the login hint', async () => {
      const short = server.state.createToken({policies: ['reader'], ttl: 30})
      const backend = open(short.id)
      server.state.clock.advance(31)
      const error = await fails(backend.get!(ref('openbao://secret/myapp/api#token')), 4, 'AUTH_REQUIRED')
      assert.match(error.suggestion ?? '', /agentvault login openbao --profile prod-bao/)
      assert.ok(!error.message.includes(short.id))
    })

    it('no token at all: AUTH_REQUIRED before any request', async () => {
      const backend = open()
      await fails(backend.get!(ref('openbao://secret/myapp/api#token')), 4, 'AUTH_REQUIRED')
      assert.equal(server.log.length, 0)
    })

    it('token sources: BAO_TOKEN over VAULT_TOKEN over ~/.vault-token', async () => {
      await writeFile(join(home, '.vault-token'), `${tokens.reader}\n`)
      assert.equal((await open().get!(ref('openbao://secret/myapp/api#user'))).toString(), 'svc')
      assert.equal(server.log.at(-1)?.token, tokens.reader)
      await open(undefined, {}, {env: {VAULT_TOKEN: tokens.writer}}).get!(
        ref('openbao://secret/myapp/api#user'),
      )
      assert.equal(server.log.at(-1)?.token, tokens.writer)
      await open(undefined, {}, {env: {BAO_TOKEN: tokens.root, VAULT_TOKEN: tokens.writer}}).get!(
        ref('openbao://secret/myapp/api#user'),
      )
      assert.equal(server.log.at(-1)?.token, tokens.root)
    })

    it('approle login (secret ID from env) stores the token with metadata; status shows the TTL; logout --revoke', async () => {
      // The command layer read the secret ID (here: from AGENTVAULT_SECRET_ID) and hands it over.
      const backend = open(undefined, {authMethod: 'approle'})
      const result = await backend.login!({roleId: ROLE_ID, secretId: Buffer.from(SECRET_ID)})
      assert.match(result.message, /as approle-ci .*ttl 1200s/)
      assert.ok(!JSON.stringify(result).includes(SECRET_ID))
      const config = await readFile(join(home, 'av', 'config.json'), 'utf8')
      assert.deepEqual(JSON.parse(config).profiles['prod-bao'], {
        address: server.url,
        authMethod: 'approle',
        kind: 'openbao',
      })
      assert.ok(!config.includes(SECRET_ID) && !config.includes('s.'))
      const fresh = open()
      assert.equal((await fresh.get!(ref('openbao://secret/myapp/api#user'))).toString(), 'svc')
      const status = await fresh.status()
      assert.equal(status.signedIn, true)
      assert.equal(status.identity, 'approle-ci')
      assert.match(status.message ?? '', /ttl 1\d{3}s; policies default,reader; renewable/)
      assert.equal(status.details?.tokenSource, 'credential store')
      const issued = server.log.find((e) => e.path === 'auth/approle/login')
      assert.ok(issued)
      assert.equal(await open().logout!({revoke: true}), true)
      const stored = [...server.state.tokens.values()].find((t) => t.displayName === 'approle-ci')
      assert.equal(stored?.revoked, true)
      await fails(open().get!(ref('openbao://secret/myapp/api#user')), 4, 'AUTH_REQUIRED')
    })

    it('bad approle credentials → AUTH_FAILED; a stored token is never sent to other addresses', async () => {
      const bad = open(undefined, {authMethod: 'approle'})
      await fails(bad.login!({roleId: ROLE_ID, secretId: Buffer.from('wrong')}), 4, 'AUTH_FAILED')
      await open(undefined, {authMethod: 'approle'}).login!({
        roleId: ROLE_ID,
        secretId: Buffer.from(SECRET_ID),
      })
      const elsewhere = await startSeededServer({name: 'elsewhere'})
      extraServers.push(elsewhere.server)
      const moved = createBackend(contextFor({address: elsewhere.server.url}), {})
      backends.push(moved)
      await fails(moved.get!(ref('openbao://secret/myapp/api#user')), 4, 'AUTH_REQUIRED')
      assert.equal(elsewhere.server.log.length, 0)
      assert.match(warnings.join('\n'), /was issued for .* it is not sent/)
    })

    it('renews below 10% of the TTL: status always looks up; other commands decide from stored metadata', async () => {
      const aging = server.state.createToken({
        displayName: 'aging',
        issuedSecondsAgo: 950,
        policies: ['reader'],
        ttl: 1000,
      })
      const status = await open(aging.id).status()
      assert.equal(status.details?.renewed, true)
      assert.ok(server.log.some((e) => e.path === 'auth/token/renew-self'))
      assert.equal(server.state.ttlOf(aging), 1000)
      // Stored metadata: a token stored by login, then aged on the local clock.
      await open(undefined, {authMethod: 'approle'}).login!({
        roleId: ROLE_ID,
        secretId: Buffer.from(SECRET_ID),
      })
      server.resetLog()
      const later = Date.now() + 1150 * 1000
      await open(undefined, {}, {now: () => later}).get!(ref('openbao://secret/myapp/api#user'))
      assert.deepEqual(
        server.log.map((e) => e.path),
        ['auth/token/renew-self', 'secret/data/myapp/api'],
      )
      server.resetLog()
      await open().get!(ref('openbao://secret/myapp/api#user'))
      assert.deepEqual(
        server.log.map((e) => e.path),
        ['secret/data/myapp/api'],
        'no renewal when not due',
      )
    })
  })

  describe('HA, failover and redirects (§9)', () => {
    it('[sealed, standby, active]: a read succeeds; tokens reach only listed hosts; a hostile redirect is refused', async () => {
      const {state} = server
      const outsider = await node(new ServerState(), 'outsider', {kind: 'active'})
      const sealed = await node(state, 'sealed', {kind: 'sealed'})
      const standby = await node(state, 'standby', {active: server.url, kind: 'standby'})
      const hostile = await node(state, 'hostile', {kind: 'redirect', location: outsider.url})
      const backend = open(tokens.reader, {addresses: [sealed.url, standby.url, server.url]})
      assert.equal((await backend.get!(ref('openbao://secret/myapp/api#token'))).toString(), CANARY)
      assert.deepEqual(
        sealed.log.map((e) => e.status),
        [503],
      )
      assert.deepEqual(
        standby.log.map((e) => e.status),
        [307],
      )
      assert.equal(
        server.log.length,
        1,
        'the standby’s redirect was followed to the active node, which is listed',
      )
      const hostileBackend = open(tokens.reader, {addresses: [sealed.url, hostile.url, server.url]})
      assert.equal((await hostileBackend.get!(ref('openbao://secret/myapp/api#token'))).toString(), CANARY)
      assert.deepEqual(
        hostile.log.map((e) => e.status),
        [307],
      )
      assert.equal(outsider.log.length, 0, 'the redirect target outside the list saw nothing')
      for (const listed of [sealed, standby, hostile, server])
        assert.ok(listed.tokensSeen().every((t) => t === tokens.reader))
      // The address that answered goes first next time.
      sealed.resetLog()
      await hostileBackend.get!(ref('openbao://secret/myapp/api#user'))
      assert.equal(sealed.log.length, 0)
    })

    it('writes move on after 503 and connection refused; every node sealed → BACKEND_UNAVAILABLE naming the addresses', async () => {
      const refused = await closedPort()
      const sealed = await node(server.state, 'sealed', {kind: 'sealed'})
      const backend = open(tokens.writer, {addresses: [refused, sealed.url, server.url]})
      assert.equal((await backend.set!(ref('openbao://secret/ha#k'), Buffer.from('v'), {})).version, 1)
      server.mode = {kind: 'sealed'}
      const error = await fails(
        open(tokens.writer, {addresses: [sealed.url, server.url]}).get!(ref('openbao://secret/ha#k')),
        5,
        'BACKEND_UNAVAILABLE',
      )
      // Each node by host:port with what it answered, in the order tried.
      assert.match(
        error.message,
        new RegExp(`HTTP 503 ${new URL(sealed.url).host}; HTTP 503 ${new URL(server.url).host}`),
      )
      assert.ok(!JSON.stringify(error.details).includes(tokens.writer))
    })

    it('reads move on after a reset or a timeout; writes do not (they may have been applied)', async () => {
      const second = await node(server.state, 'second', {kind: 'active'})
      server.faults = {reset: {}}
      const backend = open(tokens.writer, {addresses: [server.url, second.url]})
      assert.equal((await backend.get!(ref('openbao://secret/myapp/api#user'))).toString(), 'svc')
      assert.equal(second.log.length, 1)
      second.resetLog()
      const writer = open(tokens.writer, {addresses: [server.url, second.url]})
      const error = await fails(
        writer.set!(ref('openbao://secret/reset'), Buffer.from('{"a":1}'), {}),
        5,
        'BACKEND_UNAVAILABLE',
      )
      assert.match(error.message, /may or may not have been applied/)
      assert.equal(second.log.length, 0)
      server.faults = {hang: {}}
      const slow = open(tokens.reader, {addresses: [server.url, second.url], timeoutMs: 300})
      assert.equal((await slow.get!(ref('openbao://secret/myapp/api#user'))).toString(), 'svc')
    })

    it('429: retried twice with Retry-After (capped at 5 s) or 250 ms then 1 s; then RATE_LIMITED', async () => {
      const waits: number[] = []
      const sleep = async (ms: number) => {
        waits.push(ms)
      }

      server.faults = {rateLimit: {count: 2, retryAfter: 2}}
      assert.equal(
        (await open(tokens.reader, {}, {sleep}).get!(ref('openbao://secret/myapp/api#user'))).toString(),
        'svc',
      )
      assert.deepEqual(waits, [2000, 2000])
      waits.length = 0
      server.faults = {rateLimit: {count: 2, retryAfter: 60}}
      await open(tokens.reader, {}, {sleep}).get!(ref('openbao://secret/myapp/api#user'))
      assert.deepEqual(waits, [5000, 5000])
      waits.length = 0
      server.faults = {rateLimit: {count: 3}}
      await fails(
        open(tokens.reader, {}, {sleep}).get!(ref('openbao://secret/myapp/api#user')),
        8,
        'RATE_LIMITED',
      )
      assert.deepEqual(waits, [250, 1000])
    })
  })

  describe('run: many references (§4)', () => {
    it('one read per distinct path and version, concurrently (the server sees them overlap)', async () => {
      // The gate answers no read before all ten wait at once: they must be concurrent.
      server.faults = {delay: {ms: 20, route: /\/data\//}, gate: {count: 10, route: /\/data\//}}
      const refs = []
      for (let i = 0; i < BULK_PATHS; i++)
        for (let f = 0; f < BULK_FIELDS; f++) refs.push(ref(`openbao://secret/${bulkPath(i)}#f${f}`))
      const backend = open(tokens.reader)
      const values = await backend.resolveMany!(refs)
      assert.equal(values.size, 50)
      for (let i = 0; i < BULK_PATHS; i++)
        for (let f = 0; f < BULK_FIELDS; f++)
          assert.equal(values.get(`openbao+kv2://secret/${bulkPath(i)}#f${f}`)?.toString(), bulkValue(i, f))
      const reads = server.log.filter((e) => e.path.includes('/data/'))
      assert.equal(reads.length, 10)
      assert.equal(server.maxInFlight, 10, 'all ten reads were in flight at once')
      await fails(backend.resolveMany!([ref('openbao://secret/myapp/api')]), 2, 'FIELD_REQUIRED')
    })
  })

  describe('namespaces and headers (§3)', () => {
    it('X-Vault-Namespace on every request (login included) and X-Vault-Request: true always', async () => {
      server.state.addNamespace('team-a')
      server.state.putSecret('secret', 'app', {k: CANARY}, 'team-a')
      server.state.addAppRole(
        {name: 'ns-ci', policies: ['reader'], roleId: ROLE_ID, secretIds: [SECRET_ID]},
        {namespace: 'team-a'},
      )
      server.state.setPolicy('reader', [{path: 'secret/*', capabilities: ['read', 'list']}], 'team-a')
      const settings = {authMethod: 'approle', namespace: 'team-a'}
      await open(undefined, settings).login!({roleId: ROLE_ID, secretId: Buffer.from(SECRET_ID)})
      const backend = open(undefined, settings)
      assert.equal((await backend.get!(ref('openbao://secret/app#k'))).toString(), CANARY)
      await backend.list!('openbao://secret')
      await backend.status()
      assert.ok(server.log.length >= 5)
      for (const entry of server.log) {
        assert.equal(entry.headers['x-vault-namespace'], 'team-a', entry.path)
        assert.equal(entry.headers['x-vault-request'], 'true', entry.path)
      }
    })

    it("node-vault's own env (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_PREFIX) decides nothing", async () => {
      const saved = {...process.env}
      Object.assign(process.env, {
        VAULT_ADDR: await closedPort(),
        VAULT_NAMESPACE: 'evil',
        VAULT_PREFIX: '/evil',
        VAULT_TOKEN: 's.from-process-env',
      })
      try {
        const backend = open(tokens.reader)
        assert.equal((await backend.get!(ref('openbao://secret/myapp/api#user'))).toString(), 'svc')
        await fails(open().get!(ref('openbao://secret/myapp/api#user')), 4, 'AUTH_REQUIRED')
        for (const entry of server.log) {
          assert.equal(entry.headers['x-vault-namespace'], undefined)
          assert.equal(entry.token, tokens.reader)
          assert.ok(!entry.path.startsWith('evil'))
        }
      } finally {
        for (const key of ['VAULT_ADDR', 'VAULT_NAMESPACE', 'VAULT_PREFIX', 'VAULT_TOKEN']) {
          if (saved[key] === undefined) delete process.env[key]
          else process.env[key] = saved[key]
        }
      }
    })
  })

  describe('wrapping (§11)', () => {
    it('wraps a version; unwraps once; a second unwrap is WRAP_TOKEN_INVALID; --expect checks the path first', async () => {
      const backend = open(tokens.reader)
      await fails(backend.wrap!(ref('openbao://secret/myapp/api#token'), '60s'), 2, 'WRAP_FIELD')
      await fails(backend.wrap!(ref('openbao://secret/myapp/api'), '0'), 2, 'BAD_WRAP_TTL')
      const wrapped = await backend.wrap!(ref('openbao://secret/myapp/api'), '60s')
      assert.equal(wrapped.ttl, 60)
      assert.equal(wrapped.creation_path, 'secret/data/myapp/api')
      assert.equal(server.log.at(-1)?.headers['x-vault-wrap-ttl'], '60s')
      const receiver = open()
      await fails(
        receiver.unwrap!(wrapped.token, {expect: ref('openbao://secret/myapp/db')}),
        7,
        'WRAP_PATH_MISMATCH',
      )
      const value = await receiver.unwrap!(wrapped.token, {
        expect: ref('openbao://secret/myapp/api'),
        field: 'token',
      })
      assert.equal(value.toString(), CANARY)
      const unwrapCall = server.log.find((e) => e.path === 'sys/wrapping/unwrap')
      assert.equal(unwrapCall?.token, wrapped.token)
      assert.equal(unwrapCall?.body, '', 'the token goes in the header only')
      await fails(receiver.unwrap!(wrapped.token, {}), 4, 'WRAP_TOKEN_INVALID')
      await fails(receiver.unwrap!('s.bogus', {}), 4, 'WRAP_TOKEN_INVALID')
    })
  })

  describe('list (§7)', () => {
    it('lists folders (mount root included), recursively on request; 404 is empty; the mount guard applies', async () => {
      const backend = open(tokens.reader, {allowedMounts: ['secret']})
      assert.deepEqual(
        (await backend.list!('openbao://secret')).map((s) => s.name),
        ['bulk/', 'myapp/'],
      )
      assert.deepEqual(
        (await backend.list!('openbao+kv2://secret/myapp/')).map((s) => s.name),
        ['api', 'db'],
      )
      assert.deepEqual(
        (await backend.list!('secret/myapp')).map((s) => s.name),
        ['api', 'db'],
      )
      const all = await backend.list!('openbao://secret', {recursive: true})
      assert.equal(all.length, 12)
      assert.ok(all.some((s) => s.name === 'myapp/api'))
      assert.deepEqual(await backend.list!('openbao://secret/empty'), [])
      await fails(backend.list!('openbao://other'), 7, 'MOUNT_NOT_ALLOWED')
      await fails(backend.list!('openbao://secret/myapp#token'), 2, 'LIST_PREFIX')
      await fails(backend.list!(), 2, 'LIST_PREFIX')
    })
  })

  describe('describe (use-not-retrieve policy)', () => {
    it('reads allowed_domains from custom metadata written by set; a token without metadata access gets the name', async () => {
      const writer = open(tokens.writer)
      await writer.set!(ref('openbao://secret/myapp/api#token'), Buffer.from(CANARY), {
        allowedDomains: ['api.example.com', '*.example.org'],
        description: 'prod key',
        tags: ['ai'],
      })
      const described = await open(tokens.reader).describe!(ref('openbao://secret/myapp/api#token'))
      assert.deepEqual(described.allowedDomains, ['api.example.com', '*.example.org'])
      assert.equal(described.description, 'prod key')
      assert.deepEqual(described.tags, ['ai'])
      server.state.setPolicy('data-only', [{path: 'secret/data/*', capabilities: ['read']}])
      const dataOnly = server.state.createToken({policies: ['data-only']})
      assert.deepEqual(await open(dataOnly.id).describe!(ref('openbao://secret/myapp/api#token')), {
        name: 'openbao+kv2://secret/myapp/api#token',
      })
    })
  })

  describe('TLS (§4)', () => {
    let tlsServer: OpenBaoTestServer

    beforeEach(async () => {
      const state = new ServerState()
      tokens = seedStandard(state)
      tlsServer = await node(state, 'tls', {kind: 'active'}, true)
    })

    it('verifies against caCert; without it, or with another CA, TLS_VERIFY_FAILED (exit 3)', async () => {
      const ok = open(tokens.reader, {address: tlsServer.url, caCert: caFiles().ca})
      assert.equal((await ok.get!(ref('openbao://secret/myapp/api#user'))).toString(), 'svc')
      await fails(
        open(tokens.reader, {address: tlsServer.url}).get!(ref('openbao://secret/myapp/api#user')),
        3,
        'TLS_VERIFY_FAILED',
      )
      await fails(
        open(tokens.reader, {address: tlsServer.url, caCert: caFiles().otherCa}).get!(
          ref('openbao://secret/myapp/api#user'),
        ),
        3,
        'TLS_VERIFY_FAILED',
      )
      assert.equal(tlsServer.log.length, 1, 'only the verified request reached the server')
      await fails(
        open(tokens.reader, {address: tlsServer.url, caCert: join(home, 'missing.pem')}).get!(
          ref('openbao://secret/x#k'),
        ),
        3,
        'CA_CERT_UNREADABLE',
      )
    })

    it('VAULT_SKIP_VERIFY=false (in env and in node-vault’s process.env) keeps verification on; "true" turns it off with a warning', async () => {
      const saved = process.env.VAULT_SKIP_VERIFY
      process.env.VAULT_SKIP_VERIFY = 'false'
      try {
        const strict = open(tokens.reader, {address: tlsServer.url}, {env: {VAULT_SKIP_VERIFY: 'false'}})
        await fails(strict.get!(ref('openbao://secret/myapp/api#user')), 3, 'TLS_VERIFY_FAILED')
        assert.equal(tlsServer.log.length, 0)
      } finally {
        if (saved === undefined) delete process.env.VAULT_SKIP_VERIFY
        else process.env.VAULT_SKIP_VERIFY = saved
      }

      const lax = open(tokens.reader, {address: tlsServer.url}, {env: {BAO_SKIP_VERIFY: 'true'}})
      assert.equal((await lax.get!(ref('openbao://secret/myapp/api#user'))).toString(), 'svc')
      assert.match(warnings.join('\n'), /TLS certificate verification is OFF/)
    })
  })
})
