/**
 * A recording HTTP + HTTPS upstream on loopback for the use engine's tests. It listens on
 * 127.0.0.1 and 127.0.0.2 (distinct hosts for redirect tests; `localhost` resolves to 127.0.0.1),
 * records every request exactly as received, and offers routes that misbehave on purpose:
 *
 * | path | answer |
 * |---|---|
 * | `/echo` | 200 JSON of the request (method, path, headers, body as text), plus the bearer token in an `X-Echo-Token` header and its base64 and URL-encoded forms in the body |
 * | `/gzip?layers=1&declare=gzip` | `/echo`'s body, gzip-compressed `layers` times, with `Content-Encoding: <declare>` (`none`: no such header); `plain=1` compresses a fixed text instead |
 * | `/header-name` | the bearer token, URL-encoded, inside two response header *names* |
 * | `/html` | 400, an HTML error page quoting the bearer token as template engines escape it (Python's html.escape in text, Go's html/template in an attribute) |
 * | `/reason` | 200 with the bearer token in the status line's reason phrase (`200 OK <token>`) |
 * | `/redirect?to=URL&status=302&keep_query=1` | a redirect to URL (with keep_query, carrying the other query parameters along) |
 * | `/loop` | a redirect to itself, forever |
 * | `/status?code=N` | status N with a short text body |
 * | `/binary` | the 256 byte values 0..255 |
 * | `/big?bytes=N&echo=1` | N bytes of `x` (with echo=1 the bearer token at the start, across 64 KiB and at the end) |
 * | `/slow?ms=N` | answers after N ms |
 * | anything else | 200 `ok` |
 *
 * HTTPS uses a certificate signed by a throwaway CA made at start with the openssl CLI
 * (test/helpers/test-ca.ts; the files live in a temp dir removed by `close()`).
 */
import {readFileSync, rmSync} from 'node:fs'
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import {gzipSync} from 'node:zlib'

import {makeTestCertificates} from '../../helpers/test-ca.js'

export interface RecordedRequest {
  body: Buffer
  headers: IncomingHttpHeaders
  /** The local address that received it: 127.0.0.1 or 127.0.0.2. */
  host: string
  method: string
  /** Path and query exactly as sent. */
  path: string
  /** The client's port: two requests with the same one came over one (kept-alive) connection. */
  remotePort: number
  /** Set when the client closed the connection before the whole answer was sent (a cancelled call). */
  droppedEarly?: boolean
  secure: boolean
}

export interface Upstream {
  /** PEM file of the CA that signed the HTTPS certificate (undefined without TLS). */
  caFile?: string
  close(): Promise<void>
  /** PEM file of a CA that signed nothing here (undefined without TLS). */
  otherCaFile?: string
  /** The last recorded request whose path starts with `prefix`. */
  last(prefix?: string): RecordedRequest
  requests: RecordedRequest[]
  /** A URL on this upstream: `url('/echo')`, `url('/echo', {host: '127.0.0.2', secure: true})`. */
  url(path: string, options?: {host?: string; secure?: boolean}): string
}

const HOSTS = ['127.0.0.1', '127.0.0.2'] as const

function echoBody(request: RecordedRequest): Buffer {
  const token = String(request.headers.authorization ?? '').replace(/^Bearer /, '')
  return Buffer.from(
    JSON.stringify({
      method: request.method,
      path: request.path,
      headers: request.headers,
      body: request.body.toString('utf8'),
      token_base64: Buffer.from(token).toString('base64'),
      token_url: encodeURIComponent(token),
    }),
  )
}

/** `/gzip`: layers=N compresses N times; declare=… sets Content-Encoding (`none`: no header). */
function gzipped(request: RecordedRequest, url: URL, response: ServerResponse): void {
  let body = url.searchParams.get('plain') === '1' ? Buffer.from('nothing echoed here') : echoBody(request)
  for (let layer = 0; layer < Number(url.searchParams.get('layers') ?? '1'); layer++) body = gzipSync(body)
  const declared = url.searchParams.get('declare') ?? 'gzip'
  if (declared !== 'none') response.setHeader('content-encoding', declared)
  response.end(body)
}

/** `/big?bytes=N`: N bytes of `x`; echo=1 puts the bearer token at the start, across 64 KiB and at the end. */
function big(request: RecordedRequest, url: URL, response: ServerResponse): void {
  const body = Buffer.alloc(Number(url.searchParams.get('bytes')), 'x')
  if (url.searchParams.get('echo') === '1') {
    const token = Buffer.from(String(request.headers.authorization ?? '').replace(/^Bearer /, ''))
    for (const at of [0, 65_536 - 3, body.length - token.length]) token.copy(body, at)
    // Declared, so that a HEAD answer carries it too.
    response.setHeader('content-length', body.length)
  }

  response.end(body)
}

