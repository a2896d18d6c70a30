/**
 * The AgentSecrets proxy over raw HTTP (protocols/agentsecrets.md §5): `POST /proxy` and
 * `GET /health` on `http://127.0.0.1:<port>` — never `localhost`, which Node may resolve to ::1
 * while the Go proxy listens on IPv4 only. Connection refused and timeouts are E5.
 */
import type {IncomingHttpHeaders} from 'node:http'

import {AgentSecretsProtocolError, proxyDown} from './errors.js'

export const PROXY_HOST = '127.0.0.1'
/** §5.2: agentvault's client timeout (the proxy's own upstream timeout is 30 s). */
export const PROXY_TIMEOUT_MS = 60_000
const HEALTH_TIMEOUT_MS = 5000
const MAX_RESPONSE_BYTES = 50 * 1024 * 1024

export interface ProxyResponse {
  body: Buffer
  headers: IncomingHttpHeaders
  status: number
  statusText: string
}

export interface ProxyRequest {
  body?: Buffer
  headers: Array<[string, string]>
  method: string
  path: '/health' | '/proxy'
  port: number
  timeoutMs?: number
}

/** Pairs as Node's header object (names as given; a repeated name becomes a list). Node 20 takes no raw arrays. */
function headerObject(pairs: ReadonlyArray<readonly [string, string]>): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
  const names = new Map<string, string>()
  for (const [name, value] of pairs) {
    const key = names.get(name.toLowerCase())
    if (key === undefined) {
      names.set(name.toLowerCase(), name)
      headers[name] = value
    } else {
      const existing = headers[key]!
      headers[key] = [...(Array.isArray(existing) ? existing : [existing]), value]
    }
  }

  return headers
}

/** One request to the proxy. Resolves with any HTTP answer; rejects with E5 when none comes. */
export async function proxyRequest(request: ProxyRequest): Promise<ProxyResponse> {
  const {request: send} = await import('node:http')
  const where = `${PROXY_HOST}:${request.port}`
  return new Promise<ProxyResponse>((resolve, reject) => {
    const outgoing = send(
      {
        agent: false,
        headers: headerObject([
          ...request.headers,
          ...(request.body && request.body.length > 0
            ? [['Content-Length', String(request.body.length)] as [string, string]]
            : []),
        ]),
        host: PROXY_HOST,
        method: request.method,
        path: request.path,
        port: request.port,
        timeout: request.timeoutMs ?? PROXY_TIMEOUT_MS,
      },
      (response) => {
        const chunks: Buffer[] = []
        let size = 0
        response.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > MAX_RESPONSE_BYTES) {
            response.destroy()
            reject(
              new AgentSecretsProtocolError(
                `the proxy's response is larger than ${MAX_RESPONSE_BYTES} bytes`,
              ),
            )
            return
          }

          chunks.push(chunk)
        })
        response.once('error', (error) => reject(proxyDown(where, error)))
        response.once('end', () =>
          resolve({
            body: Buffer.concat(chunks),
            headers: response.headers,
            status: response.statusCode ?? 0,
            statusText: response.statusMessage ?? '',
          }),
        )
      },
    )
    outgoing.once('timeout', () => outgoing.destroy(Object.assign(new Error('timeout'), {code: 'ETIMEDOUT'})))
    outgoing.once('error', (error) =>
      reject(proxyDown(`${where}: ${(error as NodeJS.ErrnoException).code ?? 'no answer'}`, error)),
    )
    outgoing.end(request.body && request.body.length > 0 ? request.body : undefined)
  })
}

/** `/health` (§5.1): what a proxy says about itself. */
export interface ProxyHealth {
  /** From 1.1.1 on. */
  last_sync?: string
  project?: string
  revoked_count?: number
  status: string
}

/** `GET /health`; E5 when nothing answers, a protocol error when something else does. */
export async function proxyHealth(port: number): Promise<ProxyHealth> {
  const response = await proxyRequest({
    headers: [],
    method: 'GET',
    path: '/health',
    port,
    timeoutMs: HEALTH_TIMEOUT_MS,
  })
  let data: unknown
  try {
    data = JSON.parse(response.body.toString('utf8'))
  } catch {
    data = undefined
  }

  if (response.status !== 200 || data === null || typeof data !== 'object' || Array.isArray(data))
    throw new AgentSecretsProtocolError(
      `${PROXY_HOST}:${port}/health answered HTTP ${response.status} without the AgentSecrets health JSON`,
    )
  const record = data as Record<string, unknown>
  const text = (value: unknown): string | undefined =>
    typeof value === 'string' && /^[\w.:+ -]{0,80}$/.test(value) ? value : undefined
  return {
    ...(text(record.last_sync) === undefined ? {} : {last_sync: text(record.last_sync)}),
    ...(text(record.project) === undefined ? {} : {project: text(record.project)}),
    ...(typeof record.revoked_count === 'number' ? {revoked_count: record.revoked_count} : {}),
    status: text(record.status) ?? 'unknown',
  }
}
