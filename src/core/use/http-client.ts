/**
 * The use engine's HTTP client, on node:http/node:https (product.md §5):
 * - SSRF guard with no DNS-rebinding gap: the host is resolved once, every address is classified
 *   (addresses.ts), and the socket connects to exactly those checked addresses through a `lookup`
 *   that only hands them back;
 * - redirects (at most `maxRedirects`) only to hosts the caller allows, with credential headers
 *   dropped on a cross-origin hop, and refused when the secret would still travel (in the new URL,
 *   or in a body that a 307/308 re-sends);
 * - one deadline for the whole exchange, and a cap on the (decoded) response size;
 * - bodies decoded (stacked codings too) so redaction sees the plain bytes; a coding it cannot
 *   decode is refused, and a gzip, zlib, raw deflate or brotli body no header declared is looked
 *   into for the caller to scan.
 * Errors name hosts, never paths or queries (a query may carry a secret).
 */
import type {IncomingHttpHeaders, IncomingMessage} from 'node:http'
import type {LookupFunction} from 'node:net'
import type {Readable} from 'node:stream'
import type {SecureContext} from 'node:tls'

import {isUtf8} from 'node:buffer'
import {isIP} from 'node:net'

import {
  type AgentVaultError,
  BackendUnavailableError,
  CancelledError,
  ConfigError,
  DeniedError,
  UsageError,
} from '../errors.js'
import {CERTIFICATE_ERROR_CODES} from '../tls.js'
import {type AddressClass, classifyAddress, isAddressAllowed} from './addresses.js'

export interface OutgoingRequest {
  body?: Buffer
  /** Lower-cased names of the headers that carry a secret: dropped on a cross-origin redirect. */
  credentialHeaders: ReadonlySet<string>
  /** Whether the body carries a secret (a body or form field). */
  credentialInBody: boolean
  headers: ReadonlyArray<readonly [string, string]>
  method: string
  url: URL
}

export interface RequestGuards {
  allowPrivateNetworks: boolean
  /**
   * Whether secrets may travel over plain http:// to addresses that are not loopback (every
   * profile involved sets `allowPlainHttp`). Without it a plain-HTTP request that carries a
   * secret connects only to loopback addresses, whatever DNS answers for its name.
   */
  allowPlainHttp?: boolean
  /** The profiles whose `allowPrivateNetworks` would let a private address through: named in the refusal. */
  blockingProfiles?: readonly string[]
  /** Extra trusted CA certificates (PEM), in addition to Node's default roots. */
  ca?: readonly string[]
  /** Whether a redirect target URL carries a secret value in any form. */
  carriesSecret(url: URL): boolean
  /** Throws a DeniedError when a redirect may not go to `to`. */
  checkRedirect(from: URL, to: URL): void
  maxRedirects: number
  maxResponseBytes: number
  /** Host name → addresses; default `dns.lookup` (all addresses). Tests substitute their own. */
  resolve?: (hostname: string) => Promise<ResolvedAddress[]>
  /** Aborting it ends the exchange at once with a CancelledError (as the deadline does). */
  signal?: AbortSignal
  timeoutMs: number
}

export interface ResolvedAddress {
  address: string
  family: number
}

export interface HttpResponse {
  body: Buffer
  durationMs: number
  headers: IncomingHttpHeaders
  status: number
  statusText: string
  /**
   * When the body is compressed (gzip, zlib, raw deflate, brotli) although no Content-Encoding says
   * so: what it holds, for scanning (the body itself is returned as sent).
   */
  undeclaredCompressed?: Buffer
  /** The URL that gave this response (the last of a redirect chain). */
  url: URL
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])
/** Headers dropped on any cross-origin redirect, as browsers and curl do. */
const ALWAYS_CREDENTIALS = ['authorization', 'proxy-authorization', 'cookie']
/** Headers that describe a body: dropped with it when a redirect turns the request into a GET. */
const BODY_HEADERS = new Set([
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-type',
])

/** What lets a private address through: the setting on each profile of the secrets that lacks it. */
function privateSuggestion(profiles: readonly string[] = []): string {
  const [first, ...others] = profiles
  if (first === undefined)
    return 'If this host is on a network you trust, set "allowPrivateNetworks": true on the profile of the secret (`agentvault profiles set PROFILE allowPrivateNetworks=true`).'
  const more = others
    .map((name) => `, then \`agentvault profiles set ${name} allowPrivateNetworks=true\``)
    .join('')
  return `If this host is on a network you trust, run \`agentvault profiles set ${first} allowPrivateNetworks=true\`${more}.`
}

