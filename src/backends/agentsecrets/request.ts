/**
 * One HTTP use request for AgentSecrets, checked before anything runs, and its two wire forms:
 * `agentsecrets call …` argv (§4.2) and the `/proxy` `X-AS-*` headers (§5.2). Pure.
 *
 * Names of query, body and form targets are Go-canonicalised by the HTTP interface (§5.3); a name
 * that would be altered is refused rather than silently applied under another name.
 */
import {isUtf8} from 'node:buffer'

import {UsageError} from '../../core/errors.js'
import {KEY_PATTERN} from './errors.js'

export type InjectionStyle = 'basic' | 'bearer' | 'body' | 'form' | 'header' | 'query'

export interface KeyInjection {
  /** The AgentSecrets key (never its value). */
  key: string
  style: InjectionStyle
  /** Header name, query parameter, form field, or dotted JSON path. */
  target?: string
}

export interface AgentSecretsCall {
  body?: Buffer
  /** Plain (non-secret) request headers. */
  headers: Array<[string, string]>
  injections: KeyInjection[]
  method: string
  url: URL
}

/** Open point 4: argv carries the body, so it must be text and bounded. */
export const MAX_CLI_BODY_BYTES = 128 * 1024
const TOKEN = /^[!#$%&'*+.^_`|~\dA-Za-z-]+$/
/** Headers Node derives itself, and the ones we set: a caller's copy is dropped. */
const DERIVED_HEADERS = new Set([
  'accept-encoding',
  'connection',
  'content-length',
  'host',
  'transfer-encoding',
])

function usage(code: string, message: string, suggestion: string): UsageError {
  return new UsageError(code, message, {suggestion})
}

/** Go's CanonicalMIMEHeaderKey for token names: upper-case the first letter and each after `-`. */
export function canonicalHeaderName(name: string): string {
  let upper = true
  let result = ''
  for (const char of name) {
    result += upper ? char.toUpperCase() : char.toLowerCase()
    upper = char === '-'
  }

  return result
}

/** The target the proxy applies for a query/body/form name sent through its headers. */
export function appliedTarget(style: 'body' | 'form' | 'query', target: string): string {
  if (style !== 'body') return canonicalHeaderName(target)
  return canonicalHeaderName(target.replaceAll('.', '-')).replaceAll('-', '.')
}

function flagOf(style: InjectionStyle): string {
  return style === 'body' ? '--body-field' : style === 'form' ? '--form-field' : `--${style}`
}

/**
 * Check a call before anything runs. `viaHttp`: the request goes through AgentSecrets' HTTP
 * interface (proxy transport, or a 3.x CLI), which canonicalises target names.
 */
export function checkCall(call: AgentSecretsCall, viaHttp: boolean): void {
  if (call.url.protocol !== 'http:' && call.url.protocol !== 'https:')
    throw usage(
      'BAD_URL',
      `Only http:// and https:// URLs can be called, not ${call.url.protocol}`,
      'Give an absolute http:// or https:// URL.',
    )
  if (call.injections.length === 0)
    throw usage(
      'NO_CREDENTIAL',
      'Nothing to inject: give at least one agentsecrets:// secret',
      'Add --bearer agentsecrets://KEY (or --basic, --secret-header, --query, --body-field, --form-field).',
    )
  if (!TOKEN.test(call.method))
    throw usage(
      'BAD_METHOD',
      'The HTTP method is not valid',
      'Pass a method such as GET, POST, PUT, PATCH or DELETE.',
    )
  const singles = new Set<InjectionStyle>()
  for (const injection of call.injections) {
    if (!KEY_PATTERN.test(injection.key))
      throw usage(
        'AGENTSECRETS_BAD_KEY',
        'An AgentSecrets key must be an environment-variable name',
        'Write it as agentsecrets://KEY, e.g. agentsecrets://OPENAI_API_KEY.',
      )
    if (injection.style === 'bearer' || injection.style === 'basic') {
      if (singles.has(injection.style))
        throw usage(
          'DUPLICATE_CREDENTIAL_HEADER',
          `--${injection.style} can be given once`,
          'Give one --bearer and at most one --basic.',
        )
      singles.add(injection.style)
      continue
    }

    const target = injection.target ?? ''
    const flag = flagOf(injection.style)
    if (target === '' || !TOKEN.test(target))
      throw usage(
        'AGENTSECRETS_BAD_TARGET',
        `${flag} needs a name made of letters, digits and !#$%&'*+.^_\`|~- for AgentSecrets`,
        `Write it as ${flag} Name=agentsecrets://KEY.`,
      )
    if (injection.style === 'header') continue
    if (injection.style === 'body' && target.includes('-'))
      throw usage(
        'AGENTSECRETS_BAD_TARGET',
        '--body-field paths cannot contain "-" with AgentSecrets (it stands for ".")',
        'Choose a JSON path without "-".',
      )
    if (!viaHttp) continue
    const applied = appliedTarget(injection.style, target)
    if (applied !== target)
      throw usage(
        'AGENTSECRETS_TARGET_RENAMED',
        `AgentSecrets would apply ${flag} ${target} as "${applied}": its HTTP interface canonicalises header names`,
        `Use the name "${applied}" if the API accepts it, or store the secret elsewhere (e.g. local://) for this call.`,
      )
  }
}

/** Open points 3 and 4: what the CLI transport cannot carry. */
export function checkCliTransportLimits(call: AgentSecretsCall): void {
  if (call.headers.length > 0)
    throw usage(
      'AGENTSECRETS_CLI_HEADERS',
      'The AgentSecrets CLI cannot forward extra request headers (-H)',
      'Use the proxy: set "transport": "proxy" in the profile (agentvault login agentsecrets --transport proxy), or drop the -H headers.',
    )
  if (call.body && (call.body.length > MAX_CLI_BODY_BYTES || !isUtf8(call.body) || call.body.includes(0)))
    throw usage(
      'AGENTSECRETS_CLI_BODY',
      `The AgentSecrets CLI carries the body in argv: it must be UTF-8 text without NUL bytes and at most ${MAX_CLI_BODY_BYTES / 1024} KiB`,
      'Use the proxy: set "transport": "proxy" in the profile (agentvault login agentsecrets --transport proxy).',
    )
}

/** `agentsecrets call …` argv (§4.2): key names, URL, method and body only — never a value. */
export function callArgv(call: AgentSecretsCall, json: boolean): string[] {
  const args = ['call', '--url', call.url.href, '--method', call.method]
  if (call.body && call.body.length > 0) args.push('--body', call.body.toString('utf8'))
  for (const injection of call.injections) {
    if (injection.style === 'bearer' || injection.style === 'basic')
      args.push(`--${injection.style}`, injection.key)
    else args.push(flagOf(injection.style), `${injection.target ?? ''}=${injection.key}`)
  }

  if (json) args.push('--output', 'json')
  return args
}

export interface ProxyIdentity {
  agentId?: string
  agentToken?: string
  sessionToken?: string
}

/** Caller header names that would collide with the proxy's own or split a request (§5.2). */
export function checkProxyHeaderName(name: string): void {
  if (/^x-as-/i.test(name) || /[\r\n: \t]/.test(name) || !TOKEN.test(name))
    throw usage(
      'BAD_HEADER',
      'A header name is not allowed through the AgentSecrets proxy (X-AS-* names, separators and spaces are reserved)',
      'Drop or rename that -H header.',
    )
}

/** The `/proxy` request headers (§5.2), as [name, value] pairs. */
export function proxyHeaders(call: AgentSecretsCall, identity: ProxyIdentity): Array<[string, string]> {
  const headers: Array<[string, string]> = []
  for (const [name, value] of call.headers) {
    checkProxyHeaderName(name)
    if (/[\r\n\u0000]/.test(value))
      throw usage('BAD_HEADER', 'A header value has a line break', 'Header values have no line breaks.')
    if (!DERIVED_HEADERS.has(name.toLowerCase())) headers.push([name, value])
  }

  headers.push(
    ['X-AS-Target-URL', call.url.href],
    ['X-AS-Method', call.method],
    ['Accept-Encoding', 'identity'],
  )
  for (const injection of call.injections) {
    switch (injection.style) {
      case 'basic':
      case 'bearer': {
        headers.push([`X-AS-Inject-${injection.style === 'basic' ? 'Basic' : 'Bearer'}`, injection.key])
        break
      }

      case 'body': {
        headers.push([`X-AS-Inject-Body-${(injection.target ?? '').replaceAll('.', '-')}`, injection.key])
        break
      }

      case 'form':
      case 'header':
      case 'query': {
        const kind = injection.style[0]!.toUpperCase() + injection.style.slice(1)
        headers.push([`X-AS-Inject-${kind}-${injection.target ?? ''}`, injection.key])
        break
      }
    }
  }

  if (identity.agentId !== undefined) headers.push(['X-AS-Agent-ID', identity.agentId])
  if (identity.agentToken !== undefined) headers.push(['X-AS-Agent-Token', identity.agentToken])
  if (identity.sessionToken !== undefined) headers.push(['X-AS-Session-Token', identity.sessionToken])
  return headers
}
