/**
 * The Sanctum agent-protocol client (protocols/sanctum.md §4–8, §11): one authenticated session
 * on one connection, both method dialects with negotiation, SESSION_EXPIRED recovery, and lease
 * bookkeeping — every lease taken is released by `close()`.
 */
import type {Debugger} from 'debug'

import type {AgentKey} from './key-file.js'
import type {SanctumSettings} from './settings.js'

import {AuthError, BackendUnavailableError} from '../../core/errors.js'
import {SanctumConnection} from './connection.js'
import {
  cleanText,
  isSessionExpired,
  isUnknownMethodError,
  SanctumDaemonError,
  SanctumProtocolError,
} from './errors.js'

/** A credential as `list` returns it: metadata only. */
export interface SanctumCredential {
  access_count?: number
  created_at?: string
  description?: string
  path: string
  tags?: string[]
  type?: string
  updated_at?: string
}

type Dialect = 'a' | 'b'

interface Method {
  a: string
  b: string
}

const RETRIEVE: Method = {a: 'retrieve', b: 'credential.retrieve'}
const LIST: Method = {a: 'list', b: 'credential.list'}
const USE: Method = {a: 'use', b: 'credential.use'}
const RELEASE: Method = {a: 'release_lease', b: 'lease.release'}

const HEX = /^(?:[0-9a-fA-F]{2})+$/
const utf8 = new TextDecoder('utf-8', {fatal: true})

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function resultObject(value: unknown, method: string): Record<string, unknown> {
  if (!isObject(value)) throw new SanctumProtocolError(`the ${method} result is not an object`)
  return value
}

function challengeBytes(result: Record<string, unknown>, method: string): Buffer {
  const {challenge} = result
  if (typeof challenge !== 'string' || !HEX.test(challenge))
    throw new SanctumProtocolError(`the ${method} result has no hex challenge`)
  return Buffer.from(challenge, 'hex')
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? cleanText(value) : undefined
}

function credentialOf(entry: unknown): SanctumCredential {
  if (!isObject(entry) || typeof entry.path !== 'string' || entry.path === '')
    throw new SanctumProtocolError('a list entry has no path')
  const tags = Array.isArray(entry.tags)
    ? entry.tags.filter((tag): tag is string => typeof tag === 'string').map((tag) => cleanText(tag))
    : undefined
  const credential: SanctumCredential = {path: cleanText(entry.path)}
  const type = optionalString(entry.type)
  const description = optionalString(entry.description)
  const created = optionalString(entry.created_at)
  const updated = optionalString(entry.updated_at)
  if (type !== undefined) credential.type = type
  if (description !== undefined) credential.description = description
  if (tags !== undefined) credential.tags = tags
  if (created !== undefined) credential.created_at = created
  if (updated !== undefined) credential.updated_at = updated
  if (typeof entry.access_count === 'number') credential.access_count = entry.access_count
  return credential
}

export interface SanctumClientOptions {
  /** Load (or prompt for) the agent key; called once, before the first connection. */
  loadKey(): Promise<AgentKey>
  log: Debugger
  settings: SanctumSettings & {agent: string}
}

export class SanctumClient {
  /** Connections opened so far (1 unless the daemon closed one after SESSION_EXPIRED). */
  connections = 0
  /** The dialect in use, once negotiated. */
  dialect?: Dialect
  private closed = false
  private connection?: SanctumConnection
  /** Bumped by every completed handshake, so concurrent SESSION_EXPIRED answers re-authenticate once. */
  private generation = 0
  private readonly inflight = new Set<Promise<unknown>>()
  private key?: AgentKey
  private readonly leases = new Set<string>()
  private ready?: Promise<void>
  private reauthenticating?: Promise<void>
  private sessionId?: string

  constructor(private readonly options: SanctumClientOptions) {}

  /** Whether a connection to the daemon was ever established (for `status`). */
  get reached(): boolean {
    return this.connections > 0
  }

