import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {Backend, UseRequest} from '../../../src/core/backend.js'

import {Session} from '../../../src/core/session.js'
import {callWithSecrets, useSecret} from '../../../src/core/use.js'

const CANARY = 'canary-service-9e2f'

/**
 * Matches an AgentVaultError by code. By code, not instanceof: the service imports the engine
 * lazily, and under tsx a dynamically imported module graph may hold its own copy of errors.ts.
 */
function codeIs(code: string) {
  return (error: unknown) =>
    (error as {category?: string; code?: string}).code === code &&
    Boolean((error as {category?: string}).category)
}

/** A backend that records what it was asked, so tests can see what was touched and in what order. */
function fakeBackend(options: {
  allowedDomains?: string[]
  serverSide?: boolean
}): Backend & {calls: string[]} {
  const calls: string[] = []
  return {
    calls,
    capabilities: {
      auditSource: false,
      delete: false,
      get: !options.serverSide,
      list: false,
      login: false,
      runInjection: false,
      set: false,
      useOperations: ['http_request', 'http_header', 'sign', 'verify', 'encrypt', 'decrypt'],
    },
    async close() {},
    async describe(ref) {
      calls.push(`describe ${ref.canonical}`)
      return {name: ref.path, ...(options.allowedDomains && {allowedDomains: options.allowedDomains})}
    },
    ...(!options.serverSide && {
      async get(ref) {
        calls.push(`get ${ref.canonical}`)
        return Buffer.from(CANARY)
      },
    }),
    kind: 'local',
    async status() {
      return {reachable: true, signedIn: true}
    },
    ...(options.serverSide && {
      async use(ref, request: UseRequest) {
        calls.push(`use ${ref.canonical} ${request.operation}`)
        return {server: true, status: 201}
      },
    }),
  }
}

describe('core/use service', () => {
  let home: string
  let session: Session
  const withBackend = (backend: Backend): void => {
    session.backendFor = async () => backend
  }

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'agentvault-use-service-'))
    session = new Session({command: 'use', env: {AGENTVAULT_HOME: home}, interactive: false, warn() {}})
  })

  afterEach(() => rm(home, {force: true, recursive: true}))

  it('hands the operation to a backend that performs it server-side, and audits its status', async () => {
    const backend = fakeBackend({serverSide: true})
    withBackend(backend)
    const result = await useSecret(session, 'local://K', {
      operation: 'http_request',
      params: {url: 'https://api.example.com/x'},
    })
    assert.deepEqual(result, {server: true, status: 201})
    assert.deepEqual(backend.calls, ['use local://K http_request'])
    assert.equal(session.audit.operation, 'http_request')
    assert.equal(session.audit.targetHost, 'api.example.com')
    assert.equal(session.audit.status, 201)
    assert.deepEqual([...session.audit.references], ['local://K'])
  })

  it('checks parameters and --reveal before touching the secret', async () => {
    const backend = fakeBackend({})
    withBackend(backend)
    await assert.rejects(useSecret(session, 'local://K', {operation: 'http_header', params: {}}), /--reveal/)
    await assert.rejects(useSecret(session, 'local://K', {operation: 'sign', params: {}}), /data/)
    assert.deepEqual(backend.calls, [])
    assert.equal(session.audit.touched, false)
  })

  it('checks the allowlist before reading any value', async () => {
    const backend = fakeBackend({allowedDomains: ['api.example.com']})
    withBackend(backend)
    await assert.rejects(
      callWithSecrets(session, {
        injections: {bearer: 'local://K', query: ['k=local://J']},
        url: 'https://evil.example.net/',
      }),
      codeIs('HOST_NOT_ALLOWED'),
    )
    assert.deepEqual(backend.calls.sort(), ['describe local://J', 'describe local://K'])
    assert.equal(session.audit.targetHost, 'evil.example.net')
  })

  it('runs local operations in the engine with the value and returns only the result', async () => {
    const backend = fakeBackend({})
    withBackend(backend)
    const result = await useSecret(session, 'local://K', {operation: 'sign', params: {data: 'x'}})
    assert.deepEqual(Object.keys(result), ['algorithm', 'signature'])
    assert.ok(!JSON.stringify(result).includes(CANARY))
    assert.deepEqual(backend.calls, ['describe local://K', 'get local://K'])
  })

  it('refuses an --allow-host that is not a host pattern', async () => {
    withBackend(fakeBackend({}))
    await assert.rejects(
      useSecret(
        session,
        'local://K',
        {operation: 'sign', params: {data: 'x'}},
        {allowHosts: ['https://a.example']},
      ),
      codeIs('BAD_HOST_PATTERN'),
    )
  })
})