function addressRefused(
  url: URL,
  address: string,
  kind: AddressClass,
  blockingProfiles?: readonly string[],
): DeniedError {
  const {host} = url
  const where = bareHostname(url) === address ? `${host} is` : `${host} resolves to ${address},`
  if (kind === 'metadata')
    return new DeniedError('METADATA_ADDRESS', `Refused to connect: ${where} a cloud metadata address`, {
      details: {address, host},
      suggestion:
        'agentvault never sends secrets to instance-metadata endpoints, whatever the profile allows; call the service’s own host instead.',
    })
  if (kind === 'reserved')
    return new DeniedError(
      'RESERVED_ADDRESS',
      `Refused to connect: ${where} a reserved, non-routable address`,
      {
        details: {address, host},
        suggestion: 'Use a host with a routable (public, or with allowPrivateNetworks a private) address.',
      },
    )
  return new DeniedError('PRIVATE_ADDRESS', `Refused to connect: ${where} a ${kind} address`, {
    details: {address, host},
    suggestion: privateSuggestion(blockingProfiles),
  })
}

function timeoutError(host: string, timeoutMs: number): BackendUnavailableError {
  return new BackendUnavailableError(
    'REQUEST_TIMEOUT',
    `No complete response from ${host} within ${timeoutMs / 1000} s`,
    {
      suggestion: 'Try again, or allow more time with --timeout SECONDS (AGENTVAULT_TIMEOUT).',
    },
  )
}

function tooLarge(host: string, limit: number): DeniedError {
  return new DeniedError('RESPONSE_TOO_LARGE', `The response from ${host} exceeds the ${limit}-byte cap`, {
    suggestion:
      'Raise the cap with --max-response-bytes N (AGENTVAULT_MAX_RESPONSE_BYTES), or request less data.',
  })
}

/** Map a network or TLS failure to a typed error naming only the host. */
function networkError(error: unknown, host: string): AgentVaultError {
  const code = (error as NodeJS.ErrnoException).code ?? 'UNKNOWN'
  if (CERTIFICATE_ERROR_CODES.has(code))
    return new ConfigError('TLS_VERIFY_FAILED', `TLS verification failed for ${host} (${code})`, {
      details: {code, host},
      suggestion:
        'If the server uses a private CA, trust it with --cacert FILE (AGENTVAULT_CACERT) or the profile setting "caCert"; otherwise check the host name and the server’s certificate.',
    })
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO')
    return new BackendUnavailableError(
      'TLS_HANDSHAKE_FAILED',
      `TLS handshake with ${host} failed (${code})`,
      {
        details: {code, host},
        suggestion: 'Check that the URL’s scheme and port match the server (https:// for TLS ports).',
      },
    )
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ENODATA')
    return new BackendUnavailableError('HOST_NOT_FOUND', `Cannot resolve ${host} (${code})`, {
      details: {code, host},
      suggestion: 'Check the host name in the URL and your DNS.',
    })
  return new BackendUnavailableError('UPSTREAM_UNREACHABLE', `Request to ${host} failed (${code})`, {
    details: {code, host},
    suggestion: 'Check that the server is up and the URL’s host and port are right, then try again.',
  })
}

function bareHostname(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
}

async function systemResolve(hostname: string): Promise<ResolvedAddress[]> {
  const {lookup} = await import('node:dns/promises')
  return lookup(hostname, {all: true, verbatim: true})
}

/** What {@link checkedAddresses} checks an address against. */
export type AddressGuards = Pick<RequestGuards, 'allowPrivateNetworks' | 'blockingProfiles' | 'resolve'> & {
  /**
   * Only loopback addresses: a secret over plain http:// stays on this machine. Checked on the
   * addresses, not the name: `app.localhost` is sent to DNS by many resolvers ("files dns"), and
   * a DNS answer can be anything.
   */
  loopbackOnly?: boolean
}

