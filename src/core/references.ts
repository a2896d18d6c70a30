/**
 * Secret references: parse, format and canonicalise `scheme://…` strings for every backend kind
 * (product.md §2, protocols/openbao.md §1–2). Pure and synchronous; never touches I/O.
 *
 * Error messages describe *where* a reference is wrong, never echo the text that is wrong: `run`
 * parses env var values that merely look like references, and such a value may be a real secret
 * (`vault://user:password@host`). Only text already proven to be in the safe segment charset
 * (a scheme name, a mount) is ever quoted back.
 */
import {createHmac} from 'node:crypto'

import type {BackendKind} from './backend.js'

import {DeniedError, UsageError} from './errors.js'
import {misspeltSchemeHint} from './scheme-typos.js'

export interface SecretReference {
  /** The canonical string: parsing it returns it unchanged. */
  canonical: string
  /** openbao only: the key inside the secret's data map (`#field`). */
  field?: string
  kind: BackendKind
  /** openbao only: the mount (first path segment). */
  mount?: string
  /** The path after `scheme://`: `NAME` for local, `openai/api_key` for sanctum, `mount/path` for openbao. */
  path: string
  /** `?profile=NAME`, when given. */
  profile?: string
  /** Lower-cased scheme as written in canonical form: `local`, `sanctum`, `openbao+kv2`, `vault+kv2`, … */
  scheme: string
  /** openbao only: the secret path inside the mount (`path` without the leading `mount/`). */
  secretPath?: string
  /** openbao and local: `?version=N`. */
  version?: number
}

/** One or more of the characters every segment, field and profile name is made of (openbao.md §1). */
const SEGMENT = /^[A-Za-z0-9._-]+$/
/** AgentSecrets keys are environment-variable names (protocols/agentsecrets.md). */
const AGENTSECRETS_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/
/** `%2F` and any re-encoding of its `%` (`%252F`, `%25252F`, …): a slash smuggled past the splitter. */
const ENCODED_SLASH = /%(?:25)*2f/i
/** Text safe to quote back in a message: a plain identifier, short enough to read. */
const QUOTABLE = /^[A-Za-z0-9._+-]{1,32}$/
const OPENBAO_SCHEME = /^(openbao|vault|hashicorp)(?:\+kv2)?$/
const SIMPLE_KINDS = ['local', 'sanctum', 'agentsecrets', 'agentauth'] as const
type SimpleKind = (typeof SIMPLE_KINDS)[number]

/** Every scheme a reference may start with, lower-case (`looksLikeReference`). */
export const SUPPORTED_SCHEMES = [
  'openbao+kv2',
  'vault+kv2',
  'hashicorp+kv2',
  'openbao',
  'vault',
  'hashicorp',
  'local',
  'sanctum',
  'agentsecrets',
  'agentauth',
] as const

const SCHEME_LIST =
  'local://NAME, sanctum://path/to/cred, agentsecrets://KEY, agentauth://access-token, ' +
  'openbao+kv2://mount/path#field (also openbao://, vault://, vault+kv2://, hashicorp://, hashicorp+kv2://)'

const FORMS: Readonly<Record<BackendKind, string>> = {
  agentauth: 'agentauth://access-token (optionally ?profile=NAME)',
  agentsecrets: 'agentsecrets://KEY, e.g. agentsecrets://OPENAI_API_KEY (optionally ?profile=NAME)',
  local:
    'local://NAME, e.g. local://OPENAI_KEY or local://team/openai_key (optionally ?version=N to read a kept previous value, ?profile=NAME)',
  openbao:
    'openbao+kv2://MOUNT/PATH/TO/SECRET#FIELD?version=N&profile=NAME, e.g. openbao+kv2://secret/myapp/api#token',
  sanctum: 'sanctum://path/to/cred, e.g. sanctum://openai/api_key (optionally ?profile=NAME)',
}

