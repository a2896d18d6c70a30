#!/usr/bin/env node
// The fake AgentSecrets proxy (protocols/agentsecrets.md §5, §10 "Fake proxy"): exact routes
// `/proxy` and `/health` on 127.0.0.1, session-token gate, 400 validation, Go header
// canonicalisation, allowlist before secret lookup, the six injection styles, forwarding with a
// 30 s timeout, redaction and the JSONL audit log. `executeCall` is the engine the fake CLI runs
// in-process (2.1.0 `call`, and 3.x's transient proxy).
//
// Run as a script: `fake-proxy.mjs --state FILE --home DIR [--port N] [--pid-file]` prints
// `listening <port>`.
import {createServer, request as httpRequest} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {fileURLToPath} from 'node:url'

import {activeEnvironment, appendAudit, loadState, secretsOf, writePidFile} from './state.mjs'

export const PLACEHOLDER = '[REDACTED_BY_AGENTSECRETS]'
const UPSTREAM_TIMEOUT_MS = 30_000
const HOP = new Set(['connection', 'content-length', 'host', 'keep-alive', 'transfer-encoding', 'upgrade'])

/** Go's CanonicalMIMEHeaderKey for a valid token. @param {string} name */
export function canonicalKey(name) {
  let upper = true
  let out = ''
  for (const char of name) {
    out += upper ? char.toUpperCase() : char.toLowerCase()
    upper = char === '-'
  }

  return out
}

/**
 * A shape-A error answer: `{"error":…}` and a newline.
 * @param {number} status the HTTP status
 * @param {string} message the error text
 * @returns {{status: number, headers: Record<string, string[]>, body: Buffer}} the answer
 */
export function shapeA(status, message) {
  return {
    body: Buffer.from(JSON.stringify({error: message}) + '\n'),
    headers: {'Content-Type': ['application/json']},
    status,
  }
}

/** Shape B (2.1.0+: alphabetical keys, no trailing newline). */
function shapeB(slug, domain, message) {
  return {
    body: Buffer.from(JSON.stringify({domain, error: slug, message})),
    headers: {'Content-Type': ['application/json']},
    status: 403,
  }
}

function sortedJson(value) {
  if (Array.isArray(value)) return value.map(sortedJson)
  if (value !== null && typeof value === 'object') {
    const out = {}
    for (const key of Object.keys(value).sort()) out[key] = sortedJson(value[key])
    return out
  }

  return value
}