function respond(request: RecordedRequest, response: ServerResponse): void {
  const url = new URL(request.path, 'http://upstream')
  const query = (name: string): string => url.searchParams.get(name) ?? ''
  switch (url.pathname) {
    case '/big': {
      big(request, url, response)
      break
    }

    case '/binary': {
      response.setHeader('content-type', 'application/octet-stream')
      response.end(Buffer.from(Array.from({length: 256}, (_, i) => i)))
      break
    }

    case '/echo': {
      const token = String(request.headers.authorization ?? '').replace(/^Bearer /, '')
      response.setHeader('content-type', 'application/json')
      response.setHeader('x-echo-token', token)
      response.end(echoBody(request))
      break
    }

    case '/gzip': {
      gzipped(request, url, response)
      break
    }

    case '/header-name': {
      // The bearer token, URL-encoded, in a header's name (Node lower-cases names on receipt).
      const token = String(request.headers.authorization ?? '').replace(/^Bearer /, '')
      response.setHeader(`x-session-${encodeURIComponent(token)}`, 'active')
      response.setHeader(`x-other-${encodeURIComponent(token)}`, 'also')
      response.end('ok')
      break
    }

    case '/html': {
      // An error page that quotes what it was sent, as web frameworks' templates do.
      const token = String(request.headers.authorization ?? '').replace(/^Bearer /, '')
      const escape = (table: Record<string, string>) => token.replaceAll(/[&<>"'+]/g, (c) => table[c] ?? c)
      const text = {'&': '&amp;', '<': '&lt;', '>': '&gt;'}
      response.statusCode = 400
      response.setHeader('content-type', 'text/html; charset=utf-8')
      response.end(
        `<p>Invalid token: ${escape({...text, '"': '&quot;', "'": '&#x27;'})}</p>` +
          `<input value="${escape({...text, '"': '&#34;', "'": '&#39;', '+': '&#43;'})}">\n`,
      )
      break
    }

    case '/reason': {
      const token = String(request.headers.authorization ?? '').replace(/^Bearer /, '')
      response.writeHead(200, `OK ${token}`)
      response.end('ok')
      break
    }

    case '/loop': {
      response.statusCode = 302
      response.setHeader('location', '/loop')
      response.end()
      break
    }

    case '/redirect': {
      // keep_query=1 carries this request's other query parameters over to the target.
      const target = query('to')
      const kept = [...url.searchParams].filter(([name]) => !['keep_query', 'status', 'to'].includes(name))
      const extra = query('keep_query') === '1' ? new URLSearchParams(kept).toString() : ''
      response.statusCode = Number(query('status') || '302')
      response.setHeader(
        'location',
        extra === '' ? target : `${target}${target.includes('?') ? '&' : '?'}${extra}`,
      )
      response.end()
      break
    }

    case '/slow': {
      setTimeout(() => response.end('slow'), Number(query('ms')))
      break
    }

    case '/status': {
      response.statusCode = Number(query('code'))
      response.end(`status ${query('code')}`)
      break
    }

    default: {
      response.end('ok')
    }
  }
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => {
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : 0)
    })
  })
}

/** Start the upstream; with `tls: true` also HTTPS (needs the openssl CLI). */
export async function startUpstream(options: {tls?: boolean} = {}): Promise<Upstream> {
  const requests: RecordedRequest[] = []
  const handler = (secure: boolean) => (incoming: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = []
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk))
    incoming.on('end', () => {
      const request: RecordedRequest = {
        body: Buffer.concat(chunks),
        headers: incoming.headers,
        host: incoming.socket.localAddress?.replace(/^::ffff:/, '') ?? '',
        method: incoming.method ?? '',
        path: incoming.url ?? '',
        remotePort: incoming.socket.remotePort ?? 0,
        secure,
      }
      requests.push(request)
      response.once('close', () => {
        if (!response.writableFinished) request.droppedEarly = true
      })
      respond(request, response)
    })
  }

  const tls = options.tls ? makeTestCertificates(['127.0.0.1', '127.0.0.2', 'localhost']) : undefined
  const servers: Server[] = []
  const ports = new Map<string, number>()
  for (const host of HOSTS) {
    const plain = createHttpServer(handler(false))
    servers.push(plain)
    ports.set(`http:${host}`, await listen(plain, host))
    if (tls) {
      const secure = createHttpsServer(
        {cert: readFileSync(tls.cert), key: readFileSync(tls.key)},
        handler(true),
      )
      servers.push(secure)
      ports.set(`https:${host}`, await listen(secure, host))
    }
  }

  return {
    ...(tls && {caFile: tls.ca, otherCaFile: tls.otherCa}),
    async close() {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections()
              server.close(() => resolve())
            }),
        ),
      )
      if (tls) rmSync(tls.dir, {force: true, recursive: true})
    },
    last(prefix = '/') {
      const found = requests.findLast((request) => request.path.startsWith(prefix))
      if (!found) throw new Error(`the upstream received no request for ${prefix}`)
      return found
    },
    requests,
    url(path, {host = '127.0.0.1', secure = false} = {}) {
      const address = host === 'localhost' ? '127.0.0.1' : host
      const port = ports.get(`${secure ? 'https' : 'http'}:${address}`)
      if (port === undefined)
        throw new Error(`the upstream does not listen on ${secure ? 'https' : 'http'}:${address}`)
      return `${secure ? 'https' : 'http'}://${host}:${port}${path}`
    },
  }
}

/** An upstream whose kept-alive connections go stale: see {@link startStaleUpstream}. */
export interface StaleUpstream {
  close(): Promise<void>
  /** Requests answered so far. */
  served(): number
  /** http://127.0.0.1:PORT/ */
  url: string
}

/**
 * A plain-HTTP upstream on 127.0.0.1 that answers the first request of each connection and resets
 * the connection at the next one: a server whose idle timeout fires just as a client reuses it.
 */
export async function startStaleUpstream(): Promise<StaleUpstream> {
  const {createServer} = await import('node:net')
  const connections = new Set<import('node:net').Socket>()
  let served = 0
  const server = createServer((socket) => {
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
    let requests = 0
    let head = ''
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1')
      while (head.includes('\r\n\r\n')) {
        head = head.slice(head.indexOf('\r\n\r\n') + 4)
        if (++requests > 1) {
          socket.resetAndDestroy()
          return
        }

        served++
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      }
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve)
  })
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy()
        server.close(() => resolve())
      }),
    served: () => served,
    url: `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/`,
  }
}
