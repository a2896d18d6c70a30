/**
 * The `/proxy` request as AgentSecrets SDKs send it (protocols/agentsecrets.md §5.2, §5.3): which
 * secret goes where (`X-AS-Inject-*`), the target, the method, the agent's name, and the caller's
 * other headers to forward. Pure; names are read the way AgentSecrets' Go server reads them, so
 * every program written against AgentSecrets gets the same targets here.
 */
import type {InjectionFlags, InjectionStyle} from '../use/specs.js'

/** One `X-AS-Inject-*` header: a key (bare name or reference) and where it goes. */
export interface ProxyInjection {
  /** The key as sent: a bare name of the proxy's profile or a full reference. */
  key: string
  style: InjectionStyle
  /** Header name, query parameter, form field, or dotted JSON path (after canonicalisation). */
  target?: string
}

export interface ProxyRequestSpec {
  agentId?: string
  /** The caller's headers to forward: first values, no `X-AS-*`, no routing or hop-by-hop headers. */
  headers: Array<[string, string]>
  injections: ProxyInjection[]
  method: string
  /** `X-AS-Target-URL` as sent (validated later by the engine). */
  target: string
}

/** A request the proxy answers with 400 and AgentSecrets' shape-A body. */
export class ProxyRequestError extends Error {}

/** Headers that describe this hop, not the upstream request: never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'content-length',
  'expect',
  'host',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

const MAX_AGENT_ID = 128
const INJECT_PREFIX = 'X-As-Inject-'
const STYLES: ReadonlyArray<readonly [string, InjectionStyle, boolean]> = [
  ['Bearer', 'bearer', false],
  ['Basic', 'basic', false],
  ['Header-', 'header', true],
  ['Query-', 'query', true],
  ['Body-', 'body', true],
  ['Form-', 'form', true],
]

/**
 * Go's `textproto.CanonicalMIMEHeaderKey`: the first letter and every letter after `-` upper-cased,
 * the rest lower-cased (`_` and `.` are ordinary characters).
 */
export function canonicalHeaderKey(name: string): string {
  let upper = true
  let out = ''
  for (const char of name) {
    out += upper ? char.toUpperCase() : char.toLowerCase()
    upper = char === '-'
  }

  return out
}

/** Printable ASCII only, cut to a length: safe for a log line and the audit log. */
export function printable(text: string, max: number): string {
  const cleaned = text.replaceAll(/[^\u0020-\u007E]/g, '?')
  return cleaned.length > max ? `${cleaned.slice(0, max)}…` : cleaned
}

function injectionOf(canonical: string, key: string): ProxyInjection {
  const rest = canonical.slice(INJECT_PREFIX.length)
  for (const [prefix, style, targeted] of STYLES) {
    if (!targeted) {
      if (rest === prefix) return {key, style}
      continue
    }

    if (!rest.startsWith(prefix)) continue
    const raw = rest.slice(prefix.length)
    if (raw === '') throw new ProxyRequestError(`${canonical} names no target`)
    // §5.2: in a body path `-` stands for `.`.
    return {key, style, target: style === 'body' ? raw.replaceAll('-', '.') : raw}
  }

  throw new ProxyRequestError(
    `Unknown injection header ${printable(canonical, 80)}: use X-AS-Inject-Bearer, -Basic, -Header-<Name>, -Query-<param>, -Body-<path> or -Form-<field>`,
  )
}

/**
 * Read a `/proxy` request's headers (Node's `headersDistinct`: lower-case names, every value).
 * Only the first value of each header counts, as in AgentSecrets. Throws ProxyRequestError with
 * AgentSecrets' own texts for a missing target or injection.
 */
export function parseProxyHeaders(
  headers: Readonly<Record<string, readonly string[] | undefined>>,
  requestMethod: string,
): ProxyRequestSpec {
  const first = (name: string): string | undefined => headers[name]?.[0]
  const target = first('x-as-target-url')?.trim() ?? ''
  if (target === '') throw new ProxyRequestError('X-AS-Target-URL header is required')
  const injections: ProxyInjection[] = []
  const forwarded: Array<[string, string]> = []
  for (const [name, values] of Object.entries(headers)) {
    const value = values?.[0]
    if (value === undefined) continue
    if (name.startsWith('x-as-inject-')) {
      const canonical = canonicalHeaderKey(name)
      const key = value.trim()
      if (key === '') throw new ProxyRequestError(`${canonical} names no key`)
      injections.push(injectionOf(canonical, key))
    } else if (!name.startsWith('x-as-') && !HOP_BY_HOP.has(name)) {
      forwarded.push([name, value])
    }
  }

  if (injections.length === 0) throw new ProxyRequestError('At least one X-AS-Inject-* header is required')
  const method = (first('x-as-method')?.trim() || requestMethod).toUpperCase()
  const agent = first('x-as-agent-id')?.trim()
  return {
    ...(agent ? {agentId: printable(agent, MAX_AGENT_ID)} : {}),
    headers: forwarded,
    injections,
    method,
    target,
  }
}

/** The injections as `call`'s flag specs, for the engine's own parser. */
export function injectionFlags(injections: readonly ProxyInjection[]): InjectionFlags {
  const flags: InjectionFlags = {}
  const push = (name: 'body-field' | 'form-field' | 'header' | 'query', spec: string): void => {
    ;(flags[name] ??= []).push(spec)
  }

  for (const {key, style, target} of injections) {
    switch (style) {
      case 'basic':
      case 'bearer': {
        if (flags[style] !== undefined)
          throw new ProxyRequestError(`Only one X-AS-Inject-${style === 'basic' ? 'Basic' : 'Bearer'} header`)
        flags[style] = key
        break
      }

      case 'body': {
        push('body-field', `${target}=${key}`)
        break
      }

      case 'form': {
        push('form-field', `${target}=${key}`)
        break
      }

      case 'header': {
        push('header', `${target}: ${key}`)
        break
      }

      case 'query': {
        push('query', `${target}=${key}`)
        break
      }
    }
  }

  return flags
}
