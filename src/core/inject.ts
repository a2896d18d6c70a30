/**
 * `inject`: render `{{ REF }}` references in a template (as `op inject` does). The parser is pure
 * and linear; rendering resolves every reference concurrently, one session per profile
 * (resolve.ts), and fails — naming every missing secret — before any output exists.
 */
import type {Session} from './session.js'

import {AgentVaultError, UsageError} from './errors.js'
import {looksLikeReference, parseReference, type SecretReference} from './references.js'
import {misspeltSchemeHint} from './scheme-typos.js'

/**
 * `{{`, optional blanks, a `scheme://…` run with no blanks or braces, optional blanks, `}}`.
 * No part can match the same characters two ways and the run stops at the next brace, so a scan
 * is linear however hostile the input (`{{{{…`, unclosed braces, megabytes without `}}`).
 */
const PLACEHOLDER = /\{\{[ \t]*([A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s{}]*)[ \t]*\}\}/g

/** A template: literal text and references, in order. */
export type TemplatePart =
  | {
      line: number
      /** The placeholder as written, braces included. */
      raw: string
      reference: SecretReference
    }
  | {text: string}

/**
 * Split a template into text and references. `{{ … }}` holding anything but a reference (another
 * template language's `{{ .Values.x }}`, a URL like `{{ https://x }}`) stays as written; a
 * reference with a misspelt scheme (`{{ lcoal://X }}`) or an invalid one is a usage error naming
 * `source:line`.
 */
export function parseTemplate(text: string, source: string): TemplatePart[] {
  const parts: TemplatePart[] = []
  let last = 0
  let line = 1
  let counted = 0
  for (const match of text.matchAll(PLACEHOLDER)) {
    const raw = match[1] as string
    const start = match.index
    for (let i = text.indexOf('\n', counted); i !== -1 && i < start; i = text.indexOf('\n', i + 1)) line++
    counted = start
    if (!looksLikeReference(raw)) {
      const hint = misspeltSchemeHint(raw)
      if (hint)
        throw new UsageError(
          'INJECT_UNKNOWN_SCHEME',
          `${source}:${line}: "${hint.scheme}://" is not a known reference scheme`,
          {suggestion: `Did you mean ${hint.suggestion}://? Fix the reference in the template.`},
        )
      continue
    }

    let reference: SecretReference
    try {
      reference = parseReference(raw)
    } catch (error) {
      if (!(error instanceof AgentVaultError)) throw error
      throw new UsageError(error.code, `${source}:${line}: ${error.message}`, {
        suggestion: error.suggestion ?? 'Fix the reference in the template.',
      })
    }

    if (start > last) parts.push({text: text.slice(last, start)})
    parts.push({line, raw: match[0], reference})
    last = start + match[0].length
  }

  if (last < text.length) parts.push({text: text.slice(last)})
  return parts
}

/** What `inject` rendered: the bytes (the caller writes and wipes them) and the references used. */
export interface RenderedTemplate {
  output: Buffer
  references: string[]
}

/**
 * Render a template: every reference resolved concurrently (one session per profile), audited as
 * an `inject`. Any missing secret fails the whole render (exit 6, naming all of them).
 */
export async function renderTemplate(
  session: Session,
  text: string,
  source: string,
): Promise<RenderedTemplate> {
  session.audit.operation = 'inject'
  const parts = parseTemplate(text, source)
  const references = new Map<string, SecretReference>()
  for (const part of parts) if ('reference' in part) references.set(part.reference.canonical, part.reference)
  const {resolveReferences} = await import('./resolve.js')
  const values =
    references.size === 0
      ? new Map<string, Buffer>()
      : await resolveReferences(session, [...references.values()])
  try {
    const chunks = parts.map((part) =>
      'text' in part ? Buffer.from(part.text, 'utf8') : (values.get(part.reference.canonical) as Buffer),
    )
    return {output: Buffer.concat(chunks), references: [...references.keys()]}
  } finally {
    for (const value of values.values()) value.fill(0)
  }
}
