/**
 * The forward proxy of `run --placeholders` (issue 15), on 127.0.0.1 at a random port for the
 * child's lifetime:
 * - `CONNECT host:port` to a host no placeholder is allowed for: a plain TCP tunnel, untouched (the
 *   client sees the server's own certificate; pinning clients keep working);
 * - `CONNECT` to a host some placeholder is allowed for: TLS is terminated with a leaf of the run's
 *   CA (HTTP/1.1 via ALPN) and each request is handled as below, then sent on over TLS that
 *   verifies the real server (system roots plus the profiles' `caCert`);
 * - each request (intercepted, or plain `http://` in absolute form): a placeholder whose secret
 *   does not allow this host refuses the whole request (403, audited `denied`); the others are
 *   replaced by their values in the request line, headers and textual bodies; the response comes
 *   back with every echoed value (all the masker's forms) turned into its placeholder again.
 * Messages name hosts and variables, never values.
 */
import type {IncomingMessage, ServerResponse} from 'node:http'
import type {Duplex} from 'node:stream'

import type {RunCa} from './ca.js'

import {AgentVaultError} from '../errors.js'
import {
  bodyContext,
  headerSafe,
  responseRewriter,
  type Rewriter,
  rewriteText,
  type Stand,
  standsIn,
  substitute,
} from './tokens.js'

export interface DeniedAttempt {
  /** AgentVaultError-style code: PLACEHOLDER_HOST_NOT_ALLOWED, PRIVATE_ADDRESS, … */
  code: string
  /** The host the request went to (host[:port]). */
  host: string
  /** The stands whose placeholders it carried. */
  stands: readonly Stand[]
}

export interface ProxyOptions {
  /** Whether `stand`'s secret may go to `hostname` (normalised, as hosts.ts's urlHost gives it). */
  allows(stand: Stand, hostname: string): boolean
  /** Whether the SSRF guard lets these stands' values reach private networks. */
  allowsPrivate(stands: readonly Stand[]): boolean
  ca: RunCa
  /** Largest request body read (bytes): placeholders are found in whole bodies. */
  maxBodyBytes: number
  onDenied(attempt: DeniedAttempt): void
  stands: readonly Stand[]
  /** Extra trusted CA certificates (PEM) for the real servers, besides Node's roots. */
  trustedCas: readonly string[]
}

export interface RunningProxy {
  close(): Promise<void>
  port: number
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own: never forwarded. */
const HOP_HEADERS = new Set([
  'connection',
  'expect',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

function bare(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname
}

function pairs(raw: readonly string[]): Array<[string, string]> {
  const result: Array<[string, string]> = []
  for (let i = 0; i + 1 < raw.length; i += 2) result.push([raw[i] as string, raw[i + 1] as string])
  return result
}

/** Names listed in a Connection header are hop-by-hop too. */
function hopNames(headers: ReadonlyArray<[string, string]>): Set<string> {
  const names = new Set(HOP_HEADERS)
  for (const [name, value] of headers)
    if (name.toLowerCase() === 'connection')
      for (const item of value.split(',')) names.add(item.trim().toLowerCase())
  return names
}

function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    const onData = (chunk: Buffer): void => {
      total += chunk.length
      if (total <= limit) {
        chunks.push(chunk)
        return
      }

      // Drain the rest unread, so that the 413 still reaches the client.
      request.off('data', onData)
      request.resume()
      chunks.length = 0
      reject(
        new Refusal(413, `agentvault: the request body exceeds ${limit} bytes, the placeholder proxy's cap.`),
      )
    }

    request.on('data', onData)
    request.once('end', () => resolve(Buffer.concat(chunks)))
    request.once('error', reject)
  })
}

function refuse(response: ServerResponse, status: number, message: string): void {
  if (response.headersSent) {
    response.destroy()
    return
  }

  const body = Buffer.from(`${message}\n`, 'utf8')
  response.writeHead(status, {
    'content-length': body.length,
    'content-type': 'text/plain; charset=utf-8',
    'x-agentvault-refused': '1',
  })
  response.end(body)
}