function sortedForm(params) {
  const entries = [...params.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return new URLSearchParams(entries).toString()
}

function replaceAll(buffer, needle, replacement) {
  if (needle.length === 0) return {buffer, hit: false}
  const parts = []
  let start = 0
  let hit = false
  for (let at = buffer.indexOf(needle); at !== -1; at = buffer.indexOf(needle, start)) {
    parts.push(buffer.subarray(start, at), replacement)
    start = at + needle.length
    hit = true
  }

  parts.push(buffer.subarray(start))
  return {buffer: hit ? Buffer.concat(parts) : buffer, hit}
}

function isLoopback(hostname) {
  return hostname === 'localhost' || /^127\./.test(hostname) || hostname === '[::1]' || hostname === '::1'
}

/** Set `value` at the dotted `path` of a JSON object body; returns the new body or why it cannot. */
function setBodyField(body, path, value) {
  let data = {}
  if (body.length > 0) {
    try {
      data = JSON.parse(body.toString('utf8'))
    } catch {
      return {why: 'body is not JSON'}
    }
  }

  if (data === null || typeof data !== 'object' || Array.isArray(data))
    return {why: 'body is not a JSON object'}
  const segments = path.split('.')
  let node = data
  for (const segment of segments.slice(0, -1)) {
    if (node[segment] === undefined) node[segment] = {}
    else if (node[segment] === null || typeof node[segment] !== 'object' || Array.isArray(node[segment]))
      return {why: `path conflict at ${segment}`}
    node = node[segment]
  }

  node[segments.at(-1)] = value
  return {body: Buffer.from(JSON.stringify(sortedJson(data)))}
}

/** Apply one injection to the outbound request (5.2); returns why it failed, if it did. */
function applyInjection(outbound, injection, value) {
  switch (injection.style) {
    case 'bearer': {
      if (value === '') return 'empty value'
      outbound.headers.set('authorization', ['Authorization', `Bearer ${value}`])
      return
    }

    case 'basic': {
      if (!value.includes(':')) return 'basic auth value must be user:pass'
      outbound.headers.set('authorization', [
        'Authorization',
        `Basic ${Buffer.from(value).toString('base64')}`,
      ])
      return
    }

    case 'header': {
      outbound.headers.set(injection.target.toLowerCase(), [injection.target, value])
      return
    }

    case 'query': {
      outbound.url.searchParams.set(injection.target, value)
      outbound.url.search = sortedForm(outbound.url.searchParams)
      return
    }

    case 'body': {
      const result = setBodyField(outbound.body, injection.target, value)
      if (result.why) return result.why
      outbound.body = result.body
      outbound.headers.set('content-type', ['Content-Type', 'application/json'])
      return
    }

    case 'form': {
      const form = new URLSearchParams(outbound.body.toString('utf8'))
      form.set(injection.target, value)
      outbound.body = Buffer.from(sortedForm(form))
      outbound.headers.set('content-type', ['Content-Type', 'application/x-www-form-urlencoded'])
      return
    }

    default: {
      return `unknown style ${injection.style}`
    }
  }
}

/** 3.x strictness switches, then the allowlist (before any secret lookup): `[slug, message]` or undefined. */
function guard(url, state) {
  const domain = url.hostname.toLowerCase()
  const three = state.version.startsWith('3')
  const switches = state.switches ?? {}
  if (three && switches.httpsOnly && url.protocol !== 'https:')
    return ['non_https_blocked', `${domain}: only https targets are allowed`]
  if (three && switches.ssrf && isLoopback(url.hostname))
    return ['ssrf_protection_blocked', `${domain} resolves to a private address`]
  const allowlist = state.allowlist ?? []
  if (allowlist.length === 0)
    return [
      'empty_allowlist',
      'Your workspace allowlist is empty. No credential injections are allowed until you add at least one domain. Run: agentsecrets workspace allowlist add <domain>',
    ]
  if (!allowlist.some((entry) => entry.toLowerCase() === domain))
    return [
      'domain_not_in_allowlist',
      `${domain} is not in your workspace allowlist. To authorize it, run: agentsecrets workspace allowlist add ${domain}`,
    ]
}

/** §7: every exact value in the body (and, in 3.x, header values) becomes the placeholder. */
function redact(upstream, values, three) {
  let {body} = upstream
  let redacted = false
  for (const value of values) {
    const result = replaceAll(body, Buffer.from(value), Buffer.from(PLACEHOLDER))
    body = result.buffer
    redacted ||= result.hit
  }

  const conceal = (text) =>
    values.reduce((item, value) => (value === '' ? item : item.split(value).join(PLACEHOLDER)), text)
  const headers = {}
  for (const [name, list] of Object.entries(upstream.headers)) {
    if (name === 'Transfer-Encoding' || name === 'Connection') continue
    headers[name] = three ? list.map((item) => conceal(item)) : list
    if (headers[name].some((item, i) => item !== list[i])) redacted = true
  }

  if (redacted || headers['Content-Length']) headers['Content-Length'] = [String(body.length)]
  return {body, headers, redacted}
}

/**
 * One call through the engine. Returns `{response}` (an HTTP answer: upstream, or a 403 block) or
 * `{error: {status, message}}` (a shape-A failure before any response).
 *
 * @param {{targetUrl: string, method: string, headers: Array<[string, string]>, body: Buffer,
 *   injections: Array<{style: string, target?: string, key: string}>, agentId?: string}} call the request and its injections
 * @param {{state: import('./state.mjs').FakeState, home: string, env: NodeJS.ProcessEnv}} context state, HOME and environment
 * @returns {Promise<object>} `{response}` or `{error}`
 */
export async function executeCall(call, context) {
  const {state, home} = context
  const three = state.version.startsWith('3')
  let url
  try {
    url = new URL(call.targetUrl)
  } catch {
    return {error: {message: `invalid target URL: ${call.targetUrl}`, status: 400}}
  }

  const domain = url.hostname.toLowerCase()
  const keys = call.injections.map((injection) => injection.key)
  const styles = call.injections.map((injection) => injection.style)
  const blocked = (slug, message) => {
    appendAudit(home, {
      agent_id: call.agentId ?? '',
      auth_styles: styles,
      domain,
      duration_ms: 0,
      method: call.method,
      reason: slug,
      redacted: false,
      secret_keys: keys,
      status: 'BLOCKED',
      status_code: 403,
      target_url: call.targetUrl,
      timestamp: new Date().toISOString(),
    })
    return {response: shapeB(slug, domain, message)}
  }

  const block = guard(url, state)
  if (block) return blocked(...block)

  const secrets = secretsOf(state, activeEnvironment(state, context.env ?? {}))
  const values = []
  for (const injection of call.injections) {
    if (!Object.hasOwn(secrets, injection.key)) {
      const text = `secret '${injection.key}' not found in keychain — use list_secrets to see available keys, or add it with 'agentsecrets secrets set ${injection.key}=VALUE'`
      return {error: {message: three ? `[SEC-404] ${text}` : text, status: 502}}
    }

    values.push(secrets[injection.key])
  }

  // Outbound request: caller headers (first value, no Host, no X-AS-*), then injections win.
  const headers = new Map()
  for (const [name, value] of call.headers) {
    const lower = name.toLowerCase()
    if (HOP.has(lower) || lower.startsWith('x-as-') || headers.has(lower)) continue
    headers.set(lower, [name, value])
  }

  const outbound = {body: call.body ?? Buffer.alloc(0), headers, url}
  for (const [index, injection] of call.injections.entries()) {
    const why = applyInjection(outbound, injection, values[index])
    if (why !== undefined)
      return {
        error: {
          message: three
            ? `injection failed: ${why}`
            : `injection failed for ${injection.key} (${injection.style}): ${why}`,
          status: 502,
        },
      }
  }

  const {body} = outbound
  const started = Date.now()
  let upstream
  try {
    upstream = await forward(url, call.method, [...headers.values()], body)
  } catch (error) {
    return {error: {message: `failed to reach upstream: ${error.code ?? error.message}`, status: 502}}
  }

  const {body: responseBody, headers: responseHeaders, redacted} = redact(upstream, values, three)
  appendAudit(home, {
    agent_id: call.agentId ?? '',
    auth_styles: styles,
    domain,
    duration_ms: Date.now() - started,
    method: call.method,
    reason: redacted ? 'credential_echo' : '-',
    redacted,
    secret_keys: keys,
    status: 'OK',
    status_code: upstream.status,
    target_url: call.targetUrl,
    timestamp: new Date().toISOString(),
  })
  return {response: {body: responseBody, headers: responseHeaders, status: upstream.status}}
}

/**
 * Send the outbound request (30 s timeout, TLS not verified: test upstreams only).
 * @returns {Promise<{status: number, headers: Record<string, string[]>, body: Buffer}>} the upstream's answer
 */
function forward(url, method, headers, body) {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const outgoing = send(
      url,
      {
        headers: Object.fromEntries([
          ...headers,
          ...(body.length > 0 ? [['Content-Length', String(body.length)]] : []),
        ]),
        method,
        rejectUnauthorized: false,
        timeout: UPSTREAM_TIMEOUT_MS,
      },
      (response) => {
        const chunks = []
        response.on('data', (chunk) => chunks.push(chunk))
        response.on('error', reject)
        response.on('end', () => {
          const grouped = {}
          for (let i = 0; i < response.rawHeaders.length; i += 2) {
            const name = canonicalKey(response.rawHeaders[i])
            ;(grouped[name] ??= []).push(response.rawHeaders[i + 1])
          }

          resolve({body: Buffer.concat(chunks), headers: grouped, status: response.statusCode})
        })
      },
    )
    outgoing.on('timeout', () => outgoing.destroy(Object.assign(new Error('timeout'), {code: 'ETIMEDOUT'})))
    outgoing.on('error', reject)
    outgoing.end(body.length > 0 ? body : undefined)
  })
}