function notLoopback(url: URL, address: string): DeniedError {
  return new DeniedError(
    'PLAIN_HTTP',
    `Refused to send a secret over plain http:// to ${url.host}: it resolves to ${address}, which is not this machine, and anyone on the network path could read it`,
    {
      details: {address, host: urlHostname(url)},
      suggestion: `Use https:// if ${url.host} speaks it; if it only speaks plain HTTP on a network you trust, set "allowPlainHttp": true on the secret's profile (agentvault profiles set PROFILE allowPlainHttp=true).`,
    },
  )
}

function urlHostname(url: URL): string {
  return url.hostname.replace(/\.$/, '')
}

/** Every address allowed under `guards` (the first refused one as an error, or undefined). */
function refusedAddress(
  url: URL,
  addresses: readonly ResolvedAddress[],
  guards: AddressGuards,
): DeniedError | undefined {
  for (const {address} of addresses) {
    const kind = classifyAddress(address)
    if (!isAddressAllowed(kind, guards.allowPrivateNetworks))
      return addressRefused(url, address, kind, guards.blockingProfiles)
    if (guards.loopbackOnly && kind !== 'loopback') return notLoopback(url, address)
  }

  return undefined
}

/**
 * Resolve `url`'s host and check every address (one refused address refuses the host: a DNS answer
 * mixing public and private addresses is the classic rebinding set-up). The result is all a
 * connection may use.
 */
export async function checkedAddresses(url: URL, guards: AddressGuards): Promise<ResolvedAddress[]> {
  const hostname = bareHostname(url)
  const family = isIP(hostname)
  let addresses: ResolvedAddress[]
  if (family === 0) {
    try {
      addresses = await (guards.resolve ?? systemResolve)(hostname)
    } catch (error) {
      throw networkError(error, url.host)
    }
  } else {
    addresses = [{address: hostname, family}]
  }

  if (addresses.length === 0) throw networkError({code: 'ENOTFOUND'}, url.host)
  const refused = refusedAddress(url, addresses, guards)
  if (refused) throw refused
  return addresses
}

/** A `lookup` that answers only with the addresses already checked: no second DNS answer can sneak in. */
export function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return ((_hostname: string, options: {all?: boolean}, callback: (...args: unknown[]) => void) => {
    const first = addresses[0]!
    if (options?.all) callback(null, addresses)
    else callback(null, first.address, first.family)
  }) as LookupFunction
}

function headerObject(headers: ReadonlyArray<readonly [string, string]>): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {}
  for (const [name, value] of headers) {
    const key = name.toLowerCase()
    const existing = result[key]
    result[key] =
      existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value]
  }

  return result
}

/** node:http and node:https, imported on first use (https loads TLS), then kept. */
let http: Promise<typeof import('node:http')> | undefined
let https: Promise<typeof import('node:https')> | undefined

/**
 * Kept-alive connections, for a long-lived process (`proxy`) only: off by default, so a one-shot
 * `call` leaves no socket behind. One agent per origin *and* set of checked addresses (and extra
 * CAs): a socket is only ever reused for a request whose host resolved — and passed the address
 * guard — to the very addresses it was connected to, so reuse skips no check.
 */
let pool: Map<string, import('node:http').Agent> | undefined
/**
 * Per origin (and extra CAs) of a host *name*: the addresses it last resolved to and passed the
 * guard with, and the pooled agent connected to them. While that agent holds an idle kept-alive
 * socket, the next request to the origin takes it without asking DNS again: the socket is
 * connected to those checked addresses (the resolution is pinned to the connection, as a browser
 * or `run --placeholders` does), and they are checked against the new request's guard again.
 */
let lastResolved: Map<string, {addresses: ResolvedAddress[]; agent: import('node:http').Agent}> | undefined

/** Keep connections to upstreams alive between requests (see {@link pool}); for `proxy`. */
export function reuseConnections(): void {
  pool ??= new Map()
  lastResolved ??= new Map()
}

/** Close every kept-alive connection and keep none from now on (the `proxy` stopping). */
export function closeConnections(): void {
  for (const agent of pool?.values() ?? []) agent.destroy()
  pool = undefined
  lastResolved = undefined
}

function originKey(url: URL, extraCa: readonly string[] | undefined): string {
  return JSON.stringify([url.origin, extraCa ?? []])
}

/**
 * The addresses a kept-alive idle socket of this origin is connected to, when there is one and
 * every address passes this request's guard; otherwise undefined (resolve and check as usual).
 * A host that is an IP literal needs no DNS: also undefined.
 */
