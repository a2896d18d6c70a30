/**
 * A value in an env file that *almost* is a secret reference (`locl://API_KEY`, `bao+kv2://…`)
 * would pass to the child as plain text and the command would run without its secret. `run` warns
 * about such values; ordinary URLs (`https://`, `postgres://`, `redis://`, …) stay quiet.
 *
 * The rule: a scheme (`[A-Za-z][A-Za-z0-9+.-]*` before `://`) that is not a known reference scheme
 * earns a hint when it is not a well-known URL scheme and either
 * - has the shape of an openbao scheme (`<word>+kv…`, e.g. `bao+kv2`, `openbao+kv1`), or
 * - is within a small edit distance (adjacent transpositions count as one edit) of a known scheme:
 *   1 for the short ones (`local`, `vault`), 2 for the others.
 */
import {SUPPORTED_SCHEMES} from './references.js'

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]{0,63}):\/\//

/** Schemes of ordinary URLs and connection strings that live in env files: never a typo. */
const ORDINARY_SCHEMES = new Set([
  'amqp',
  'amqps',
  'cassandra',
  'clickhouse',
  'cockroachdb',
  'couchbase',
  'data',
  'elasticsearch',
  'etcd',
  'file',
  'ftp',
  'ftps',
  'git',
  'grpc',
  'grpcs',
  'gs',
  'http',
  'https',
  'imap',
  'imaps',
  'jdbc',
  'kafka',
  'ldap',
  'ldaps',
  'mailto',
  'mariadb',
  'memcache',
  'memcached',
  'mongodb',
  'mongodb+srv',
  'mqtt',
  'mqtts',
  'mssql',
  'mysql',
  'mysqlx',
  'nats',
  'neo4j',
  'neo4j+s',
  'oracle',
  'pop3',
  'postgres',
  'postgresql',
  'rabbitmq',
  'redis',
  'rediss',
  's3',
  'sftp',
  'smb',
  'smtp',
  'smtps',
  'sqlite',
  'sqlserver',
  'ssh',
  'stun',
  'tcp',
  'tls',
  'turn',
  'udp',
  'unix',
  'valkey',
  'valkeys',
  'wasb',
  'wasbs',
  'ws',
  'wss',
  'zookeeper',
])

/** Edit distance with adjacent transpositions (optimal string alignment), on short ASCII words. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[][] = Array.from({length: rows}, (_, i) =>
    Array.from({length: cols}, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  const at = (i: number, j: number): number => (d[i] as number[])[j] as number
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1)
      ;(d[i] as number[])[j] = best
    }
  }

  return at(a.length, b.length)
}

export interface SchemeHint {
  /** The scheme as written (ASCII letters, digits, `+ . -`: never more of the value). */
  scheme: string
  /** The known scheme it most likely means, e.g. `local`. */
  suggestion: string
}

/**
 * A hint when `value` looks like a reference whose scheme is misspelt; undefined for references,
 * plain values and ordinary URLs.
 */
export function misspeltSchemeHint(value: string): SchemeHint | undefined {
  const match = SCHEME.exec(value)
  if (!match) return undefined
  const scheme = match[1] as string
  const lower = scheme.toLowerCase()
  const known = SUPPORTED_SCHEMES as readonly string[]
  if (known.includes(lower) || ORDINARY_SCHEMES.has(lower)) return undefined
  let nearest = known[0] as string
  let distance = Number.POSITIVE_INFINITY
  for (const candidate of known) {
    const d = editDistance(lower, candidate)
    if (d < distance) {
      distance = d
      nearest = candidate
    }
  }

  if (/\+kv/.test(lower)) {
    // `<word>+kv…`: an openbao reference; suggest the kv2 form of the nearest openbao word.
    const word = lower.slice(0, lower.indexOf('+kv'))
    const base = ['openbao', 'vault', 'hashicorp'].reduce((best, candidate) =>
      editDistance(word, candidate) < editDistance(word, best) ? candidate : best,
    )
    return {scheme, suggestion: `${base}+kv2`}
  }

  const limit = nearest.length <= 5 ? 1 : 2
  return distance <= limit ? {scheme, suggestion: nearest} : undefined
}
