/**
 * A protocol-faithful Sanctum daemon for tests (protocols/sanctum.md §14): both dialects over a
 * Unix socket and TCP on 127.0.0.1, a real Ed25519 challenge-response (verified with Node's own
 * crypto, independently of the client's tweetnacl), policies, leases with TTLs, rate limits, a lock,
 * session expiry, use operations performed for real, and injectable faults of every kind the
 * client must survive. Written from the spec, sharing no code with the client.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPublicKey,
  randomBytes,
  verify,
} from 'node:crypto'
import {EventEmitter} from 'node:events'
import {mkdtemp, rm} from 'node:fs/promises'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

export type ServerDialect = 'a' | 'b' | 'both'
export type Action = 'list' | 'retrieve' | 'use'

/** A wire error: a structured object, or a plain string. */
export type WireError = Record<string, unknown> | string

export interface Policy {
  actions?: Action[]
  /** Agent-name glob (`*` matches anything). */
  agent: string
  maxTtl?: number
  /** Allowed use operations; all when absent. */
  operations?: string[]
  /** Credential-path globs. */
  paths: string[]
}

export interface StoredCredential {
  description?: string
  tags?: string[]
  type?: string
  value: string
  /** Sent instead of the encoded value (bad hex in A, a non-string in B). */
  wireValue?: unknown
}

/** A fault for the next matching request(s). */
export type Injection =
  | {kind: 'close-mid-frame'}
  /** An error whose message quotes the request's params, as a careless daemon's validation does. */
  | {kind: 'echo-error'}
  | {kind: 'error'; error: WireError; /** Then end the connection. */ hangUp?: boolean}
  | {kind: 'hang-up'}
  | {kind: 'never-answer'}
  | {kind: 'oversize'; declared: number}
  | {kind: 'raw'; bytes: Buffer}
  | {kind: 'result'; result: unknown}
  | {kind: 'stray-id'}

interface PendingInjection {
  injection: Injection
  method: string
  path?: string
  remaining: number
}

export interface WriteMode {
  /** `whole` (default), `chunks` (K writes, one split inside the header) or `bytes` (one per byte). */
  kind: 'bytes' | 'chunks' | 'whole'
  chunks?: number
  pauseMs?: number
}

export interface ServerConfig {
  agents: Record<string, string>
  /** Answer `{authenticated: false}` to a good signature. */
  confirmAuthentication: boolean
  credentials: Record<string, StoredCredential>
  /** Per-method delay before answering, in ms. */
  delays: Record<string, number>
  denialCode: 'ACCESS_DENIED' | 'POLICY_DENIED'
  dialect: ServerDialect
  errorStyle: 'object' | 'string'
  /** The challenge to send (hex of 32 random bytes when absent). */
  fixedChallenge?: Buffer
  /** Hold `count` answers of `method`, then write them reversed and/or in one write. */
  hold?: {count: number; method: string; oneWrite?: boolean; reverse?: boolean}
  locked: boolean
  /** Server-side cap on incoming frames: larger ones close the connection. */
  maxFrameBytes: number
  now(): number
  policies: Policy[]
  rateLimit?: {limit: number; windowMs: number}
  sessionLifetimeMs?: number
  /** `host:port` targets http_request may reach despite the SSRF rules. */
  ssrfAllowlist: string[]
  unknownLeaseOk: boolean
  unknownMethodStyle: 'code' | 'object' | 'string'
  write: WriteMode
}

export interface TranscriptFrame {
  message: Record<string, unknown>
  raw: Buffer
}

export interface ConnectionRecord {
  closed: boolean
  frames: TranscriptFrame[]
  id: number
}

export interface Lease {
  agent: string
  expiresAt: number
  id: string
  path: string
  state: 'active' | 'expired' | 'released'
  ttl: number
}

interface Session {
  agent: string
  challenge: Buffer
  createdAt: number
  expired: boolean
  id: string
  verified: boolean
}

interface ConnectionState {
  /** Dialect B: the agent whose challenge is pending. */
  challenge?: {agent: string; bytes: Buffer}
  /** The agent this connection signed in as (either dialect). */
  agent?: string
  record: ConnectionRecord
  /** Dialect B: the session bound to the connection. */
  session?: Session
  socket: Socket
  writes: Promise<void>
}

