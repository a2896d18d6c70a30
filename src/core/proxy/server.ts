/**
 * `agentvault proxy`: AgentSecrets' local `/proxy` HTTP API (protocols/agentsecrets.md §5) served
 * by agentvault's own `call` engine, over every backend. Plain node:http on 127.0.0.1 only.
 *
 * Guards, in order: the `Host` header must name this listener (DNS rebinding), `/health` is open,
 * `/proxy` needs the session token (constant-time compare), then the request is checked, its body
 * read under a cap, and the call made by `callWithSecrets` — allowlists, SSRF guard, redirects,
 * redaction (with AgentSecrets' marker) and limits are the engine's. No CORS header is ever sent.
 * Each `/proxy` request is one audit event (command `proxy`) and one stderr line, never a value.
 * One backend instance per profile (the root session's) serves every request.
 */
import type {IncomingMessage, Server, ServerResponse} from 'node:http'

import type {AuditEvent} from '../audit.js'
import type {Session} from '../session.js'
import type {UseLimits} from '../use.js'
import type {Redactor} from '../use/redaction.js'

import {AgentVaultError, toAgentVaultError} from '../errors.js'
import {
  injectionFlags,
  parseProxyHeaders,
  printable,
  type ProxyInjection,
  ProxyRequestError,
} from './headers.js'
import {answerFor, type ProxyAnswer, type ProxyOutcome, REDACTION_MARKER, shapeA} from './responses.js'

export const DEFAULT_PROXY_PORT = 8765
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
/** A client that has not sent its headers by then is cut off (slowloris). */
export const HEADERS_TIMEOUT_MS = 10_000
export const INSTANCE_HEADER = 'X-AgentVault-Instance'
/**
 * How long audit events gather before they are appended together (see `record`). Each append
 * takes the audit lock, reads the log's tail and head and fsyncs twice whatever its size: at 50 ms
 * a busy proxy pays that 20 times a second, not 100. Events are recorded after the answer either
 * way; a stop (SIGINT/SIGTERM) appends what is waiting at once.
 */
export const AUDIT_BATCH_MS = 50
/** At most this many audit events wait in memory for a log that cannot be written (see flush). */
const MAX_UNWRITTEN_EVENTS = 10_000

export interface ProxyServerOptions {
  /** `/health`'s `project`. */
  project: string
  limits: UseLimits
  /** One line per `/proxy` request (no values); several lines of a batch come in one call. */
  log(line: string): void
  maxBodyBytes?: number
  port: number
  /** The long-lived session: its config and one backend instance per profile serve every request. */
  session: Session
  /** `as_sess_…`, or undefined when `--no-session-token`. */
  token?: string
  /**
   * This process's identity, sent by `/health` as `X-AgentVault-Instance` and kept in the pid file:
   * `proxy stop` signals a pid only when its port answers with it (not a reused pid).
   */
  instance?: string
}

export interface RunningProxy {
  port: number
  /** Stop accepting, let requests in flight finish (bounded), write their audit events. */
  close(): Promise<void>
}

/** Upstream response headers that describe a hop, or that would grant a browser page access. */
function droppedResponseHeader(name: string): boolean {
  return (
    name.startsWith('access-control-') ||
    [
      'connection',
      'content-length',
      'keep-alive',
      'proxy-connection',
      'trailer',
      'transfer-encoding',
      'upgrade',
    ].includes(name)
  )
}

/** Reason phrases of the statuses the proxy answers with itself. */
const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  413: 'Payload Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
}

/** An RFC 9110 token: what a header name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~\dA-Za-z]+$/
/** A header value Node sends: no control characters but tab. */
const FIELD_VALUE = /^[\t\u0020-\u007E\u0080-\u00FF]*$/

/**
 * The upstream's headers to pass on. A name that echoed a secret holds the marker, whose brackets
 * are not allowed in a name: it becomes `…-REDACTED_BY_AGENTSECRETS` (a valid token). A name or
 * value Node would refuse anyway (a backend's JSON answer) is dropped, and counted in
 * `X-AgentVault-Dropped-Headers` so that the client knows.
 */
