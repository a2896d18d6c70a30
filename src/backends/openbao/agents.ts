/**
 * The HTTP and HTTPS agents the adapter hands to node-vault (protocols/openbao.md §9, §13). They
 * carry the profile's TLS decision (`ca`, `rejectUnauthorized`) and enforce the redirect rule: a
 * connection opens only to a scheme, host and port equal to one of the profile's addresses, so
 * axios — which follows 307s by itself and keeps `X-Vault-Token` across hosts — can never take the
 * token anywhere else. They also remember each origin's last `Retry-After`, which node-vault drops.
 */
import type {Duplex} from 'node:stream'

import {type ClientRequest, type ClientRequestArgs, Agent as HttpAgent, type IncomingMessage} from 'node:http'
import {Agent as HttpsAgent, type RequestOptions as HttpsRequestOptions} from 'node:https'

/** The code of the error a refused connection fails with (classified as "before sending"). */
export const REDIRECT_REFUSED = 'AGENTVAULT_REDIRECT_REFUSED'

export interface GuardedAgentOptions {
  /** Origins the profile lists; the only places a connection may go. */
  addresses: readonly string[]
  /** PEM bundle replacing the default roots, when configured. */
  ca?: Buffer
  rejectUnauthorized: boolean
}

export interface GuardedAgents {
  destroy(): void
  http: HttpAgent
  https: HttpsAgent
  /** Seconds from the last `Retry-After` a 429 from `origin` carried, if any. */
  retryAfter(origin: string): number | undefined
}

type ConnectionCallback = (error: Error | null, socket: Duplex) => void
type ConnectionOptions = Pick<ClientRequestArgs, 'host' | 'hostname' | 'port'>

/** `scheme//host:port` with brackets stripped and the default port filled in. */
function endpointKey(protocol: string, host: string, port: number | string | undefined): string {
  const bare = host.replaceAll(/^\[|\]$/g, '').toLowerCase()
  const fallback = protocol === 'https:' ? 443 : 80
  return `${protocol}//${bare}:${port === undefined || port === '' ? fallback : Number(port)}`
}

function originKey(origin: string): string {
  const url = new URL(origin)
  return endpointKey(url.protocol, url.hostname, url.port)
}

function refused(key: string): Error {
  return Object.assign(new Error(`refused to connect to ${key}: not one of the profile's addresses`), {
    code: REDIRECT_REFUSED,
  })
}

/** Parse `Retry-After`: delta-seconds or an HTTP date. */
function retryAfterSeconds(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined || text.trim() === '') return undefined
  if (/^\d+$/.test(text.trim())) return Number(text.trim())
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000))
}

/**
 * Agents for one profile. `createConnection` is the one place every socket is made (first
 * request, keep-alive misses and every redirect), so the allowlist check there covers them all.
 */
export function createGuardedAgents(options: GuardedAgentOptions): GuardedAgents {
  const allowed = new Set(options.addresses.map((address) => originKey(address)))
  const retryAfter = new Map<string, number>()

  const guard = (
    protocol: string,
    connection: ConnectionOptions,
    callback: ConnectionCallback,
  ): Error | undefined => {
    const host = connection.hostname ?? connection.host ?? 'localhost'
    const key = endpointKey(protocol, host, connection.port ?? undefined)
    if (allowed.has(key)) return undefined
    const error = refused(key)
    // Node's Agent reports the error on the request: no socket is ever created.
    callback(error, undefined as unknown as Duplex)
    return error
  }

  const watch = (protocol: string, request: ClientRequest, connection: ConnectionOptions): void => {
    request.once('response', (response: IncomingMessage) => {
      if (response.statusCode !== 429) return
      const seconds = retryAfterSeconds(response.headers['retry-after'])
      const key = endpointKey(
        protocol,
        connection.hostname ?? connection.host ?? 'localhost',
        connection.port ?? undefined,
      )
      if (seconds === undefined) retryAfter.delete(key)
      else retryAfter.set(key, seconds)
    })
  }

  // Node's Agent calls `createConnection(options, callback)` and `addRequest(request, options)`;
  // neither is in @types/node's Agent class, hence the narrow casts below.
  class GuardedHttpAgent extends HttpAgent {
    addRequest(request: ClientRequest, connection: ConnectionOptions): void {
      watch('http:', request, connection)
      ;(
        HttpAgent.prototype as unknown as {addRequest: (r: ClientRequest, o: ConnectionOptions) => void}
      ).addRequest.call(this, request, connection)
    }

    override createConnection(
      connection: ClientRequestArgs,
      callback?: ConnectionCallback,
    ): Duplex | null | undefined {
      if (guard('http:', connection, callback ?? (() => {}))) return undefined
      return super.createConnection(connection, callback)
    }
  }

  class GuardedHttpsAgent extends HttpsAgent {
    addRequest(request: ClientRequest, connection: ConnectionOptions): void {
      watch('https:', request, connection)
      ;(
        HttpsAgent.prototype as unknown as {addRequest: (r: ClientRequest, o: ConnectionOptions) => void}
      ).addRequest.call(this, request, connection)
    }

    override createConnection(
      connection: HttpsRequestOptions,
      callback?: ConnectionCallback,
    ): Duplex | null | undefined {
      if (guard('https:', connection, callback ?? (() => {}))) return undefined
      return super.createConnection(connection, callback)
    }
  }

  const http = new GuardedHttpAgent({keepAlive: true})
  const https = new GuardedHttpsAgent({
    ...(options.ca ? {ca: options.ca} : {}),
    keepAlive: true,
    rejectUnauthorized: options.rejectUnauthorized,
  })
  return {
    destroy() {
      http.destroy()
      https.destroy()
    },
    http,
    https,
    retryAfter: (origin) => retryAfter.get(originKey(origin)),
  }
}
