/**
 * The OpenBao test server itself (protocols/openbao.md §14), over raw HTTP: if it drifts from
 * OpenBao's behaviour, every backend test built on it proves less.
 */
import assert from 'node:assert/strict'

import {
  CANARY,
  PASSWORD,
  ROLE_ID,
  SECRET_ID,
  type SeededTokens,
  startSeededServer,
} from '../../servers/openbao/harness.js'
import {type OpenBaoTestServer, startOpenBaoServer} from '../../servers/openbao/server.js'

interface Reply {
  body: Record<string, unknown> | undefined
  headers: Headers
  status: number
  text: string
}

const data = (reply: Reply): Record<string, unknown> => reply.body?.data as Record<string, unknown>

describe('openbao test server', () => {
  let server: OpenBaoTestServer
  let tokens: SeededTokens

  const call = async (
    method: string,
    path: string,
    options: {body?: unknown; headers?: Record<string, string>; token?: null | string} = {},
  ): Promise<Reply> => {
    const headers: Record<string, string> = {...options.headers}
    const token = options.token === undefined ? tokens.root : options.token
    if (token !== null) headers['X-Vault-Token'] = token
    const response = await fetch(`${server.url}/v1/${path}`, {
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      headers,
      method,
      redirect: 'manual',
    })
    const text = await response.text()
    return {
      body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
      headers: response.headers,
      status: response.status,
      text,
    }
  }

  beforeEach(async () => {
    ;({server, tokens} = await startSeededServer())
  })

  afterEach(() => server.close())

  it('answers envelopes with every §3 field and a UUID request_id; errors as {"errors": […]}; 204 empty', async () => {
    const read = await call('GET', 'secret/data/myapp/api')
    assert.equal(read.status, 200)
    assert.match(read.headers.get('content-type') ?? '', /application\/json/)
    for (const key of [
      'request_id',
      'lease_id',
      'renewable',
      'lease_duration',
      'data',
      'wrap_info',
      'warnings',
      'auth',
    ])
      assert.ok(key in (read.body ?? {}), key)
    assert.match(
      String(read.body?.request_id),
      /^[\da-f]{8}-[\da-f]{4}-4[\da-f]{3}-[89ab][\da-f]{3}-[\da-f]{12}$/,
    )
    assert.deepEqual((data(read).data as Record<string, unknown>).token, CANARY)
    assert.match(
      String((data(read).metadata as Record<string, unknown>).created_time),
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/,
    )
    assert.deepEqual((await call('GET', 'secret/data/nope')).body, {errors: []})
    const deleted = await call('DELETE', 'secret/data/myapp/db')
    assert.equal(deleted.status, 204)
    assert.equal(deleted.text, '')
  })

  it('versions: POST creates current+1, ?version=N reads, 0 = current, non-integer → 400, no data → 400', async () => {
    for (const n of [2, 3]) {
      const written = await call('POST', 'secret/data/myapp/api', {body: {data: {token: `v${n}`}}})
      assert.equal((data(written) as {version: number}).version, n)
    }

    const v2 = await call('GET', 'secret/data/myapp/api?version=2')
    assert.equal((data(v2).data as {token: string}).token, 'v2')
    assert.equal(
      (data(await call('GET', 'secret/data/myapp/api?version=0')).data as {token: string}).token,
      'v3',
    )
    assert.equal((await call('GET', 'secret/data/myapp/api?version=x')).status, 400)
    assert.equal((await call('POST', 'secret/data/myapp/api', {body: {options: {}}})).status, 400)
    assert.deepEqual((await call('GET', 'secret/data/myapp/api?version=9')).body, {errors: []})
  })

  it('max_versions prunes the oldest; a pruned version is a plain 404', async () => {
    await call('POST', 'secret/metadata/pruned', {body: {max_versions: 2}})
    for (let n = 1; n <= 3; n++) await call('POST', 'secret/data/pruned', {body: {data: {n}}})
    const meta = data(await call('GET', 'secret/metadata/pruned'))
    assert.equal(meta.oldest_version, 2)
    assert.deepEqual(Object.keys(meta.versions as object), ['2', '3'])
    const pruned = await call('GET', 'secret/data/pruned?version=1')
    assert.equal(pruned.status, 404)
    assert.deepEqual(pruned.body, {errors: []})
  })

  it('deleted and destroyed versions: 404 with the full envelope and metadata; no fallback; undelete', async () => {
    await call('POST', 'secret/data/myapp/api', {body: {data: {token: 'v2'}}})
    assert.equal((await call('DELETE', 'secret/data/myapp/api')).status, 204)
    const deleted = await call('GET', 'secret/data/myapp/api')
    assert.equal(deleted.status, 404)
    assert.equal(data(deleted).data, null)
    const meta = data(deleted).metadata as {deletion_time: string; destroyed: boolean; version: number}
    assert.equal(meta.version, 2)
    assert.notEqual(meta.deletion_time, '')
    assert.equal(meta.destroyed, false)
    assert.equal((await call('POST', 'secret/undelete/myapp/api', {body: {versions: [2]}})).status, 204)
    assert.equal((await call('GET', 'secret/data/myapp/api')).status, 200)
    await call('POST', 'secret/delete/myapp/api', {body: {versions: [2]}})
    assert.equal((await call('PUT', 'secret/destroy/myapp/api', {body: {versions: [2]}})).status, 204)
    const destroyed = data(await call('GET', 'secret/data/myapp/api')).metadata as {
      deletion_time: string
      destroyed: boolean
    }
    assert.equal(destroyed.destroyed, true)
    assert.notEqual(destroyed.deletion_time, '', 'keeps the earlier deletion_time')
    await call('POST', 'secret/undelete/myapp/api', {body: {versions: [2]}})
    assert.equal((await call('GET', 'secret/data/myapp/api')).status, 404, 'destroyed stays destroyed')
    assert.equal((await call('POST', 'secret/delete/myapp/api', {body: {versions: []}})).status, 400)
    assert.equal((await call('POST', 'secret/destroy/nope', {body: {versions: [1]}})).status, 204, 'no-op')
    assert.equal((await call('DELETE', 'secret/metadata/myapp/api')).status, 204)
    assert.deepEqual((await call('GET', 'secret/metadata/myapp/api')).body, {errors: []})
  })

  it('scheduled deletion follows the fake clock', async () => {
    await call('POST', 'secret/metadata/soon', {body: {delete_version_after: '1h'}})
    await call('POST', 'secret/data/soon', {body: {data: {k: 'v'}}})
    const early = await call('GET', 'secret/data/soon')
    assert.equal(early.status, 200)
    assert.notEqual((data(early).metadata as {deletion_time: string}).deletion_time, '')
    server.state.clock.advance(3601)
    assert.equal((await call('GET', 'secret/data/soon')).status, 404)
  })

  it('CAS: 0 only when absent, else the current version (a soft-deleted one counts); cas_required', async () => {
    assert.equal(
      (await call('POST', 'secret/data/new', {body: {data: {a: 1}, options: {cas: 0}}})).status,
      200,
    )
    const mismatch = await call('POST', 'secret/data/new', {body: {data: {a: 2}, options: {cas: 0}}})
    assert.deepEqual(mismatch.body, {errors: ['check-and-set parameter did not match the current version']})
    await call('DELETE', 'secret/data/new')
    assert.equal(
      (await call('POST', 'secret/data/new', {body: {data: {a: 3}, options: {cas: 1}}})).status,
      200,
    )
    await call('POST', 'secret/metadata/new', {body: {cas_required: true}})
    const required = await call('POST', 'secret/data/new', {body: {data: {a: 4}}})
    assert.deepEqual(required.body, {errors: ['check-and-set parameter required for this call']})
  })

  it('LIST via GET ?list=true|1: sorted keys, folders end in "/", 404 when empty, 400 for a non-boolean', async () => {
    const root = await call('GET', 'secret/metadata?list=true')
    assert.deepEqual((data(root) as {keys: string[]}).keys, ['bulk/', 'myapp/'])
    const folder = await call('GET', 'secret/metadata/myapp/?list=1')
    assert.deepEqual((data(folder) as {keys: string[]}).keys, ['api', 'db'])
    assert.deepEqual((await call('GET', 'secret/metadata/none/?list=1')).body, {errors: []})
    assert.equal((await call('GET', 'secret/metadata/myapp/?list=maybe')).status, 400)
  })

  it('invalid KV v2 path: 404 envelope with warnings; unknown mount: 404 with one error', async () => {
    const invalid = await call('GET', 'secret/myapp/api')
    assert.equal(invalid.status, 404)
    assert.ok(Array.isArray(invalid.body?.warnings) && (invalid.body?.warnings as unknown[]).length === 1)
    assert.ok(!('errors' in (invalid.body ?? {})))
    const unknown = await call('GET', 'nomount/data/x')
    assert.equal(unknown.status, 404)
    assert.equal((unknown.body?.errors as string[]).length, 1)
  })

  it('token auth: header or Bearer (header wins); missing, unknown, revoked or expired → 403; policies', async () => {
    assert.equal((await call('GET', 'secret/data/myapp/api', {token: null})).status, 403)
    assert.equal((await call('GET', 'secret/data/myapp/api', {token: 's.bogus'})).status, 403)
    const bearer = await call('GET', 'secret/data/myapp/api', {
      headers: {Authorization: `Bearer ${tokens.reader}`},
      token: null,
    })
    assert.equal(bearer.status, 200)
    const headerWins = await call('GET', 'secret/data/myapp/api', {
      headers: {Authorization: 'Bearer s.bogus'},
      token: tokens.reader,
    })
    assert.equal(headerWins.status, 200)
    assert.deepEqual(
      (await call('POST', 'secret/data/x', {body: {data: {a: 1}}, token: tokens.reader})).body,
      {
        errors: ['permission denied'],
      },
    )
    assert.equal((await call('DELETE', 'secret/data/myapp/api', {token: tokens.reader})).status, 403)
    assert.equal((await call('GET', 'secret/metadata/?list=1', {token: tokens.reader})).status, 200)
    const short = server.state.createToken({policies: ['reader'], ttl: 10})
    assert.equal((await call('GET', 'secret/data/myapp/api', {token: short.id})).status, 200)
    server.state.clock.advance(11)
    assert.equal((await call('GET', 'secret/data/myapp/api', {token: short.id})).status, 403)
    assert.equal((await call('POST', 'auth/token/revoke-self', {token: tokens.writer})).status, 204)
    assert.equal((await call('GET', 'auth/token/lookup-self', {token: tokens.writer})).status, 403)
  })

  it('lookup-self and renew-self on the fake clock; root has ttl 0 and expire_time null; non-renewable → 400', async () => {
    const token = server.state.createToken({policies: ['reader'], ttl: 100, maxTtl: 150})
    server.state.clock.advance(40)
    const looked = data(await call('GET', 'auth/token/lookup-self', {token: token.id}))
    assert.equal(looked.ttl, 60)
    assert.equal(looked.creation_ttl, 100)
    assert.deepEqual(looked.policies, ['default', 'reader'])
    const renewed = await call('POST', 'auth/token/renew-self', {token: token.id})
    assert.equal((renewed.body?.auth as {lease_duration: number}).lease_duration, 100)
    server.state.clock.advance(90)
    const capped = await call('POST', 'auth/token/renew-self', {token: token.id})
    assert.equal((capped.body?.auth as {lease_duration: number}).lease_duration, 20, 'capped by the max TTL')
    const root = data(await call('GET', 'auth/token/lookup-self'))
    assert.equal(root.ttl, 0)
    assert.equal(root.expire_time, null)
    const fixed = server.state.createToken({renewable: false})
    assert.deepEqual((await call('POST', 'auth/token/renew-self', {token: fixed.id})).body, {
      errors: ['lease is not renewable'],
    })
  })

  it('userpass and approle logins: 200 with auth; bad credentials → 400 with the upstream messages', async () => {
    const user = await call('POST', 'auth/userpass/login/alice', {body: {password: PASSWORD}, token: null})
    const auth = user.body?.auth as {client_token: string; lease_duration: number; policies: string[]}
    assert.equal(user.body?.data, null)
    assert.deepEqual(auth.policies, ['default', 'writer'])
    assert.equal(auth.lease_duration, 1800)
    assert.equal((await call('GET', 'auth/token/lookup-self', {token: auth.client_token})).status, 200)
    assert.deepEqual(
      (await call('POST', 'auth/userpass/login/alice', {body: {password: 'x'}, token: null})).body,
      {
        errors: ['invalid username or password'],
      },
    )
    const role = await call('POST', 'auth/approle/login', {
      body: {role_id: ROLE_ID, secret_id: SECRET_ID},
      token: null,
    })
    assert.equal(role.status, 200)
    assert.deepEqual(
      (await call('POST', 'auth/approle/login', {body: {role_id: ROLE_ID, secret_id: 'no'}, token: null}))
        .body,
      {errors: ['invalid role or secret ID']},
    )
  })

  it('namespaces: header (trailing "/" allowed) and path prefix are equivalent; tokens stay in theirs', async () => {
    server.state.addNamespace('team-a')
    server.state.putSecret('secret', 'app', {k: 'in-a'}, 'team-a')
    const nsToken = server.state.createToken({namespace: 'team-a', root: true}).id
    const byHeader = await call('GET', 'secret/data/app', {
      headers: {'X-Vault-Namespace': 'team-a/'},
      token: nsToken,
    })
    assert.equal((data(byHeader).data as {k: string}).k, 'in-a')
    const byPath = await call('GET', 'team-a/secret/data/app', {token: nsToken})
    assert.equal(byPath.status, 200)
    assert.equal(
      (await call('GET', 'secret/data/app', {token: nsToken})).status,
      403,
      'root-namespace request',
    )
    assert.equal(
      (await call('GET', 'team-a/secret/data/app')).status,
      403,
      'a root token of another namespace',
    )
  })

  it('sealed: 503 everywhere but health (503) and seal-status (200); standby 307 / 429; no active → 503', async () => {
    const sealed = await startOpenBaoServer({mode: {kind: 'sealed'}, state: server.state})
    const standby = await startOpenBaoServer({
      mode: {active: server.url, kind: 'standby'},
      state: server.state,
    })
    const orphan = await startOpenBaoServer({mode: {kind: 'standby'}, state: server.state})
    try {
      const get = async (node: OpenBaoTestServer, path: string) =>
        fetch(`${node.url}/v1/${path}`, {headers: {'X-Vault-Token': tokens.root}, redirect: 'manual'})
      const sealedRead = await get(sealed, 'secret/data/myapp/api')
      assert.equal(sealedRead.status, 503)
      assert.deepEqual(await sealedRead.json(), {errors: ['Vault is sealed']})
      assert.equal((await get(sealed, 'sys/health')).status, 503)
      assert.equal((await get(sealed, 'sys/seal-status')).status, 200)
      const redirected = await get(standby, 'secret/data/myapp/api?version=1')
      assert.equal(redirected.status, 307)
      assert.equal(redirected.headers.get('location'), `${server.url}/v1/secret/data/myapp/api?version=1`)
      const health = await get(standby, 'sys/health')
      assert.equal(health.status, 429)
      assert.equal(((await health.json()) as {standby: boolean}).standby, true)
      assert.equal((await get(orphan, 'secret/data/myapp/api')).status, 503)
      assert.equal((await get(server, 'sys/health')).status, 200)
    } finally {
      await Promise.all([sealed.close(), standby.close(), orphan.close()])
    }
  })

  it('wrapping: X-Vault-Wrap-TTL → wrap envelope; lookup; unwrap once by header or body; bad TTL → 400', async () => {
    const wrapped = await call('GET', 'secret/data/myapp/api', {headers: {'X-Vault-Wrap-TTL': '60s'}})
    const info = wrapped.body?.wrap_info as {creation_path: string; token: string; ttl: number}
    assert.equal(wrapped.body?.data, null)
    assert.equal(info.ttl, 60)
    assert.equal(info.creation_path, 'secret/data/myapp/api')
    assert.ok(!wrapped.text.includes(CANARY))
    const lookup = await call('POST', 'sys/wrapping/lookup', {body: {token: info.token}, token: null})
    assert.equal(data(lookup).creation_ttl, 60)
    const unwrapped = await call('POST', 'sys/wrapping/unwrap', {token: info.token})
    assert.equal(((data(unwrapped).data as {token: string}) ?? {}).token, CANARY)
    assert.deepEqual((await call('POST', 'sys/wrapping/unwrap', {token: info.token})).body, {
      errors: ['wrapping token is not valid or does not exist'],
    })
    const again = (await call('GET', 'secret/data/myapp/api', {headers: {'X-Vault-Wrap-TTL': '1'}})).body
      ?.wrap_info as {token: string}
    assert.equal(
      (await call('POST', 'sys/wrapping/unwrap', {body: {token: again.token}})).status,
      200,
      'body token',
    )
    const expiring = (await call('GET', 'secret/data/myapp/api', {headers: {'X-Vault-Wrap-TTL': '1'}})).body
      ?.wrap_info as {token: string}
    server.state.clock.advance(2)
    assert.equal((await call('POST', 'sys/wrapping/unwrap', {token: expiring.token})).status, 400)
    for (const ttl of ['0', '-5', 'abc'])
      assert.equal(
        (await call('GET', 'secret/data/myapp/api', {headers: {'X-Vault-Wrap-TTL': ttl}})).status,
        400,
        ttl,
      )
  })

  it('faults: 429 with Retry-After, a gate, reset; the log records headers, tokens and overlap', async () => {
    server.faults.rateLimit = {count: 1, retryAfter: 2}
    const limited = await call('GET', 'secret/data/myapp/api')
    assert.equal(limited.status, 429)
    assert.equal(limited.headers.get('retry-after'), '2')
    assert.equal((await call('GET', 'secret/data/myapp/api')).status, 200)
    // The gate answers none of them before all three wait at once.
    server.faults = {gate: {count: 3}}
    server.resetLog()
    await Promise.all(
      [1, 2, 3].map(() => call('GET', 'secret/data/myapp/api', {headers: {'X-Vault-Request': 'true'}})),
    )
    assert.equal(server.maxInFlight, 3)
    assert.equal(server.faults.gate, undefined, 'an opened gate is gone')
    assert.ok(
      server.log.every((entry) => entry.headers['x-vault-request'] === 'true' && entry.token === tokens.root),
    )
    server.faults = {reset: {count: 1}}
    await assert.rejects(call('GET', 'secret/data/myapp/api'))
    assert.equal((await call('GET', 'secret/data/myapp/api')).status, 200)
  })
})
