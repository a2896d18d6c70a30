/**
 * agentvault's own execution of use operations (product.md §5), for backends that hand agentvault
 * the value (`local`, `openbao`) rather than performing the operation themselves. The calling
 * process only ever gets the result:
 * - host allowlists: the secret's `allowedDomains`, else the profile's `allowedDomains` or
 *   `--allow-host` — checked before any value is read;
 * - the SSRF guard, redirects, timeout and size cap of use/http-client.ts;
 * - redaction of every echo of a value in what comes back (use/redaction.ts).
 * Validation (`planHttp`, `validateUseRequest`) is pure and runs before a secret is touched.
 */
import {isUtf8} from 'node:buffer'

import type {UseRequest, UseResult} from './backend.js'
import type {Profile} from './config.js'
import type {HttpResponse, OutgoingRequest} from './use/http-client.js'
import type {HttpOutcome} from './use/http-result.js'
import type {Injection} from './use/specs.js'

import {ENGINE_USE_OPERATIONS} from './backend.js'
import {ConfigError, DeniedError, UsageError} from './errors.js'
import {shellQuote} from './shell-quote.js'
import {isLoopbackHost} from './use/addresses.js'
import {
  decryptData,
  encryptData,
  SIGN_ALGORITHMS,
  type SignAlgorithm,
  signData,
  verifyData,
} from './use/crypto-ops.js'
import {hostInList, urlHost, urlPort} from './use/hosts.js'
import {toHttpResult} from './use/http-result.js'
import {createRedactor, type Redactor} from './use/redaction.js'
import {isToken, parseBodyPath} from './use/specs.js'

export const HEADER_TYPES = ['bearer', 'api_key', 'basic', 'custom'] as const
export type HeaderType = (typeof HEADER_TYPES)[number]

export const DEFAULT_TIMEOUT_MS = 30_000
export const DEFAULT_MAX_RESPONSE_BYTES = 50 * 1024 * 1024
export const MAX_REDIRECTS = 5
/** The header `api_key` uses when no `header_name` is given. */
export const DEFAULT_API_KEY_HEADER = 'X-API-Key'

/** What the guards know about one secret: where it may go, never its value. */
export interface SecretPolicy {
  /** The secret's own list (e.g. from `secrets set --allow-domain`). */
  allowedDomains?: readonly string[]
  profile: Profile
  /** Canonical reference. */
  reference: string
}

export interface EngineOptions {
  /** `--allow-host`: hosts for secrets without a list of their own. */
  allowHosts: readonly string[]
  /** PEM files of extra trusted CAs (`--cacert`, the profiles' `caCert`). */
  caCertFiles: readonly string[]
  maxResponseBytes: number
  /** What an echoed secret becomes in a response (default `<concealed by agentvault>`). */
  redactionMarker?: string
  /** Ends the request in flight with a CancelledError. */
  signal?: AbortSignal
  timeoutMs: number
}

/** An injection whose reference is canonical (the key of the value map). */
export type ResolvedInjection = Injection & {reference: string}

/** A validated HTTP request that will carry secrets; holds no value yet. */
export interface HttpPlan {
  body?: Buffer
  headers: Array<[string, string]>
  injections: ResolvedInjection[]
  method: string
  url: URL
}

export interface HttpPlanInput {
  body?: Buffer
  headers?: ReadonlyArray<readonly [string, string]>
  injections: ResolvedInjection[]
  method?: string
  url: string
}

/** A use request whose parameters were checked. */
export type ValidatedUse =
  | {algorithm: SignAlgorithm; data: Buffer; operation: 'sign'}
  | {algorithm: SignAlgorithm; data: Buffer; operation: 'verify'; signature: string}
  | {ciphertext: string; operation: 'decrypt'}
  | {headerType: HeaderType; headerName?: string; operation: 'http_header'}
  | {operation: 'encrypt'; plaintext: Buffer}
  | {operation: 'http_request'; plan: HttpPlan}

const TEXT_ENCODINGS = ['utf8', 'base64', 'hex'] as const
/** Framing and routing headers Node derives from the URL and body: a user-supplied one is dropped. */
const HOP_HEADERS = new Set(['connection', 'content-length', 'host', 'transfer-encoding'])
/**
 * Headers a secret may not be injected into: they frame or route the message, or describe this hop.
 * Host would also become the TLS server name (SNI), which goes out in clear text before any
 * encryption, so a value there would be on the wire for anyone on the path to read.
 */