export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const [http, https, net, tls, zlib, {pipeline}, {Transform}, client, {urlHost}, tlsCodes] =
    await Promise.all([
      import('node:http'),
      import('node:https'),
      import('node:net'),
      import('node:tls'),
      import('node:zlib'),
      import('node:stream/promises'),
      import('node:stream'),
      import('../use/http-client.js'),
      import('../use/hosts.js'),
      import('../tls.js'),
    ])
  const {stands} = options
  // One context for every upstream connection: an Agent given `ca` would rebuild a context per
  // connection and join every root certificate into each request's pool name (most of the proxy's CPU).
  const secureContext =
    options.trustedCas.length > 0
      ? tls.createSecureContext({ca: [...tls.rootCertificates, ...options.trustedCas]})
      : undefined
  const secureAgent = new https.Agent({keepAlive: true, ...(secureContext && {secureContext})})
  const plainAgent = new http.Agent({keepAlive: true})
  const sockets = new Set<Duplex>()
  const targets = new WeakMap<object, string>()
  const rewriters: Rewriter[] = []
  const intercepts = (hostname: string): boolean => stands.some((stand) => options.allows(stand, hostname))

  function decoderFor(encoding: string | undefined): NodeJS.ReadWriteStream | undefined {
    switch (encoding?.trim().toLowerCase()) {
      case 'br': {
        return zlib.createBrotliDecompress()
      }

      case 'deflate': {
        return zlib.createInflate()
      }

      case 'gzip':
      case 'x-gzip': {
        return zlib.createGunzip()
      }

      default: {
        return undefined
      }
    }
  }

  /** Check and rewrite one request; the outgoing request options and body. */
  function prepare(request: IncomingMessage, url: URL, body: Buffer) {
    const hostname = urlHost(url)
    const headers = pairs(request.rawHeaders)
    const hop = hopNames(headers)
    const kept = headers.filter(([name]) => !hop.has(name.toLowerCase()))
    const path = `${url.pathname}${url.search}`
    const encoding = request.headers['content-encoding']
    const context =
      encoding === undefined || encoding.trim().toLowerCase() === 'identity'
        ? bodyContext(request.headers['content-type'])
        : undefined
    const present = new Set([
      ...kept.flatMap(([name, value]) => standsIn(`${name}:${value}`, stands)),
      ...standsIn(body, stands),
      ...standsIn(path, stands),
    ])
    const refused = [...present].filter((stand) => !options.allows(stand, hostname))
    if (refused.length > 0) {
      options.onDenied({code: 'PLACEHOLDER_HOST_NOT_ALLOWED', host: url.host, stands: refused})
      const names = refused.map((stand) => `${stand.name} (${stand.reference})`).join(', ')
      throw new Refusal(
        403,
        `agentvault refused this request: it carries the placeholder of ${names}, which may not be sent to ${hostname}. Nothing was sent. If ${hostname} should receive it, allow the host for that secret (secrets set --allow-domain, the profile's allowedDomains, or run --allow-host).`,
      )
    }

    const used = [...present]
    const outHeaders: Array<[string, string]> = []
    for (const [name, value] of kept) {
      const inHeader = standsIn(value, used)
      if (inHeader.some((stand) => !headerSafe(stand.value)))
        throw new Refusal(
          400,
          `agentvault refused this request: the value of ${inHeader.map((stand) => stand.name).join(', ')} holds a line break or NUL and cannot go in the ${name} header.`,
        )
      outHeaders.push([name, inHeader.length > 0 ? substitute(value, inHeader, 'header') : value])
    }

    const outBody =
      context && used.length > 0
        ? Buffer.from(substitute(body.toString('latin1'), used, context), 'latin1')
        : body
    const hasBody = outBody.length > 0 || request.headers['content-length'] !== undefined
    const finalHeaders = outHeaders.filter(([name]) => name.toLowerCase() !== 'content-length')
    if (hasBody) finalHeaders.push(['Content-Length', String(outBody.length)])
    return {
      body: outBody,
      headers: finalHeaders,
      path: used.length > 0 ? substitute(path, used, 'url') : path,
      used,
    }
  }

  /** The SSRF guard of `call` for a request that carries real values: a lookup of checked addresses. */
  async function guardedLookup(url: URL, used: readonly Stand[]) {
    try {
      const addresses = await client.checkedAddresses(url, {
        allowPrivateNetworks: options.allowsPrivate(used),
      })
      return client.pinnedLookup(addresses)
    } catch (error) {
      if (!(error instanceof AgentVaultError)) throw error
      if (error.category === 'denied') options.onDenied({code: error.code, host: url.host, stands: used})
      throw new Refusal(
        error.category === 'denied' ? 403 : 502,
        `agentvault: ${error.message}. ${error.suggestion ?? ''}`,
      )
    }
  }

  /** The upstream's response to the child: headers and body with every value back to its placeholder. */
  async function relay(upstream: IncomingMessage, response: ServerResponse): Promise<void> {
    // Building a rewriter costs more than relaying a small response: finished ones are reused.
    const rewriter = rewriters.pop() ?? responseRewriter(stands)
    await relayWith(rewriter, upstream, response)
    // Only after a complete relay (its flush ended every masker): one that failed mid-stream is dropped.
    if (rewriter && rewriters.length < 64) rewriters.push(rewriter)
  }

  async function relayWith(
    rewriter: Rewriter | undefined,
    upstream: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const decoder = rewriter ? decoderFor(upstream.headers['content-encoding']) : undefined
    const upstreamHeaders = pairs(upstream.rawHeaders)
    const hop = hopNames(upstreamHeaders)
    const outHeaders: string[] = []
    for (const [name, value] of upstreamHeaders) {
      const lower = name.toLowerCase()
      // A rewritten body changes length; a decoded one loses its encoding.
      if (
        hop.has(lower) ||
        (rewriter && lower === 'content-length') ||
        (decoder && lower === 'content-encoding')
      )
        continue
      outHeaders.push(name, rewriteText(value, rewriter))
    }

    response.writeHead(upstream.statusCode ?? 502, upstream.statusMessage, outHeaders)
    if (!rewriter) {
      await pipeline(upstream, response)
      return
    }

    const rewrite = new Transform({
      flush(done) {
        done(null, rewriter.end())
      },
      transform(chunk: Buffer, _encoding, done) {
        done(null, rewriter.push(chunk))
      },
    })
    await (decoder ? pipeline(upstream, decoder, rewrite, response) : pipeline(upstream, rewrite, response))
  }

  async function handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const body = await readBody(request, options.maxBodyBytes)
    const prepared = prepare(request, url, body)
    const secure = url.protocol === 'https:'
    // Real values go out: the SSRF guard applies (the child's own traffic is its own business).
    const lookup = prepared.used.length > 0 ? await guardedLookup(url, prepared.used) : undefined
    const headerObject: Record<string, string | string[]> = {}
    for (const [name, value] of prepared.headers) {
      const key = name.toLowerCase()
      const existing = headerObject[key]
      headerObject[key] =
        existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value]
    }

    const send = secure ? https.request : http.request
    const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
      const outgoing = send({
        agent: secure ? secureAgent : plainAgent,
        headers: headerObject,
        hostname: bare(url.hostname),
        ...(lookup && {lookup}),
        method: request.method,
        path: prepared.path,
        port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
        // No SNI for an IP literal (an empty name turns it off; Node warns about an IP).
        ...(secure && {servername: net.isIP(bare(url.hostname)) === 0 ? bare(url.hostname) : ''}),
      })
      outgoing.once('response', resolve)
      outgoing.once('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? 'UNKNOWN'
        reject(
          new Refusal(
            502,
            tlsCodes.CERTIFICATE_ERROR_CODES.has(code)
              ? `agentvault: TLS verification of ${url.host} failed (${code}). If it uses a private CA, set the profile's "caCert".`
              : `agentvault: the request to ${url.host} failed (${code}).`,
          ),
        )
      })
      outgoing.end(prepared.body)
    })
    await relay(upstream, response)
  }

  const onRequest = (url: () => URL) => (request: IncomingMessage, response: ServerResponse) => {
    let target: URL
    try {
      target = url()
    } catch {
      refuse(response, 400, 'agentvault: this proxy takes absolute http:// URLs (and CONNECT for https://).')
      return
    }

    handle(request, response, target).catch((error: unknown) => {
      if (error instanceof Refusal) refuse(response, error.status, error.message)
      else {
        // Codes only: an error's message may quote what it was handed.
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).name
        refuse(response, 502, `agentvault: the request to ${target.host} failed (${code}).`)
      }
    })
  }

  const refuseUpgrade = (_request: IncomingMessage, socket: Duplex): void => {
    socket.end(
      'HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nagentvault: the placeholder proxy does not relay WebSockets or other upgrades.\n',
    )
  }

  // Requests arriving inside intercepted TLS: origin-form, for the CONNECT target of their socket.
  const inner = http.createServer((request, response) =>
    onRequest(() => {
      // Only origin-form: an absolute URL here could name another host than the tunnel's.
      const path = request.url ?? ''
      if (!path.startsWith('/')) throw new Error('not origin-form')
      return new URL(`https://${targets.get(request.socket) ?? ''}${path}`)
    })(request, response),
  )
  inner.on('upgrade', refuseUpgrade)

  const server = http.createServer((request, response) =>
    onRequest(() => {
      const target = new URL(request.url ?? '')
      if (target.protocol !== 'http:') throw new Error('not http')
      return target
    })(request, response),
  )
  server.on('upgrade', refuseUpgrade)
  server.on('connection', (socket: Duplex) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('connect', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    let target: URL
    try {
      // Authority form, host:port (RFC 9110 §9.3.6): nothing else.
      if (!/^[^/?#@\s]+:\d+$/.test(request.url ?? '')) throw new Error('not host:port')
      target = new URL(`https://${request.url ?? ''}/`)
    } catch {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      return
    }

    const port = target.port === '' ? 443 : Number(target.port)
    const hostname = urlHost(target)
    if (!intercepts(hostname)) {
      const tunnel = net.connect({host: bare(target.hostname), port})
      sockets.add(tunnel)
      tunnel.once('close', () => {
        sockets.delete(tunnel)
        socket.destroy()
      })
      socket.once('close', () => tunnel.destroy())
      tunnel.once('error', () => {
        if (tunnel.connecting) socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n')
      })
      tunnel.once('connect', () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        if (head.length > 0) tunnel.write(head)
        tunnel.pipe(socket)
        socket.pipe(tunnel)
      })
      return
    }

    options.ca.contextFor(bare(target.hostname)).then(
      (secureContext) => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        if (head.length > 0) socket.unshift(head)
        const secure = new tls.TLSSocket(socket as never, {
          ALPNProtocols: ['http/1.1'],
          isServer: true,
          secureContext,
        })
        secure.on('error', () => secure.destroy())
        targets.set(secure, target.host)
        sockets.add(secure)
        secure.once('close', () => sockets.delete(secure))
        inner.emit('connection', secure)
      },
      () => socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n'),
    )
  })

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : 0)
    })
  })

  return {
    async close() {
      for (const socket of sockets) socket.destroy()
      secureAgent.destroy()
      plainAgent.destroy()
      inner.close()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
    port,
  }
}
