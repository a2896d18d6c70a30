/**
 * A project-owned OpenBao / Vault node for tests (protocols/openbao.md §14): the KV v2, token,
 * userpass, approle, health, seal-status and response-wrapping HTTP subset, on 127.0.0.1:0 over
 * node:http or node:https, with a typed control handle — shared state and fake clock
 * (`state`), node modes (active, sealed, standby, redirecting), fault and latency injection, and
 * a log of every request with its headers.
 */
import {randomBytes, randomUUID} from 'node:crypto'
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import {performance} from 'node:perf_hooks'
import {setTimeout as delay} from 'node:timers/promises'

import {
  type Capability,
  type KvKey,
  type KvMount,
  type KvVersion,
  type NamespaceState,
  newKey,
  ServerState,
  type TokenRecord,
  writeVersion,
} from './state.js'

export {FakeClock, ServerState} from './state.js'
export type {Capability, PolicyRule, TokenOptions, TokenRecord} from './state.js'

/** What this node is: the cluster's active node, sealed, a standby, or a hostile redirector. */
export type NodeMode =
  | {active?: string; kind: 'standby'}
  | {kind: 'active'}
  | {kind: 'redirect'; location: string}
  | {kind: 'sealed'}
  | {kind: 'uninitialized'}

/** Fault and latency injection; `route` limits a fault to matching `/v1/…` paths. */
export interface Faults {
  delay?: {jitterMs?: number; ms: number; route?: RegExp}
  /**
   * Answer `status` (default 400) with error strings that echo the request body and token, as a
   * careless server or proxy in front of OpenBao does: what an error may carry back.
   */
  echo?: {method?: string; route?: RegExp; status?: number}
  /**
   * Hold matching requests until `count` of them wait at once, then answer them all: proves that a
   * client sends them concurrently, whatever the machine's load (a sequential client never passes).
   */
  gate?: {count: number; route?: RegExp}
  /** Accept the request and never answer (timeouts). */
  hang?: {route?: RegExp}
  /** 429 with `Retry-After` (seconds, omitted when undefined) for the next `count` requests. */
  rateLimit?: {count: number; retryAfter?: number; route?: RegExp}
  /** Reset the connection before any reply, for the next `count` requests (default: all). */
  reset?: {count?: number; route?: RegExp}
}

export interface LoggedRequest {
  body: string
  endedAt?: number
  headers: IncomingHttpHeaders
  method: string
  /** The name given to this node. */
  node: string
  /** Path below `/v1/`, without the query. */
  path: string
  query: string
  startedAt: number
  status?: number
  /** The token the client sent (`X-Vault-Token`, else `Authorization: Bearer`). */
  token?: string
}

export interface OpenBaoServerOptions {
  mode?: NodeMode
  /** A name for the request log (default: the URL once listening). */
  name?: string
  /** Share one state between nodes of a test cluster. */
  state?: ServerState
  tls?: {cert: Buffer | string; key: Buffer | string}
}

interface Reply {
  body?: unknown
  headers?: Record<string, string>
  status: number
}

interface Context {
  body: Record<string, unknown>
  method: string
  namespace: string
  /** Path below `/v1/` and the namespace. */
  path: string
  query: URLSearchParams
  request: IncomingMessage
  token?: string
}

const INVALID_PATH_WARNING =
  "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."
const KV_OPERATIONS = new Set(['data', 'delete', 'destroy', 'metadata', 'undelete'])
const MAX_BODY = 1024 * 1024

const errors = (status: number, ...messages: string[]): Reply => ({body: {errors: messages}, status})
const denied = (): Reply => errors(403, 'permission denied')
const noContent = (): Reply => ({status: 204})

/** A full response envelope (§3); `request_id` is a UUID. */
function envelope(fields: {
  auth?: unknown
  data?: unknown
  warnings?: null | string[]
  wrap_info?: unknown
}): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: fields.data ?? null,
    wrap_info: fields.wrap_info ?? null,
    warnings: fields.warnings ?? null,
    auth: fields.auth ?? null,
  }
}