const RESERVED_INJECTION_HEADERS = new Set([
  'connection',
  'content-length',
  'host',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

function usage(code: string, message: string, suggestion: string): UsageError {
  return new UsageError(code, message, {suggestion})
}

// ---------------------------------------------------------------------------------------------
// Host allowlists

/**
 * Whether one secret may go to `host` (normalised) on `port`: its own list, else its profile's
 * and `--allow-host`. An entry with a port admits only that port.
 */
export function allowedBy(
  policy: SecretPolicy,
  host: string,
  allowHosts: readonly string[],
  port?: number,
): boolean {
  if (policy.allowedDomains && policy.allowedDomains.length > 0)
    return hostInList(policy.allowedDomains, host, port)
  const profileList = policy.profile.settings.allowedDomains ?? []
  return hostInList(profileList, host, port) || hostInList(allowHosts, host, port)
}

/**
 * How to give a secret the allowed hosts `hosts`: the command that does it where the backend
 * edits metadata in place (local), else storing the secret again.
 */
function giveOwnList(policy: SecretPolicy, hosts: readonly string[]): string {
  const flags = hosts.map((host) => `--allow-domain ${shellQuote(host)}`).join(' ')
  return policy.profile.kind === 'local'
    ? `run: agentvault secrets edit ${shellQuote(policy.reference)} ${flags}`
    : `store the secret again with ${flags}.`
}

/**
 * Throw a DeniedError unless every secret may be used with `url`'s host. A secret with its own
 * `allowedDomains` goes only there; one without goes only to its profile's `allowedDomains` and
 * the `--allow-host` hosts. With `from`, the message speaks of a redirect.
 */
export function assertHostAllowed(
  url: URL,
  policies: readonly SecretPolicy[],
  allowHosts: readonly string[],
  from?: URL,
): void {
  const host = urlHost(url)
  const port = urlPort(url)
  // The port is named when it is not the scheme's default (an entry may admit one port only).
  const where = url.port === '' ? host : `${host}:${url.port}`
  for (const policy of policies) {
    if (allowedBy(policy, host, allowHosts, port)) continue
    const own = policy.allowedDomains && policy.allowedDomains.length > 0 ? policy.allowedDomains : undefined
    const why = own
      ? `${policy.reference} may only be used with ${own.join(', ')}`
      : `${policy.reference} has no allowed hosts of its own and ${where} is neither in profile ${policy.profile.name}’s allowedDomains nor given with --allow-domain`
    const suggestion = own
      ? `Call one of those hosts; if ${where} should receive this secret, ${giveOwnList(policy, [...own, where])}`
      : `If ${where} should receive this secret, pass --allow-domain ${where}, add it to the profile’s "allowedDomains", or ${giveOwnList(policy, [where])}`
    if (from)
      throw new DeniedError(
        'REDIRECT_NOT_ALLOWED',
        `Refused to follow a redirect from ${from.host} to ${url.host}: ${why}`,
        {
          details: {host, reference: policy.reference},
          suggestion,
        },
      )
    // `allowlist: "empty"` lets `proxy` answer AgentSecrets' empty_allowlist block.
    const empty =
      !own && (policy.profile.settings.allowedDomains ?? []).length === 0 && allowHosts.length === 0
    throw new DeniedError('HOST_NOT_ALLOWED', `Refused to send ${policy.reference} to ${where}: ${why}`, {
      details: {allowlist: own ? 'secret' : empty ? 'empty' : 'profile', host, reference: policy.reference},
      suggestion,
    })
  }

  if (!from) assertTransportAllowed(url, policies)
}

/**
 * Refuse a request that would carry secrets over plain http:// off this machine, unless every
 * profile involved sets `allowPlainHttp`: anyone on the network path reads it (AgentSecrets 3.x
 * blocks it too; `run --placeholders` does the same). Redirects are not checked here: one to
 * another origin drops the credential headers, and refuses a secret in the URL or body.
 */
function assertTransportAllowed(url: URL, policies: readonly SecretPolicy[]): void {
  if (url.protocol !== 'http:' || policies.length === 0) return
  const host = urlHost(url)
  if (isLoopbackHost(host) || policies.every((policy) => policy.profile.settings.allowPlainHttp === true))
    return
  const refused = policies.find((policy) => policy.profile.settings.allowPlainHttp !== true)!
  throw new DeniedError(
    'PLAIN_HTTP',
    `Refused to send ${refused.reference} over plain http:// to ${host}: anyone on the network path could read it`,
    {
      details: {host, reference: refused.reference},
      suggestion: `Use https:// if ${url.host} speaks it; if ${host} only speaks plain HTTP on a network you trust, set "allowPlainHttp": true on profile ${refused.profile.name} (agentvault profiles set ${refused.profile.name} allowPlainHttp=true).`,
    },
  )
}

/** Private networks are reachable only when every profile involved allows them. */
function allowsPrivateNetworks(policies: readonly SecretPolicy[]): boolean {
  return (
    policies.length > 0 && policies.every((policy) => policy.profile.settings.allowPrivateNetworks === true)
  )
}

// ---------------------------------------------------------------------------------------------
// Planning (no values)

function parseUrl(text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw usage(
      'BAD_URL',
      'The URL is not valid',
      'Give an absolute http:// or https:// URL, e.g. https://api.example.com/v1/models.',
    )
  }

  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usage(
      'BAD_URL',
      `Only http:// and https:// URLs can be called, not ${url.protocol}`,
      'Give an absolute http:// or https:// URL.',
    )
  if (url.username !== '' || url.password !== '')
    throw usage(
      'CREDENTIALS_IN_URL',
      'The URL carries a user name or password',
      'Keep credentials out of URLs: store them as a secret and pass --basic REF (or --bearer/--secret-header).',
    )
  return url
}

function jsonObjectBody(body: Buffer | undefined): Record<string, unknown> {
  if (!body || body.length === 0) return {}
  let data: unknown
  try {
    data = JSON.parse(body.toString('utf8'))
  } catch {
    data = undefined
  }

  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw usage(
      'BODY_NOT_JSON_OBJECT',
      '--body-field needs a JSON object body (or none)',
      'Pass -d \'{"key":"value"}\' or no body at all with --body-field.',
    )
  return data as Record<string, unknown>
}

/** Set `value` at `path` inside `root`, creating objects; a non-object on the way is a UsageError. */
function setAtPath(root: Record<string, unknown>, path: string, value: string): void {
  const segments = parseBodyPath(path)
  let node = root
  for (const segment of segments.slice(0, -1)) {
    const next = Object.hasOwn(node, segment) ? node[segment] : undefined
    if (next === undefined) {
      const created: Record<string, unknown> = {}
      node[segment] = created
      node = created
    } else if (next !== null && typeof next === 'object' && !Array.isArray(next)) {
      node = next as Record<string, unknown>
    } else {
      throw usage(
        'BODY_FIELD_CONFLICT',
        `--body-field ${path}: "${segment}" is not an object in the body`,
        'Choose a path whose parents are objects (or absent) in the -d body.',
      )
    }
  }

  node[segments.at(-1)!] = value
}

function injectedHeaderName(injection: Injection): string | undefined {
  if (injection.style === 'bearer' || injection.style === 'basic') return 'authorization'
  return injection.style === 'header' ? injection.target?.toLowerCase() : undefined
}

/** The headers the injections set: each once, and none that frames or routes the message. */
function checkHeaderTargets(injections: readonly Injection[]): void {
  const headerTargets = injections
    .map((injection) => injectedHeaderName(injection))
    .filter((name) => name !== undefined)
  const reserved = headerTargets.find((name) => RESERVED_INJECTION_HEADERS.has(name))
  if (reserved !== undefined)
    throw usage(
      'RESERVED_HEADER',
      `A secret cannot be sent in the ${reserved} header: agentvault sets it from the URL and the body (and a Host header would also become the TLS server name, which travels unencrypted)`,
      'Inject the secret into a header of its own (--secret-header "X-Api-Key: REF"), --bearer or --basic.',
    )
  if (new Set(headerTargets).size !== headerTargets.length)
    throw usage(
      'DUPLICATE_CREDENTIAL_HEADER',
      'Two secrets would set the same header',
      'Give each header once (--bearer and --basic both set Authorization).',
    )
}

/** Check an HTTP request that will carry secrets; nothing is read or sent. */
export function planHttp(input: HttpPlanInput): HttpPlan {
  const url = parseUrl(input.url)
  const {injections} = input
  if (injections.length === 0)
    throw usage(
      'NO_CREDENTIAL',
      'Nothing to inject: give at least one secret',
      'Add --bearer REF, --basic REF, --secret-header "Name: REF", --query name=REF, --body-field path=REF or --form-field name=REF.',
    )
  checkHeaderTargets(injections)
  const styles = new Set(injections.map((injection) => injection.style))
  if (styles.has('body') && styles.has('form'))
    throw usage(
      'BODY_STYLE_CONFLICT',
      '--body-field and --form-field cannot be combined',
      'A body is either JSON (--body-field) or a form (--form-field).',
    )
  if (styles.has('body')) {
    const probe = jsonObjectBody(input.body)
    for (const injection of injections)
      if (injection.style === 'body') setAtPath(probe, injection.target ?? '', '')
  }

  const method = (
    input.method ?? (input.body || styles.has('body') || styles.has('form') ? 'POST' : 'GET')
  ).toUpperCase()
  if (!isToken(method))
    throw usage(
      'BAD_METHOD',
      'The HTTP method is not valid',
      'Pass a method such as GET, POST, PUT, PATCH or DELETE.',
    )
  const headers: Array<[string, string]> = []
  for (const [name, value] of input.headers ?? []) {
    if (!isToken(name) || /[\r\n\u0000]/.test(value))
      throw usage(
        'BAD_HEADER',
        'A header has an invalid name or value',
        'Header names are tokens (e.g. X-Request-Id); values have no line breaks.',
      )
    if (!HOP_HEADERS.has(name.toLowerCase())) headers.push([name, value])
  }

  return {...(input.body && {body: input.body}), headers, injections, method, url}
}

function stringParam(
  params: Record<string, unknown>,
  names: readonly string[],
  required: boolean,
): string | undefined {
  for (const name of names) {
    const value = params[name]
    if (value === undefined) continue
    if (typeof value !== 'string')
      throw usage(
        'BAD_PARAM',
        `The parameter ${name} must be a string`,
        `Pass it as --param ${name}=VALUE or as a JSON string in --params.`,
      )
    return value
  }

  if (required)
    throw usage(
      'MISSING_PARAM',
      `The parameter ${names.join(' (or ')}${names.length > 1 ? ')' : ''} is required`,
      `Pass --param ${names[0]}=VALUE.`,
    )
  return undefined
}

function oneOf<T extends string>(
  value: string | undefined,
  options: readonly T[],
  name: string,
  fallback: T,
): T {
  if (value === undefined) return fallback
  const lower = value.toLowerCase()
  if (!(options as readonly string[]).includes(lower))
    throw usage(
      'BAD_PARAM',
      `The parameter ${name} must be one of ${options.join(', ')}`,
      `Pass --param ${name}=${fallback}.`,
    )
  return lower as T
}

function decodeText(text: string, encoding: (typeof TEXT_ENCODINGS)[number], name: string): Buffer {
  const valid =
    encoding === 'utf8' ||
    (encoding === 'hex' ? /^(?:[\da-fA-F]{2})*$/.test(text) : /^[A-Za-z\d+/_-]*={0,2}$/.test(text))
  if (!valid)
    throw usage(
      'BAD_PARAM',
      `The parameter ${name} is not valid ${encoding}`,
      `Check ${name}, or set --param encoding=utf8|base64|hex to match it.`,
    )
  return Buffer.from(text, encoding)
}

function headerParams(params: Record<string, unknown>): {headerName?: string; headerType: HeaderType} {
  const headerType = oneOf(stringParam(params, ['header_type'], false), HEADER_TYPES, 'header_type', 'bearer')
  const headerName = stringParam(params, ['header_name'], headerType === 'custom')
  if (headerName !== undefined && !isToken(headerName))
    throw usage(
      'BAD_PARAM',
      'The parameter header_name is not a valid header name',
      'Pass a header name such as X-Api-Key.',
    )
  return {headerType, ...(headerName !== undefined && {headerName})}
}

function injectionFor(
  headerType: HeaderType,
  headerName: string | undefined,
  reference: string,
): ResolvedInjection {
  switch (headerType) {
    case 'api_key': {
      return {reference, style: 'header', target: headerName ?? DEFAULT_API_KEY_HEADER}
    }

    case 'basic':
    case 'bearer': {
      return {reference, style: headerType}
    }

    case 'custom': {
      return {reference, style: 'header', target: headerName}
    }
  }
}

function requestHeaders(value: unknown): Array<[string, string]> {
  if (value === undefined) return []
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw usage(
      'BAD_PARAM',
      'The parameter headers must be an object of strings',
      'Pass --params \'{"headers":{"Accept":"application/json"}}\' or --param headers.Accept=application/json.',
    )
  return Object.entries(value).map(([name, item]) => {
    if (typeof item !== 'string')
      throw usage(
        'BAD_PARAM',
        'The parameter headers must be an object of strings',
        'Give every header value as a string.',
      )
    return [name, item]
  })
}

/** Check a use request's operation and parameters; `reference` is the canonical reference. */
export function validateUseRequest(request: UseRequest, reference: string): ValidatedUse {
  const operation = request.operation.toLowerCase()
  const {params} = request
  const encoding = (): (typeof TEXT_ENCODINGS)[number] =>
    oneOf(stringParam(params, ['encoding'], false), TEXT_ENCODINGS, 'encoding', 'utf8')
  const algorithm = (): SignAlgorithm =>
    oneOf(stringParam(params, ['algorithm'], false), SIGN_ALGORITHMS, 'algorithm', 'hmac-sha256')
  switch (operation) {
    case 'decrypt': {
      return {ciphertext: stringParam(params, ['ciphertext', 'data'], true)!, operation}
    }

    case 'encrypt': {
      const text = stringParam(params, ['plaintext', 'data'], true)!
      return {operation, plaintext: decodeText(text, encoding(), 'plaintext')}
    }

    case 'http_header': {
      return {operation, ...headerParams(params)}
    }

    case 'http_request': {
      const {headerName, headerType} = headerParams(params)
      const body = stringParam(params, ['body'], false)
      const plan = planHttp({
        ...(body !== undefined && {body: Buffer.from(body, 'utf8')}),
        headers: requestHeaders(params.headers),
        injections: [injectionFor(headerType, headerName, reference)],
        method: stringParam(params, ['method'], false),
        url: stringParam(params, ['url'], true)!,
      })
      return {operation, plan}
    }

    case 'sign': {
      const data = decodeText(stringParam(params, ['data', 'payload'], true)!, encoding(), 'data')
      return {algorithm: algorithm(), data, operation}
    }

    case 'verify': {
      const data = decodeText(stringParam(params, ['data', 'payload'], true)!, encoding(), 'data')
      return {
        algorithm: algorithm(),
        data,
        operation,
        signature: stringParam(params, ['signature'], true)!.trim(),
      }
    }

    default: {
      throw usage(
        'UNKNOWN_OPERATION',
        `Unknown operation: ${JSON.stringify(operation.slice(0, 40))}`,
        `Use one of ${ENGINE_USE_OPERATIONS.join(', ')}.`,
      )
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Performing (with values)

/** Percent-encode every byte outside RFC 3986's unreserved set (works for any bytes, not only UTF-8). */
function percentEncode(bytes: Buffer): string {
  let out = ''
  for (const byte of bytes) {
    const char = String.fromCodePoint(byte)
    out += /[\w.~-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }

  return out
}

/** The decoded name of one `name=value` piece of a query or form body. */
function pairName(piece: string): string {
  const raw = piece.split('=')[0] ?? ''
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '))
  } catch {
    return raw
  }
}

/** `a=1&b=2` with every pair named `name` replaced by `name=value` at the end (others kept byte for byte). */
function setEncodedPair(encoded: string, name: string, value: Buffer): string {
  const kept = encoded.split('&').filter((piece) => piece !== '' && pairName(piece) !== name)
  return [...kept, `${percentEncode(Buffer.from(name, 'utf8'))}=${percentEncode(value)}`].join('&')
}

function headerValue(value: Buffer, reference: string): string {
  const text = value.toString('latin1')
  if (text === '' || /[\u0000-\u0008\u000A-\u001F\u007F]/.test(text))
    throw usage(
      'SECRET_NOT_HEADER_SAFE',
      `${reference} cannot be sent in a header: it is empty or contains a line break or control character`,
      'Store the value without line breaks (a trailing newline is the usual cause), or inject it with --body-field or --form-field.',
    )
  return text
}

function basicCredential(value: Buffer, reference: string): string {
  if (!value.includes(0x3a))
    throw usage(
      'BASIC_NEEDS_USER_PASSWORD',
      `${reference} is not of the form user:password, as Basic authentication needs`,
      'Store the secret as user:password, or send it with --bearer or --secret-header instead.',
    )
  return `Basic ${value.toString('base64')}`
}

function textValue(value: Buffer, reference: string): string {
  if (!isUtf8(value))
    throw usage(
      'SECRET_NOT_TEXT',
      `${reference} is not UTF-8 text and cannot be put in a JSON body`,
      'Inject a binary secret with --form-field or --query (percent-encoded) instead.',
    )
  return value.toString('utf8')
}

function hasHeader(headers: ReadonlyArray<readonly [string, string]>, name: string): boolean {
  return headers.some(([existing]) => existing.toLowerCase() === name)
}

/** Like curl -d, a body is a form, except that a JSON object or array is labelled as JSON. */
function contentTypeOf(body: Buffer, form: boolean): string {
  if (!form)
    try {
      const data: unknown = JSON.parse(body.toString('utf8'))
      if (data !== null && typeof data === 'object') return 'application/json'
    } catch {
      // Not JSON: a form, as curl assumes.
    }

  return 'application/x-www-form-urlencoded'
}

/** What the injections of one request have built so far. */
interface Injected {
  formBody?: string
  headers: Array<[string, string]>
  jsonBody?: Record<string, unknown>
  url: URL
}

/** Put one secret where its injection says. */
function inject(into: Injected, injection: ResolvedInjection, value: Buffer, plan: HttpPlan): void {
  const {reference, target = ''} = injection
  switch (injection.style) {
    case 'basic': {
      into.headers.push(['Authorization', basicCredential(value, reference)])
      break
    }

    case 'bearer': {
      into.headers.push(['Authorization', `Bearer ${headerValue(value, reference)}`])
      break
    }

    case 'body': {
      into.jsonBody ??= jsonObjectBody(plan.body)
      setAtPath(into.jsonBody, target, textValue(value, reference))
      break
    }

    case 'form': {
      into.formBody = setEncodedPair(into.formBody ?? plan.body?.toString('utf8') ?? '', target, value)
      break
    }

    case 'header': {
      into.headers.push([target, headerValue(value, reference)])
      break
    }

    case 'query': {
      into.url.search = setEncodedPair(into.url.search.slice(1), target, value)
      break
    }
  }
}

/** The request with every secret in its place; `values` is keyed by canonical reference. */
function buildRequest(plan: HttpPlan, values: ReadonlyMap<string, Buffer>): OutgoingRequest {
  // A copy only when a secret goes in the query: nothing else changes the URL.
  const into: Injected = {
    headers: [],
    url: plan.injections.some((injection) => injection.style === 'query') ? new URL(plan.url.href) : plan.url,
  }
  for (const injection of plan.injections) {
    const value = values.get(injection.reference)
    if (!value) throw new UsageError('INTERNAL_NO_VALUE', `No value was read for ${injection.reference}`)
    inject(into, injection, value, plan)
  }

  const {formBody, jsonBody} = into
  const credentialHeaders = new Set(into.headers.map(([name]) => name.toLowerCase()))
  const headers: Array<[string, string]> = [
    ...plan.headers.filter(([name]) => !credentialHeaders.has(name.toLowerCase())),
    ...into.headers,
  ]
  const body = jsonBody
    ? Buffer.from(JSON.stringify(jsonBody), 'utf8')
    : formBody === undefined
      ? plan.body
      : Buffer.from(formBody, 'utf8')
  if (body && !hasHeader(headers, 'content-type'))
    headers.push(['Content-Type', contentTypeOf(body, formBody !== undefined)])
  if (!hasHeader(headers, 'user-agent')) headers.push(['User-Agent', 'agentvault'])
  // Redaction must see plain bytes: ask for an uncompressed body (and decode one anyway).
  if (!hasHeader(headers, 'accept-encoding')) headers.push(['Accept-Encoding', 'identity'])
  return {
    ...(body && {body}),
    credentialHeaders,
    credentialInBody: jsonBody !== undefined || formBody !== undefined,
    headers,
    method: plan.method,
    url: into.url,
  }
}

export async function readCaFiles(files: readonly string[]): Promise<string[]> {
  if (files.length === 0) return []
  const {caFileProblem, readCaFile} = await import('./tls.js')
  return Promise.all(
    files.map(async (file) => {
      let text: string
      try {
        text = (await readCaFile(file)).toString('utf8')
      } catch (error) {
        throw new ConfigError(
          'CACERT_UNREADABLE',
          `Cannot read the CA certificate file ${caFileProblem(file, error)}`,
          {
            suggestion: 'Check the path given to --cacert or the profile’s "caCert".',
          },
        )
      }

      if (!text.includes('-----BEGIN CERTIFICATE-----'))
        throw new ConfigError('CACERT_INVALID', `${file} holds no PEM certificate`, {
          suggestion: 'Point --cacert or "caCert" at a PEM file (-----BEGIN CERTIFICATE-----).',
        })
      return text
    }),
  )
}

/**
 * Header names and values with every secret form concealed. Names are compared without regard to
 * case (Node lower-cases them on receipt, which would hide a mixed-case value from an exact match);
 * values that end up under the same concealed name are kept together.
 */
function redactHeaders(
  headers: HttpResponse['headers'],
  redactor: Redactor,
): Record<string, string | string[]> {
  // Every value scanned in one pass first (one buffer, one search): when none holds a secret, the
  // usual answer, each passes as it is; otherwise each is redacted on its own. A value that holds
  // one makes the whole text hold it, so nothing is missed (a match across two values only costs
  // the second pass).
  const values: string[] = []
  for (const value of Object.values(headers))
    if (typeof value === 'string') values.push(value)
    else if (value) values.push(...value)
  const clean = !redactor.contains(Buffer.from(values.join('\n'), 'latin1'))
  const text = (item: string): string => (clean ? item : redactor.text(item))
  const result: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    const key = redactor.headerName(name)
    const redacted = Array.isArray(value) ? value.map((item) => text(item)) : text(value)
    const existing = result[key]
    result[key] = existing === undefined ? redacted : [existing, redacted].flat()
  }

  return result
}

/** The HTTP client, imported on the first request (sign/verify/… never load it), then kept. */
let httpClient: Promise<typeof import('./use/http-client.js')> | undefined

/**
 * Send a planned request with the secrets' values under every guard, and redact the response.
 * The caller has already checked the hosts (so a refused call never read a value); this checks
 * them again, as a redirect chain must.
 */
export async function performHttp(
  plan: HttpPlan,
  values: ReadonlyMap<string, Buffer>,
  policies: readonly SecretPolicy[],
  options: EngineOptions & {
    /** A redactor of exactly `values` with `redactionMarker`, when the caller built one already. */
    redactor?: Redactor
  },
): Promise<HttpOutcome> {
  assertHostAllowed(plan.url, policies, options.allowHosts)
  const request = buildRequest(plan, values)
  const redactor = options.redactor ?? createRedactor([...values.values()], options.redactionMarker)
  const ca = await readCaFiles(options.caCertFiles)
  httpClient ??= import('./use/http-client.js')
  const {sendRequest} = await httpClient
  try {
    const response = await sendRequest(request, {
      allowPlainHttp: policies.every((policy) => policy.profile.settings.allowPlainHttp === true),
      allowPrivateNetworks: allowsPrivateNetworks(policies),
      blockingProfiles: [
        ...new Set(
          policies
            .filter((policy) => policy.profile.settings.allowPrivateNetworks !== true)
            .map((policy) => policy.profile.name),
        ),
      ],
      ca,
      carriesSecret: (target) => redactor.inUrl(target),
      checkRedirect: (from, to) => assertHostAllowed(to, policies, options.allowHosts, from),
      maxRedirects: MAX_REDIRECTS,
      maxResponseBytes: options.maxResponseBytes,
      ...(options.signal && {signal: options.signal}),
      timeoutMs: options.timeoutMs,
    })
    return redactedOutcome(response, redactor)
  } catch (error) {
    throw concealedError(error, redactor)
  }
}

/**
 * An error of the exchange with every secret form concealed in its message, suggestion and
 * details: they name what the server sent (a redirect's host or scheme, the host a response came
 * from), and a server the value may reach can put the value there (`Location:
 * http://<value>.evil.example/`), where response redaction never looks.
 */
function concealedError(error: unknown, redactor: Redactor): unknown {
  if (!(error instanceof Error)) return error
  const writable = error as Error & {details?: Record<string, unknown>; suggestion?: string}
  writable.message = redactor.message(error.message)
  // Formatted after the message changed (DEBUG prints an unexpected error's stack).
  if (typeof error.stack === 'string') writable.stack = redactor.message(error.stack)
  if (typeof writable.suggestion === 'string') writable.suggestion = redactor.message(writable.suggestion)
  if (writable.details)
    writable.details = Object.fromEntries(
      Object.entries(writable.details).map(([key, item]) => [
        key,
        typeof item === 'string' ? redactor.message(item) : redactor.value(item),
      ]),
    )
  return error
}

/** The final response with every echo of a value concealed. */
function redactedOutcome(response: HttpResponse, redactor: Redactor): HttpOutcome {
  if (response.undeclaredCompressed && redactor.contains(response.undeclaredCompressed))
    throw new DeniedError(
      'SECRET_IN_COMPRESSED_BODY',
      `The response from ${response.url.host} is compressed (gzip, zlib, raw deflate or brotli) without a Content-Encoding header and holds the secret; it is not returned`,
      {
        suggestion:
          'Ask for an uncompressed response (-H "Accept-Encoding: identity"), or have the server declare its Content-Encoding (gzip, deflate) so agentvault can decode and redact it.',
      },
    )
  const headers = redactHeaders(response.headers, redactor)
  const body = redactor.bytes(response.body)
  return {
    body,
    duration_ms: response.durationMs,
    headers,
    redacted: redactor.redacted,
    status: response.status,
    statusText: redactor.text(response.statusText),
  }
}

function headerFor(
  headerType: HeaderType,
  headerName: string | undefined,
  value: Buffer,
  reference: string,
): {header_name: string; header_value: string} {
  switch (headerType) {
    case 'api_key': {
      return {header_name: headerName ?? DEFAULT_API_KEY_HEADER, header_value: headerValue(value, reference)}
    }

    case 'basic': {
      return {header_name: 'Authorization', header_value: basicCredential(value, reference)}
    }

    case 'bearer': {
      return {header_name: 'Authorization', header_value: `Bearer ${headerValue(value, reference)}`}
    }

    case 'custom': {
      return {header_name: headerName!, header_value: headerValue(value, reference)}
    }
  }
}

/** Redact any echo of the value in a result; mark it `redacted: true` when something was concealed. */
function concealed(result: UseResult, redactor: Redactor): UseResult {
  const safe = redactor.value(result)
  return redactor.redacted ? {...safe, redacted: true} : safe
}

/**
 * Perform a validated operation with the secret's value. `http_header` returns the derived
 * credential itself: the caller must have required `--reveal`.
 */
export async function performUse(
  use: ValidatedUse,
  secret: {policy: SecretPolicy; value: Buffer},
  options: EngineOptions,
): Promise<UseResult> {
  const {reference} = secret.policy
  const redactor = createRedactor([secret.value])
  switch (use.operation) {
    case 'decrypt': {
      const plaintext = await decryptData(secret.value, use.ciphertext, reference)
      const utf8 = isUtf8(plaintext)
      return concealed(
        {encoding: utf8 ? 'utf8' : 'base64', plaintext: plaintext.toString(utf8 ? 'utf8' : 'base64')},
        redactor,
      )
    }

    case 'encrypt': {
      return concealed({ciphertext: await encryptData(secret.value, use.plaintext)}, redactor)
    }

    case 'http_header': {
      return headerFor(use.headerType, use.headerName, secret.value, reference)
    }

    case 'http_request': {
      const values = new Map([[reference, secret.value]])
      return {...toHttpResult(await performHttp(use.plan, values, [secret.policy], options))}
    }

    case 'sign': {
      const signature = signData(use.algorithm, secret.value, use.data, reference)
      return concealed({algorithm: use.algorithm, ...signature}, redactor)
    }

    case 'verify': {
      const valid = verifyData(use.algorithm, secret.value, use, reference)
      return {algorithm: use.algorithm, valid}
    }
  }
}

/** The host a use request talks to, for the guards and the audit log (undefined: no network). */
export function targetOf(use: ValidatedUse): URL | undefined {
  return use.operation === 'http_request' ? use.plan.url : undefined
}
