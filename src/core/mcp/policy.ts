/**
 * What an `agentvault mcp` server may touch, decided by the human who starts it: `--allow
 * REF-PATTERN` (repeatable). A pattern is a reference in which `*` stands for any run of
 * characters (`local://OPENAI_*`, `openbao+kv2://secret/app/*`, `sanctum://ci/*?profile=prod`).
 *
 * A pattern means what the same reference would mean: without `?profile=` it names the profile a
 * reference of its kind resolves to (the kind's default, or `--profile`), `?profile=*` any profile
 * of the kind. A pattern without `#field` admits every field of the secrets it names. None given:
 * nothing is allowed.
 */
import type {BackendKind} from '../backend.js'
import type {Profile} from '../config.js'
import type {Session} from '../session.js'

import {DeniedError, UsageError} from '../errors.js'
import {parseReference, type SecretReference} from '../references.js'

/** Stands for `*` while a pattern goes through the reference parser (which refuses wildcards). */
const STAR = 'AVstarAV9'

export interface AllowPattern {
  kind: BackendKind
  /** The path (and `#field`) part before the first `*`: what a listing may start from. */
  literalPrefix: string
  /** Matches `path` or `path#field` of a reference. */
  matcher: RegExp
  /** `?profile=` as written: a name, `*`, or undefined (the kind's default profile). */
  profile?: string
  /** Scheme as canonicalised (`openbao+kv2`, `local`, …). */
  scheme: string
  /** The pattern as given. */
  text: string
}

/** A pattern whose profile was resolved at server start. */
export interface ResolvedPattern extends AllowPattern {
  /** The profile's name, or `*` for any profile of the kind. */
  profileName: string
}

function escapeRegExp(text: string): string {
  return text.replaceAll(/[$()*+.?[\\\]^{|}]/g, String.raw`\$&`)
}

/**
 * Parse one `--allow` pattern. Every check of a reference applies (scheme, segments, traversal,
 * query), with `*` allowed anywhere in the path, field and profile.
 *
 * @throws UsageError BAD_ALLOW_PATTERN (or a URI_* code from the reference parser)
 */
export function parseAllowPattern(text: string): AllowPattern {
  if (!text.includes('://'))
    throw new UsageError(
      'BAD_ALLOW_PATTERN',
      '--allow expects a reference pattern such as local://OPENAI_*',
      {
        suggestion:
          "Give a scheme and a pattern: --allow 'local://OPENAI_*' or --allow 'openbao+kv2://secret/app/*'.",
      },
    )
  if (text.includes(STAR))
    throw new UsageError('BAD_ALLOW_PATTERN', '--allow pattern contains a reserved sequence', {
      suggestion: "Write the pattern with plain names and '*'.",
    })
  const parsed = parseReference(text.replaceAll(/\*+/g, STAR))
  const restore = (part: string): string => part.replaceAll(STAR, '*')
  const target = restore(parsed.field === undefined ? parsed.path : `${parsed.path}#${parsed.field}`)
  const body = target.split('*').map(escapeRegExp).join('.*')
  // A pattern that names secrets but no field admits each of their fields.
  const matcher = new RegExp(
    `^${body}${parsed.field === undefined && parsed.kind === 'openbao' ? '(?:#.*)?' : ''}$`,
  )
  const star = target.indexOf('*')
  const pattern: AllowPattern = {
    kind: parsed.kind,
    literalPrefix: star === -1 ? target : target.slice(0, star),
    matcher,
    scheme: parsed.scheme,
    text,
  }
  if (parsed.profile !== undefined) pattern.profile = restore(parsed.profile)
  return pattern
}

/** `path` or `path#field`: what a pattern's matcher is tested against. */
export function matchTarget(ref: SecretReference): string {
  return ref.field === undefined ? ref.path : `${ref.path}#${ref.field}`
}

/** The server's policy: the resolved patterns, checked before any secret is opened. */
export class McpPolicy {
  constructor(readonly patterns: readonly ResolvedPattern[]) {}

  /**
   * Parse the `--allow` patterns and resolve their profiles (a pattern naming an unknown profile is
   * a configuration error at start, not a silent non-match later).
   */
  static async create(session: Session, texts: readonly string[]): Promise<McpPolicy> {
    const patterns: ResolvedPattern[] = []
    for (const text of texts) {
      const pattern = parseAllowPattern(text)
      const profileName =
        pattern.profile?.includes('*') === true
          ? '*'
          : (await session.profileFor(pattern.kind, pattern.profile)).name
      patterns.push({...pattern, profileName})
    }

    return new McpPolicy(patterns)
  }

  /** The pattern admitting `ref` served by `profile`, if any. */
  allows(ref: SecretReference, profile: Profile): ResolvedPattern | undefined {
    const target = matchTarget(ref)
    return this.patterns.find(
      (pattern) =>
        pattern.kind === ref.kind &&
        (pattern.profileName === '*' || pattern.profileName === profile.name) &&
        pattern.matcher.test(target),
    )
  }

  /**
   * Resolve `target` (a reference or a bare name) and throw a DeniedError unless a pattern admits
   * it. A refused reference is still recorded for the audit log.
   */
  async check(session: Session, target: string): Promise<SecretReference> {
    const ref = await session.parseTarget(target)
    const profile = await session.profileFor(ref.kind, ref.profile)
    if (this.allows(ref, profile)) return ref
    await session.noteReference(ref, profile)
    const flag = `--allow '${ref.canonical}'`
    throw new DeniedError(
      'NOT_ALLOWED_BY_SERVER',
      this.patterns.length === 0
        ? `This agentvault MCP server may use no secrets: it was started without --allow, so ${ref.canonical} is refused`
        : `This agentvault MCP server may not use ${ref.canonical}: no --allow pattern it was started with admits it`,
      {
        details: {reference: ref.canonical},
        suggestion: `Ask the human who runs this server to add ${flag} (or a pattern such as --allow '${ref.scheme}://${ref.path.split('/')[0]}*') to the agentvault mcp command in the MCP client's configuration, then restart it. \`agentvault mcp install --client … --allow …\` prints that configuration.`,
      },
    )
  }
}