/**
 * Parse `/proxy` headers as the Go proxy does: first values only, names Go-canonicalised, the
 * target cut from the canonical key. @param {string[]} rawHeaders
 */
export function parseProxyHeaders(rawHeaders) {
  const first = new Map()
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const canonical = canonicalKey(rawHeaders[i])
    if (!first.has(canonical)) first.set(canonical, rawHeaders[i + 1])
  }

  const injections = []
  const forwarded = []
  const prefixes = [
    ['X-As-Inject-Header-', 'header'],
    ['X-As-Inject-Query-', 'query'],
    ['X-As-Inject-Body-', 'body'],
    ['X-As-Inject-Form-', 'form'],
  ]
  for (const [name, value] of first) {
    if (name === 'X-As-Inject-Bearer') injections.push({key: value, style: 'bearer'})
    else if (name === 'X-As-Inject-Basic') injections.push({key: value, style: 'basic'})
    else if (name.startsWith('X-As-Inject-')) {
      const match = prefixes.find(([prefix]) => name.startsWith(prefix) && name.length > prefix.length)
      if (!match) continue
      const target = name.slice(match[0].length)
      injections.push({
        key: value,
        style: match[1],
        target: match[1] === 'body' ? target.replaceAll('-', '.') : target,
      })
    } else if (!name.startsWith('X-As-')) forwarded.push([name, value])
  }

  return {
    agentId: first.get('X-As-Agent-Id'),
    agentToken: first.get('X-As-Agent-Token'),
    forwarded,
    injections,
    method: first.get('X-As-Method'),
    sessionToken: first.get('X-As-Session-Token'),
    targetUrl: first.get('X-As-Target-Url'),
  }
}