/** Lower-cases ASCII letters only: `toLowerCase` would turn the Kelvin sign into `k` and accept it. */
function asciiLower(text: string): string {
  return text.replaceAll(/[A-Z]/g, (c) => c.toLowerCase())
}

function schemeKind(lowerScheme: string): undefined | {kind: BackendKind; scheme: string} {
  if ((SIMPLE_KINDS as readonly string[]).includes(lowerScheme)) {
    return {kind: lowerScheme as SimpleKind, scheme: lowerScheme}
  }

  const match = OPENBAO_SCHEME.exec(lowerScheme)
  return match ? {kind: 'openbao', scheme: `${match[1]}+kv2`} : undefined
}

/** Names the first offending character by code point, so a message never carries the surrounding text. */
function describeChar(text: string): string {
  for (const char of text) {
    if (!SEGMENT.test(char)) {
      const codePoint = char.codePointAt(0) ?? 0
      const hex = `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`
      return codePoint > 0x20 && codePoint < 0x7f ? `"${char}" (${hex})` : hex
    }
  }

  return 'an unexpected character'
}

function ordinal(n: number): string {
  const mod100 = n % 100
  const suffix = mod100 >= 11 && mod100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th')
  return `${n}${suffix}`
}

function fail(code: string, kind: BackendKind | undefined, what: string): never {
  const suggestion = kind ? `Write it as ${FORMS[kind]}.` : `Use one of the supported forms: ${SCHEME_LIST}.`
  const label = kind ? `${kind} reference` : 'secret reference'
  throw new UsageError(code, `Invalid ${label}: ${what}.`, {suggestion})
}

/** The error for a scheme agentvault does not know: with the one it most likely means, if any. */
function unknownScheme(input: string, schemeText: string): never {
  const name = QUOTABLE.test(schemeText) ? `"${schemeText}"` : 'before "://"'
  // The scheme only (`locl` → `local`), never what follows it: that may be a value.
  const typo = misspeltSchemeHint(input)
  if (typo)
    throw new UsageError('URI_SYNTAX', `Invalid secret reference: unknown scheme ${name}.`, {
      suggestion: `Did you mean ${typo.suggestion}://…? The supported forms: ${SCHEME_LIST}.`,
    })
  fail('URI_SYNTAX', undefined, `unknown scheme ${name}`)
}

interface Tail {
  field?: string
  path: string
  query?: string
}

/** Step 2: split at the first `#` or `?`, whichever comes first; both orders give the same parts. */
function splitTail(rest: string, kind: BackendKind): Tail {
  const hash = rest.indexOf('#')
  const question = rest.indexOf('?')
  if (hash !== -1 && rest.includes('#', hash + 1)) fail('URI_SYNTAX', kind, 'it has more than one "#"')
  if (question !== -1 && rest.includes('?', question + 1))
    fail('URI_SYNTAX', kind, 'it has more than one "?"')

  const tail: Tail = {path: rest}
  if (hash !== -1 && (question === -1 || hash < question)) {
    tail.path = rest.slice(0, hash)
    tail.field = rest.slice(hash + 1, question === -1 ? undefined : question)
    if (question !== -1) tail.query = rest.slice(question + 1)
  } else if (question !== -1) {
    tail.path = rest.slice(0, question)
    tail.query = rest.slice(question + 1, hash === -1 ? undefined : hash)
    if (hash !== -1) tail.field = rest.slice(hash + 1)
  }

  if (tail.field !== undefined && kind !== 'openbao') {
    fail('URI_SYNTAX', kind, '"#field" is only meaningful for openbao references')
  }

  if (tail.field === '') fail('URI_SYNTAX', kind, 'the field after "#" is empty')
  if (tail.path === '') fail('URI_SYNTAX', kind, 'the path after "://" is empty')
  return tail
}

