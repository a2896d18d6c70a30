/**
 * The forward proxy of `run --placeholders` (issue 15), on 127.0.0.1 at a random port for the
 * child's lifetime:
 * - `CONNECT host:port` to a host no placeholder is allowed for: a plain TCP tunnel, untouched (the
 *   client sees the server's own certificate; pinning clients keep working);
 * - `CONNECT` to a host some placeholder is allowed for: TLS is terminated with a leaf of the run's
 *   CA (HTTP/1.1 via ALPN) and each request is handled as below, then sent on over TLS that
 *   verifies the real server (system roots plus the profiles' `caCert`);
 * - each request (intercepted, or plain `http://` in absolute form): a placeholder whose secret
 *   does not allow this host (and port) refuses the whole request (403, audited `denied`); the
 *   others are replaced by their values in the request line, headers (Basic credentials too) and
 *   textual bodies; the response comes back with every echoed value (all the masker's forms)
 *   turned into its placeholder again.
 * Messages name hosts and variables, never values.
 */
import type {IncomingMessage, ServerResponse} from 'node:http'
import type {LookupFunction} from 'node:net'
import type {Duplex, Readable} from 'node:stream'

import type {AgentVaultError} from '../errors.js'
import type {RunCa} from './ca.js'

import {
  basicCredentials,
  basicValue,
  bodyContext,
  echoTest,
  headerNameRewriter,
  headerSafe,
  placeholderScanner,
  responseRewriter,
  type Rewriter,
  rewriteText,
  type Stand,
  standsIn,
} from './tokens.js'

export interface DeniedAttempt {
  /** AgentVaultError-style code: PLACEHOLDER_HOST_NOT_ALLOWED, PRIVATE_ADDRESS, … */
  code: string
  /** What was refused: the child's request (403) or the upstream's response (502). */
  refused: 'request' | 'response'
  /** The HTTP status the child got. */
  status: number
  /** The host the request went to (host[:port]). */
  host: string
  /** The stands whose placeholders it carried. */
  stands: readonly Stand[]
}

export interface ProxyOptions {
  /**
   * Whether `stand`'s secret may go to `hostname` (normalised, as hosts.ts's urlHost gives it) on
   * `port` (the URL's, or its scheme's default).
   */
  allows(stand: Stand, hostname: string, port: number): boolean
  /** Whether values may go over plain http:// to hosts that are not loopback (off unless opted in). */
  allowsPlainHttp: boolean
  /** Whether the SSRF guard lets these stands' values reach private networks. */
  allowsPrivate(stands: readonly Stand[]): boolean
  ca: RunCa
  /** Largest request body read (bytes): placeholders are found in whole bodies. */
  maxBodyBytes: number
  onDenied(attempt: DeniedAttempt): void
  /** Host name → addresses for the SSRF guard; default `dns.lookup`. Tests substitute their own. */
  resolve?: (hostname: string) => Promise<Array<{address: string; family: number}>>
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

/** What a refused response concerned: its host, and the stands whose values were (or may be) at stake. */
interface Concern {
  host: string
  stands: readonly Stand[]
}

/** The content codings the proxy undoes to scan a response body. */
const DECODABLE_CODINGS = new Set(['br', 'deflate', 'gzip', 'x-gzip'])
/** Layers of undeclared gzip looked into at most (as `call` does); more is refused as unscannable. */
const MAX_SNIFFED_LAYERS = 3
/**
 * Bytes of a response body read before anything is relayed: enough to tell gzip that no
 * Content-Encoding declared, and most bodies whole (sent in one write, with their length).
 */
const WHOLE_BODY_BYTES = 64 * 1024

/** The codings applied to a body, in the order they were applied (`identity` dropped). */
function contentCodings(header: string | undefined): string[] {
  return (header ?? '')
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity')
}

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

/**
 * The hop-by-hop header names of a message given as raw [name, value, …]: the fixed ones, plus
 * those its Connection headers list (a new set only when there are such).
 */
function hopNames(raw: readonly string[]): ReadonlySet<string> {
  let names: Set<string> | undefined
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue
    for (const item of raw[i + 1]!.split(',')) {
      const option = item.trim().toLowerCase()
      // Most list only keep-alive, already in the set: no copy for that.
      if (HOP_HEADERS.has(option)) continue
      ;(names ??= new Set(HOP_HEADERS)).add(option)
    }
  }

