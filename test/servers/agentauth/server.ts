/**
 * An in-memory AgentAuth server on loopback for agentvault's tests, meeting every point of
 * protocols/agentauth.md §11 ("Test server requirements"):
 *
 * - `generation: "v1"` serves the v0.7 routes under `/v1` and on the un-prefixed mounts, with JSON
 *   route-miss 404s; `"legacy"` serves the v0.4 routes only and answers everything else (all of
 *   `/v1/…`) with Express's HTML 404.
 * - ids and secrets in each generation's format; API keys and legacy refresh tokens kept only as
 *   SHA-256 hex; each generation's validation, bodies and status codes; HS256 JWTs with a
 *   configurable secret and lifetimes (seconds); v1 JWT refresh without rotation, legacy opaque
 *   refresh tokens with rotation, expiry, revoke-tokens and replacement on verify; the §4 guard
 *   messages; legacy admin/self rules with §6 matching.
 * - verify attempts logged with each generation's reasons and the caller IP; activity in both
 *   pagination shapes; webhook CRUD, masking and rotation; signed deliveries (legacy on verify and
 *   revoke, v1 through {@link AgentAuthTestServer.emit}), recorded and awaitable.
 * - per-IP fixed-window global and auth rate limits with draft-6 headers; scripted faults per
 *   method + path; latency; a body limit; malformed JSON; every request recorded; seeding agents,
 *   changing their status, and an injectable clock.
 */
import {createHmac, randomBytes, timingSafeEqual} from 'node:crypto'
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import {type AddressInfo, type Socket} from 'node:net'

import {signJwt, verifyJwt} from './jwt.js'
import {
  AgentAuthState,
  type AgentRecord,
  type Generation,
  type NewAgent,
  type ServerClock,
  sha256,
  type WebhookRecord,
} from './state.js'

export type {Generation} from './state.js'

/** One scripted answer, consumed by the next matching request before normal handling. */
export interface Fault {
  body?: string
  contentType?: string
  /** Close the connection without answering. */
  drop?: boolean
  /** Answer `status` (default 400) with a JSON error whose message and details quote the request body. */
  echo?: boolean
  headers?: Record<string, string>
  status?: number
}

export interface RecordedRequest {
  body: Buffer
  /** Answered by a scripted fault. */
  faulted: boolean
  headers: IncomingHttpHeaders
  ip: string
  method: string
  /** Path and query exactly as sent. */
  path: string
  pathname: string
  /** The server clock when it arrived. */
  time: number
}

export interface Delivery {
  body: Buffer
  error?: string
  event: string
  headers: Record<string, string>
  status?: number
  url: string
}

export interface RateLimit {
  limit: number
  windowMs: number
}

export interface AgentAuthServerOptions {
  accessTtlSeconds?: number
  /** Register, verify and refresh, in addition to the global limiter (v1 100, legacy 10 per 15 min). */
  authLimit?: RateLimit
  bodyLimitBytes?: number
  clock?: ServerClock
  generation: Generation
  /** Every route (v1 and legacy: 100 per 15 min). */
  globalLimit?: RateLimit
  jwtSecret?: string
  refreshTtlSeconds?: number
}

const FIFTEEN_MINUTES = 15 * 60 * 1000

/** §6: the legacy catalogue. */
export const CATALOGUE = [
  'zendesk:tickets:read',
  'zendesk:tickets:write',
  'zendesk:users:read',
  'zendesk:users:write',
  'slack:messages:read',
  'slack:messages:write',
  'slack:channels:read',
  'slack:channels:write',
  'hubspot:contacts:read',
  'hubspot:contacts:write',
  'hubspot:deals:read',
  'hubspot:deals:write',
  'hubspot:companies:read',
  'github:repos:read',
  'github:repos:write',
  'github:issues:read',
  'github:issues:write',
  'github:pull_requests:read',
  'salesforce:accounts:read',
  'salesforce:accounts:write',
  'salesforce:leads:read',
  'salesforce:leads:write',
  'stripe:payments:read',
  'stripe:customers:read',
  'stripe:invoices:read',
  '*:*:*',
]

export const V1_EVENTS = [
  'verification.success',
  'verification.failure',
  'agent.created',
  'agent.updated',
  'agent.deleted',
  'tier.upgraded',
  'tier.downgraded',
  'permissions.updated',
  'agent.drift.warning',
  'agent.drift.revoked',
  'persona.created',
  'persona.updated',
]

export const LEGACY_EVENTS = ['agent.registered', 'agent.verified', 'agent.revoked']
const TIERS = ['free', 'pro', 'enterprise']
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

/** Legacy `hasPermission` (§6). */
export function hasPermission(granted: readonly string[], required: string): boolean {
  const [service, resource] = required.split(':')
  return (
    granted.includes('*:*:*') ||
    granted.includes(required) ||
    granted.includes(`${service}:*:*`) ||
    granted.includes(`${service}:${resource}:*`)
  )
}

interface Answer {
  body: Buffer | string | unknown
  contentType?: string
  headers?: Record<string, string>
  status: number
}

interface Context {
  body: Record<string, unknown>
  headers: IncomingHttpHeaders
  ip: string
  method: string
  params: Record<string, string>
  query: URLSearchParams
}

type Handler = (context: Context) => Answer | Promise<Answer>

/** A guard's verdict: the token's claims, or the 401 to answer. */
type Guarded = {claims: Record<string, unknown>} | {deny: Answer}

interface Route {
  auth: boolean
  handler: Handler
  method: string
  pattern: RegExp
}

const json = (status: number, body: unknown, headers?: Record<string, string>): Answer => ({
  body,
  contentType: 'application/json; charset=utf-8',
  status,
  ...(headers ? {headers} : {}),
})