/** Steps 4–5: traversal, then segment charset; returns the segments with one trailing `/` dropped. */
function checkPath(path: string, kind: BackendKind): string[] {
  if (ENCODED_SLASH.test(path)) fail('URI_TRAVERSAL', kind, 'the path contains an encoded "/" (%2F)')
  if (path.includes('..')) fail('URI_TRAVERSAL', kind, 'the path contains ".."')
  if (path.split('/').includes('.')) fail('URI_TRAVERSAL', kind, 'the path has a "." segment')

  const segments = (path.endsWith('/') ? path.slice(0, -1) : path).split('/')
  for (const [index, segment] of segments.entries()) {
    if (segment === '') fail('URI_SEGMENT', kind, `the ${ordinal(index + 1)} path segment is empty ("//")`)
    if (!SEGMENT.test(segment)) {
      fail(
        'URI_SEGMENT',
        kind,
        `the ${ordinal(index + 1)} path segment contains ${describeChar(segment)}; segments use only A-Z a-z 0-9 . _ -`,
      )
    }
  }

  return segments
}

interface QueryParams {
  profile?: string
  version?: number
}

/** Steps 7–8: only `profile` (every kind) and `version` (openbao, local) are known; each at most once. */
function parseQuery(query: string, kind: BackendKind): QueryParams {
  if (query === '') fail('URI_QUERY', kind, 'the query after "?" is empty')
  const allowed = kind === 'openbao' || kind === 'local' ? ['profile', 'version'] : ['profile']
  const seen = new Map<string, string>()
  for (const [index, param] of query.split('&').entries()) {
    const where = `query parameter ${index + 1}`
    const eq = param.indexOf('=')
    if (eq === -1) fail('URI_QUERY', kind, `${where} has no "=" (write key=value)`)
    const key = param.slice(0, eq)
    const value = param.slice(eq + 1)
    if (!allowed.includes(key)) {
      const known = allowed.map((k) => `"${k}"`).join(' and ')
      fail('URI_QUERY', kind, `${where} has an unknown name; ${kind} references accept only ${known}`)
    }

    if (value === '') fail('URI_QUERY', kind, `"${key}" has an empty value`)
    if (seen.has(key)) fail('URI_QUERY', kind, `"${key}" is given more than once`)
    if (key === 'profile' && !SEGMENT.test(value)) {
      fail(
        'URI_QUERY',
        kind,
        `the profile name contains ${describeChar(value)}; profile names use A-Z a-z 0-9 . _ -`,
      )
    }

    seen.set(key, value)
  }

  const params: QueryParams = {}
  const profile = seen.get('profile')
  if (profile !== undefined) params.profile = profile
  const version = seen.get('version')
  if (version !== undefined) {
    // Digits only, no leading zero, within the integers JSON and JavaScript represent exactly.
    if (!/^[1-9]\d*$/.test(version) || version.length > 16 || Number(version) > Number.MAX_SAFE_INTEGER) {
      fail(
        'URI_VERSION',
        kind,
        'version must be a whole number from 1 to 9007199254740991 with no leading zero',
      )
    }

    params.version = Number(version)
  }

  return params
}

function canonicalOf(parts: Omit<SecretReference, 'canonical' | 'kind'>): string {
  let text = `${parts.scheme}://${parts.path}`
  if (parts.field !== undefined) text += `#${parts.field}`
  // Keys sorted: `profile` < `version`.
  const params: string[] = []
  if (parts.profile !== undefined) params.push(`profile=${parts.profile}`)
  if (parts.version !== undefined) params.push(`version=${parts.version}`)
  if (params.length > 0) text += `?${params.join('&')}`
  return text
}

/**
 * Parses a secret reference of any supported scheme into its canonical parts.
 *
 * Checks follow the step table of openbao.md §1 (the first failure wins); the other kinds reuse
 * steps 1–5 and 7 and add their own path rule. Nothing is ever percent-decoded.
 *
 * @throws UsageError with code URI_SYNTAX, URI_WILDCARD, URI_TRAVERSAL, URI_SEGMENT, URI_QUERY or URI_VERSION.
 */