function send(response, answer) {
  response.statusCode = answer.status
  for (const [name, values] of Object.entries(answer.headers)) {
    if (name === 'Content-Length') continue
    response.setHeader(name, values.length === 1 ? values[0] : values)
  }

  response.setHeader('Content-Length', String(answer.body.length))
  response.end(answer.body)
}

/**
 * Handle one `/proxy` request: token gate, validation, then the engine.
 * @param {import('node:http').IncomingMessage} request the request
 * @param {Buffer | undefined} body its body, undefined when it could not be read
 * @param {{stateFile: string, home: string, env?: NodeJS.ProcessEnv}} options where the state lives
 * @returns {Promise<object>} the answer to send
 */
async function handleProxy(request, body, options) {
  const state = loadState(options.stateFile)
  const parsed = parseProxyHeaders(request.rawHeaders)
  const three = state.version.startsWith('3')
  if (three && state.sessionToken && parsed.sessionToken !== state.sessionToken)
    return shapeA(401, 'Invalid or missing session token')
  if (
    three &&
    state.agents &&
    parsed.agentId !== undefined &&
    state.agents[parsed.agentId] !== parsed.agentToken
  )
    return shapeA(401, 'agent token validation failed: unknown agent or wrong token')
  if (body === undefined) return shapeA(400, 'Failed to read request body')
  if (!parsed.targetUrl) return shapeA(400, 'X-AS-Target-URL header is required')
  if (parsed.injections.length === 0) return shapeA(400, 'At least one X-AS-Inject-* header is required')
  const method = parsed.method ? parsed.method.toUpperCase() : request.method.toUpperCase()
  const result = await executeCall(
    {
      agentId: parsed.agentId,
      body,
      headers: parsed.forwarded,
      injections: parsed.injections,
      method,
      targetUrl: parsed.targetUrl,
    },
    {env: options.env ?? {}, home: options.home, state},
  )
  return result.error ? shapeA(result.error.status, result.error.message) : result.response
}

/**
 * Start the fake proxy on 127.0.0.1.
 * @param {{stateFile: string, home: string, port?: number, pidFile?: boolean, env?: NodeJS.ProcessEnv}} options state file, HOME, port (0: ephemeral), whether to write proxy.pid
 * @returns {Promise<object>} `{port, close(), requests}`
 */
export async function startFakeProxy(options) {
  const requests = []
  const server = createServer((request, response) => {
    const chunks = []
    let failed = false
    request.on('data', (chunk) => chunks.push(chunk))
    request.on('error', () => {
      failed = true
    })
    request.on('end', async () => {
      const path = request.url ?? ''
      requests.push({headers: request.rawHeaders, method: request.method, path})
      try {
        if (path === '/health') {
          const state = loadState(options.stateFile)
          send(response, {
            body: Buffer.from(
              JSON.stringify({
                last_sync: new Date(0).toISOString(),
                project: state.project,
                revoked_count: 0,
                revoked_ids: null,
                status: 'ok',
              }),
            ),
            headers: {'Content-Type': ['application/json']},
            status: 200,
          })
        } else if (path === '/proxy') {
          send(response, await handleProxy(request, failed ? undefined : Buffer.concat(chunks), options))
        } else {
          send(response, {
            body: Buffer.from('404 page not found\n'),
            headers: {'Content-Type': ['text/plain; charset=utf-8']},
            status: 404,
          })
        }
      } catch (error) {
        send(response, shapeA(500, `fake proxy bug: ${error.message}`))
      }
    })
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', resolve)
  })
  const {port} = server.address()
  if (options.pidFile) writePidFile(options.home, port)
  return {
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.()
        server.close(() => resolve())
      }),
    port,
    requests,
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const at = process.argv.indexOf(name)
    return at === -1 ? undefined : process.argv[at + 1]
  }

  const proxy = await startFakeProxy({
    env: process.env,
    home: arg('--home') ?? process.env.HOME,
    pidFile: process.argv.includes('--pid-file'),
    port: Number(arg('--port') ?? 0),
    stateFile: arg('--state') ?? process.env.AGENTSECRETS_FAKE_STATE,
  })
  process.stdout.write(`listening ${proxy.port}\n`)
}