export function forwardableHeaders(
  headers: Readonly<Record<string, string | readonly string[] | undefined>>,
): Array<[string, string]> {
  const out: Array<[string, string]> = []
  let dropped = 0
  for (const [raw, value] of Object.entries(headers)) {
    if (value === undefined || droppedResponseHeader(raw.toLowerCase())) continue
    const name = raw.replaceAll(REDACTION_MARKER, REDACTION_MARKER.slice(1, -1))
    for (const item of typeof value === 'string' ? [value] : value) {
      if (TOKEN.test(name) && FIELD_VALUE.test(item)) out.push([name, item])
      else dropped++
    }
  }

  if (dropped > 0) out.push(['X-AgentVault-Dropped-Headers', String(dropped)])
  return out
}

/** Answer with a body of ours; `close` when the rest of the request will not be read. */
function send(response: ServerResponse, answer: ProxyAnswer, close = false): void {
  if (response.headersSent) {
    response.destroy()
    return
  }

  // The reason phrase of this status: a failed writeHead before may have left another one set.
  response.statusMessage = STATUS_TEXT[answer.status] ?? 'Unknown'
  response.writeHead(answer.status, {
    'Content-Length': String(answer.body.length),
    'Content-Type': answer.contentType,
    ...(close && {Connection: 'close'}),
  })
  response.end(answer.body)
}

/** Read the body under a cap; undefined for an empty body. */
function readBody(request: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headersDistinct['content-length']?.[0])
    if (Number.isFinite(declared) && declared > max) {
      reject(new BodyTooLarge(max))
      return
    }

    const chunks: Buffer[] = []
    let size = 0
    request.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > max) {
        request.removeAllListeners('data')
        request.resume()
        reject(new BodyTooLarge(max))
        return
      }

      chunks.push(chunk)
    })
    request.once('end', () => resolve(size === 0 ? undefined : Buffer.concat(chunks)))
    request.once('error', () => reject(new ProxyRequestError('Failed to read request body')))
    request.once('aborted', () => reject(new ProxyRequestError('Failed to read request body')))
  })
}

class BodyTooLarge extends Error {
  constructor(readonly max: number) {
    super(`Request body exceeds ${max} bytes`)
  }
}

