/**
 * Host allowlists of the use engine (product.md §5): a secret's `allowedDomains`, the profile's
 * `allowedDomains`, and `--allow-host`. An entry is an exact host (`api.example.com`, `127.0.0.1`,
 * `[::1]`) or `*.suffix`, which matches every name below the suffix but not the suffix itself.
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

/**
 * Normalise an allowlist entry, or throw a UsageError saying what a valid one looks like. The
 * entry is quoted back only when short: it is a host name, never a secret.
 */
export function normaliseHostPattern(pattern: string): string {
  const wildcard = pattern.startsWith(WILDCARD)
  const host = canonicalHost(wildcard ? pattern.slice(WILDCARD.length) : pattern)
  if (host === undefined || (wildcard && isIpLiteral(host)) || host.includes('*'))
    throw new UsageError(
      'BAD_HOST_PATTERN',
      `Not a host or *.suffix pattern: ${JSON.stringify(pattern.slice(0, 80))}`,
      {
        suggestion:
          'Give a bare host (api.example.com, 127.0.0.1, [::1]) or a wildcard (*.example.com) — no scheme, port or path.',
      },
    )
  return wildcard ? WILDCARD + host : host
}

/** The normalised hostname of a URL (as matched against patterns). */
export function urlHost(url: URL): string {
  return url.hostname.replace(/\.$/, '')
}

/** Whether `hostname` (from {@link urlHost}) matches one normalised pattern. */
export function hostMatches(pattern: string, hostname: string): boolean {
  if (!pattern.startsWith(WILDCARD)) return pattern === hostname
  return !isIpLiteral(hostname) && hostname.endsWith(pattern.slice(1))
}

/** Whether `hostname` matches any of `patterns`; entries that are not valid patterns never match. */
export function hostInList(patterns: readonly string[], hostname: string): boolean {
  return patterns.some((pattern) => {
    try {
      return hostMatches(normaliseHostPattern(pattern), hostname)
    } catch {
      return false
    }
  })
}