function pinnedToIdleSocket(
  url: URL,
  guards: AddressGuards & Pick<RequestGuards, 'ca'>,
): ResolvedAddress[] | undefined {
  if (!lastResolved || isIP(bareHostname(url)) !== 0) return undefined
  const last = lastResolved.get(originKey(url, guards.ca))
  if (!last || !Object.values(last.agent.freeSockets).some((sockets) => (sockets?.length ?? 0) > 0))
    return undefined
  return refusedAddress(url, last.addresses, guards) ? undefined : last.addresses
}

/** Kept-alive agents per origin: idle sockets close after this (below Node's 5 s server default). */
const IDLE_SOCKET_MS = 4000
/** Distinct pooled agents at most; beyond it the oldest is closed (many origins, rotating DNS). */
const MAX_AGENTS = 256

/** TLS contexts trusting Node's roots plus extra CAs, by the extra CAs (see {@link trustContext}). */
const contexts = new Map<string, SecureContext>()

/**
 * A TLS context that trusts Node's default roots and `extraCa`, made once per set of extra CAs.
 * Given as `ca` instead, every connection would build a context of its own from all ~140 roots
 * (~20 ms of CPU each), and an agent would join them into the pool name of every request.
 */
async function trustContext(extraCa: readonly string[]): Promise<SecureContext> {
  // Loaded first: from the lookup on, nothing awaits, so concurrent first requests make one context.
  const tls = await import('node:tls')
  const key = JSON.stringify(extraCa)
  let context = contexts.get(key)
  if (!context) {
    context = tls.createSecureContext({ca: [...tls.rootCertificates, ...extraCa]})
    // Bounded as the agents are: the oldest goes first.
    if (contexts.size >= MAX_AGENTS) {
      const [oldest] = contexts.keys()
      if (oldest !== undefined) contexts.delete(oldest)
    }

    contexts.set(key, context)
  }

  return context
}

async function pooledAgent(
  url: URL,
  addresses: readonly ResolvedAddress[],
  secureContext: SecureContext | undefined,
  extraCa: readonly string[] | undefined,
): Promise<false | import('node:http').Agent> {
  if (!pool) return false
  // The extra CAs (not the whole trust list they were added to) tell one agent from another.
  const key = JSON.stringify([url.origin, addresses.map((a) => a.address), extraCa ?? []])
  let agent = pool.get(key)
  if (!agent) {
    const options = {keepAlive: true, lookup: pinnedLookup([...addresses]), timeout: IDLE_SOCKET_MS}
    agent =
      url.protocol === 'https:'
        ? new (await (https ??= import('node:https'))).Agent({
            ...options,
            ...(secureContext && {secureContext}),
          })
        : new (await (http ??= import('node:http'))).Agent(options)
    if (pool.size >= MAX_AGENTS) {
      const [oldest] = pool
      if (oldest) {
        oldest[1].destroy()
        pool.delete(oldest[0])
      }
    }

    pool.set(key, agent)
  }

  return agent
}

interface Exchange {
  /** Set once the caller's signal aborted: no request may start from then on. */
  cancelled?: boolean
  /** Set once the deadline passed: every failure from then on is the timeout. */
  expired: boolean
  guards: RequestGuards
  /** Ends the request in flight (called when the deadline passes). */
  stop?: () => void
}

/** Whether this hop of a request still carries a secret (a redirect to another origin may not). */
function carriesCredentials(request: OutgoingRequest, guards: RequestGuards): boolean {
  return (
    request.credentialHeaders.size > 0 ||
    (request.credentialInBody && request.body !== undefined) ||
    guards.carriesSecret(request.url)
  )
}

