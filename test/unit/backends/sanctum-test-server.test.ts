/**
 * The test daemon itself (protocols/sanctum.md §14), spoken to with raw frames: the rules the
 * client tests rely on but never provoke on their own.
 */
import assert from 'node:assert/strict'
import {createConnection, type Socket} from 'node:net'

import {VECTOR} from '../../servers/sanctum/fixtures.js'
import {AGENT, startStandardServer} from '../../servers/sanctum/harness.js'
import {type SanctumTestServer} from '../../servers/sanctum/server.js'

/** A bare client: send objects, read whole frames (or learn that the server hung up). */
class RawClient {
  private buffer = Buffer.alloc(0)
  private closed = false
  private readonly waiters: Array<() => void> = []

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk])
      this.wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake()
    })
  }

  static async open(path: string): Promise<RawClient> {
    const socket = createConnection({path})
    await new Promise<void>((resolve) => {
      socket.once('connect', () => resolve())
    })
    return new RawClient(socket)
  }

  end(): void {
    this.socket.destroy()
  }

  /** The next frame's raw payload, or undefined once the server closed the connection. */
  async next(): Promise<string | undefined> {
    for (;;) {
      if (this.buffer.length >= 4) {
        const length = this.buffer.readUInt32BE(0)
        if (this.buffer.length >= 4 + length) {
          const payload = this.buffer.subarray(4, 4 + length).toString('utf8')
          this.buffer = this.buffer.subarray(4 + length)
          return payload
        }
      }

      if (this.closed) return undefined
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
      })
    }
  }

  async request(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.send(message)
    const payload = await this.next()
    assert.ok(payload !== undefined, 'the server hung up')
    return JSON.parse(payload) as Record<string, unknown>
  }

  send(message: Record<string, unknown> | string): void {
    const payload = Buffer.from(typeof message === 'string' ? message : JSON.stringify(message))
    const header = Buffer.alloc(4)
    header.writeUInt32BE(payload.length, 0)
    this.socket.write(Buffer.concat([header, payload]))
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter()
  }
}

describe('sanctum test daemon (§14)', () => {
  let server: SanctumTestServer
  let client: RawClient

  beforeEach(async () => {
    server = await startStandardServer({fixedChallenge: Buffer.from(VECTOR.challengeHex, 'hex')})
    client = await RawClient.open(server.socketPath)
  })

  afterEach(async () => {
    client.end()
    await server.close()
  })

  it('echoes the id, answers compact JSON, and refuses calls before the handshake (AUTH_FAILED)', async () => {
    client.send({id: 7, method: 'retrieve', params: {path: 'openai/api_key'}})
    const payload = await client.next()
    assert.equal(payload, JSON.stringify(JSON.parse(payload as string)), 'compact')
    const answer = JSON.parse(payload as string)
    assert.equal(answer.id, 7)
    assert.equal(answer.error.code, 'AUTH_FAILED')
    assert.equal(
      (
        (await client.request({id: 8, method: 'release_lease', params: {lease_id: 'x'}})).error as {
          code: string
        }
      ).code,
      'AUTH_FAILED',
    )
    assert.equal(
      ((await client.request({id: 9, method: 'credential.list', params: {}})).error as {code: string}).code,
      'AUTH_FAILED',
    )
  })

  it('dialect A: a missing or unknown session_id is AUTH_FAILED; the §13 signature signs in', async () => {
    const first = await client.request({id: 1, method: 'authenticate', params: {agent_name: AGENT}})
    assert.deepEqual(first.result, {session_id: 's-1', challenge: VECTOR.challengeHex})
    const verified = await client.request({
      id: 2,
      method: 'challenge_response',
      params: {session_id: 's-1', signature: VECTOR.signatureHex},
    })
    assert.deepEqual(verified.result, {authenticated: true})
    for (const params of [{path: 'openai/api_key'}, {session_id: 's-9', path: 'openai/api_key'}]) {
      const refused = await client.request({id: 3, method: 'retrieve', params})
      assert.equal((refused.error as {code: string}).code, 'AUTH_FAILED')
    }

    const value = await client.request({
      id: 4,
      method: 'retrieve',
      params: {session_id: 's-1', path: 'openai/api_key'},
    })
    assert.deepEqual(value.result, {value: VECTOR.valueHex, lease_id: 'lease_1', ttl: 300})
    const unknown = await client.request({id: 5, method: 'release_lease', params: {lease_id: 'lease_99'}})
    assert.equal((unknown.error as {code: string}).code, 'NOT_FOUND')
    assert.deepEqual(
      (await client.request({id: 6, method: 'release_lease', params: {lease_id: 'lease_1'}})).result,
      {},
    )
  })

  it('a bad signature and an unknown agent: AUTH_FAILED', async () => {
    await client.request({id: 1, method: 'authenticate', params: {agent_name: AGENT}})
    const bad = await client.request({
      id: 2,
      method: 'challenge_response',
      params: {session_id: 's-1', signature: '00'.repeat(64)},
    })
    assert.equal((bad.error as {code: string}).code, 'AUTH_FAILED')
    const stranger = await client.request({id: 3, method: 'auth.challenge', params: {agent: 'stranger'}})
    assert.equal((stranger.error as {code: string}).code, 'AUTH_FAILED')
  })

  for (const [style, expected] of [
    ['string', 'Unknown method: authenticate'],
    ['object', {code: 'BAD_REQUEST', message: 'Unknown method: authenticate'}],
    ['code', {code: 'METHOD_NOT_FOUND', message: 'no such call'}],
  ] as const) {
    it(`dialect "b" answers a dialect A name with an unknown-method error (${style})`, async () => {
      server.config.dialect = 'b'
      server.config.unknownMethodStyle = style
      const answer = await client.request({id: 1, method: 'authenticate', params: {agent_name: AGENT}})
      assert.deepEqual(answer.error, expected)
    })
  }

  it('closes the connection on an incoming frame over its cap', async () => {
    server.config.maxFrameBytes = 64
    client.send({id: 1, method: 'authenticate', params: {agent_name: 'x'.repeat(100)}})
    assert.equal(await client.next(), undefined)
  })

  it('per-method delays hold the answer back', async () => {
    server.config.delays = {authenticate: 50}
    const started = Date.now()
    await client.request({id: 1, method: 'authenticate', params: {agent_name: AGENT}})
    assert.ok(Date.now() - started >= 45)
  })
})