function expressHtml(text: string): string {
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n<pre>${text}</pre>\n</body>\n</html>\n`
}

const html = (status: number, text: string): Answer => ({
  body: expressHtml(text),
  contentType: 'text/html; charset=utf-8',
  status,
})

/** `/agents/:agent_id/activity` → a RegExp with named groups. */
function compile(path: string): RegExp {
  const source = path.replaceAll(/:([a-z_]+)/g, '(?<$1>[^/]+)')
  return new RegExp(`^${source}/?$`)
}

class FixedWindow {
  private readonly windows = new Map<string, {count: number; start: number}>()

  constructor(
    readonly options: RateLimit,
    private readonly clock: ServerClock,
  ) {}

  hit(key: string): {headers: Record<string, string>; limited: boolean; resetSeconds: number} {
    const now = this.clock.now()
    let window = this.windows.get(key)
    if (!window || now >= window.start + this.options.windowMs) {
      window = {count: 0, start: now}
      this.windows.set(key, window)
    }

    window.count++
    const resetSeconds = Math.max(0, Math.ceil((window.start + this.options.windowMs - now) / 1000))
    return {
      headers: {
        'RateLimit-Limit': String(this.options.limit),
        'RateLimit-Policy': `${this.options.limit};w=${Math.ceil(this.options.windowMs / 1000)}`,
        'RateLimit-Remaining': String(Math.max(0, this.options.limit - window.count)),
        'RateLimit-Reset': String(resetSeconds),
      },
      limited: window.count > this.options.limit,
      resetSeconds,
    }
  }
}

export class AgentAuthTestServer {
  /** Lifetimes of newly issued tokens, in seconds (changeable between requests). */
  accessTtlSeconds: number
  readonly clock: ServerClock
  readonly deliveries: Delivery[] = []
  readonly generation: Generation
  readonly jwtSecret: string
  /** Called with each request as it is recorded, before it is handled (to change state mid-sequence). */
  onRequest?: (request: RecordedRequest) => void
  refreshTtlSeconds: number
  readonly requests: RecordedRequest[] = []
  readonly state: AgentAuthState
  url = ''
  private readonly authLimiter: FixedWindow
  private readonly bodyLimit: number
  private readonly deliveryWaiters = new Set<() => void>()
  private readonly faults: Array<{faults: Fault[]; method: string; pattern: RegExp | string}> = []
  private readonly globalLimiter: FixedWindow
  private readonly latencies: Array<{ms: number; pattern?: RegExp | string}> = []
  private readonly pendingDeliveries = new Set<Promise<void>>()
  private readonly routes: Route[] = []
  private readonly server: Server
  private readonly sockets = new Set<Socket>()

  constructor(options: AgentAuthServerOptions) {
    this.generation = options.generation
    this.clock = options.clock ?? {now: () => Date.now()}
    this.state = new AgentAuthState(this.generation, this.clock)
    this.jwtSecret = options.jwtSecret ?? 'test-jwt-secret-agentauth'
    this.accessTtlSeconds = options.accessTtlSeconds ?? 3600
    this.refreshTtlSeconds =
      options.refreshTtlSeconds ?? (this.generation === 'v1' ? 7 * 86_400 : 30 * 86_400)
    this.bodyLimit = options.bodyLimitBytes ?? 10 * 1024 * 1024
    this.globalLimiter = new FixedWindow(
      options.globalLimit ?? {limit: 100, windowMs: FIFTEEN_MINUTES},
      this.clock,
    )
    this.authLimiter = new FixedWindow(
      options.authLimit ?? {limit: this.generation === 'v1' ? 100 : 10, windowMs: FIFTEEN_MINUTES},
      this.clock,
    )
    if (this.generation === 'v1') this.v1Routes()
    else this.legacyRoutes()
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, {'Content-Type': 'text/plain'})
          res.end(String(error))
        }
      })
    })
    this.server.on('connection', (socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
  }

  /** Stop listening, drop open connections, and wait for deliveries in flight. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      for (const socket of this.sockets) socket.destroy()
    })
    await Promise.allSettled(this.pendingDeliveries)
  }

  /**
   * v1 only (§11.8): deliver `event` to `agentId`'s active webhooks subscribed to it (or `*`) with
   * the v0.7 body; resolves once every delivery finished.
   */
  async emit(event: string, agentId: string, data: Record<string, unknown>): Promise<Delivery[]> {
    const body = Buffer.from(
      JSON.stringify({agent_id: agentId, data, event, timestamp: new Date(this.clock.now()).toISOString()}),
    )
    const hooks = [...this.state.webhooks.values()].filter(
      (hook) =>
        hook.agent_id === agentId &&
        hook.is_active &&
        (hook.events.includes(event) || hook.events.includes('*')),
    )
    return Promise.all(hooks.map((hook) => this.deliver(hook, event, body, {})))
  }

  /** Answer the next requests matching `method` and `path` (exact pathname or RegExp) with `faults`, in order. */
  fault(method: string, path: RegExp | string, ...faults: Fault[]): void {
    this.faults.push({faults: [...faults], method: method.toUpperCase(), pattern: path})
  }

  /** Delay answers by `ms` (wall time), for every route or those matching `path`. */
  latency(ms: number, path?: RegExp | string): void {
    this.latencies.push({ms, ...(path === undefined ? {} : {pattern: path})})
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => {
      this.server.listen(0, '127.0.0.1', () => resolve())
    })
    const {port} = this.server.address() as AddressInfo
    this.url = `http://127.0.0.1:${port}`
    return this
  }

  /** Requests whose pathname matches. */
  requestsTo(path: RegExp | string, method?: string): RecordedRequest[] {
    return this.requests.filter(
      (request) =>
        matches(path, request.pathname) && (method === undefined || request.method === method.toUpperCase()),
    )
  }

  /** Create an agent directly; returns its id and API key. */
  seedAgent(input: Partial<NewAgent> = {}): {agent: AgentRecord; agentId: string; apiKey: string} {
    const {agent, apiKey} = this.state.addAgent({name: 'seeded-agent', ...input})
    return {agent, agentId: agent.agent_id, apiKey}
  }

  setAgentStatus(agentId: string, status: string): void {
    const agent = this.state.agents.get(agentId)
    if (!agent) throw new Error(`no agent ${agentId}`)
    agent.status = status
  }

  /** Resolve once at least `count` deliveries have finished (an event, not a poll). */
  waitForDeliveries(count: number): Promise<Delivery[]> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.deliveries.length >= count) {
          this.deliveryWaiters.delete(check)
          resolve([...this.deliveries])
        }
      }

      this.deliveryWaiters.add(check)
      check()
    })
  }

  // ── plumbing ──────────────────────────────────────────────────────────────────────────────

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x')
    const method = req.method ?? 'GET'
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > this.bodyLimit) tooLarge = true
      else chunks.push(chunk as Buffer)
    }

    const body = Buffer.concat(chunks)
    const ip = this.clientIp(req)
    const recorded: RecordedRequest = {
      body,
      faulted: false,
      headers: req.headers,
      ip,
      method,
      path: req.url ?? '/',
      pathname: url.pathname,
      time: this.clock.now(),
    }
    this.requests.push(recorded)
    this.onRequest?.(recorded)

    const fault = this.takeFault(method, url.pathname)
    if (fault) {
      recorded.faulted = true
      if (fault.drop) {
        req.socket.destroy()
        return
      }

      if (fault.echo) {
        const text = body.toString('utf8')
        this.send(
          res,
          json(fault.status ?? 400, {
            details: [{field: 'body', message: `cannot parse ${text}`}],
            error: `Invalid request: ${text}`,
          }),
        )
        return
      }

      res.writeHead(fault.status ?? 500, {
        'Content-Type': fault.contentType ?? 'application/json; charset=utf-8',
        ...fault.headers,
      })
      res.end(fault.body ?? '')
      return
    }

    const delay = this.latencies.filter((l) => l.pattern === undefined || matches(l.pattern, url.pathname))
    for (const {ms} of delay)
      await new Promise((resolve) => {
        setTimeout(resolve, ms)
      })
    if (res.destroyed || req.socket.destroyed) return

    const limit = this.globalLimiter.hit(ip)
    for (const [name, value] of Object.entries(limit.headers)) res.setHeader(name, value)
    if (limit.limited) {
      this.send(
        res,
        json(
          429,
          {error: 'Too many requests, please try again later.'},
          {'Retry-After': String(limit.resetSeconds)},
        ),
      )
      return
    }

    if (tooLarge) {
      this.send(
        res,
        this.generation === 'v1'
          ? json(413, {error: 'request entity too large', status: 413})
          : html(413, 'PayloadTooLargeError: request entity too large'),
      )
      return
    }

    let parsed: Record<string, unknown> = {}
    if (body.length > 0 && /application\/json/i.test(req.headers['content-type'] ?? '')) {
      try {
        const value: unknown = JSON.parse(body.toString('utf8'))
        parsed =
          typeof value === 'object' && value !== null && !Array.isArray(value)
            ? (value as Record<string, unknown>)
            : {}
      } catch (error) {
        const message = error instanceof Error ? error.message : 'Unexpected token'
        this.send(
          res,
          this.generation === 'v1'
            ? json(400, {error: message, status: 400})
            : html(400, `SyntaxError: ${message}`),
        )
        return
      }
    }

    const route = this.routes.find((r) => r.method === method && r.pattern.test(url.pathname))
    if (!route) {
      this.send(
        res,
        this.generation === 'v1'
          ? json(404, {error: 'Route not found', path: req.url ?? '/', status: 404})
          : html(404, `Cannot ${method} ${url.pathname}`),
      )
      return
    }

    if (route.auth) {
      const authLimit = this.authLimiter.hit(ip)
      for (const [name, value] of Object.entries(authLimit.headers)) res.setHeader(name, value)
      if (authLimit.limited) {
        this.send(
          res,
          json(
            429,
            {error: 'Too many authentication attempts, please try again later.'},
            {
              'Retry-After': String(authLimit.resetSeconds),
            },
          ),
        )
        return
      }
    }

    const params = {...route.pattern.exec(url.pathname)?.groups}
    for (const [key, value] of Object.entries(params)) params[key] = decodeURIComponent(value)
    this.send(
      res,
      await route.handler({body: parsed, headers: req.headers, ip, method, params, query: url.searchParams}),
    )
  }

  private clientIp(req: IncomingMessage): string {
    const socketAddress = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '')
    if (this.generation !== 'v1') return socketAddress
    // v0.7 trusts one proxy hop: the last X-Forwarded-For entry.
    const forwarded = req.headers['x-forwarded-for']
    const text = Array.isArray(forwarded) ? forwarded.join(',') : forwarded
    const last = text?.split(',').at(-1)?.trim()
    return last === undefined || last === '' ? socketAddress : last
  }

  private takeFault(method: string, pathname: string): Fault | undefined {
    for (const entry of this.faults) {
      if (entry.faults.length > 0 && entry.method === method && matches(entry.pattern, pathname))
        return entry.faults.shift()
    }

    return undefined
  }

  private send(res: ServerResponse, answer: Answer): void {
    if (res.destroyed) return
    const payload =
      Buffer.isBuffer(answer.body) || typeof answer.body === 'string'
        ? Buffer.from(answer.body as Buffer | string)
        : Buffer.from(JSON.stringify(answer.body))
    res.writeHead(answer.status, {
      'Content-Length': String(payload.length),
      'Content-Type': answer.contentType ?? 'application/json; charset=utf-8',
      ...answer.headers,
    })
    res.end(payload)
  }

  private route(method: string, path: string, handler: Handler, auth = false): void {
    this.routes.push({auth, handler, method, pattern: compile(path)})
  }

  // ── tokens ────────────────────────────────────────────────────────────────────────────────

  private nowSeconds(): number {
    return Math.floor(this.clock.now() / 1000)
  }

  private sign(payload: Record<string, unknown>, ttl: number): string {
    const iat = this.nowSeconds()
    const token = signJwt({...payload, iat, exp: iat + ttl}, this.jwtSecret)
    this.state.issuedTokens.push(token)
    return token
  }

  private v1Tokens(agent: AgentRecord): Record<string, unknown> {
    const payload = {agent_id: agent.agent_id, tier: agent.tier || 'free'}
    return {
      access_token: this.sign(payload, this.accessTtlSeconds),
      expires_in: this.accessTtlSeconds,
      refresh_token: this.sign({...payload, type: 'refresh'}, this.refreshTtlSeconds),
      token_type: 'Bearer',
    }
  }

  /** Legacy: a JWT access token and a new opaque refresh token replacing the agent's previous one. */
  private legacyTokens(agent: AgentRecord): Record<string, unknown> {
    for (const [hash, entry] of this.state.refreshTokens)
      if (entry.agent_id === agent.agent_id) this.state.refreshTokens.delete(hash)
    const refresh = `rt_${randomHex(32)}`
    this.state.issuedTokens.push(refresh)
    this.state.refreshTokens.set(sha256(refresh), {
      agent_id: agent.agent_id,
      expires_at: this.clock.now() + this.refreshTtlSeconds * 1000,
    })
    return {
      access_token: this.sign(
        {agent_id: agent.agent_id, name: agent.name, permissions: agent.permissions, tier: agent.tier},
        this.accessTtlSeconds,
      ),
      expires_in: this.accessTtlSeconds,
      refresh_token: refresh,
      refresh_token_expires_in: this.refreshTtlSeconds,
      token_type: 'Bearer',
    }
  }

  /** §4 guard, v0.7 messages: claims or a 401 answer. */
  private v1Guard(context: Context): Guarded {
    const header = context.headers.authorization
    const deny = (error: string): Guarded => ({deny: json(401, {error, status: 401})})
    if (header === undefined || header === '') return deny('Missing Authorization header')
    const [scheme, token] = header.split(' ')
    if (scheme !== 'Bearer') return deny('Authorization header must use Bearer scheme')
    if (token === undefined || token === '') return deny('Missing JWT token')
    const claims = verifyJwt(token, this.jwtSecret, this.nowSeconds())
    if (!claims) return deny('Invalid token')
    if (claims.type === 'refresh') return deny('Invalid token type. Use access token, not refresh token.')
    return {claims}
  }

  /** §4 guard, legacy messages (the scheme is not checked: the second word is the token). */
  private legacyGuard(context: Context): Guarded {
    const token = context.headers.authorization?.split(' ')[1]
    if (token === undefined || token === '')
      return {
        deny: json(401, {
          error: 'Unauthorized',
          message: 'No token provided. Use POST /agents/verify to get a token.',
        }),
      }
    const claims = verifyJwt(token, this.jwtSecret, this.nowSeconds())
    if (!claims) return {deny: json(401, {error: 'Unauthorized', message: 'Invalid or expired token'})}
    return {claims}
  }

  private v1Jwt(handler: (context: Context, claims: Record<string, unknown>) => Answer): Handler {
    return this.jwt((context) => this.v1Guard(context), handler)
  }

  private legacyJwt(handler: (context: Context, claims: Record<string, unknown>) => Answer): Handler {
    return this.jwt((context) => this.legacyGuard(context), handler)
  }

  private jwt(
    guard: (context: Context) => Guarded,
    handler: (context: Context, claims: Record<string, unknown>) => Answer,
  ): Handler {
    return (context) => {
      const verdict = guard(context)
      return 'deny' in verdict ? verdict.deny : handler(context, verdict.claims)
    }
  }

  // ── deliveries ────────────────────────────────────────────────────────────────────────────

  private deliver(
    hook: WebhookRecord,
    event: string,
    body: Buffer,
    extra: Record<string, string>,
  ): Promise<Delivery> {
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'X-AgentAuth-Signature': createHmac('sha256', hook.secret).update(body).digest('hex'),
      ...extra,
    }
    const delivery: Delivery = {body, event, headers, url: hook.url}
    const done = new Promise<Delivery>((resolve) => {
      const finish = (): void => {
        this.deliveries.push(delivery)
        for (const wake of this.deliveryWaiters) wake()
        resolve(delivery)
      }

      const outgoing = httpRequest(
        hook.url,
        {headers: {...headers, 'Content-Length': String(body.length)}, method: 'POST', timeout: 5000},
        (response) => {
          delivery.status = response.statusCode
          response.resume()
          response.once('end', finish)
        },
      )
      outgoing.once('timeout', () => outgoing.destroy(new Error('timeout')))
      outgoing.once('error', (error) => {
        delivery.error = error.message
        finish()
      })
      outgoing.end(body)
    })
    const tracked = done.then(() => {
      this.pendingDeliveries.delete(tracked)
    })
    this.pendingDeliveries.add(tracked)
    return done
  }

  /** Legacy `sendWebhook`: the agent's active endpoints subscribed to `event`, fire-and-forget. */
  private legacyEvent(agentId: string, event: string, data: Record<string, unknown>): void {
    const timestamp = String(this.clock.now())
    const body = Buffer.from(JSON.stringify({data, event, timestamp}))
    for (const hook of this.state.webhooks.values())
      if (hook.agent_id === agentId && hook.is_active && hook.events.includes(event))
        this.deliver(hook, event, body, {
          'X-AgentAuth-Event': event,
          'X-AgentAuth-Timestamp': timestamp,
        }).catch(() => {})
  }

  // ── v0.7 ──────────────────────────────────────────────────────────────────────────────────

  private v1Routes(): void {
    this.route('GET', '/health', () =>
      json(200, {
        service: 'AgentAuth API',
        status: 'healthy',
        timestamp: new Date(this.clock.now()).toISOString(),
        version: '0.7.0',
      }),
    )
    const jwt = this.v1Jwt.bind(this)
    for (const prefix of ['/v1', '']) {
      this.route('POST', `${prefix}/agents/register`, (c) => this.v1Register(c), true)
      this.route('POST', `${prefix}/agents/verify`, (c) => this.v1Verify(c), true)
      this.route('POST', `${prefix}/agents/refresh`, (c) => this.v1Refresh(c), true)
      this.route(
        'GET',
        `${prefix}/agents`,
        jwt((c) => this.v1List(c)),
      )
      this.route(
        'GET',
        `${prefix}/agents/:agent_id`,
        jwt((c) => this.v1Get(c)),
      )
      this.route(
        'PUT',
        `${prefix}/agents/:agent_id/tier`,
        jwt((c) => this.v1Tier(c)),
      )
      this.route(
        'PUT',
        `${prefix}/agents/:agent_id/status`,
        jwt((c) => this.v1Status(c)),
      )
      this.route(
        'DELETE',
        `${prefix}/agents/:agent_id`,
        jwt((c) => {
          this.state.agents.delete(c.params.agent_id as string)
          return json(200, {message: 'Agent deleted successfully', success: true})
        }),
      )
      this.route(
        'GET',
        `${prefix}/agents/:agent_id/activity`,
        jwt((c) => this.v1Activity(c)),
      )
      this.route('GET', `${prefix}/webhooks/events`, () => json(200, {events: V1_EVENTS}))
      this.route(
        'POST',
        `${prefix}/webhooks`,
        jwt((c) => this.v1WebhookCreate(c)),
      )
      this.route(
        'GET',
        `${prefix}/webhooks`,
        jwt((c) => this.v1WebhookList(c)),
      )
      this.route(
        'DELETE',
        `${prefix}/webhooks/:id`,
        jwt((c) => {
          this.state.webhooks.delete(c.params.id as string)
          return json(200, {message: 'Webhook deleted successfully', success: true})
        }),
      )
      this.route(
        'POST',
        `${prefix}/webhooks/:id/regenerate-secret`,
        jwt((c) => this.v1WebhookRotate(c)),
      )
    }
  }

  private v1Register({body}: Context): Answer {
    const details: Array<{field: string; message: string}> = []
    const {description, name, owner_email: email, permissions} = body
    if (typeof name !== 'string' || name.length < 3 || name.length > 100)
      details.push({field: 'name', message: 'Name must be between 3 and 100 characters'})
    if (typeof email !== 'string' || email.length > 255 || !EMAIL.test(email))
      details.push({field: 'owner_email', message: 'A valid owner email is required'})
    if (description !== undefined && (typeof description !== 'string' || description.length > 500))
      details.push({field: 'description', message: 'Description must be at most 500 characters'})
    if (
      permissions !== undefined &&
      (!Array.isArray(permissions) ||
        permissions.length === 0 ||
        permissions.length > 50 ||
        !permissions.every((p) => typeof p === 'string'))
    )
      details.push({field: 'permissions', message: 'Permissions must be an array of 1 to 50 strings'})
    if (details.length > 0) return json(400, {details, error: 'Validation failed', status: 400})
    const {agent, apiKey} = this.state.addAgent({
      description: (description as string | undefined) ?? null,
      name: name as string,
      owner_email: email as string,
      permissions: (permissions as string[] | undefined) ?? ['zendesk:tickets:read'],
    })
    return json(201, {
      agent_id: agent.agent_id,
      api_key: apiKey,
      created_at: agent.created_at,
      name: agent.name,
      owner_email: agent.owner_email,
      permissions: agent.permissions,
      tier: agent.tier,
    })
  }

  private v1Verify({body, ip}: Context): Answer {
    const {agent_id: agentId, api_key: apiKey} = body
    const invalid = (error: string): Answer => json(400, {error, valid: false})
    if (agentId === undefined || agentId === null || agentId === '') return invalid('Agent ID is required')
    if (typeof agentId !== 'string') return invalid('Agent ID must be a string')
    if (apiKey === undefined || apiKey === null || apiKey === '') return invalid('API key is required')
    if (typeof apiKey !== 'string') return invalid('API key must be a string')
    const agent = this.state.agents.get(agentId)
    if (!agent || !sameHash(agent.api_key_hash, sha256(apiKey)) || agent.status !== 'active') {
      this.state.logVerification(agentId, false, 'Invalid credentials', ip)
      return json(401, {error: 'Invalid credentials', valid: false})
    }

    this.state.logVerification(agentId, true, 'Valid credentials', ip)
    agent.last_verified_at = this.state.dbTime()
    return json(200, {
      agent: {
        agent_id: agent.agent_id,
        name: agent.name,
        permissions: agent.permissions,
        status: agent.status,
        tier: agent.tier,
      },
      token: this.v1Tokens(agent),
      verified: true,
    })
  }

  private v1Refresh({body}: Context): Answer {
    const token = body.refresh_token
    if (typeof token !== 'string' || token === '')
      return json(400, {error: 'Missing refresh_token', status: 400})
    const claims = verifyJwt(token, this.jwtSecret, this.nowSeconds())
    if (!claims) return json(401, {error: 'Invalid or expired refresh token', status: 401})
    if (claims.type !== 'refresh') return json(401, {error: 'Invalid token type', status: 401})
    const agent = this.state.agents.get(String(claims.agent_id))
    if (!agent || agent.status !== 'active')
      return json(401, {error: 'Agent not found or inactive', status: 401})
    return json(200, this.v1Tokens(agent))
  }

  private v1List({query}: Context): Answer {
    const limit = Number.parseInt(query.get('limit') ?? '', 10) || 50
    const offset = Number.parseInt(query.get('offset') ?? '', 10) || 0
    const status = query.get('status')
    const all = [...this.state.agents.values()]
      .reverse()
      .filter((a) => status === null || a.status === status)
    const agents = all.slice(offset, offset + limit).map((a) => ({
      agent_id: a.agent_id,
      created_at: a.created_at,
      description: a.description,
      last_verified_at: a.last_verified_at,
      name: a.name,
      owner_email: a.owner_email,
      status: a.status,
      tier: a.tier,
    }))
    return json(200, {agents, limit, offset, total: all.length})
  }

  private v1Get({params}: Context): Answer {
    const agent = this.state.agents.get(params.agent_id as string)
    if (!agent) return json(404, {error: 'Agent not found', status: 404})
    return json(200, withoutHash(agent))
  }

  private v1Tier({body, params}: Context): Answer {
    if (typeof body.tier !== 'string' || !TIERS.includes(body.tier))
      return json(400, {
        details: [{field: 'tier', message: 'Invalid tier. Must be one of: free, pro, enterprise'}],
        error: 'Validation failed',
        status: 400,
      })
    const agent = this.state.agents.get(params.agent_id as string)
    if (!agent) return json(404, {error: 'Resource not found', status: 404})
    agent.tier = body.tier
    agent.updated_at = this.state.dbTime()
    return json(200, {agent_id: agent.agent_id, tier: agent.tier, updated_at: agent.updated_at})
  }

  private v1Status({body, params}: Context): Answer {
    if (typeof body.status !== 'string' || !['active', 'disabled', 'suspended'].includes(body.status))
      return json(400, {
        details: [{field: 'status', message: 'Invalid status. Must be one of: active, suspended, disabled'}],
        error: 'Validation failed',
        status: 400,
      })
    const agent = this.state.agents.get(params.agent_id as string)
    if (!agent) return json(404, {error: 'Resource not found', status: 404})
    if (body.status === 'disabled')
      return json(500, {
        error: 'new row for relation "agents" violates check constraint "agents_status_check"',
        status: 500,
      })
    agent.status = body.status
    agent.updated_at = this.state.dbTime()
    return json(200, {agent_id: agent.agent_id, status: agent.status, updated_at: agent.updated_at})
  }

  private v1Activity({params, query}: Context): Answer {
    const limit = Number.parseInt(query.get('limit') ?? '', 10) || 100
    const offset = Number.parseInt(query.get('offset') ?? '', 10) || 0
    const all = this.state.activityOf(params.agent_id as string)
    return json(200, {limit, logs: all.slice(offset, offset + limit), offset, total: all.length})
  }

  private v1WebhookCreate({body}: Context): Answer {
    const details: Array<{field: string; message: string}> = []
    const {agent_id: agentId, description, events, url} = body
    let extra: Record<string, unknown> = {}
    if (typeof agentId !== 'string' || agentId === '')
      details.push({field: 'agent_id', message: 'agent_id is required'})
    if (typeof url === 'string') {
      try {
        const parsed = new URL(url)
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
          details.push({field: 'url', message: 'URL must use HTTP or HTTPS protocol'})
      } catch {
        details.push({field: 'url', message: 'Invalid URL format'})
      }
    } else {
      details.push({field: 'url', message: 'URL is required'})
    }

    if (!Array.isArray(events) || events.length === 0)
      details.push({field: 'events', message: 'At least one event is required'})
    else if (events.length > 20) details.push({field: 'events', message: 'Too many events (max 20)'})
    else
      for (const event of events)
        if (typeof event !== 'string' || !V1_EVENTS.includes(event)) {
          details.push({field: 'events', message: `Invalid event: ${String(event)}`})
          extra = {available: V1_EVENTS}
        }

    if (description !== undefined && (typeof description !== 'string' || description.length > 500))
      details.push({field: 'description', message: 'Description must be at most 500 characters'})
    if (details.length > 0) return json(400, {details, error: 'Validation failed', status: 400, ...extra})
    const hook = this.state.addWebhook({
      agent_id: agentId as string,
      description: (description as string | undefined) ?? null,
      events: events as string[],
      is_active: true,
      url: url as string,
    })
    return json(201, hook)
  }

  private v1WebhookList({query}: Context): Answer {
    const agentId = query.get('agent_id')
    if (agentId === null || agentId === '')
      return json(400, {
        details: [{field: 'agent_id', message: 'agent_id query parameter is required'}],
        error: 'Validation failed',
        status: 400,
      })
    const webhooks = [...this.state.webhooks.values()]
      .filter((h) => h.agent_id === agentId)
      .map((h) => ({...h, secret: '***'}))
    return json(200, {webhooks})
  }

  private v1WebhookRotate({params}: Context): Answer {
    const hook = this.state.webhooks.get(params.id as string)
    if (!hook) return json(404, {error: 'Resource not found', status: 404})
    hook.secret = this.state.newWebhookSecret()
    hook.updated_at = this.state.dbTime()
    return json(200, {
      message: 'Webhook secret regenerated successfully',
      secret: hook.secret,
      webhook_id: hook.id,
    })
  }

  // ── legacy (v0.4) ─────────────────────────────────────────────────────────────────────────

  private legacyRoutes(): void {
    const jwt = this.legacyJwt.bind(this)
    this.route('GET', '/health', () =>
      json(200, {
        checks: {database: 'healthy'},
        service: 'AgentAuths API',
        status: 'healthy',
        timestamp: new Date(this.clock.now()).toISOString(),
        version: '0.1.0',
      }),
    )
    this.route('GET', '/permissions/list', () =>
      json(200, {
        examples: ['zendesk:tickets:read', 'github:repos:*', '*:*:*'],
        format: 'service:resource:action',
        permissions: CATALOGUE,
        wildcards: {
          '*:*:*': 'all permissions',
          'service:*:*': 'all of a service',
          'service:resource:*': 'all actions',
        },
      }),
    )
    this.route('POST', '/agents/register', (c) => this.legacyRegister(c), true)
    this.route('POST', '/agents/verify', (c) => this.legacyVerify(c), true)
    this.route('POST', '/agents/refresh', (c) => this.legacyRefresh(c), true)
    this.route(
      'POST',
      '/agents/revoke-tokens',
      jwt((_c, claims) => {
        for (const [hash, entry] of this.state.refreshTokens)
          if (entry.agent_id === claims.agent_id) this.state.refreshTokens.delete(hash)
        return json(200, {message: 'All refresh tokens revoked', success: true})
      }),
    )
    this.route(
      'GET',
      '/agents',
      jwt((_c, claims) => {
        if (!hasPermission(permissionsOf(claims), '*:*:*'))
          return json(403, {
            error: 'Forbidden',
            message: 'Admin permission required',
            your_permissions: permissionsOf(claims),
          })
        const agents = [...this.state.agents.values()].reverse().map((agent) => {
          const row = withoutHash(agent)
          delete row.updated_at
          return row
        })
        return json(200, {agents, count: agents.length})
      }),
    )
    this.route(
      'GET',
      '/agents/:agent_id',
      jwt((c, claims) => {
        const denied = this.selfOrAdmin(c, claims)
        if (denied) return denied
        const agent = this.state.agents.get(c.params.agent_id as string)
        if (!agent) return json(404, {error: 'Not found', message: 'Agent not found'})
        const {
          agent_id: id,
          created_at: created,
          description,
          last_verified_at: verified,
          name,
          owner_email: email,
          permissions,
          status,
        } = agent
        return json(200, {
          agent: {
            agent_id: id,
            created_at: created,
            description,
            last_verified_at: verified,
            name,
            owner_email: email,
            permissions,
            status,
          },
        })
      }),
    )
    this.route(
      'POST',
      '/agents/:agent_id/revoke',
      jwt((c, claims) => {
        const denied = this.selfOrAdmin(c, claims)
        if (denied) return denied
        const agent = this.state.agents.get(c.params.agent_id as string)
        if (!agent) return json(404, {error: 'Not found', message: 'Agent not found'})
        agent.status = 'revoked'
        agent.updated_at = this.state.dbTime()
        this.legacyEvent(agent.agent_id, 'agent.revoked', {
          agent_id: agent.agent_id,
          revoked_at: new Date(this.clock.now()).toISOString(),
          revoked_by: claims.agent_id,
        })
        return json(200, {
          agent: {agent_id: agent.agent_id, name: agent.name, status: 'revoked'},
          message: 'Agent revoked successfully',
          success: true,
        })
      }),
    )
    this.route(
      'PUT',
      '/agents/:agent_id/tier',
      jwt((c, claims) => {
        if (!hasPermission(permissionsOf(claims), '*:*:*'))
          return json(403, {
            error: 'Forbidden',
            message: 'Admin permission required',
            your_permissions: permissionsOf(claims),
          })
        if (typeof c.body.tier !== 'string' || !TIERS.includes(c.body.tier))
          return json(400, {
            error: 'Invalid tier',
            message: 'Tier must be one of: free, pro, enterprise',
            valid_tiers: TIERS,
          })
        const agent = this.state.agents.get(c.params.agent_id as string)
        if (!agent) return json(404, {error: 'Not found', message: 'Agent not found'})
        agent.tier = c.body.tier
        return json(200, {
          agent: {agent_id: agent.agent_id, name: agent.name, status: agent.status, tier: agent.tier},
          message: `Agent tier updated to ${agent.tier}`,
          success: true,
        })
      }),
    )
    this.route(
      'GET',
      '/agents/:agent_id/activity',
      jwt((c, claims) => {
        const denied = this.selfOrAdmin(c, claims)
        if (denied) return denied
        const limit = Number.parseInt(c.query.get('limit') ?? '', 10) || 50
        const offset = Number.parseInt(c.query.get('offset') ?? '', 10) || 0
        const all = this.state.activityOf(c.params.agent_id as string)
        const activity = all.slice(offset, offset + limit)
        return json(200, {
          activity,
          agent_id: c.params.agent_id,
          pagination: {
            count: activity.length,
            has_more: offset + activity.length < all.length,
            limit,
            offset,
            total: all.length,
          },
        })
      }),
    )
    this.route('GET', '/webhooks/events', () => json(200, {events: LEGACY_EVENTS}))
    this.route(
      'POST',
      '/webhooks',
      jwt((c, claims) => this.legacyWebhookCreate(c, claims)),
    )
    this.route(
      'GET',
      '/webhooks',
      jwt((_c, claims) => {
        const webhooks = [...this.state.webhooks.values()]
          .filter((h) => h.agent_id === claims.agent_id)
          .map(({created_at: created, events, id, is_active: active, url}) => ({
            created_at: created,
            events,
            id,
            is_active: active,
            url,
          }))
        return json(200, {count: webhooks.length, webhooks})
      }),
    )
    this.route(
      'DELETE',
      '/webhooks/:id',
      jwt((c, claims) => {
        const hook = this.state.webhooks.get(c.params.id as string)
        if (!hook || hook.agent_id !== claims.agent_id) return json(404, {error: 'Webhook not found'})
        this.state.webhooks.delete(c.params.id as string)
        return json(200, {message: 'Webhook deleted', success: true})
      }),
    )
    this.route(
      'POST',
      '/webhooks/:id/regenerate-secret',
      jwt((c, claims) => {
        const hook = this.state.webhooks.get(c.params.id as string)
        if (!hook || hook.agent_id !== claims.agent_id) return json(404, {error: 'Webhook not found'})
        hook.secret = this.state.newWebhookSecret()
        return json(200, {
          message: 'Webhook secret regenerated',
          secret: hook.secret,
          success: true,
          webhook: {events: hook.events, id: hook.id, is_active: hook.is_active, url: hook.url},
        })
      }),
    )
  }

  private selfOrAdmin(context: Context, claims: Record<string, unknown>): Answer | undefined {
    if (claims.agent_id === context.params.agent_id || hasPermission(permissionsOf(claims), '*:*:*'))
      return undefined
    return json(403, {
      error: 'Forbidden',
      message: 'You can only access your own agent',
      your_permissions: permissionsOf(claims),
    })
  }

  private legacyRegister({body}: Context): Answer {
    const {description, name, owner_email: email, permissions} = body
    if (!name || !email)
      return json(400, {error: 'Missing required fields', required: ['name', 'owner_email']})
    if (typeof name !== 'string' || name.length < 3 || name.length > 100)
      return json(400, {error: 'Invalid agent name', message: 'Name must be 3-100 characters'})
    if (typeof email !== 'string' || email.length > 255 || !EMAIL.test(email))
      return json(400, {error: 'Invalid email', message: 'Please provide a valid email address'})
    if (
      description !== undefined &&
      description !== null &&
      (typeof description !== 'string' || description.length > 500)
    )
      return json(400, {error: 'Invalid description', message: 'Description must be at most 500 characters'})
    let granted = ['zendesk:tickets:read']
    if (permissions !== undefined) {
      if (!Array.isArray(permissions) || permissions.length === 0)
        return json(400, {error: 'Invalid permissions', message: 'Permissions must be a non-empty array'})
      const invalid = permissions
        .filter((p) => typeof p !== 'string' || !CATALOGUE.includes(p))
        .map((p) => ({permission: String(p), reason: 'Unknown permission'}))
      if (invalid.length > 0)
        return json(400, {
          error: 'Invalid permissions',
          invalid_permissions: invalid,
          message: 'Some permissions are not valid',
        })
      granted = [...new Set(permissions as string[])]
    }

    const {agent, apiKey} = this.state.addAgent({
      description: (description as null | string | undefined) ?? null,
      name,
      owner_email: email,
      permissions: granted,
    })
    return json(201, {
      agent: {agent_id: agent.agent_id, created_at: agent.created_at, name: agent.name, status: agent.status},
      credentials: {api_key: apiKey, token_type: 'Bearer'},
      message: "Agent registered successfully. Save your API key - it won't be shown again!",
      success: true,
    })
  }

  private legacyVerify({body, ip}: Context): Answer {
    const {agent_id: agentId, api_key: apiKey} = body
    if (typeof agentId !== 'string' || agentId === '' || typeof apiKey !== 'string' || apiKey === '')
      return json(400, {error: 'Missing required fields', required: ['agent_id', 'api_key']})
    const agent = this.state.agents.get(agentId)
    if (!agent) {
      this.state.logVerification(agentId, false, 'agent_not_found', ip)
      return json(401, {error: 'Invalid credentials', verified: false})
    }

    if (agent.status !== 'active') {
      this.state.logVerification(agentId, false, 'agent_inactive', ip)
      return json(401, {error: 'Agent is not active', status: agent.status, verified: false})
    }

    if (!sameHash(agent.api_key_hash, sha256(apiKey))) {
      this.state.logVerification(agentId, false, 'invalid_api_key', ip)
      return json(401, {error: 'Invalid credentials', verified: false})
    }

    this.state.logVerification(agentId, true, 'success', ip)
    agent.last_verified_at = this.state.dbTime()
    const token = this.legacyTokens(agent)
    this.legacyEvent(agent.agent_id, 'agent.verified', {
      agent_id: agent.agent_id,
      ip_address: ip,
      verified_at: new Date(this.clock.now()).toISOString(),
    })
    return json(200, {
      agent: {
        agent_id: agent.agent_id,
        name: agent.name,
        permissions: agent.permissions,
        status: agent.status,
      },
      token,
      verified: true,
    })
  }

  private legacyRefresh({body}: Context): Answer {
    const token = body.refresh_token
    if (typeof token !== 'string' || token === '') return json(400, {error: 'refresh_token required'})
    const hash = sha256(token)
    const entry = this.state.refreshTokens.get(hash)
    if (!entry) return json(401, {error: 'Invalid refresh token'})
    if (this.clock.now() >= entry.expires_at) {
      this.state.refreshTokens.delete(hash)
      return json(401, {error: 'Refresh token expired'})
    }

    const agent = this.state.agents.get(entry.agent_id)
    if (!agent) return json(401, {error: 'Invalid refresh token'})
    if (agent.status !== 'active') return json(403, {error: `Agent is ${agent.status}`})
    // Rotation: the old refresh token dies with this use.
    return json(200, this.legacyTokens(agent))
  }

  private legacyWebhookCreate({body}: Context, claims: Record<string, unknown>): Answer {
    const {events, url} = body
    if (!url || !events) return json(400, {error: 'Missing required fields', required: ['url', 'events']})
    try {
      const parsed = new URL(String(url))
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('protocol')
    } catch {
      return json(400, {error: 'Invalid URL format'})
    }

    if (!Array.isArray(events) || events.length === 0)
      return json(400, {error: 'events must be a non-empty array'})
    const invalid = events.filter((e) => typeof e !== 'string' || !LEGACY_EVENTS.includes(e))
    if (invalid.length > 0) return json(400, {error: 'Invalid events', invalid, valid_events: LEGACY_EVENTS})
    const hook = this.state.addWebhook({
      agent_id: String(claims.agent_id),
      description: null,
      events: events as string[],
      is_active: true,
      url: String(url),
    })
    return json(201, {
      secret: hook.secret,
      success: true,
      webhook: {
        created_at: hook.created_at,
        events: hook.events,
        id: hook.id,
        is_active: hook.is_active,
        url: hook.url,
      },
    })
  }
}

/** A stored agent row as the API shows it: everything but the key hash. */
function withoutHash(agent: AgentRecord): Partial<AgentRecord> {
  const row: Partial<AgentRecord> = {...agent}
  delete row.api_key_hash
  return row
}

function matches(pattern: RegExp | string, pathname: string): boolean {
  return typeof pattern === 'string' ? pattern === pathname : pattern.test(pathname)
}

function permissionsOf(claims: Record<string, unknown>): string[] {
  return Array.isArray(claims.permissions)
    ? claims.permissions.filter((p): p is string => typeof p === 'string')
    : []
}

function sameHash(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex')
}

/** Start a server (and listen); the caller must `close()` it. */
export function startAgentAuthServer(options: AgentAuthServerOptions): Promise<AgentAuthTestServer> {
  return new AgentAuthTestServer(options).listen()
}