async function sendOnce(request: OutgoingRequest, exchange: Exchange): Promise<IncomingMessage> {
  const {url} = request
  const guards: AddressGuards & RequestGuards =
    url.protocol === 'http:' &&
    !exchange.guards.allowPlainHttp &&
    carriesCredentials(request, exchange.guards)
      ? {...exchange.guards, loopbackOnly: true}
      : exchange.guards
  const addresses = pinnedToIdleSocket(url, guards) ?? (await checkedAddresses(url, guards))
  const secure = url.protocol === 'https:'
  const {request: send} = secure
    ? await (https ??= import('node:https'))
    : await (http ??= import('node:http'))
  const secureContext =
    secure && guards.ca && guards.ca.length > 0 ? await trustContext(guards.ca) : undefined
  const headers = headerObject(request.headers)
  if (request.body) headers['content-length'] = String(request.body.length)
  const agent = await pooledAgent(url, addresses, secureContext, guards.ca)
  if (agent && lastResolved && isIP(bareHostname(url)) === 0) {
    const key = originKey(url, guards.ca)
    // Bounded as the pool is: the oldest origin goes first.
    if (!lastResolved.has(key) && lastResolved.size >= MAX_AGENTS) {
      const [oldest] = lastResolved.keys()
      if (oldest !== undefined) lastResolved.delete(oldest)
    }

    lastResolved.set(key, {addresses, agent})
  }

  return new Promise((resolve, reject) => {
    const outgoing = send({
      agent,
      ...(secureContext && {secureContext}),
      // Always verified: NODE_TLS_REJECT_UNAUTHORIZED=0, set in the environment for some other
      // tool, would otherwise send the values in this request to a server nobody verified.
      // The server name (SNI, sent in clear) is always the URL's host: Node would otherwise take
      // it from a Host header. None for an IP literal (Node sends none for one either).
      ...(secure && {
        rejectUnauthorized: true,
        servername: isIP(bareHostname(url)) === 0 ? bareHostname(url) : '',
      }),
      headers,
      hostname: bareHostname(url),
      lookup: pinnedLookup(addresses),
      method: request.method,
      path: `${url.pathname}${url.search}`,
      port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    })
    // The deadline destroys the request (and so its response) rather than an AbortSignal, whose
    // listeners cost a kept-alive proxy more than the request itself.
    exchange.stop = () => outgoing.destroy()
    // Cancelled while the address was being resolved or the connection made ready.
    if (exchange.cancelled) outgoing.destroy()
    let answered = false
    outgoing.once('response', (response) => {
      answered = true
      resolve(response)
    })
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      // A kept-alive connection (proxy, mcp) the server closed just as it was reused: the request
      // never reached it. An idempotent one goes again on another connection (isStaleReuse).
      if (
        !answered &&
        !exchange.expired &&
        !exchange.cancelled &&
        isStaleReuse(outgoing, error, request.method)
      )
        resolve(sendOnce(request, exchange))
      else reject(exchange.expired ? timeoutError(url.host, guards.timeoutMs) : networkError(error, url.host))
    })
    outgoing.end(request.body)
  })
}

/** Methods a request may be sent again with (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PUT', 'TRACE'])

/**
 * Whether `error` is a kept-alive connection the server closed just as `outgoing` reused it (its
 * idle timeout), for a method that may go again: as browsers and undici do. Each such failure
 * takes one stale connection out of the pool, so the tries end; a POST is never sent twice.
 */
export function isStaleReuse(
  outgoing: {reusedSocket: boolean},
  error: NodeJS.ErrnoException,
  method: string | undefined,
): boolean {
  return (
    outgoing.reusedSocket &&
    (error.code === 'ECONNRESET' || error.code === 'EPIPE') &&
    IDEMPOTENT.has((method ?? 'GET').toUpperCase())
  )
}

/** The next request of a redirect chain, or undefined when the response is final. */
function nextRequest(
  current: OutgoingRequest,
  response: IncomingMessage,
  guards: RequestGuards,
): OutgoingRequest | undefined {
  const status = response.statusCode ?? 0
  const {location} = response.headers
  if (!REDIRECT_STATUSES.has(status) || !location) return undefined
  let url: URL
  try {
    url = new URL(location, current.url)
  } catch {
    return undefined
  }

  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new DeniedError(
      'REDIRECT_SCHEME',
      `Refused a redirect from ${current.url.host} to a ${url.protocol} URL`,
      {
        suggestion:
          'Only http:// and https:// redirects are followed; call the final URL directly if you trust it.',
      },
    )
  guards.checkRedirect(current.url, url)
  const becomesGet =
    (status === 303 && current.method !== 'HEAD') ||
    ((status === 301 || status === 302) && current.method === 'POST')
  const body = becomesGet ? undefined : current.body
  let headers = current.headers.filter(([name]) => !becomesGet || !BODY_HEADERS.has(name.toLowerCase()))
  let {credentialHeaders} = current
  const crossOrigin = url.origin !== current.url.origin
  if (crossOrigin) {
    if ((body && current.credentialInBody) || guards.carriesSecret(url))
      throw new DeniedError(
        'REDIRECT_WITH_CREDENTIALS',
        `Refused to follow a redirect from ${current.url.host} to ${url.host}: the secret would go along`,
        {
          suggestion: `Call ${url.host} directly if it should receive the secret (and allow it for the secret), or put the secret in a header (--bearer, --basic, --secret-header), which is dropped on cross-host redirects.`,
        },
      )
    const dropped = new Set([...ALWAYS_CREDENTIALS, ...credentialHeaders])
    headers = headers.filter(([name]) => !dropped.has(name.toLowerCase()))
    credentialHeaders = new Set()
  }

  return {
    body,
    credentialHeaders,
    credentialInBody: body !== undefined && current.credentialInBody,
    headers,
    method: becomesGet ? (current.method === 'HEAD' ? 'HEAD' : 'GET') : current.method,
    url,
  }
}