export function parseReference(input: string): SecretReference {
  // Step 1: scheme. No trimming: a leading space is a different (unknown) scheme.
  const separator = input.indexOf('://')
  if (separator === -1) fail('URI_SYNTAX', undefined, 'it has no "://" after a scheme')
  const schemeText = input.slice(0, separator)
  const resolved = schemeKind(asciiLower(schemeText))
  if (!resolved) unknownScheme(input, schemeText)

  const {kind, scheme} = resolved
  const tail = splitTail(input.slice(separator + 3), kind)

  // Step 3, over the whole input: no pattern ever names a secret.
  if (input.includes('*')) fail('URI_WILDCARD', kind, 'wildcards ("*") are not allowed; name one secret')

  const segments = checkPath(tail.path, kind)
  if (tail.field !== undefined && !SEGMENT.test(tail.field)) {
    fail(
      'URI_SEGMENT',
      kind,
      `the field contains ${describeChar(tail.field)}; fields use only A-Z a-z 0-9 . _ -`,
    )
  }

  // Step 6 and each kind's own path rule.
  if (kind === 'openbao' && segments.length < 2) {
    fail('URI_SYNTAX', kind, 'it names a mount but no secret path inside it')
  }

  if (kind === 'agentsecrets' && (segments.length !== 1 || !AGENTSECRETS_KEY.test(segments[0] ?? ''))) {
    fail(
      'URI_SEGMENT',
      kind,
      'the key must be one name of letters, digits and "_" that does not start with a digit',
    )
  }

  if (kind === 'agentauth' && segments.join('/') !== 'access-token') {
    fail('URI_SYNTAX', kind, 'the only agentauth reference is agentauth://access-token')
  }

  const params = tail.query === undefined ? {} : parseQuery(tail.query, kind)

  const reference: SecretReference = {canonical: '', kind, path: segments.join('/'), scheme}
  if (kind === 'openbao') {
    reference.mount = segments[0]
    reference.secretPath = segments.slice(1).join('/')
  }

  if (tail.field !== undefined) reference.field = tail.field
  if (params.profile !== undefined) reference.profile = params.profile
  if (params.version !== undefined) reference.version = params.version
  reference.canonical = canonicalOf(reference)
  return reference
}

/**
 * Formats a reference as its canonical string, from its parts (`scheme`, `path`, `field`, `profile`,
 * `version`; `canonical`, `kind`, `mount` and `secretPath` are derived and ignored). The result is
 * validated by parsing it, so a hand-built reference with illegal parts throws like a bad string.
 *
 * `parseReference(formatReference(r))` deep-equals `r` for every `r` that `parseReference` returns.
 */
export function formatReference(ref: SecretReference): string {
  return parseReference(canonicalOf(ref)).canonical
}

/**
 * True when the value starts, case-insensitively, with a supported scheme and `://`. `run` uses it
 * to decide which inherited env vars are references; `https://…` or `postgres://…` stay plain values.
 * A true result does not mean the reference is valid: a typo should fail loudly, not pass through.
 */
export function looksLikeReference(value: string): boolean {
  const separator = value.indexOf('://')
  if (separator === -1) return false
  return (SUPPORTED_SCHEMES as readonly string[]).includes(asciiLower(value.slice(0, separator)))
}

/**
 * Well-known credential shapes: a vendor prefix, then a run of token characters long enough that
 * no secret's name looks like it (OpenAI/Anthropic/Stripe `sk-`/`sk_live_`, GitHub, GitLab, Slack,
 * AWS access key ids, Google API keys, Vault tokens, npm tokens, JWTs).
 */
const CREDENTIAL_SHAPE =
  /^(?:(?:sk|rk)[-_][\w-]{16,}|gh[oprsu]_\w{30,}|github_pat_\w{30,}|glpat-[\w-]{16,}|xox[abeoprs]-[\w-]{16,}|xapp-[\w-]{16,}|(?:AKIA|ASIA)[\dA-Z]{16}|AIza[\w-]{30,}|hv[brs]\.[\w-]{20,}|s\.[\dA-Za-z]{24}|npm_\w{30,}|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*)$/