const ok = (data: unknown): Reply => ({body: envelope({data}), status: 200})

/** Go's `strconv.ParseBool`. */
function parseBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false
  return undefined
}

/** `30`, `30s`, `5m`, `1h`, `1h0m0s` → seconds; undefined when not a duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string' || value === '') return undefined
  if (/^\d+$/.test(value)) return Number(value)
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(value)
  if (!match) return undefined
  const [, h = '0', m = '0', s = '0'] = match
  return Number(h) * 3600 + Number(m) * 60 + Number(s)
}

/** Seconds → Go's duration string (`0s`, `1h0m0s`). */
function formatDuration(seconds: number): string {
  if (seconds === 0) return '0s'
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  if (h > 0) return `${h}h${m}m${s}s`
  if (m > 0) return `${m}m${s}s`
  return `${s}s`
}

function versionList(body: Record<string, unknown>): number[] | undefined {
  const {versions} = body
  if (!Array.isArray(versions) || versions.length === 0) return undefined
  const numbers = versions.map(Number)
  return numbers.every((n) => Number.isInteger(n) && n > 0) ? numbers : undefined
}

export class OpenBaoTestServer {
  faults: Faults = {}
  /** Requests currently being handled, and the most seen at once since the last `resetLog`. */
  inFlight = 0
  private readonly gateWaiters: Array<() => void> = []
  /** Every request, in arrival order. */
  readonly log: LoggedRequest[] = []
  maxInFlight = 0
  mode: NodeMode
  readonly state: ServerState
  private name: string
  private readonly server: Server
  private readonly tls: boolean
  private urlValue?: string

  constructor(options: OpenBaoServerOptions = {}) {
    this.mode = options.mode ?? {kind: 'active'}
    this.state = options.state ?? new ServerState()
    this.name = options.name ?? ''
    this.tls = options.tls !== undefined
    const handler = this.onRequest.bind(this)
    this.server = options.tls
      ? createHttpsServer({cert: options.tls.cert, key: options.tls.key}, handler)
      : createHttpServer(handler)
    this.server.keepAliveTimeout = 5000
  }