/** The content codings agentvault can undo, so that redaction sees the plain bytes. */
const DECODABLE_CODINGS = new Set(['br', 'deflate', 'gzip', 'x-gzip'])
/** Layers of undeclared compression looked into at most; more gzip or zlib is refused as unscannable. */
const MAX_SNIFFED_LAYERS = 3

/** The codings applied to a body, in the order they were applied (`identity` dropped). */
function contentCodings(header: string | undefined): string[] {
  return (header ?? '')
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity')
}

async function decoderFor(coding: string): Promise<Readable> {
  const zlib = await import('node:zlib')
  if (coding === 'br') return zlib.createBrotliDecompress()
  if (coding === 'deflate') return deflateDecoder()
  return zlib.createGunzip()
}

/**
 * `deflate` as servers send it: zlib (RFC 1950, what the name means) or raw deflate (RFC 1951, as
 * old IIS and .NET servers and PHP's gzdeflate send it), told apart by the zlib header as curl and
 * browsers do. Raw deflate refused as corrupt would keep such a server's answers from the caller.
 */
async function deflateDecoder(): Promise<Readable> {
  const [{Transform}, zlib] = await Promise.all([import('node:stream'), import('node:zlib')])
  let inner: ReturnType<typeof zlib.createInflate> | undefined
  let head = Buffer.alloc(0)
  const output = new Transform({
    flush(done) {
      if (!inner) {
        done(head.length === 0 ? undefined : new Error('a deflate body of one byte'))
        return
      }

      inner.once('end', () => done())
      inner.end()
    },
    transform(chunk: Buffer, _encoding, done) {
      let data = chunk
      if (!inner) {
        head = Buffer.concat([head, chunk])
        if (head.length < 2) {
          done()
          return
        }

        const [cmf = 0, flg = 0] = head
        const zlibHeader = (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && ((cmf << 8) | flg) % 31 === 0
        inner = zlibHeader ? zlib.createInflate() : zlib.createInflateRaw()
        inner.on('data', (piece: Buffer) => output.push(piece))
        inner.once('error', (error) => output.destroy(error))
        data = head
      }

      if (inner.write(data)) done()
      else inner.once('drain', () => done())
    },
  })
  return output
}

function unscannable(host: string, what: string): DeniedError {
  return new DeniedError(
    'UNSCANNABLE_RESPONSE',
    `The response from ${host} is ${what}, which agentvault cannot decode to check it for the secret; it is not returned`,
    {
      suggestion:
        'Ask for an uncompressed response (-H "Accept-Encoding: identity"), or a coding agentvault decodes: gzip, deflate or br.',
    },
  )
}

/** Does `body` start like a gzip stream (magic 1f 8b, method 8 = deflate)? */
export function looksGzipped(body: Buffer): boolean {
  return body.length >= 10 && body[0] === 0x1f && body[1] === 0x8b && body[2] === 0x08
}

/**
 * Does `body` start like a zlib stream (RFC 1950, what `deflate` names): method 8, a window of at
 * most 32 KiB, no preset dictionary, a header check that holds? Text can too ("x^2…"): a body
 * that then does not inflate is taken as it is.
 */
export function looksZlibbed(body: Buffer): boolean {
  const [cmf = 0, flg = 0] = body
  return (
    body.length >= 6 &&
    (cmf & 0x0f) === 8 &&
    cmf >> 4 <= 7 &&
    (flg & 0x20) === 0 &&
    ((cmf << 8) | flg) % 31 === 0
  )
}

/**
 * What a binary body holds once decoded as a coding with no header to recognise it by: raw
 * deflate (PHP's gzdeflate, .NET's DeflateStream, Go's compress/flate) or brotli. Only bodies
 * that are not UTF-8 text are tried (compressed data is binary, and is handed back as base64 that
 * any program inflates); whatever does not decode completely within the cap is taken as it is.
 */
async function sniffHeaderless(body: Buffer, limit: number): Promise<Buffer[]> {
  if (body.length < 2 || isUtf8(body)) return []
  const {brotliDecompressSync, inflateRawSync} = await import('node:zlib')
  const found: Buffer[] = []
  for (const decode of [inflateRawSync, brotliDecompressSync])
    try {
      found.push(decode(body, {maxOutputLength: limit}))
    } catch {
      // Not this coding (or beyond the cap): taken as it is.
    }

  return found
}

/**
 * What a body that no Content-Encoding declared holds, for scanning only (the body itself is
 * returned as sent): gzip or zlib recognised by their headers, else raw deflate or brotli (see
 * sniffHeaderless), layer by layer (at most MAX_SNIFFED_LAYERS) within the size cap; every layer
 * found, joined. Undefined when the body holds nothing compressed.
 */
async function sniffCompressed(
  body: Buffer,
  host: string,
  limit: number,
  depth = 0,
): Promise<Buffer | undefined> {
  let found: Buffer[] = []
  const gzip = looksGzipped(body)
  if (gzip || looksZlibbed(body)) {
    if (depth === MAX_SNIFFED_LAYERS)
      throw unscannable(host, `${gzip ? 'gzip' : 'zlib'}-compressed more than ${MAX_SNIFFED_LAYERS} times`)
    const {constants, gunzipSync, inflateSync} = await import('node:zlib')
    try {
      found = [
        gzip
          ? gunzipSync(body, {maxOutputLength: limit})
          : // A stream cut short still gives what it holds (as a client's inflater would).
            inflateSync(body, {finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: limit}),
      ]
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(host, limit)
      if (gzip) throw unscannable(host, 'a body that looks gzip-compressed but does not decode')
      // Not zlib after all: text that starts like it.
    }
  }

  if (found.length === 0 && depth < MAX_SNIFFED_LAYERS) found = await sniffHeaderless(body, limit)
  if (found.length === 0) return undefined
  const parts: Buffer[] = []
  for (const part of found) {
    parts.push(part, Buffer.of(0))
    const deeper = await sniffCompressed(part, host, limit, depth + 1)
    if (deeper) parts.push(deeper, Buffer.of(0))
  }

  return Buffer.concat(parts)
}

/** A body sent without content coding, read with plain listeners (no async iterator), under the cap. */
function plainBody(response: IncomingMessage, host: string, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    let settled = false
    const fail = (error: AgentVaultError): void => {
      if (settled) return
      settled = true
      response.destroy()
      reject(error)
    }

    response.on('data', (chunk: Buffer) => {
      total += chunk.length
      if (total > limit) fail(tooLarge(host, limit))
      else chunks.push(chunk)
    })
    response.once('end', () => {
      settled = true
      resolve(Buffer.concat(chunks, total))
    })
    response.once('error', (error) => fail(networkError(error, host)))
    // Closed before its end (the connection dropped, or the deadline destroyed it).
    response.once('close', () => {
      if (!settled) fail(networkError({code: 'ECONNRESET'}, host))
    })
  })
}