  return names ?? HOP_HEADERS
}

/** The connection pools of one scheme: for requests without values, and per verdict of the SSRF guard. */
type Pool = 'guarded' | 'guardedPrivate' | 'open'
function makeAgents<A>(make: () => A): Record<Pool, A> {
  return {guarded: make(), guardedPrivate: make(), open: make()}
}

/** What the proxy needs of a request's headers, read in one pass over the raw list. */
interface ScannedHeaders {
  contentEncoding?: string
  contentType?: string
  hasLength: boolean
  /** The end-to-end headers, raw [name, value, …], without Content-Length (set for the body that goes out). */
  kept: string[]
}

/** The methods Node sends without a body unless told otherwise (the others it would send chunked). */
const BODILESS_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'TRACE'])

/** Bound on the per-host caches (a child may name any number of hosts): past it they start over. */
const MAX_CACHED_HOSTS = 1024

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
  const [
    http,
    https,
    net,
    tls,
    zlib,
    {pipeline},
    {pipeline: pipeline_, Transform},
    client,
    {urlHost, urlPort},
    tlsCodes,
    {isLoopbackHost},
    // With the client's module graph: its errors are instances of this very class.
    {AgentVaultError},
  ] = await Promise.all([
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
    import('../use/addresses.js'),
    import('../errors.js'),
  ])
  const {stands} = options
  // Three pools per scheme. A kept-alive connection skips the checks made when it was opened, so
  // requests that carry values only reuse connections whose addresses passed the SSRF guard with
  // the same verdict on private networks; requests without values use a pool of their own.
  const agentOptions = {keepAlive: true}
  let secureAgents: Record<Pool, import('node:https').Agent> | undefined
  /**
   * The HTTPS pools, made at the first intercepted HTTPS request: with the profile's caCert they
   * share one context trusting the roots and it (an Agent given `ca` would rebuild a context per
   * connection and join every root certificate into each request's pool name, most of the proxy's
   * CPU), ~20 ms to build that a run whose command makes no such request does not spend.
   */
  function secureAgentsNow(): Record<Pool, import('node:https').Agent> {
    if (!secureAgents) {
      const secureContext =
        options.trustedCas.length > 0
          ? tls.createSecureContext({ca: [...tls.rootCertificates, ...options.trustedCas]})
          : undefined
      secureAgents = makeAgents(
        () => new https.Agent({...agentOptions, ...(secureContext && {secureContext})}),
      )
    }

    return secureAgents
  }

  const plainAgents = makeAgents(() => new http.Agent(agentOptions))
  const sockets = new Set<Duplex>()
  const targets = new WeakMap<object, string>()
  const rewriters: Rewriter[] = []
  const renameHeader = headerNameRewriter(stands)
  const scanner = placeholderScanner(stands)
  const echoes = echoTest(stands)
  /** The stands whose secrets may go to a host and port (decided once per host and port). */
  const allowedFor = new Map<string, readonly Stand[]>()
  function allowedAt(hostname: string, port: number): readonly Stand[] {
    const key = `${hostname} ${port}`
    let allowed = allowedFor.get(key)
    if (allowed === undefined) {
      if (allowedFor.size >= MAX_CACHED_HOSTS) allowedFor.clear()
      allowed = stands.filter((stand) => options.allows(stand, hostname, port))
      allowedFor.set(key, allowed)
    }

    return allowed
  }

  const intercepts = (hostname: string, port: number): boolean => allowedAt(hostname, port).length > 0

  function decoderFor(coding: string): Duplex {
    if (coding === 'br') return zlib.createBrotliDecompress()
    if (coding === 'deflate') return zlib.createInflate()
    return zlib.createGunzip()
  }

  /** A request's headers read in one pass; the stands whose placeholders they carry go into `present`. */
  function scanHeaders(raw: readonly string[], present: Set<Stand>): ScannedHeaders {
    const hop = hopNames(raw)
    const scanned: ScannedHeaders = {hasLength: false, kept: []}
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!
      const value = raw[i + 1]!
      const lower = name.toLowerCase()
      if (hop.has(lower)) continue
      // As Node's request.headers gives them: codings joined, the first type.
      switch (lower) {
        case 'content-encoding': {
          scanned.contentEncoding =
            scanned.contentEncoding === undefined ? value : `${scanned.contentEncoding}, ${value}`
          break
        }

        case 'content-length': {
          scanned.hasLength = true
          continue
        }

        case 'content-type': {
          scanned.contentType ??= value
          break
        }

        // The target's own goes out instead (prepare): as RFC 9112 §3.2.2 has a proxy do for an
        // absolute URL, and inside a tunnel too. Another name here would pick another site at the
        // allowed host's address (a shared front: CDN, reverse proxy) and take the values there.
        case 'host': {
          continue
        }
      }

      for (const stand of scanner.find(name)) present.add(stand)
      for (const stand of scanner.find(value)) present.add(stand)
      // Inside Basic credentials too: checked (and swapped, in prepare) as if written in clear.
      const basic = lower === 'authorization' ? basicCredentials(value) : undefined
      if (basic !== undefined) for (const stand of scanner.find(basic)) present.add(stand)
      scanned.kept.push(name, value)
    }

    return scanned
  }

  /** Refuse (403, audited) a request carrying placeholders that may not go to its host, or over plain HTTP. */
  function checkAllowed(url: URL, hostname: string, used: readonly Stand[]): void {
    const allowed = allowedAt(hostname, urlPort(url))
    const refused = used.filter((stand) => !allowed.includes(stand))
    if (refused.length > 0) {
      options.onDenied({
        code: 'PLACEHOLDER_HOST_NOT_ALLOWED',
        host: url.host,
        refused: 'request',
        stands: refused,
        status: 403,
      })
      const names = refused.map((stand) => `${stand.name} (${stand.reference})`).join(', ')
      throw new Refusal(
        403,
        `agentvault refused this request: it carries the placeholder of ${names}, which may not be sent to ${url.host}. Nothing was sent. If ${url.host} should receive it, allow the host for that secret (agentvault secrets edit NAME --allow-domain HOST, repeated for each host it keeps; the profile's allowedDomains; or run --allow-domain).`,
      )
    }

    // Values over plain HTTP stay on this machine unless opted in: loopback names and addresses only.
    if (
      used.length > 0 &&
      url.protocol === 'http:' &&
      !options.allowsPlainHttp &&
      !isLoopbackHost(hostname)
    ) {
      options.onDenied({
        code: 'PLACEHOLDER_PLAIN_HTTP',
        host: url.host,
        refused: 'request',
        stands: used,
        status: 403,
      })
      const names = used.map((stand) => `${stand.name} (${stand.reference})`).join(', ')
      throw new Refusal(
        403,
        `agentvault refused this request: it would send the value of ${names} over plain http:// to ${hostname}, where anyone on the way can read it. Nothing was sent. Use https://, or start agentvault with AGENTVAULT_PLACEHOLDERS_ALLOW_HTTP=1 to allow plain HTTP to the hosts the secrets allow.`,
      )
    }
  }

  /** Check and rewrite one request; the outgoing headers (raw [name, value, …]), path and body. */
  function prepare(request: IncomingMessage, url: URL, body: Buffer) {
    const hostname = urlHost(url)
    const raw = request.rawHeaders
    const path = `${url.pathname}${url.search}`
    const present = new Set<Stand>()
    const {contentEncoding, contentType, hasLength, kept} = scanHeaders(raw, present)
    for (const stand of scanner.find(path)) present.add(stand)
    for (const stand of standsIn(body, stands)) present.add(stand)
    const context =
      contentEncoding === undefined || contentEncoding.trim().toLowerCase() === 'identity'
        ? bodyContext(contentType)
        : undefined
    const used = [...present]
    checkAllowed(url, hostname, used)
    if (used.length > 0)
      for (let i = 1; i < kept.length; i += 2) {
        const value = kept[i]!
        const basic = kept[i - 1]!.toLowerCase() === 'authorization' ? basicCredentials(value) : undefined
        if (basic !== undefined && scanner.find(basic).length > 0) {
          kept[i] = basicValue(scanner.substitute(basic, 'raw'))
          continue
        }

        const inHeader = scanner.find(value)
        if (inHeader.length === 0) continue
        if (inHeader.some((stand) => !headerSafe(stand.value)))
          throw new Refusal(
            400,
            `agentvault refused this request: the value of ${inHeader.map((stand) => stand.name).join(', ')} holds a line break or NUL and cannot go in the ${kept[i - 1]} header.`,
          )
        kept[i] = scanner.substitute(value, 'header')
      }

    const outBody =
      context && used.length > 0
        ? Buffer.from(scanner.substitute(body.toString('latin1'), context), 'latin1')
        : body
    // Node frames a request given its headers as a list as they say: a method it would send
    // chunked (POST, PUT, …) gets a length even when it has no body, as Node would give it.
    if (outBody.length > 0 || hasLength || !BODILESS_METHODS.has(request.method ?? 'GET'))
      kept.push('Content-Length', String(outBody.length))
    // Node adds none to a request given its headers as a list: the target's, always (scanHeaders).
    kept.push('Host', url.host)
    return {
      body: outBody,
      headers: kept,
      path: used.length > 0 ? scanner.substitute(path, 'url') : path,
      used,
    }
  }

  /** The SSRF guard's refusal of an upstream for a request that carries values: audited when denied. */
  function guardRefusal(error: AgentVaultError, url: URL, used: readonly Stand[]): Refusal {
    // As the name check audits it (checkAllowed).
    const code = error.code === 'PLAIN_HTTP' ? 'PLACEHOLDER_PLAIN_HTTP' : error.code
    if (error.category === 'denied')
      options.onDenied({code, host: url.host, refused: 'request', stands: used, status: 403})
    return new Refusal(
      error.category === 'denied' ? 403 : 502,
      `agentvault: ${error.message}. ${error.suggestion ?? ''}`,
    )
  }

  /** The guard's verdict on an IP-literal host, per host and verdict on private networks (it never changes). */
  const literalVerdicts = new Map<string, AgentVaultError | null>()

  /**
   * The SSRF guard of `call` for a request that carries real values. An IP literal is checked here
   * (Node connects to one without a lookup); a name is resolved and checked by the `lookup` this
   * returns, which runs only when a new connection is opened: one the pool keeps was checked then.
   */
  async function guard(
    url: URL,
    allowPrivate: boolean,
    used: readonly Stand[],
  ): Promise<LookupFunction | void> {
    const guards = {
      allowPrivateNetworks: allowPrivate,
      // Values over plain HTTP stay on this machine: checked on the addresses too, since the name
      // check (isLoopbackHost) lets `*.localhost` through, which many resolvers ask DNS about.
      loopbackOnly: url.protocol === 'http:' && !options.allowsPlainHttp,
      ...(options.resolve && {resolve: options.resolve}),
    }
    if (net.isIP(bare(url.hostname)) === 0) {
      const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
        client.checkedAddresses(url, guards).then(
          (addresses) => client.pinnedLookup(addresses)(hostname, lookupOptions, callback),
          (error: unknown) => (callback as (error: unknown) => void)(error),
        )
      }

      return lookup
    }

    const key = `${allowPrivate}|${guards.loopbackOnly}|${url.hostname}`
    let verdict = literalVerdicts.get(key)
    if (verdict === undefined) {
      try {
        await client.checkedAddresses(url, guards)
        verdict = null
      } catch (error) {
        if (!(error instanceof AgentVaultError)) throw error
        verdict = error
      }

      if (literalVerdicts.size >= MAX_CACHED_HOSTS) literalVerdicts.clear()
      literalVerdicts.set(key, verdict)
    }

    if (verdict) throw guardRefusal(verdict, url, used)
  }

  /**
   * The upstream's response to the child: header names and values, and the body, with every value
   * back to its placeholder; the reason phrase is always the standard one. When values may be at
   * stake (`concern`: a value went out, or the host is one some value may go to), a body that
   * cannot be scanned (a coding agentvault cannot decode, gzip nested too deep or not declared and
   * holding a value) is refused with a 502 rather than relayed.
   */
  async function relay(
    upstream: IncomingMessage,
    response: ServerResponse,
    concern?: Concern,
  ): Promise<void> {
    // Building a rewriter costs more than relaying a small response: finished ones are reused.
    const rewriter = rewriters.pop() ?? responseRewriter(stands)
    await relayWith(rewriter, upstream, response, concern)
    // Only after a complete relay (its flush ended every masker): one that failed mid-stream is dropped.
    if (rewriter && rewriters.length < 64) rewriters.push(rewriter)
  }

  function refusedResponse(concern: Concern, code: string, what: string): Refusal {
    options.onDenied({code, host: concern.host, refused: 'response', stands: concern.stands, status: 502})
    return new Refusal(
      502,
      `agentvault refused the response from ${concern.host}: ${what}, so agentvault cannot check it for the values it sent. Nothing of it was passed on. Ask for an uncompressed response (Accept-Encoding: identity) or one agentvault decodes (gzip, deflate, br).`,
    )
  }

  /**
   * At least `bytes` bytes of `stream` (all of it when it ends sooner), read and held; the stream is
   * left paused with the rest in it. Most responses end within it and go out in one write.
   */
  function gather(stream: Readable, bytes: number): Promise<{ended: boolean; head: Buffer}> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      let total = 0
      const cleanup = (): void => {
        stream.off('data', onData)
        stream.off('end', onEnd)
        stream.off('error', onError)
      }

      const finish = (ended: boolean): void => {
        cleanup()
        resolve({ended, head: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)})
      }

      function onData(chunk: Buffer): void {
        chunks.push(chunk)
        total += chunk.length
        if (total >= bytes) {
          stream.pause()
          finish(false)
        }
      }

      function onEnd(): void {
        finish(true)
      }

      function onError(error: Error): void {
        cleanup()
        reject(error)
      }

      stream.on('data', onData)
      stream.once('end', onEnd)
      stream.once('error', onError)
    })
  }

  /**
   * An undeclared gzip or zlib body: read whole, looked into layer by layer; refused when it holds
   * a value. What it returns goes out as the body.
   */
  async function sniffed(
    rewriter: Rewriter,
    source: Readable | undefined,
    head: Buffer,
    concern: Concern,
  ): Promise<Buffer> {
    const chunks = [head]
    let total = head.length
    for await (const chunk of source ?? []) {
      total += (chunk as Buffer).length
      if (total > options.maxBodyBytes)
        throw refusedResponse(
          concern,
          'UNSCANNABLE_RESPONSE',
          `its compressed body exceeds ${options.maxBodyBytes} bytes`,
        )
      chunks.push(chunk as Buffer)
    }

    const whole = Buffer.concat(chunks)
    let inner = whole
    for (let layer = 0; ; layer++) {
      const gzip = client.looksGzipped(inner)
      if (!gzip && !client.looksZlibbed(inner)) break
      if (layer === MAX_SNIFFED_LAYERS)
        throw refusedResponse(
          concern,
          'UNSCANNABLE_RESPONSE',
          `its body is ${gzip ? 'gzip' : 'zlib'}-compressed more than ${MAX_SNIFFED_LAYERS} times`,
        )
      try {
        inner = gzip
          ? zlib.gunzipSync(inner, {maxOutputLength: options.maxBodyBytes})
          : // A stream cut short still gives what it holds (as the client's inflater would).
            zlib.inflateSync(inner, {
              finishFlush: zlib.constants.Z_SYNC_FLUSH,
              maxOutputLength: options.maxBodyBytes,
            })
      } catch (error) {
        if (!gzip && (error as NodeJS.ErrnoException).code !== 'ERR_BUFFER_TOO_LARGE') break // text that starts like zlib
        throw refusedResponse(
          concern,
          'UNSCANNABLE_RESPONSE',
          `its body looks ${gzip ? 'gzip' : 'zlib'}-compressed but does not decode`,
        )
      }
    }

    // Not compressed after all (text that starts like zlib): rewritten as any body is.
    if (inner === whole) return Buffer.concat([rewriter.push(whole), rewriter.end()])
    if (!Buffer.concat([rewriter.push(inner), rewriter.end()]).equals(inner))
      throw refusedResponse(
        concern,
        'SECRET_IN_COMPRESSED_BODY',
        'its body holds a value inside compression it did not declare',
      )
    return whole
  }

  /**
   * The upstream's headers to relay: hop-by-hop ones dropped, names and values rewritten; the
   * upstream's Content-Length kept (`'keep'`), replaced by `length`, or dropped (`'chunked'`); Content-Encoding dropped when the body was `decoded`.
   */
  function relayedHeaders(
    upstream: IncomingMessage,
    rewriter: Rewriter | undefined,
    decoded: boolean,
    length: 'chunked' | 'keep' | number,
  ): string[] {
    const raw = upstream.rawHeaders
    const hop = hopNames(raw)
    const outHeaders: string[] = []
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!
      const value = raw[i + 1]!
      const lower = name.toLowerCase()
      if (
        hop.has(lower) ||
        (lower === 'content-length' && length !== 'keep') ||
        (decoded && lower === 'content-encoding')
      )
        continue
      // The rewriters run only on the rare name or value that may hold a value's form.
      outHeaders.push(
        rewriter && echoes.inName(name) ? renameHeader(name) : name,
        rewriter && echoes.inValue(value) ? rewriteText(value, rewriter) : value,
      )
    }

    if (typeof length === 'number') outHeaders.push('Content-Length', String(length))
    return outHeaders
  }

  async function relayWith(
    rewriter: Rewriter | undefined,
    upstream: IncomingMessage,
    response: ServerResponse,
    concern: Concern | undefined,
  ): Promise<void> {
    const status = upstream.statusCode ?? 502
    // A reason phrase is free text an upstream may echo a value in: the standard one goes instead.
    const reason = http.STATUS_CODES[status]
    if (!rewriter) {
      response.writeHead(status, reason, relayedHeaders(upstream, undefined, false, 'keep'))
      await pipeline(upstream, response)
      return
    }

    const codings = contentCodings(upstream.headers['content-encoding'])
    const unknown = codings.find((coding) => !DECODABLE_CODINGS.has(coding))
    if (unknown !== undefined && concern) {
      upstream.destroy()
      throw refusedResponse(concern, 'UNSCANNABLE_RESPONSE', `its body is ${unknown}-encoded`)
    }

    const decode = unknown === undefined && codings.length > 0
    // Errors of the source are handled by the pipelines below; this keeps one between them unhandled-free.
    const source: Readable = decode
      ? ((pipeline_ as (...streams: unknown[]) => Readable)(
          upstream,
          ...[...codings].reverse().map((coding) => decoderFor(coding)),
          () => {},
        ) as Readable)
      : upstream
    source.on('error', () => {})
    const {ended, head} = await gather(source, WHOLE_BODY_BYTES)
    const whole =
      concern && (client.looksGzipped(head) || client.looksZlibbed(head))
        ? await sniffed(rewriter, ended ? undefined : source, head, concern)
        : undefined
    if (whole) {
      response.writeHead(status, reason, relayedHeaders(upstream, rewriter, decode, whole.length))
      response.end(whole)
      return
    }

    if (ended) {
      // The whole body is here: rewritten, it goes out with its length in one write.
      const out = Buffer.concat([rewriter.push(head), rewriter.end()])
      // No body (HEAD, 204, 304, or none): the upstream's Content-Length stands, unless decoded.
      const length = out.length === 0 && !decode ? 'keep' : out.length
      response.writeHead(status, reason, relayedHeaders(upstream, rewriter, decode, length))
      response.end(out)
      return
    }

    response.writeHead(status, reason, relayedHeaders(upstream, rewriter, decode, 'chunked'))
    response.write(rewriter.push(head))
    const rewrite = new Transform({
      flush(done) {
        done(null, rewriter.end())
      },
      transform(chunk: Buffer, _encoding, done) {
        done(null, rewriter.push(chunk))
      },
    })
    await pipeline(source, rewrite, response)
  }

  async function handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const body = await readBody(request, options.maxBodyBytes)
    const prepared = prepare(request, url, body)
    const {used} = prepared
    const secure = url.protocol === 'https:'
    // Real values go out: the SSRF guard applies (the child's own traffic is its own business).
    const pool: Pool = used.length === 0 ? 'open' : options.allowsPrivate(used) ? 'guardedPrivate' : 'guarded'
    const lookup = pool === 'open' ? undefined : await guard(url, pool === 'guardedPrivate', used)
    const send = secure ? https.request : http.request
    const ask = (): Promise<IncomingMessage> =>
      new Promise<IncomingMessage>((resolve, reject) => {
        const outgoing = send({
          agent: secure ? secureAgentsNow()[pool] : plainAgents[pool],
          // A list: sent as they are, in their order (after Node's checks of names and values).
          headers: prepared.headers,
          hostname: bare(url.hostname),
          ...(lookup && {lookup}),
          method: request.method,
          path: prepared.path,
          port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
          // No SNI for an IP literal (an empty name turns it off; Node warns about an IP). Verified
          // whatever NODE_TLS_REJECT_UNAUTHORIZED says (the child's environment is not ours to obey).
          ...(secure && {
            rejectUnauthorized: true,
            servername: net.isIP(bare(url.hostname)) === 0 ? bare(url.hostname) : '',
          }),
        })
        let answered = false
        outgoing.once('response', (upstream) => {
          answered = true
          resolve(upstream)
        })
        outgoing.once('error', (error: NodeJS.ErrnoException) => {
          // The guard's refusal, from the lookup of a new connection.
          if (error instanceof AgentVaultError) {
            reject(guardRefusal(error, url, used))
            return
          }

          const code = error.code ?? 'UNKNOWN'
          // A kept-alive connection the server closed just as it was reused (its idle timeout):
          // an idempotent request goes again on another connection (http-client isStaleReuse).
          if (!answered && client.isStaleReuse(outgoing, error, request.method)) {
            resolve(ask())
            return
          }

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
    const upstream = await ask()
    const concerned = used.length > 0 ? used : allowedAt(urlHost(url), urlPort(url))
    await relay(upstream, response, concerned.length > 0 ? {host: url.host, stands: concerned} : undefined)
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
    if (!intercepts(hostname, port)) {
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
      for (const agent of [...Object.values(secureAgents ?? {}), ...Object.values(plainAgents)])
        agent.destroy()
      inner.close()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
    port,
  }
}
