/**
 * Host allowlists of the use engine (product.md §5): a secret's `allowedDomains`, the profile's
 * `allowedDomains`, and `--allow-host`. An entry is an exact host (`api.example.com`, `127.0.0.1`,
 * `[::1]`) or `*.suffix`, which matches every name below the suffix but not the suffix itself,
 * optionally followed by `:port` — then only that port (the URL's, or its scheme's default)
 * matches; without one, every port of the host does. A port matters most on loopback, where any
 * other port may be a listener of the very program the secret is kept from.
 * Hosts and patterns are compared after the WHATWG URL parser normalised them (case, IDNA, IPv4
 * forms such as `0x7f.1`, a trailing dot), so two spellings of one host always compare equal.
 */
import {UsageError} from '../errors.js'

const WILDCARD = '*.'

/**
 * Answers of {@link canonicalHost}, a pure function of its text: a long-lived `proxy` checks the
 * same few allowlist entries on every request (a URL parse each). Bounded; new hosts refill it.
 */
const canonical = new Map<string, string | undefined>()
const MAX_CANONICAL = 512

/** The URL parser's hostname for `host` without a trailing dot, or undefined when it is not a bare host. */
function canonicalHost(host: string): string | undefined {
  if (canonical.has(host)) return canonical.get(host)
  const answer = parseHost(host)
  if (canonical.size >= MAX_CANONICAL) canonical.clear()
  canonical.set(host, answer)
  return answer
}

function parseHost(host: string): string | undefined {
  if (host === '' || /[\s/?#@\\]/.test(host)) return undefined
  let url: URL
  try {
    url = new URL(`http://${host}/`)
  } catch {
    return undefined
  }

  // A port, path or user part means it was not a bare host.
  if (url.host !== url.hostname || url.pathname !== '/' || url.username !== '' || url.password !== '')
    return undefined
  return url.hostname.replace(/\.$/, '')
}

function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(hostname)
}

/** `host:port` (a bracketed IPv6 address or a name without `:`) split in two; the port as written. */
const WITH_PORT = /^(\[[^\]]*\]|[^:]*):(\d+)$/

/** The port of a normalised pattern, or undefined when it admits every port. */
function patternPort(pattern: string): number | undefined {
  const match = WITH_PORT.exec(pattern)
  return match ? Number(match[2]) : undefined
}

/**
 * Normalise an allowlist entry, or throw a UsageError saying what a valid one looks like. The
 * entry is quoted back only when short: it is a host name, never a secret.
 */
export function normaliseHostPattern(pattern: string): string {
  const split = WITH_PORT.exec(pattern)
  const port = split ? Number(split[2]) : undefined
  const hostPart = split ? split[1]! : pattern
  const wildcard = hostPart.startsWith(WILDCARD)
  const host = canonicalHost(wildcard ? hostPart.slice(WILDCARD.length) : hostPart)
  if (
    host === undefined ||
    (wildcard && isIpLiteral(host)) ||
    host.includes('*') ||
    (port !== undefined && (port < 1 || port > 65_535))
  )
    throw new UsageError(
      'BAD_HOST_PATTERN',
      `Not a host or *.suffix pattern: ${JSON.stringify(pattern.slice(0, 80))}`,
      {
        suggestion:
          'Give a bare host (api.example.com, 127.0.0.1, [::1]) or a wildcard (*.example.com), optionally with a port (localhost:8080) — no scheme or path.',
      },
    )
  return `${wildcard ? WILDCARD : ''}${host}${port === undefined ? '' : `:${port}`}`
}

/** The normalised hostname of a URL (as matched against patterns). */
export function urlHost(url: URL): string {
  return url.hostname.replace(/\.$/, '')
}

/** The port a URL connects to: its own, or its scheme's default. */
export function urlPort(url: URL): number {
  return url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
}

/**
 * Whether `hostname` (from {@link urlHost}) on `port` (from {@link urlPort}) matches one normalised
 * pattern. A pattern with a port never matches when no port is given.
 */
export function hostMatches(pattern: string, hostname: string, port?: number): boolean {
  const wanted = patternPort(pattern)
  if (wanted !== undefined && wanted !== port) return false
  const host = wanted === undefined ? pattern : pattern.slice(0, pattern.lastIndexOf(':'))
  if (!host.startsWith(WILDCARD)) return host === hostname
  return !isIpLiteral(hostname) && hostname.endsWith(host.slice(1))
}

/** Whether `hostname` (on `port`) matches any of `patterns`; entries that are not valid patterns never match. */
export function hostInList(patterns: readonly string[], hostname: string, port?: number): boolean {
  return patterns.some((pattern) => {
    try {
      return hostMatches(normaliseHostPattern(pattern), hostname, port)
    } catch {
      return false
    }
  })
}