/**
 * The body, decoded when the server compressed it anyway (redaction must see the plain bytes),
 * stopped as soon as it exceeds the cap. Stacked codings (`gzip, gzip`) are undone in reverse
 * order; a coding agentvault cannot decode is refused rather than passed on unscanned.
 */
async function readBody(
  response: IncomingMessage,
  url: URL,
  guards: RequestGuards,
): Promise<{body: Buffer; undeclared?: Buffer}> {
  const limit = guards.maxResponseBytes
  const declared = response.headers['content-encoding']
  const codings = contentCodings(declared)
  const unknown = codings.find((coding) => !DECODABLE_CODINGS.has(coding))
  if (unknown !== undefined) {
    response.destroy()
    throw unscannable(url.host, `${unknown}-encoded`)
  }

  if (codings.length === 0 && Number(response.headers['content-length']) > limit) {
    response.destroy()
    throw tooLarge(url.host, limit)
  }

  if (codings.length === 0) {
    const body = await plainBody(response, url.host, limit)
    const undeclared = await sniffCompressed(body, url.host, limit)
    return undeclared ? {body, undeclared} : {body}
  }

  let stream: Readable = response
  let connectionFailed = false
  if (codings.length > 0) {
    const {pipeline} = await import('node:stream')
    response.once('error', () => {
      connectionFailed = true
    })
    const decoders = await Promise.all([...codings].reverse().map((coding) => decoderFor(coding)))
    stream = (pipeline as (...streams: unknown[]) => Readable)(response, ...decoders, () => {})
  }

  const chunks: Buffer[] = []
  let total = 0
  try {
    for await (const chunk of stream) {
      total += (chunk as Buffer).length
      if (total > limit) throw tooLarge(url.host, limit)
      chunks.push(chunk as Buffer)
    }
  } catch (error) {
    response.destroy()
    if (error instanceof DeniedError) throw error
    if (codings.length > 0 && !connectionFailed)
      throw new BackendUnavailableError(
        'BAD_RESPONSE_ENCODING',
        `The response from ${url.host} is not valid ${declared}`,
        {
          suggestion:
            'The server sent a corrupt compressed body; try again or ask for an uncompressed one (-H "Accept-Encoding: identity").',
        },
      )
    throw networkError(error, url.host)
  }

  if (codings.length > 0) {
    delete response.headers['content-encoding']
    response.headers['content-length'] = String(total)
  }

  const body = Buffer.concat(chunks)
  const undeclared = await sniffCompressed(body, url.host, limit)
  return undeclared ? {body, undeclared} : {body}
}