  /** Release every recorded lease (pipelined, errors counted not thrown), then end the socket. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.ready?.catch(() => {})
    // A lease taken by a request still in flight must be released too.
    await Promise.allSettled(this.inflight)
    const leases = [...this.leases]
    this.leases.clear()
    const {connection} = this
    if (leases.length > 0) {
      let failed = leases.length
      if (connection?.isOpen) {
        const method = RELEASE[this.dialect ?? 'a']
        const results = await Promise.allSettled(
          leases.map((lease) => connection.request(method, {lease_id: lease})),
        )
        failed = results.filter((result) => result.status === 'rejected').length
      }

      this.options.log('sanctum: released %d leases, %d failed', leases.length - failed, failed)
    }

    await connection?.close()
    this.key?.close()
  }

  /** Load the key (before any traffic), connect and authenticate. Safe to call repeatedly. */
  connect(): Promise<void> {
    this.ready ??= (async () => {
      this.key = await this.options.loadKey()
      await this.handshake(await this.openConnection())
    })()
    return this.ready
  }

  /** Every credential the agent's policies allow. */
  async list(): Promise<SanctumCredential[]> {
    const result = await this.call(LIST, (dialect) => (dialect === 'a' ? {session_id: this.sessionId} : {}))
    const entries = Array.isArray(result) ? result : isObject(result) ? result.credentials : undefined
    if (!Array.isArray(entries)) throw new SanctumProtocolError('the list result has no credentials array')
    return entries.map((entry) => credentialOf(entry))
  }

  /** Retrieve a value (recording its lease). The caller owns the Buffer. */
  async retrieve(path: string, ttl?: number): Promise<Buffer> {
    const result = resultObject(
      await this.call(
        RETRIEVE,
        (dialect) => ({
          ...(dialect === 'a' ? {session_id: this.sessionId} : {}),
          path,
          ...(ttl === undefined ? {} : {ttl}),
        }),
        path,
      ),
      'retrieve',
    )
    const lease = result.lease_id
    if (typeof lease !== 'string' || lease === '')
      throw new SanctumProtocolError(`the retrieve result for ${path} has no lease_id`)
    this.leases.add(lease)
    return this.decodeValue(result.value, path)
  }

  /** Perform a use operation on the daemon; the secret never leaves it. */
  async use(
    path: string,
    operation: string,
    params: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const empty = Object.keys(params).length === 0
    const result = await this.call(
      USE,
      (dialect) =>
        dialect === 'a'
          ? {session_id: this.sessionId, path, operation, ...(empty ? {} : {params})}
          : {path, operation, params},
      path,
    )
    if (this.dialect === 'a') return isObject(result) ? result : {output: result}
    const envelope = resultObject(result, 'credential.use')
    if (envelope.success === false) {
      const output =
        typeof envelope.output === 'string' ? envelope.output : JSON.stringify(envelope.output ?? null)
      throw new BackendUnavailableError(
        'SANCTUM_USE_FAILED',
        `Sanctum could not perform ${operation} with ${path}: ${cleanText(output)}`,
        {
          suggestion: 'Check the operation’s parameters; the daemon’s logs on the vault host say more.',
          details: {method: 'credential.use', operation, path},
        },
      )
    }

    const output = 'output' in envelope ? envelope.output : envelope
    return isObject(output) ? output : {output}
  }

  /**
   * Send a request in the session's dialect. On SESSION_EXPIRED (nothing was done) sign in again
   * once — shared by every request that saw the same expiry — and retry once.
   */
  private async call(
    method: Method,
    params: (dialect: Dialect) => Record<string, unknown>,
    path?: string,
  ): Promise<unknown> {
    if (this.closed) throw new BackendUnavailableError('SANCTUM_CLOSED', 'The Sanctum session is closed')
    await this.connect()
    const attempt = async (): Promise<unknown> => {
      let retried = false
      for (;;) {
        const {generation} = this
        const dialect = this.dialect as Dialect
        try {
          return await (this.connection as SanctumConnection).request(method[dialect], params(dialect), path)
        } catch (error) {
          if (retried || !isSessionExpired(error)) throw error
          retried = true
          this.options.log('session expired; signing in again')
          await this.reauthenticate(generation)
        }
      }
    }

    const pending = attempt()
    this.inflight.add(pending)
    try {
      return await pending
    } finally {
      this.inflight.delete(pending)
    }
  }

  private decodeValue(value: unknown, path: string): Buffer {
    if (this.dialect === 'b') {
      if (value === undefined) throw new SanctumProtocolError(`the retrieve result for ${path} has no value`)
      return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8')
    }

    if (typeof value !== 'string' || !HEX.test(value))
      throw new SanctumProtocolError(`the value for ${path} is not hex`)
    const bytes = Buffer.from(value, 'hex')
    try {
      utf8.decode(bytes)
    } catch {
      bytes.fill(0)
      throw new SanctumProtocolError(`the value for ${path} is not valid UTF-8`)
    }

    return bytes
  }