export async function startProxyServer(options: ProxyServerOptions): Promise<RunningProxy> {
  const {createServer, STATUS_CODES} = await import('node:http')
  const {timingSafeEqual} = await import('node:crypto')
  const {callWithSecrets} = await import('../use.js')
  const {appendAuditBatch} = await import('../audit.js')
  const connections = await import('../use/http-client.js')
  connections.reuseConnections()
  // The same secrets serve request after request: their maskers are built once.
  const redaction = await import('../use/redaction.js')
  redaction.shareMaskers(true)
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const expectedToken = options.token === undefined ? undefined : Buffer.from(options.token, 'utf8')
  const limits: UseLimits = {...options.limits, redactionMarker: REDACTION_MARKER}
  let allowedHosts = new Set<string>()
  let auditQueue: Promise<void> = Promise.resolve()
  const inFlight = new Set<Promise<void>>()

  const tokenValid = (given: string | undefined): boolean => {
    if (!expectedToken) return true
    if (given === undefined) return false
    // Compared in constant time; only the length may differ faster, and every token has the same
    // public length (`as_sess_` + 32 hex), so it tells nothing. No hash per request.
    const bytes = Buffer.from(given, 'utf8')
    return bytes.length === expectedToken.length && timingSafeEqual(bytes, expectedToken)
  }

  /**
   * Audit after answering (the caller never waits for the fsync). Events wait in a queue and are
   * appended in order: a batch starts {@link AUDIT_BATCH_MS} after the first event that found no
   * batch scheduled, and takes all that gathered by then in one locked, fsynced write (each
   * append's lock, reads and fsyncs cost far more than its events under load). Each request's log
   * line follows its event. `close()` appends what is left at once and waits for the queue.
   */
  const pending: Array<{event?: AuditEvent; line: string}> = []
  let batchTimer: NodeJS.Timeout | undefined
  /**
   * Events of batches whose append failed (a full disk, an unwritable home): a failed append wrote
   * nothing, so they go first into the next batch instead of being lost with a warning — the disk
   * may have room again by then. Bounded: a log that stays unwritable must not grow the memory.
   */
  let unwritten: AuditEvent[] = []
  const flush = async (last = false): Promise<void> => {
    if (pending.length > 0 || (last && unwritten.length > 0)) {
      const batch = pending.splice(0)
      const events = [...unwritten, ...batch.flatMap((item) => (item.event ? [item.event] : []))]
      try {
        await appendAuditBatch(options.session.home, events)
        unwritten = []
      } catch (error) {
        const dropped = last ? events.length : Math.max(0, events.length - MAX_UNWRITTEN_EVENTS)
        unwritten = events.slice(dropped)
        const fate = [
          unwritten.length > 0 && `${unwritten.length} kept to be written with the next request's`,
          dropped > 0 && `${dropped} lost`,
        ].filter(Boolean)
        options.log(
          `Warning: Could not write the audit log: ${error instanceof Error ? error.message : String(error)} (audit events: ${fate.join(', ')})`,
        )
      }

      // The batch's lines in one write (one syscall, not one per request).
      if (batch.length > 0) options.log(batch.map((item) => item.line).join('\n'))
    }
  }

  const record = (
    work: Session,
    method: string,
    status: number,
    outcome: ProxyOutcome,
    error?: AgentVaultError,
  ): void => {
    work.audit.status = status
    const event = work.auditEvent(outcome, outcome === 'ok' ? 0 : (error?.exitCode ?? 1), error?.code)
    const references = [...work.audit.references].join(',') || '-'
    const line = `${new Date().toISOString()} ${status} ${outcome} ${printable(method, 16)} ${work.audit.targetHost ?? '-'} ${references} agent=${work.audit.agentId ?? '-'}${error ? ` ${error.code}` : ''}`
    pending.push({...(event && {event}), line})
    // One batch at a time: requests answered while one is scheduled or written join the next.
    batchTimer ??= setTimeout(() => {
      batchTimer = undefined
      auditQueue = auditQueue.then(async () => flush())
    }, AUDIT_BATCH_MS)
  }

  const serveProxy = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const work = options.session.derive('proxy')
    work.audit.touched = true
    work.audit.operation = 'http_request'
    // Client-supplied text that reaches the log line and the audit event (agent id, target host,
    // method) is scanned for the values this request injected, which are concealed there too.
    const agent = request.headersDistinct['x-as-agent-id']?.[0]?.trim()
    if (agent) work.audit.agentId = printable(agent, 128)
    let method = request.method ?? 'GET'
    const conceal = (redactor: Redactor): void => {
      if (agent) work.audit.agentId = printable(redactor.text(agent), 128)
      if (work.audit.targetHost) work.audit.targetHost = redactor.text(work.audit.targetHost)
      method = redactor.text(method)
    }

    if (!tokenValid(request.headersDistinct['x-as-session-token']?.[0])) {
      send(response, shapeA(401, 'Invalid or missing session token'))
      record(work, method, 401, 'denied')
      request.resume()
      return
    }

    let injections: readonly ProxyInjection[] = []
    try {
      const spec = parseProxyHeaders(request.headersDistinct, method)
      injections = spec.injections
      method = spec.method
      const flags = injectionFlags(spec.injections)
      const body = await readBody(request, maxBody)
      const outcome = await callWithSecrets(
        work,
        {
          ...(body && {body}),
          headers: spec.headers.map(([name, value]) => `${name}: ${value}`),
          injections: flags,
          method,
          url: spec.target,
        },
        {...limits, concealWith: conceal},
      )
      const status = outcome.status >= 100 && outcome.status <= 999 ? outcome.status : 502
      const headers = forwardableHeaders(outcome.headers)
      // A HEAD answer has no body but tells the length the GET's would have: the upstream's own.
      // (Only to a HEAD request: a GET whose X-AS-Method is HEAD gets the empty body it is told of.)
      const headLength =
        method === 'HEAD' && request.method === 'HEAD' ? outcome.headers['content-length'] : undefined
      headers.push([
        'Content-Length',
        typeof headLength === 'string' && /^\d{1,15}$/.test(headLength)
          ? headLength
          : String(outcome.body.length),
      ])
      try {
        response.writeHead(status, STATUS_CODES[status] ?? 'Unknown', headers.flat())
      } catch {
        // A header Node refuses to send (from a backend's JSON answer): never pass it on half-made.
        send(response, shapeA(502, 'failed to reach upstream: the response has an invalid header'))
        record(work, method, 502, 'error')
        return
      }

      response.end(request.method === 'HEAD' ? undefined : outcome.body)
      record(work, method, status, 'ok')
    } catch (error_) {
      request.resume()
      if (error_ instanceof ProxyRequestError) {
        send(response, shapeA(400, error_.message))
        record(work, method, 400, 'error')
      } else if (error_ instanceof BodyTooLarge) {
        // The rest of the body is not read: end the connection rather than parse it as a request.
        send(response, shapeA(413, error_.message), true)
        record(work, method, 413, 'error')
      } else {
        const error = toAgentVaultError(error_)
        const {answer, outcome} = answerFor(error, injections)
        send(response, answer)
        record(work, method, answer.status, outcome, error)
      }
    }
  }

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 still sends Host: evil.example.
    // headersDistinct only (the first Host, as `headers` has it): every header read from the one
    // object Node builds per request, not two.
    if (!allowedHosts.has((request.headersDistinct.host?.[0] ?? '').toLowerCase())) {
      send(
        response,
        shapeA(403, 'The Host header must be 127.0.0.1, localhost or [::1] with this proxy’s port'),
      )
      request.resume()
      return
    }

    const path = (request.url ?? '').split('?')[0]
    if (path === '/health') {
      request.resume()
      if (options.instance) response.setHeader(INSTANCE_HEADER, options.instance)
      send(response, {
        body: Buffer.from(JSON.stringify({project: options.project, status: 'ok'}), 'utf8'),
        contentType: 'application/json',
        status: 200,
      })
      return
    }

    if (path !== '/proxy') {
      request.resume()
      send(response, {
        body: Buffer.from('404 page not found\n'),
        contentType: 'text/plain; charset=utf-8',
        status: 404,
      })
      return
    }

    await serveProxy(request, response)
  }

  const server: Server = createServer(
    {maxHeaderSize: 16 * 1024, requestTimeout: 120_000},
    (request, response) => {
      const pending = handle(request, response).catch(() => {
        if (response.headersSent) {
          response.destroy()
        } else {
          send(response, shapeA(500, 'internal error in the agentvault proxy'))
        }
      })
      inFlight.add(pending)
      pending.finally(() => inFlight.delete(pending)).catch(() => {})
    },
  )
  server.headersTimeout = HEADERS_TIMEOUT_MS
  server.maxConnections = 1024

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, '127.0.0.1', () => {
      server.off('error', reject)
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : options.port)
    })
  })
  allowedHosts = new Set([`127.0.0.1:${port}`, `[::1]:${port}`, `localhost:${port}`])

  return {
    async close() {
      const closed = new Promise<void>((resolve) => {
        server.close(() => resolve())
      })
      server.closeIdleConnections()
      const {setTimeout: delay} = await import('node:timers/promises')
      await Promise.race([Promise.allSettled(inFlight), delay(10_000, undefined, {ref: false})])
      server.closeAllConnections()
      await closed
      // What the last requests recorded, without waiting for its timer.
      clearTimeout(batchTimer)
      batchTimer = undefined
      auditQueue = auditQueue.then(() => flush(true))
      await auditQueue
      connections.closeConnections()
      redaction.shareMaskers(false)
    },
    port,
  }
}