class Reply {
  constructor(
    readonly body: Record<string, unknown>,
    readonly injection?: Injection,
  ) {}
}

class Fault extends Error {
  constructor(readonly wire: WireError) {
    super(typeof wire === 'string' ? wire : String(wire.message))
  }
}

/** A use operation that could not be performed: dialect B answers it as `{success: false}`. */
function failed(message: string): Fault {
  return new Fault({code: 'OPERATION_FAILED', message})
}

const METHODS_A = new Set(['authenticate', 'challenge_response', 'list', 'release_lease', 'retrieve', 'use'])
const METHODS_B = new Set([
  'auth.challenge',
  'auth.verify',
  'credential.list',
  'credential.retrieve',
  'credential.use',
  'lease.release',
])
const MAX_TTL = 300
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

function globRegExp(glob: string): RegExp {
  const escaped = glob
    .replaceAll(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.')
  return new RegExp(`^${escaped}$`)
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** §8 / AGENTS.md: private, loopback and link-local targets (plus 172.16/12 and ::1). */
function isBlockedTarget(url: URL): boolean {
  if (url.protocol === 'file:') return true
  const host = url.hostname.replaceAll(/^\[|\]$/g, '')
  if (host === 'localhost' || host === '::1' || host === '0.0.0.0') return true
  const octets = host.split('.').map(Number)
  if (octets.length === 4 && octets.every((o) => Number.isInteger(o) && o >= 0 && o <= 255)) {
    const [a, b] = octets as [number, number]
    return (
      a === 127 ||
      a === 10 ||
      (a === 192 && b === 168) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31)
    )
  }

  return false
}

export function defaultConfig(): ServerConfig {
  return {
    agents: {},
    confirmAuthentication: true,
    credentials: {},
    delays: {},
    denialCode: 'ACCESS_DENIED',
    dialect: 'both',
    errorStyle: 'object',
    locked: false,
    maxFrameBytes: 16 * 1024 * 1024,
    now: () => Date.now(),
    policies: [],
    ssrfAllowlist: [],
    unknownLeaseOk: false,
    unknownMethodStyle: 'string',
    write: {kind: 'whole'},
  }
}

/**
 * The test daemon. `config` is live: tests change it between (or during) commands. Events:
 * `request` (method, params, connection id) as each request is read.
 */
export class SanctumTestServer extends EventEmitter {
  readonly config: ServerConfig
  /** Every connection ever accepted, with its transcript. */
  readonly connections: ConnectionRecord[] = []
  readonly leases = new Map<string, Lease>()
  socketPath = ''
  readonly stats = {challenges: 0, connections: 0, handshakes: 0, requests: 0}
  tcpPort = 0
  private dir = ''
  private expireAfterCalls?: number
  private readonly held: Array<{body: Record<string, unknown>; state: ConnectionState}> = []
  private readonly injections: PendingInjection[] = []
  private leaseCounter = 0
  private readonly live = new Set<ConnectionState>()
  private readonly rate = new Map<string, {count: number; windowStart: number}>()
  private readonly servers: Server[] = []
  private sessionCounter = 0
  private readonly sessions = new Map<string, Session>()

  constructor(config: Partial<ServerConfig> = {}) {
    super()
    this.config = {...defaultConfig(), ...config}
  }

  /** Stop listening, drop every connection, remove the socket directory. */
  async close(): Promise<void> {
    for (const state of this.live) state.socket.destroy()
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve())
          }),
      ),
    )
    this.servers.length = 0
    if (this.dir) await rm(this.dir, {force: true, recursive: true})
  }

  /** Expire every current session once `calls` more session-using requests have been served. */
  expireSessionsAfter(calls: number): void {
    this.expireAfterCalls = calls
  }

  /** Expire every current session now. */
  expireSessions(): void {
    for (const session of this.sessions.values()) session.expired = true
    for (const state of this.live) if (state.session) state.session.expired = true
  }

  /** Apply `injection` to the next `count` requests of `method` (optionally only for `path`). */
  inject(method: string, injection: Injection, options: {count?: number; path?: string} = {}): void {
    this.injections.push({injection, method, path: options.path, remaining: options.count ?? 1})
  }

  /** Listen on a Unix socket in a fresh temp dir and on TCP 127.0.0.1 (port 0). */
  async listen(): Promise<{port: number; socketPath: string}> {
    this.dir = await mkdtemp(join(tmpdir(), 'sanctum-test-'))
    this.socketPath = join(this.dir, 'vault.sock')
    const onConnection = this.accept.bind(this)
    const unix = createServer(onConnection)
    const tcp = createServer(onConnection)
    this.servers.push(unix, tcp)
    await new Promise<void>((resolve, reject) => {
      unix.once('error', reject)
      unix.listen(this.socketPath, () => resolve())
    })
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject)
      tcp.listen(0, '127.0.0.1', () => resolve())
    })
    this.tcpPort = (tcp.address() as {port: number}).port
    return {port: this.tcpPort, socketPath: this.socketPath}
  }

  /** Leases neither released nor settled by an expired release: what a client left behind. */
  outstandingLeases(): Lease[] {
    return [...this.leases.values()].filter((lease) => lease.state === 'active')
  }

  /** Register an agent by its 32-byte Ed25519 public key (hex). */
  registerAgent(name: string, publicKeyHex: string): void {
    this.config.agents[name] = publicKeyHex
  }

  /** Forget counters, transcripts, leases, sessions and pending faults (config stays). */
  reset(): void {
    this.connections.length = 0
    this.leases.clear()
    this.sessions.clear()
    this.injections.length = 0
    this.held.length = 0
    this.rate.clear()
    this.expireAfterCalls = undefined
    Object.assign(this.stats, {challenges: 0, connections: 0, handshakes: 0, requests: 0})
  }

  /** Every request of every connection, parsed, in arrival order. */
  requests(): Array<Record<string, unknown>> {
    return this.connections.flatMap((connection) => connection.frames.map((frame) => frame.message))
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true)
    this.stats.connections += 1
    const record: ConnectionRecord = {closed: false, frames: [], id: this.stats.connections}
    this.connections.push(record)
    const state: ConnectionState = {record, socket, writes: Promise.resolve()}
    this.live.add(state)
    let buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      while (buffer.length >= 4) {
        const length = buffer.readUInt32BE(0)
        if (length > this.config.maxFrameBytes) {
          socket.destroy()
          return
        }

        if (buffer.length < 4 + length) break
        const raw = buffer.subarray(0, 4 + length)
        buffer = buffer.subarray(4 + length)
        let message: unknown
        try {
          message = JSON.parse(raw.subarray(4).toString('utf8'))
        } catch {
          socket.destroy()
          return
        }

        if (!isObject(message)) {
          socket.destroy()
          return
        }

        record.frames.push({message, raw: Buffer.from(raw)})
        this.receive(state, message)
      }
    })
    socket.on('close', () => {
      record.closed = true
      this.live.delete(state)
    })
    socket.on('error', () => {})
  }

  private authenticated(
    state: ConnectionState,
    dialect: 'a' | 'b',
    params: Record<string, unknown>,
  ): Session {
    let session: Session | undefined
    if (dialect === 'a') {
      const id = params.session_id
      session = typeof id === 'string' ? this.sessions.get(id) : undefined
      if (!session || !session.verified)
        throw this.fault('AUTH_FAILED', 'Not authenticated', 'missing or unknown session_id')
    } else {
      session = state.session
      if (!session) throw this.fault('AUTH_FAILED', 'Not authenticated', 'authenticate this connection first')
    }

    const lifetime = this.config.sessionLifetimeMs
    if (session.expired || (lifetime !== undefined && this.config.now() - session.createdAt >= lifetime))
      throw this.fault('SESSION_EXPIRED', 'Session expired', 'sign in again')
    if (this.expireAfterCalls !== undefined) {
      this.expireAfterCalls -= 1
      if (this.expireAfterCalls <= 0) {
        this.expireAfterCalls = undefined
        // This call is served; every session existing now expires for the calls after it.
        this.expireSessions()
      }
    }

    return session
  }

  private allowed(agent: string, path: string, action: Action, operation?: string): Policy[] {
    return this.config.policies.filter(
      (policy) =>
        globRegExp(policy.agent).test(agent) &&
        policy.paths.some((glob) => globRegExp(glob).test(path)) &&
        (policy.actions ?? ['list', 'retrieve', 'use']).includes(action) &&
        (operation === undefined || !policy.operations || policy.operations.includes(operation)),
    )
  }

  private challenge(agent: unknown): Buffer {
    if (typeof agent !== 'string' || !this.config.agents[agent])
      throw this.fault('AUTH_FAILED', 'Authentication failed', 'unknown agent')
    this.stats.challenges += 1
    return this.config.fixedChallenge ?? randomBytes(32)
  }

  private checkPolicy(agent: string, path: string, action: Action, operation?: string): Policy[] {
    const policies = this.allowed(agent, path, action, operation)
    if (policies.length === 0)
      throw this.fault(this.config.denialCode, 'Access denied', `no policy lets ${agent} ${action} ${path}`, {
        action,
        path,
      })
    return policies
  }

  private checkRate(agent: string): void {
    const limit = this.config.rateLimit
    if (!limit) return
    const now = this.config.now()
    const entry = this.rate.get(agent)
    if (!entry || now - entry.windowStart >= limit.windowMs) {
      this.rate.set(agent, {count: 1, windowStart: now})
      return
    }

    entry.count += 1
    if (entry.count > limit.limit)
      throw this.fault('RATE_LIMITED', 'Rate limit exceeded', `more than ${limit.limit} calls`, {
        limit: limit.limit,
        window_s: limit.windowMs / 1000,
      })
  }

  private credential(path: string): StoredCredential {
    const credential = this.config.credentials[path]
    if (!credential)
      throw this.fault('CREDENTIAL_NOT_FOUND', 'Credential not found', `no credential at ${path}`)
    return credential
  }

  private async dispatch(
    state: ConnectionState,
    method: string,
    params: Record<string, unknown>,
  ): Promise<unknown> {
    const dialect = METHODS_A.has(method) ? 'a' : 'b'
    switch (method) {
      case 'authenticate': {
        const bytes = this.challenge(params.agent_name)
        this.sessionCounter += 1
        const session: Session = {
          agent: params.agent_name as string,
          challenge: bytes,
          createdAt: this.config.now(),
          expired: false,
          id: `s-${this.sessionCounter}`,
          verified: false,
        }
        this.sessions.set(session.id, session)
        return {session_id: session.id, challenge: bytes.toString('hex')}
      }

      case 'challenge_response': {
        const session =
          typeof params.session_id === 'string' ? this.sessions.get(params.session_id) : undefined
        if (!session) throw this.fault('AUTH_FAILED', 'Authentication failed', 'unknown session_id')
        this.verifySignature(session.agent, session.challenge, params.signature)
        if (!this.config.confirmAuthentication) return {authenticated: false}
        session.verified = true
        session.createdAt = this.config.now()
        state.agent = session.agent
        this.stats.handshakes += 1
        return {authenticated: true}
      }

      case 'auth.challenge': {
        const bytes = this.challenge(params.agent)
        state.challenge = {agent: params.agent as string, bytes}
        return {challenge: bytes.toString('hex')}
      }

      case 'auth.verify': {
        const pending = state.challenge
        if (!pending || pending.agent !== params.agent)
          throw this.fault('AUTH_FAILED', 'Authentication failed', 'no challenge for this agent')
        state.challenge = undefined
        this.verifySignature(pending.agent, pending.bytes, params.signature)
        if (!this.config.confirmAuthentication) return {authenticated: false}
        this.sessionCounter += 1
        state.session = {
          agent: pending.agent,
          challenge: pending.bytes,
          createdAt: this.config.now(),
          expired: false,
          id: `s-${this.sessionCounter}`,
          verified: true,
        }
        state.agent = pending.agent
        this.stats.handshakes += 1
        return {authenticated: true, session_id: state.session.id}
      }

      case 'retrieve':
      case 'credential.retrieve': {
        const session = this.authenticated(state, dialect, params)
        const path = String(params.path)
        this.gate(session.agent)
        const policies = this.checkPolicy(session.agent, path, 'retrieve')
        const credential = this.credential(path)
        const requested = typeof params.ttl === 'number' ? params.ttl : MAX_TTL
        const ttl = Math.min(requested, MAX_TTL, ...policies.map((policy) => policy.maxTtl ?? MAX_TTL))
        this.leaseCounter += 1
        const lease: Lease = {
          agent: session.agent,
          expiresAt: this.config.now() + ttl * 1000,
          id: `lease_${this.leaseCounter}`,
          path,
          state: 'active',
          ttl,
        }
        this.leases.set(lease.id, lease)
        const value =
          'wireValue' in credential
            ? credential.wireValue
            : dialect === 'a'
              ? Buffer.from(credential.value, 'utf8').toString('hex')
              : credential.value
        return dialect === 'a'
          ? {value, lease_id: lease.id, ttl}
          : {path, value, lease_id: lease.id, ttl, expires_at: new Date(lease.expiresAt).toISOString()}
      }

      case 'list':
      case 'credential.list': {
        const session = this.authenticated(state, dialect, params)
        this.gate(session.agent)
        const entries = Object.entries(this.config.credentials)
          .filter(([path]) => this.allowed(session.agent, path, 'list').length > 0)
          .map(([path, credential]) => ({
            path,
            ...(credential.type === undefined ? {} : {type: credential.type}),
            ...(credential.description === undefined ? {} : {description: credential.description}),
            tags: credential.tags ?? [],
            created_at: '2026-01-01T00:00:00Z',
            access_count: 0,
          }))
        return dialect === 'a' ? {credentials: entries} : entries
      }

      case 'release_lease':
      case 'lease.release': {
        if (!state.agent)
          throw this.fault('AUTH_FAILED', 'Not authenticated', 'authenticate this connection first')
        const lease = typeof params.lease_id === 'string' ? this.leases.get(params.lease_id) : undefined
        if (!lease || lease.state !== 'active' || lease.agent !== state.agent) {
          if (this.config.unknownLeaseOk) return {}
          throw this.fault('NOT_FOUND', 'Lease not found', 'unknown lease id')
        }

        if (this.config.now() >= lease.expiresAt) {
          lease.state = 'expired'
          throw this.fault('LEASE_EXPIRED', 'Lease expired', `lease ${lease.id} expired`)
        }

        lease.state = 'released'
        return {}
      }

      case 'use':
      case 'credential.use': {
        const session = this.authenticated(state, dialect, params)
        const path = String(params.path)
        const operation = String(params.operation)
        this.gate(session.agent)
        this.checkPolicy(session.agent, path, 'use', operation)
        const credential = this.credential(path)
        const opParams = isObject(params.params) ? params.params : {}
        if (dialect === 'a') return this.perform(operation, opParams, credential.value)
        try {
          return {success: true, output: await this.perform(operation, opParams, credential.value)}
        } catch (error) {
          if (error instanceof Fault && isObject(error.wire) && error.wire.code === 'OPERATION_FAILED')
            return {success: false, output: error.wire.message}
          throw error
        }
      }

      default: {
        throw new Fault('Unknown method')
      }
    }
  }

  private fault(code: string, message: string, detail: string, context?: Record<string, unknown>): Fault {
    if (this.config.errorStyle === 'string') return new Fault(`${code}: ${message}`)
    return new Fault({
      code,
      message,
      detail,
      suggestion: `test server: ${code.toLowerCase()}`,
      docs_url: `https://docs.sanctum.test/errors/${code}`,
      context: context ?? {server: 'test'},
    })
  }

  /** Locked vault and rate limits apply to credential calls, not to the handshake. */
  private gate(agent: string): void {
    if (this.config.locked)
      throw this.fault('VAULT_LOCKED', 'Vault is locked', 'unlock it with `sanctum unlock`')
    this.checkRate(agent)
  }

  private async perform(
    operation: string,
    params: Record<string, unknown>,
    secret: string,
  ): Promise<Record<string, unknown>> {
    const header = (): [string, string] => {
      const type = params.header_type ?? 'bearer'
      switch (type) {
        case 'bearer': {
          return ['Authorization', `Bearer ${secret}`]
        }

        case 'api_key': {
          return ['X-API-Key', secret]
        }

        case 'basic': {
          return ['Authorization', `Basic ${Buffer.from(secret, 'utf8').toString('base64')}`]
        }

        case 'custom': {
          if (typeof params.header_name !== 'string') throw failed('custom header_type needs header_name')
          return [params.header_name, secret]
        }

        default: {
          throw failed(`unknown header_type ${String(type)}`)
        }
      }
    }

    const key = createHash('sha256').update(secret, 'utf8').digest()
    switch (operation) {
      case 'http_header': {
        const [name, value] = header()
        return {header_name: name, header_value: value}
      }

      case 'http_request': {
        const url = new URL(String(params.url))
        if (isBlockedTarget(url) && !this.config.ssrfAllowlist.includes(url.host))
          throw this.fault('SSRF_BLOCKED', 'Request blocked', `${url.hostname} is a private address`)
        const [name, value] = header()
        const headers = {
          ...(isObject(params.headers) ? (params.headers as Record<string, string>) : {}),
          [name]: value,
        }
        const response = await fetch(url, {
          body: typeof params.body === 'string' ? params.body : undefined,
          headers,
          method: typeof params.method === 'string' ? params.method : 'GET',
        })
        const responseHeaders: Record<string, string> = {}
        // eslint-disable-next-line unicorn/no-array-for-each -- Headers is not typed as iterable here
        response.headers.forEach((headerValue, headerName) => {
          responseHeaders[headerName] = headerValue
        })

        return {status: response.status, headers: responseHeaders, body: await response.text()}
      }

      case 'sign':
      case 'sign_payload': {
        const algorithm = params.algorithm ?? 'hmac-sha256'
        if (algorithm !== 'hmac-sha256' && algorithm !== 'hmac-sha512')
          throw failed(`unsupported algorithm ${String(algorithm)}`)
        const data = String(params.data ?? params.payload ?? '')
        return {
          signature: createHmac(algorithm === 'hmac-sha256' ? 'sha256' : 'sha512', secret)
            .update(data)
            .digest('base64'),
        }
      }

      case 'encrypt': {
        const nonce = randomBytes(12)
        const cipher = createCipheriv('aes-256-gcm', key, nonce)
        const body = Buffer.concat([
          cipher.update(String(params.data ?? params.plaintext ?? ''), 'utf8'),
          cipher.final(),
        ])
        return {ciphertext: Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64')}
      }

      case 'decrypt': {
        const blob = Buffer.from(String(params.data ?? params.ciphertext ?? ''), 'base64')
        if (blob.length < 28) throw failed('ciphertext too short')
        const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(0, 12))
        decipher.setAuthTag(blob.subarray(-16))
        try {
          return {
            plaintext: Buffer.concat([decipher.update(blob.subarray(12, -16)), decipher.final()]).toString(
              'utf8',
            ),
          }
        } catch {
          throw failed('cannot decrypt')
        }
      }

      default: {
        throw failed(`unsupported operation ${operation}`)
      }
    }
  }

  private receive(state: ConnectionState, message: Record<string, unknown>): void {
    this.stats.requests += 1
    const {id, method} = message
    const params = isObject(message.params) ? message.params : {}
    this.emit('request', method, params, state.record.id)
    const reply = this.respond(state, String(method), params, id)
    state.writes = state.writes.then(async () => this.send(state, await reply))
  }

  private async respond(
    state: ConnectionState,
    method: string,
    params: Record<string, unknown>,
    id: unknown,
  ): Promise<Reply | undefined> {
    const index = this.injections.findIndex(
      (entry) => entry.method === method && (entry.path === undefined || entry.path === params.path),
    )
    const pending = index === -1 ? undefined : this.injections[index]
    if (pending) {
      pending.remaining -= 1
      if (pending.remaining <= 0) this.injections.splice(index, 1)
    }

    const injection = pending?.injection
    const delay = this.config.delays[method]
    if (delay) await sleep(delay)
    if (injection?.kind === 'error') return new Reply({id, error: injection.error}, injection)
    if (injection?.kind === 'echo-error')
      return new Reply({
        error: {
          code: 'INVALID_PARAMS',
          detail: JSON.stringify(params),
          message: `invalid params ${JSON.stringify(params)}`,
        },
        id,
      })
    if (injection && injection.kind !== 'result' && injection.kind !== 'stray-id')
      return new Reply({id}, injection)
    const {dialect} = this.config
    const known = (dialect !== 'b' && METHODS_A.has(method)) || (dialect !== 'a' && METHODS_B.has(method))
    if (!known) return new Reply({id, error: this.unknownMethod(method)})
    try {
      const result = await this.dispatch(state, method, params)
      const body = {id, result: injection?.kind === 'result' ? injection.result : result}
      return new Reply(injection?.kind === 'stray-id' ? {...body, id: 9999} : body)
    } catch (error) {
      if (error instanceof Fault) return new Reply({id, error: error.wire})
      return new Reply({id, error: {code: 'INTERNAL', message: (error as Error).message}})
    }
  }

  private async send(state: ConnectionState, reply: Reply | undefined): Promise<void> {
    if (!reply || state.socket.destroyed) return
    const {body, injection} = reply
    const {socket} = state
    const payload = Buffer.from(JSON.stringify(body), 'utf8')
    const frame = Buffer.alloc(4 + payload.length)
    frame.writeUInt32BE(payload.length, 0)
    payload.copy(frame, 4)
    switch (injection?.kind) {
      case 'never-answer': {
        return
      }

      case 'hang-up': {
        socket.end()
        return
      }

      case 'close-mid-frame': {
        socket.end(frame.subarray(0, 4 + Math.floor(payload.length / 2)))
        return
      }

      case 'oversize': {
        const header = Buffer.alloc(4)
        header.writeUInt32BE(injection.declared, 0)
        socket.write(Buffer.concat([header, Buffer.alloc(64, 0x7b)]))
        return
      }

      case 'raw': {
        socket.write(injection.bytes)
        return
      }

      case 'error': {
        if (injection.hangUp) {
          socket.end(frame)
          return
        }
      }
    }

    const {hold} = this.config
    if (hold && hold.method === this.methodOf(state, body.id)) {
      this.held.push({body, state})
      if (this.held.length < hold.count) return
      const batch = this.held.splice(0)
      if (hold.reverse) batch.reverse()
      const frames = batch.map((entry) => this.frameOf(entry.body))
      if (hold.oneWrite) socket.write(Buffer.concat(frames))
      else for (const held of frames) await this.write(socket, held)
      return
    }

    await this.write(socket, frame)
  }

  private frameOf(body: Record<string, unknown>): Buffer {
    const payload = Buffer.from(JSON.stringify(body), 'utf8')
    const frame = Buffer.alloc(4 + payload.length)
    frame.writeUInt32BE(payload.length, 0)
    payload.copy(frame, 4)
    return frame
  }

  private methodOf(state: ConnectionState, id: unknown): string | undefined {
    const frame = state.record.frames.findLast((entry) => entry.message.id === id)
    return frame ? String(frame.message.method) : undefined
  }

  private unknownMethod(method: string): WireError {
    switch (this.config.unknownMethodStyle) {
      case 'string': {
        return `Unknown method: ${method}`
      }

      case 'object': {
        return {code: 'BAD_REQUEST', message: `Unknown method: ${method}`}
      }

      case 'code': {
        return {code: 'METHOD_NOT_FOUND', message: 'no such call'}
      }
    }
  }

  private verifySignature(agent: string, challenge: Buffer, signature: unknown): void {
    const publicKeyHex = this.config.agents[agent]
    if (!publicKeyHex) throw this.fault('AUTH_FAILED', 'Authentication failed', 'unknown agent')
    const key = createPublicKey({
      format: 'der',
      key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(publicKeyHex, 'hex')]),
      type: 'spki',
    })
    const ok =
      typeof signature === 'string' &&
      /^[0-9a-f]{128}$/.test(signature) &&
      verify(null, challenge, key, Buffer.from(signature, 'hex'))
    if (!ok) throw this.fault('AUTH_FAILED', 'Authentication failed', 'bad signature')
  }

  private async write(socket: Socket, frame: Buffer): Promise<void> {
    const mode = this.config.write
    if (mode.kind === 'whole') {
      socket.write(frame)
      return
    }

    const pause = mode.pauseMs ?? 1
    let pieces: Buffer[]
    if (mode.kind === 'bytes') {
      pieces = [...frame].map((byte) => Buffer.from([byte]))
    } else {
      // K pieces, the first cut inside the 4-byte header.
      const count = Math.max(2, mode.chunks ?? 3)
      const cuts = [2]
      const step = Math.max(1, Math.floor((frame.length - 2) / (count - 1)))
      for (let at = 2 + step; at < frame.length && cuts.length < count - 1; at += step) cuts.push(at)
      pieces = [0, ...cuts].map((start, i) => frame.subarray(start, cuts[i] ?? frame.length))
    }

    for (const piece of pieces) {
      if (socket.destroyed) return
      socket.write(piece)
      await sleep(pause)
    }
  }
}