  /** `http://127.0.0.1:PORT` (or https). */
  get url(): string {
    if (!this.urlValue) throw new Error('server not listening')
    return this.urlValue
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
    })
  }

  /** Requests that carried a token, by token. */
  tokensSeen(): string[] {
    return [...new Set(this.log.map((entry) => entry.token).filter((t): t is string => t !== undefined))]
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => {
      this.server.listen(0, '127.0.0.1', () => resolve())
    })
    const address = this.server.address()
    if (!address || typeof address === 'string') throw new Error('no port')
    this.urlValue = `${this.tls ? 'https' : 'http'}://127.0.0.1:${address.port}`
    if (this.name === '') this.name = this.urlValue
    return this
  }

  resetLog(): void {
    this.log.length = 0
    this.maxInFlight = 0
  }

  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    this.handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) {
        response.writeHead(500, {'content-type': 'application/json'})
        response.end(JSON.stringify({errors: [String(error)]}))
      }
    })
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://node')
    const headerToken = request.headers['x-vault-token']
    const bearer = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1]
    const token = (typeof headerToken === 'string' && headerToken !== '' ? headerToken : undefined) ?? bearer
    const entry: LoggedRequest = {
      body: '',
      headers: {...request.headers},
      method: request.method ?? '',
      node: this.name,
      path: url.pathname.replace(/^\/v1\//, ''),
      query: url.search.replace(/^\?/, ''),
      startedAt: performance.now(),
      ...(token === undefined ? {} : {token}),
    }
    this.log.push(entry)
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    const finish = (reply: Reply): void => {
      entry.status = reply.status
      entry.endedAt = performance.now()
      this.inFlight--
      const headers: Record<string, string> = {...reply.headers}
      if (reply.body === undefined) {
        response.writeHead(reply.status, headers)
        response.end()
        return
      }

      const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body)
      headers['content-type'] ??= 'application/json'
      response.writeHead(reply.status, headers)
      response.end(text)
    }

    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of request) {
      size += (chunk as Buffer).length
      if (size > MAX_BODY) {
        finish(errors(413, 'request too large'))
        return
      }

      chunks.push(chunk as Buffer)
    }

    entry.body = Buffer.concat(chunks).toString('utf8')
    const routeFaults = this.faultsFor(url.pathname)
    if (routeFaults.reset) {
      this.inFlight--
      entry.endedAt = performance.now()
      request.socket.resetAndDestroy()
      return
    }

    if (routeFaults.hang) return
    if (routeFaults.echo !== undefined && (this.faults.echo?.method ?? entry.method) === entry.method) {
      finish(errors(routeFaults.echo, `invalid request body: ${entry.body}`, `token: ${token ?? 'none'}`))
      return
    }

    if (routeFaults.gated) await this.passGate()
    if (routeFaults.delay > 0) await delay(routeFaults.delay)
    if (routeFaults.rateLimit) {
      finish(routeFaults.rateLimit)
      return
    }

    finish(this.route(request, url, entry, token))
  }

  /** Wait at the gate; the request that makes it `count` opens it for all (and removes it). */
  private passGate(): Promise<void> {
    const {gate} = this.faults
    return new Promise<void>((resolve) => {
      this.gateWaiters.push(resolve)
      if (gate && this.gateWaiters.length >= gate.count) {
        delete this.faults.gate
        for (const release of this.gateWaiters.splice(0)) release()
      }
    })
  }

  private faultsFor(pathname: string): {
    delay: number
    echo?: number
    gated: boolean
    hang: boolean
    rateLimit?: Reply
    reset: boolean
  } {
    const {delay, echo, gate, hang, rateLimit, reset} = this.faults
    const applies = (route?: RegExp): boolean => route === undefined || route.test(pathname)
    let resetNow = false
    if (reset && applies(reset.route)) {
      if (reset.count === undefined) resetNow = true
      else if (reset.count > 0) {
        reset.count--
        resetNow = true
      }
    }

    let limited: Reply | undefined
    if (rateLimit && rateLimit.count > 0 && applies(rateLimit.route)) {
      rateLimit.count--
      limited = {
        ...errors(429, 'request path "x": rate limit quota exceeded'),
        ...(rateLimit.retryAfter === undefined
          ? {}
          : {headers: {'retry-after': String(rateLimit.retryAfter)}}),
      }
    }

    return {
      delay: delay && applies(delay.route) ? delay.ms + Math.random() * (delay.jitterMs ?? 0) : 0,
      ...(echo && applies(echo.route) ? {echo: echo.status ?? 400} : {}),
      gated: gate !== undefined && applies(gate.route),
      hang: hang !== undefined && applies(hang.route),
      ...(limited ? {rateLimit: limited} : {}),
      reset: resetNow,
    }
  }

  private health(): Reply {
    const {kind} = this.mode
    const body = {
      initialized: kind !== 'uninitialized',
      sealed: kind === 'sealed' || kind === 'uninitialized',
      standby: kind === 'standby' || kind === 'redirect',
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(this.state.clock.now() / 1000),
      version: '2.2.0',
      cluster_name: 'agentvault-test-cluster',
      cluster_id: '1b3c4d5e-0000-4000-8000-000000000001',
    }
    const status = kind === 'uninitialized' ? 501 : body.sealed ? 503 : body.standby ? 429 : 200
    return {body, status}
  }

  private route(request: IncomingMessage, url: URL, entry: LoggedRequest, token?: string): Reply {
    if (!url.pathname.startsWith('/v1/')) return errors(404)
    const raw = url.pathname.slice(4)
    if (raw === 'sys/health') return this.health()
    if (raw === 'sys/seal-status')
      return {
        body: {
          type: 'shamir',
          initialized: this.mode.kind !== 'uninitialized',
          sealed: this.mode.kind === 'sealed' || this.mode.kind === 'uninitialized',
          t: 1,
          n: 1,
          progress: 0,
          nonce: '',
          version: '2.2.0',
          cluster_name: 'agentvault-test-cluster',
          storage_type: 'inmem',
        },
        status: 200,
      }
    switch (this.mode.kind) {
      case 'sealed': {
        return errors(503, 'Vault is sealed')
      }

      case 'uninitialized': {
        return errors(503, 'Vault is not initialized')
      }

      case 'standby': {
        if (!this.mode.active) return errors(503, 'local node not active but active cluster node not found')
        return {headers: {location: `${this.mode.active}${request.url ?? ''}`}, status: 307}
      }

      case 'redirect': {
        return {headers: {location: `${this.mode.location}${request.url ?? ''}`}, status: 307}
      }

      case 'active': {
        break
      }
    }

    let body: Record<string, unknown> = {}
    if (entry.body.trim() !== '') {
      try {
        const parsed: unknown = JSON.parse(entry.body)
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          return errors(400, 'failed to parse JSON input: not an object')
        body = parsed as Record<string, unknown>
      } catch {
        return errors(400, 'failed to parse JSON input')
      }
    }

    const resolved = this.resolveNamespace(request.headers['x-vault-namespace'], raw)
    if (!resolved) return errors(404, 'namespace not found')
    const context: Context = {
      body,
      method: request.method ?? 'GET',
      namespace: resolved.namespace,
      path: resolved.path,
      query: url.searchParams,
      request,
      ...(token === undefined ? {} : {token}),
    }
    return this.dispatch(context)
  }

  /** `X-Vault-Namespace` (trailing `/` allowed) then leading path segments naming child namespaces. */
  private resolveNamespace(
    header: string | string[] | undefined,
    path: string,
  ): undefined | {namespace: string; path: string} {
    let namespace = typeof header === 'string' ? header.replaceAll(/^\/+|\/+$/g, '') : ''
    if (!this.state.namespaces.has(namespace)) return undefined
    let rest = path
    for (;;) {
      const slash = rest.indexOf('/')
      if (slash === -1) break
      const candidate = namespace === '' ? rest.slice(0, slash) : `${namespace}/${rest.slice(0, slash)}`
      if (!this.state.namespaces.has(candidate)) break
      namespace = candidate
      rest = rest.slice(slash + 1)
    }

    return {namespace, path: rest}
  }

  private dispatch(c: Context): Reply {
    const ns = this.state.ns(c.namespace)
    // Logins need no token.
    const login = /^auth\/([A-Za-z0-9._-]+)\/login(?:\/(.+))?$/.exec(c.path)
    if (login && login[1] !== 'token') return this.login(c, ns, login[1] as string, login[2])
    if (c.path === 'sys/wrapping/lookup') return this.wrapLookup(c)
    if (c.path === 'sys/wrapping/unwrap') return this.unwrap(c)

    const token = c.token === undefined ? undefined : this.state.tokens.get(c.token)
    if (!this.state.isValid(token, c.namespace)) return denied()
    const wrapHeader = c.request.headers['x-vault-wrap-ttl']
    let wrapTtl: number | undefined
    if (wrapHeader !== undefined) {
      wrapTtl = parseDuration(wrapHeader)
      if (wrapTtl === undefined || wrapTtl <= 0) return errors(400, 'invalid wrap TTL')
    }

    const reply = this.authenticated(c, ns, token)
    if (wrapTtl === undefined || reply.status !== 200 || reply.body === undefined) return reply
    return this.wrap(c, reply, wrapTtl)
  }

  private authenticated(c: Context, ns: NamespaceState, token: TokenRecord): Reply {
    switch (c.path) {
      case 'auth/token/lookup-self': {
        return c.method === 'GET' || c.method === 'POST' ? ok(this.lookup(token)) : errors(405)
      }

      case 'auth/token/renew-self': {
        return this.renew(c, token)
      }

      case 'auth/token/revoke-self': {
        token.revoked = true
        return noContent()
      }
    }

    const [mountName = '', operation = '', ...rest] = c.path.split('/')
    const mount = ns.mounts.get(mountName)
    if (!mount) return errors(404, `no handler for route "${c.path}". route entry not found.`)
    if (!KV_OPERATIONS.has(operation))
      return {body: envelope({warnings: [INVALID_PATH_WARNING]}), status: 404}
    const keyPath = rest.join('/')
    const listing = c.query.get('list')
    if (listing !== null) {
      const list = parseBool(listing)
      if (list === undefined) return errors(400, `error parsing list parameter`)
      if (list) {
        if (operation !== 'metadata' || c.method !== 'GET') return errors(405, 'unsupported operation')
        if (!this.allowed(token, ns, `${mountName}/metadata/${keyPath}`, 'list')) return denied()
        return this.list(mount, keyPath)
      }
    }

    const apiPath = `${mountName}/${operation}/${keyPath}`
    const capability = this.capabilityFor(c.method, operation, mount, keyPath)
    if (!capability) return errors(405, 'unsupported operation')
    if (!this.allowed(token, ns, apiPath, capability)) return denied()
    if (keyPath === '') return errors(404)
    return this.kv(c, mount, operation, keyPath)
  }

  private capabilityFor(
    method: string,
    operation: string,
    mount: KvMount,
    keyPath: string,
  ): Capability | undefined {
    switch (method) {
      case 'GET': {
        return operation === 'data' || operation === 'metadata' ? 'read' : undefined
      }

      case 'DELETE': {
        return operation === 'data' || operation === 'metadata' ? 'delete' : undefined
      }

      case 'POST':
      case 'PUT': {
        if (operation === 'data' && !mount.keys.has(keyPath)) return 'create'
        return 'update'
      }

      default: {
        return undefined
      }
    }
  }

  private allowed(token: TokenRecord, ns: NamespaceState, path: string, capability: Capability): boolean {
    if (token.root) return true
    const granted = new Set<Capability>()
    for (const name of token.policies) {
      const rules = ns.policies.get(name) ?? []
      // Per policy, the most specific rule wins: an exact path, else the longest prefix.
      let best: undefined | {capabilities: Capability[]; length: number}
      for (const rule of rules) {
        const glob = rule.path.endsWith('*')
        const base = glob ? rule.path.slice(0, -1) : rule.path
        const matches = glob ? path.startsWith(base) : path === base
        const length = glob ? base.length : Number.MAX_SAFE_INTEGER
        if (matches && (!best || length > best.length)) best = {capabilities: rule.capabilities, length}
      }

      if (best?.capabilities.includes('deny')) return false
      for (const cap of best?.capabilities ?? []) granted.add(cap)
    }

    return granted.has(capability)
  }

  private kv(c: Context, mount: KvMount, operation: string, keyPath: string): Reply {
    const key = mount.keys.get(keyPath)
    const now = this.state.clock
    switch (`${c.method === 'PUT' ? 'POST' : c.method} ${operation}`) {
      case 'GET data': {
        return this.readData(c, key)
      }

      case 'POST data': {
        return this.writeData(c, mount, keyPath, key)
      }

      case 'DELETE data': {
        const current = key?.versions.get(key.currentVersion)
        if (current && !current.destroyed && !this.isDeleted(current)) current.deletionTime = now.rfc3339()
        return noContent()
      }

      case 'POST delete':
      case 'POST destroy':
      case 'POST undelete': {
        const versions = versionList(c.body)
        if (!versions) return errors(400, 'no version number provided')
        for (const number of versions) {
          const version = key?.versions.get(number)
          if (!version) continue
          if (operation === 'delete' && !version.destroyed && !this.isDeleted(version))
            version.deletionTime = now.rfc3339()
          if (operation === 'undelete' && !version.destroyed) version.deletionTime = ''
          if (operation === 'destroy') {
            version.destroyed = true
            version.data = null
          }
        }

        return noContent()
      }

      case 'GET metadata': {
        if (!key) return errors(404)
        return ok(this.metadataOf(key))
      }

      case 'POST metadata': {
        return this.writeMetadata(c, mount, keyPath, key)
      }

      case 'DELETE metadata': {
        mount.keys.delete(keyPath)
        return noContent()
      }

      default: {
        return errors(405, 'unsupported operation')
      }
    }
  }

  private isDeleted(version: KvVersion): boolean {
    return version.deletionTime !== '' && Date.parse(version.deletionTime) <= this.state.clock.now()
  }

  private list(mount: KvMount, folderPath: string): Reply {
    const folder = folderPath === '' || folderPath.endsWith('/') ? folderPath : `${folderPath}/`
    const keys = new Set<string>()
    for (const name of mount.keys.keys()) {
      if (!name.startsWith(folder)) continue
      const rest = name.slice(folder.length)
      const slash = rest.indexOf('/')
      keys.add(slash === -1 ? rest : rest.slice(0, slash + 1))
    }

    if (keys.size === 0) return errors(404)
    return ok({keys: [...keys].sort()})
  }

  private login(c: Context, ns: NamespaceState, mountName: string, username?: string): Reply {
    if (c.method !== 'POST' && c.method !== 'PUT') return errors(405)
    const mount = ns.authMounts.get(mountName)
    if (!mount) return errors(404, `no handler for route "auth/${mountName}/login". route entry not found.`)
    let grant:
      undefined | {displayName: string; maxTtl: number; policies: string[]; renewable: boolean; ttl: number}
    if (mount.type === 'userpass') {
      const user = username === undefined ? undefined : mount.users.get(decodeURIComponent(username))
      if (!user || c.body.password !== user.password) return errors(400, 'invalid username or password')
      grant = {...user, displayName: `${mountName}-${decodeURIComponent(username as string)}`}
    } else {
      if (username !== undefined) return errors(405)
      const role = typeof c.body.role_id === 'string' ? mount.roles.get(c.body.role_id) : undefined
      if (!role || typeof c.body.secret_id !== 'string' || !role.secretIds.has(c.body.secret_id))
        return errors(400, 'invalid role or secret ID')
      grant = {...role, displayName: `${mountName}-${role.name}`}
    }

    const token = this.state.createToken({
      displayName: grant.displayName,
      maxTtl: grant.maxTtl,
      namespace: c.namespace,
      policies: grant.policies,
      renewable: grant.renewable,
      ttl: grant.ttl,
    })
    return {body: envelope({auth: this.authBlock(token)}), status: 200}
  }

  private authBlock(token: TokenRecord): Record<string, unknown> {
    return {
      client_token: token.id,
      accessor: token.accessor,
      policies: token.policies,
      token_policies: token.policies,
      metadata: null,
      lease_duration: this.state.ttlOf(token),
      renewable: token.renewable,
      entity_id: token.entityId,
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    }
  }

  private lookup(token: TokenRecord): Record<string, unknown> {
    return {
      accessor: token.accessor,
      creation_time: Math.floor(token.issuedAt / 1000),
      creation_ttl: token.creationTtl,
      display_name: token.displayName,
      entity_id: token.entityId,
      expire_time: token.expiresAt === null ? null : this.state.clock.rfc3339(token.expiresAt),
      explicit_max_ttl: token.maxTtl,
      id: token.id,
      issue_time: this.state.clock.rfc3339(token.issuedAt),
      meta: null,
      num_uses: 0,
      orphan: true,
      path: token.root ? 'auth/token/root' : 'auth/token/create',
      policies: token.policies,
      renewable: token.renewable,
      ttl: this.state.ttlOf(token),
      type: 'service',
    }
  }

  private metadataOf(key: KvKey): Record<string, unknown> {
    const versions: Record<string, unknown> = {}
    for (const [number, version] of [...key.versions].sort(([a], [b]) => a - b)) {
      versions[String(number)] = {
        created_time: version.createdTime,
        deletion_time: version.deletionTime,
        destroyed: version.destroyed,
      }
    }

    return {
      cas_required: key.casRequired,
      created_time: key.createdTime,
      current_version: key.currentVersion,
      custom_metadata: key.customMetadata,
      delete_version_after: formatDuration(key.deleteVersionAfter),
      max_versions: key.maxVersions,
      oldest_version: key.oldestVersion,
      updated_time: key.updatedTime,
      versions,
    }
  }

  private readData(c: Context, key: KvKey | undefined): Reply {
    const raw = c.query.get('version')
    let number = key?.currentVersion ?? 0
    if (raw !== null && raw !== '') {
      if (!/^-?\d+$/.test(raw)) return errors(400, 'error parsing version')
      const asked = Number(raw)
      if (asked > 0) number = asked
    }

    const version = key?.versions.get(number)
    if (!key || !version) return errors(404)
    const metadata = {
      created_time: version.createdTime,
      custom_metadata: key.customMetadata,
      deletion_time: version.deletionTime,
      destroyed: version.destroyed,
      version: number,
    }
    if (version.destroyed || this.isDeleted(version))
      return {body: envelope({data: {data: null, metadata}}), status: 404}
    return ok({data: structuredClone(version.data), metadata})
  }

  private renew(c: Context, token: TokenRecord): Reply {
    if (c.method !== 'POST' && c.method !== 'PUT') return errors(405)
    if (!token.renewable) return errors(400, 'lease is not renewable')
    const increment = c.body.increment === undefined ? token.creationTtl : parseDuration(c.body.increment)
    if (increment === undefined) return errors(400, 'invalid increment')
    const now = this.state.clock.now()
    let ttl = increment
    if (token.maxTtl > 0)
      ttl = Math.min(ttl, Math.max(0, Math.round((token.issuedAt + token.maxTtl * 1000 - now) / 1000)))
    token.expiresAt = now + ttl * 1000
    return {body: envelope({auth: this.authBlock(token)}), status: 200}
  }

  private unwrap(c: Context): Reply {
    if (c.method !== 'POST' && c.method !== 'PUT') return errors(405)
    const bodyToken = typeof c.body.token === 'string' && c.body.token !== '' ? c.body.token : undefined
    const headerWrapped = c.token !== undefined && this.state.wrapped.has(c.token)
    if (bodyToken && headerWrapped) return errors(400, 'wrapping token is not valid or does not exist')
    const id = bodyToken ?? c.token
    const wrapped = id === undefined ? undefined : this.state.wrapped.get(id)
    if (!wrapped || id === undefined || wrapped.namespace !== c.namespace) {
      return errors(400, 'wrapping token is not valid or does not exist')
    }

    this.state.wrapped.delete(id)
    if (wrapped.expiresAt <= this.state.clock.now())
      return errors(400, 'wrapping token is not valid or does not exist')
    return {body: wrapped.body, status: 200}
  }

  private wrap(c: Context, reply: Reply, ttl: number): Reply {
    const id = `s.${randomBytes(18).toString('base64url')}`
    const now = this.state.clock.now()
    const creationPath = c.namespace === '' ? c.path : `${c.namespace}/${c.path}`
    const wrapped = {
      accessor: randomBytes(12).toString('base64url'),
      body: reply.body,
      creationPath,
      creationTime: this.state.clock.rfc3339(now),
      expiresAt: now + ttl * 1000,
      namespace: c.namespace,
      ttl,
    }
    this.state.wrapped.set(id, wrapped)
    return {
      body: {
        ...envelope({}),
        request_id: '',
        wrap_info: {
          token: id,
          accessor: wrapped.accessor,
          ttl,
          creation_time: wrapped.creationTime,
          creation_path: creationPath,
        },
      },
      status: 200,
    }
  }

  private wrapLookup(c: Context): Reply {
    if (c.method !== 'POST' && c.method !== 'PUT') return errors(405)
    const id = typeof c.body.token === 'string' && c.body.token !== '' ? c.body.token : c.token
    const wrapped = id === undefined ? undefined : this.state.wrapped.get(id)
    if (!wrapped || wrapped.expiresAt <= this.state.clock.now() || wrapped.namespace !== c.namespace)
      return errors(400, 'wrapping token is not valid or does not exist')
    return ok({
      creation_path: wrapped.creationPath,
      creation_time: wrapped.creationTime,
      creation_ttl: wrapped.ttl,
    })
  }

  private writeData(c: Context, mount: KvMount, keyPath: string, key: KvKey | undefined): Reply {
    const {data, options} = c.body
    if (data === undefined || data === null) return errors(400, 'no data provided')
    if (typeof data !== 'object' || Array.isArray(data)) return errors(400, 'data must be an object')
    const cas =
      typeof options === 'object' && options !== null && !Array.isArray(options)
        ? (options as Record<string, unknown>).cas
        : undefined
    if (cas === undefined) {
      if (mount.casRequired || key?.casRequired)
        return errors(400, 'check-and-set parameter required for this call')
    } else if (typeof cas !== 'number' || cas !== (key?.currentVersion ?? 0)) {
      return errors(400, 'check-and-set parameter did not match the current version')
    }

    const {key: written, version} = writeVersion(
      mount,
      keyPath,
      data as Record<string, unknown>,
      this.state.clock,
    )
    const stored = written.versions.get(version) as KvVersion
    return ok({
      created_time: stored.createdTime,
      custom_metadata: written.customMetadata,
      deletion_time: stored.deletionTime,
      destroyed: false,
      version,
    })
  }

  private writeMetadata(c: Context, mount: KvMount, keyPath: string, existing: KvKey | undefined): Reply {
    const key = existing ?? newKey(this.state.clock.rfc3339())
    const {cas_required, custom_metadata, delete_version_after, max_versions} = c.body
    if (max_versions !== undefined) {
      if (typeof max_versions !== 'number' || !Number.isInteger(max_versions) || max_versions < 0)
        return errors(400, 'max_versions must be a non-negative integer')
      key.maxVersions = max_versions
    }

    if (cas_required !== undefined) {
      if (typeof cas_required !== 'boolean') return errors(400, 'cas_required must be a boolean')
      key.casRequired = cas_required
    }

    if (delete_version_after !== undefined) {
      const seconds = parseDuration(delete_version_after)
      if (seconds === undefined) return errors(400, 'invalid delete_version_after')
      key.deleteVersionAfter = seconds
    }

    if (custom_metadata !== undefined) {
      if (
        typeof custom_metadata !== 'object' ||
        custom_metadata === null ||
        Array.isArray(custom_metadata) ||
        !Object.values(custom_metadata).every((v) => typeof v === 'string')
      )
        return errors(400, 'custom_metadata must be a map of strings')
      key.customMetadata = {...(custom_metadata as Record<string, string>)}
    }

    key.updatedTime = this.state.clock.rfc3339()
    mount.keys.set(keyPath, key)
    return noContent()
  }
}

/** Start a node on 127.0.0.1:0. */
export async function startOpenBaoServer(options: OpenBaoServerOptions = {}): Promise<OpenBaoTestServer> {
  return new OpenBaoTestServer(options).listen()
}