  /** §4–5: Dialect A first unless told otherwise; B on an unknown-method answer when `auto`. */
  private async handshake(connection: SanctumConnection): Promise<void> {
    const configured = this.options.settings.dialect
    const dialect: 'auto' | Dialect = this.dialect ?? configured
    if (dialect === 'b') return this.handshakeB(connection)
    try {
      await this.handshakeA(connection)
    } catch (error) {
      if (!isUnknownMethodError(error)) throw error
      if (dialect === 'auto') {
        this.options.log('authenticate is unknown to the daemon; trying dialect B')
        try {
          return await this.handshakeB(connection)
        } catch (fallbackError) {
          // §15: a daemon that hangs up after an unknown method is not redialled.
          if (
            !(fallbackError instanceof BackendUnavailableError) ||
            fallbackError.code !== 'SANCTUM_CONNECTION_CLOSED'
          )
            throw fallbackError
          throw new BackendUnavailableError(fallbackError.code, fallbackError.message, {
            suggestion:
              'The daemon refused dialect A and then closed the connection: if it speaks dialect B, set dialect: "b" in the profile (`agentvault login sanctum --dialect b`).',
            details: fallbackError.details,
          })
        }
      }

      throw new SanctumDaemonError(
        {
          code: error.wireCode ?? 'METHOD_NOT_FOUND',
          message: error.wireMessage,
          suggestion:
            'The daemon does not speak dialect A: set dialect: "b" in the profile (or `agentvault login sanctum --dialect b`).',
        },
        {method: 'authenticate'},
      )
    }
  }

  private async handshakeA(connection: SanctumConnection): Promise<void> {
    const {agent} = this.options.settings
    const first = resultObject(await connection.request('authenticate', {agent_name: agent}), 'authenticate')
    const sessionId = first.session_id
    if (typeof sessionId !== 'string' || sessionId === '')
      throw new SanctumProtocolError('the authenticate result has no session_id')
    const signature = this.sign(challengeBytes(first, 'authenticate'))
    const second = resultObject(
      await connection.request('challenge_response', {session_id: sessionId, signature}),
      'challenge_response',
    )
    this.confirm(second)
    this.sessionId = sessionId
    this.signedIn('a')
  }

  private async handshakeB(connection: SanctumConnection): Promise<void> {
    const {agent} = this.options.settings
    const first = resultObject(await connection.request('auth.challenge', {agent}), 'auth.challenge')
    const signature = this.sign(challengeBytes(first, 'auth.challenge'))
    this.confirm(resultObject(await connection.request('auth.verify', {agent, signature}), 'auth.verify'))
    this.signedIn('b')
  }

  private confirm(result: Record<string, unknown>): void {
    if (result.authenticated !== true)
      throw new AuthError('SANCTUM_NOT_AUTHENTICATED', 'Authentication not confirmed by the Sanctum daemon', {
        suggestion: `Check that agent ${this.options.settings.agent} is registered with this key's public key.`,
      })
  }

  private signedIn(dialect: Dialect): void {
    this.dialect = dialect
    this.generation += 1
    this.options.log('signed in as %s (dialect %s)', this.options.settings.agent, dialect)
  }

  private async openConnection(): Promise<SanctumConnection> {
    const {settings} = this.options
    this.connection = await SanctumConnection.open(settings.endpoint, {
      log: this.options.log,
      maxFrameBytes: settings.maxFrameBytes,
      timeoutMs: settings.timeoutMs,
    })
    this.connections += 1
    return this.connection
  }

  /** Sign in again, once per expiry; on a new connection if the daemon closed the old one. */
  private reauthenticate(generation: number): Promise<void> {
    if (this.reauthenticating) return this.reauthenticating
    if (this.generation !== generation) return Promise.resolve()
    this.reauthenticating = (async () => {
      try {
        const current = this.connection?.isOpen ? this.connection : undefined
        try {
          await this.handshake(current ?? (await this.openConnection()))
        } catch (error) {
          // The daemon may hang up right after answering SESSION_EXPIRED: dial again, once.
          if (!current || current.isOpen) throw error
          await this.handshake(await this.openConnection())
        }
      } finally {
        this.reauthenticating = undefined
      }
    })()
    return this.reauthenticating
  }

  private sign(challenge: Buffer): string {
    return (this.key as AgentKey).sign(challenge).toString('hex')
  }
}