/** Send `request`, following redirects under `guards`; the final response with its whole body. */
export async function sendRequest(request: OutgoingRequest, guards: RequestGuards): Promise<HttpResponse> {
  if (!Number.isFinite(guards.timeoutMs) || guards.timeoutMs <= 0)
    throw new UsageError('BAD_TIMEOUT', 'The timeout must be a positive number of seconds', {
      suggestion: 'Pass --timeout 30 (seconds).',
    })
  if (guards.signal?.aborted) throw new CancelledError()
  const started = Date.now()
  const exchange: Exchange = {expired: false, guards}
  let expire: ((error: Error) => void) | undefined
  const timedOut = new Promise<never>((_resolve, reject) => {
    expire = reject
  })
  timedOut.catch(() => {})
  const timer = setTimeout(() => {
    exchange.expired = true
    exchange.stop?.()
    expire?.(timeoutError(request.url.host, guards.timeoutMs))
  }, guards.timeoutMs)
  // Only callers that can cancel pass a signal: the proxy's requests carry no listener.
  const {signal} = guards
  const cancel = (): void => {
    exchange.cancelled = true
    exchange.stop?.()
    expire?.(new CancelledError())
  }

  signal?.addEventListener('abort', cancel, {once: true})
  let current = request
  try {
    for (let redirects = 0; ; redirects++) {
      const response = await Promise.race([sendOnce(current, exchange), timedOut])
      let next: OutgoingRequest | undefined
      try {
        next = nextRequest(current, response, guards)
      } catch (error) {
        response.destroy()
        throw error
      }

      if (!next) {
        const {body, undeclared} = await Promise.race([readBody(response, current.url, guards), timedOut])
        return {
          body,
          ...(undeclared && {undeclaredCompressed: undeclared}),
          durationMs: Date.now() - started,
          headers: response.headers,
          status: response.statusCode ?? 0,
          statusText: response.statusMessage ?? '',
          url: current.url,
        }
      }

      response.destroy()
      if (redirects >= guards.maxRedirects)
        throw new BackendUnavailableError(
          'TOO_MANY_REDIRECTS',
          `More than ${guards.maxRedirects} redirects, starting at ${request.url.host}`,
          {
            suggestion: 'Call the final URL directly; the server may be redirecting in a loop.',
          },
        )
      current = next
    }
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', cancel)
  }
}