/**
 * Whether a bare word given where a secret's name belongs is a credential itself (`call URL
 * --bearer "$TOKEN"`, as curl takes it): then it must be neither looked up, nor echoed in the
 * "not found" error, nor written to the audit log as `local://<token>`.
 */
export function looksLikeCredential(word: string): boolean {
  return CREDENTIAL_SHAPE.test(word)
}

/**
 * The audit `resource_ref` of a canonical reference (openbao.md §2): the first 16 lower-case hex
 * characters of HMAC-SHA256 keyed with the installation's audit salt, both taken as UTF-8.
 */
export function resourceRef(salt: string, canonical: string): string {
  return createHmac('sha256', Buffer.from(salt, 'utf8'))
    .update(Buffer.from(canonical, 'utf8'))
    .digest('hex')
    .slice(0, 16)
}

/**
 * The mount guard (openbao.md §1 step 9), run once the profile is resolved. An unset list allows
 * every mount; an empty list allows none; matching is exact and case-sensitive. Other kinds have
 * no mounts and always pass.
 *
 * @throws DeniedError MOUNT_NOT_ALLOWED
 */
export function checkMountAllowed(ref: SecretReference, allowedMounts?: readonly string[]): void {
  if (ref.kind !== 'openbao' || allowedMounts === undefined) return
  const mount = ref.mount ?? ref.path.split('/')[0] ?? ''
  if (allowedMounts.includes(mount)) return
  // A parsed mount is in the segment charset and safe to name; a hand-built one may not be.
  const name = SEGMENT.test(mount) ? ` "${mount}"` : ''
  const allowed =
    allowedMounts.length === 0
      ? 'this profile allows no mounts (allowedMounts is [])'
      : `this profile allows only ${allowedMounts.map((m) => `"${m}"`).join(', ')}`
  throw new DeniedError('MOUNT_NOT_ALLOWED', `The openbao mount${name} is not allowed: ${allowed}.`, {
    suggestion:
      "Use a reference under an allowed mount, pick another profile with ?profile=NAME, or add the mount to the profile's allowedMounts.",
  })
}

/**
 * Parses a `secrets list` PREFIX given as a reference. For openbao it is read in *folder mode*
 * (openbao.md §7): a mount-only URI (`openbao://secret`, optionally with `?profile=`) names the
 * mount root (`secretPath` is `''`), and `#field` or `?version` are usage errors. Other kinds parse
 * as {@link parseReference} (their `path` is a name prefix).
 *
 * @throws UsageError with a URI_* code, or LIST_PREFIX for an openbao field or version.
 */
export function parseFolderReference(input: string): SecretReference {
  const mountOnly = /^([^:/?#]+):\/\/([^/?#]+)\/?(\?[^#]*)?$/.exec(input)
  const openBaoMountOnly =
    mountOnly !== null && schemeKind(asciiLower(mountOnly[1] ?? ''))?.kind === 'openbao'
  // A mount only: validate it through the full grammar with a placeholder path, then drop that.
  const ref =
    mountOnly && openBaoMountOnly
      ? parseReference(`${mountOnly[1]}://${mountOnly[2]}/_${mountOnly[3] ?? ''}`)
      : parseReference(input)
  if (ref.kind !== 'openbao') return ref
  if (ref.field !== undefined || ref.version !== undefined)
    throw new UsageError(
      'LIST_PREFIX',
      'A list prefix names a folder: "#field" and "?version" do not apply',
      {
        suggestion: 'List a folder, e.g. agentvault secrets list openbao://secret/myapp',
      },
    )
  if (!openBaoMountOnly) return ref
  const folder: SecretReference = {...ref, path: ref.mount ?? '', secretPath: ''}
  folder.canonical = canonicalOf(folder)
  return folder
}
