/**
 * `secrets import` and `secrets export`: plain values between a dotenv (or JSON/YAML) file and a
 * profile. Import writes every value in one locked write; export reads every value in one read.
 * Neither ever puts a value in a message, a warning or the audit log.
 */
import type {Backend, ExportedSecret} from './backend.js'
import type {Session} from './session.js'

import {formatEnvValue, parseEnvFile} from './env-file.js'
import {NotSupportedError, UsageError} from './errors.js'
import {looksLikeReference} from './references.js'
import {describeBytes, MAX_VALUE_BYTES_ENV} from './value-size.js'

/** What `secrets import` did, by name; never values. */
export interface ImportSummary {
  backend: string
  /** Imported as new secrets. */
  created: string[]
  /** Not imported: the value was empty, or looked like a reference (import takes plain values). */
  ignored: Array<{line: number; name: string; reason: 'empty' | 'reference'}>
  /** Assignments that a later line of the file replaced (`by`: that line, whose value was imported). */
  overridden: Array<{by: number; line: number; name: string}>
  profile: string
  /** Existing secrets replaced (`--overwrite`). */
  replaced: string[]
  /** Existing secrets left as they were (no `--overwrite`). */
  skipped: string[]
}

export interface ImportOptions {
  maxValueBytes: number
  overwrite: boolean
  /** Reads the file (or stdin), called only once the profile is known to accept imports. */
  read(): Promise<Buffer>
  /** Name of the file in messages (`-` reads as `stdin`). */
  source: string
  warn(message: string): void
}

/**
 * Import a dotenv file of plain values into the active (or `--profile`) profile. The backend is
 * checked before the file is read; every value is checked before anything is written; the write
 * is one batch (local: one vault update under its lock). Later assignments of a name win.
 *
 * Values that look like references (`local://X`, `openbao://…`) are not imported: a dotenv file of
 * references is what `run --env-file` reads, and storing the reference text as a secret is almost
 * certainly a mistake. They are reported (by name) and the rest is imported.
 */
export async function importSecrets(session: Session, options: ImportOptions): Promise<ImportSummary> {
  session.audit.operation = 'import'
  const profile = await session.profileFor()
  session.noteProfile(profile)
  const backend = await session.backendFor(profile)
  const setMany = requireSetMany(backend)
  const bytes = await options.read()
  const text = bytes.toString('utf8')
  bytes.fill(0)
  const entries = parseEnvFile(text, options.source)
  const latest = new Map<string, {line: number; value: string}>()
  const overridden: ImportSummary['overridden'] = []
  for (const {line, name, value} of entries) {
    const earlier = latest.get(name)
    // A name twice (two files pasted together): the last wins, as in `run --env-file`, but the
    // value it replaces would otherwise vanish without a word.
    if (earlier) overridden.push({by: line, line: earlier.line, name})
    latest.set(name, {line, value})
  }

  for (const entry of overridden) entry.by = latest.get(entry.name)?.line ?? entry.by
  for (const {by, line, name} of overridden)
    options.warn(
      `${options.source}:${line}: ${name} is assigned again on line ${by}; the value of line ${by} is imported.`,
    )

  const summary: ImportSummary = {
    backend: profile.kind,
    created: [],
    ignored: [],
    overridden,
    profile: profile.name,
    replaced: [],
    skipped: [],
  }
  const items: Array<{name: string; reference: Awaited<ReturnType<Session['parseTarget']>>; value: Buffer}> =
    []
  try {
    for (const [name, {line, value}] of latest) {
      if (value === '') {
        summary.ignored.push({line, name, reason: 'empty'})
        options.warn(`${options.source}:${line}: ${name} is empty; not imported.`)
        continue
      }

      if (looksLikeReference(value)) {
        summary.ignored.push({line, name, reason: 'reference'})
        options.warn(
          `${options.source}:${line}: ${name} holds a reference, not a value; not imported (\`agentvault run --env-file\` resolves references).`,
        )
        continue
      }

      if (Buffer.byteLength(value, 'utf8') > options.maxValueBytes)
        throw new UsageError(
          'VALUE_TOO_LARGE',
          `${options.source}:${line}: ${name} is larger than the limit of ${describeBytes(options.maxValueBytes)}; nothing was imported`,
          {
            details: {maxBytes: options.maxValueBytes, name},
            suggestion: `Store a smaller value, or raise the limit with --max-value-bytes N (or ${MAX_VALUE_BYTES_ENV}=N).`,
          },
        )
      const reference = await session.parseTarget(name)
      items.push({name, reference, value: Buffer.from(value, 'utf8')})
    }

    if (items.length === 0) return summary
    for (const {reference} of items) await session.noteReference(reference, profile)
    const byCanonical = new Map(items.map(({name, reference}) => [reference.canonical, name]))
    const written = await setMany(
      items.map(({reference, value}) => ({reference, value})),
      {overwrite: options.overwrite},
    )
    const names = (canonicals: string[]): string[] =>
      canonicals.map((canonical) => byCanonical.get(canonical) ?? canonical)
    summary.created = names(written.created)
    summary.replaced = names(written.replaced)
    summary.skipped = names(written.skipped)
    return summary
  } finally {
    for (const {value} of items) value.fill(0)
  }
}

function requireSetMany(backend: Backend): NonNullable<Backend['setMany']> {
  if (!backend.capabilities.set)
    throw backend.explainUnsupported?.('set') ?? new NotSupportedError(backend.kind, 'Storing secrets')
  if (!backend.setMany)
    throw new NotSupportedError(
      backend.kind,
      'Importing secrets',
      'Store them one at a time: printf %s "$VALUE" | agentvault secrets set NAME',
    )
  return backend.setMany.bind(backend)
}

/** The formats of `secrets export`. */
export const EXPORT_FORMATS = ['dotenv', 'json', 'yaml'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

/** Every value of a profile (under a name prefix), for `secrets export --reveal`. */
export interface ExportedSecrets {
  backend: string
  profile: string
  secrets: ExportedSecret[]
}

/**
 * Read every secret of the active (or `--profile`) profile whose name starts with `prefix`.
 * Zero-knowledge backends (capability `get: false`) are refused before anything is read.
 * The caller owns (and should wipe) the value Buffers.
 */
export async function exportSecrets(session: Session, prefix?: string): Promise<ExportedSecrets> {
  session.audit.operation = 'export'
  const profile = await session.profileFor()
  session.noteProfile(profile)
  const backend = await session.backendFor(profile)
  if (!backend.capabilities.get)
    throw (
      backend.explainUnsupported?.('get') ??
      new NotSupportedError(
        backend.kind,
        'Exporting secret values',
        `${backend.kind} never reveals values; use \`agentvault run\` or \`agentvault call\` instead.`,
      )
    )
  if (!backend.exportAll)
    throw new NotSupportedError(
      backend.kind,
      'Exporting secrets',
      'Read them one at a time: agentvault secrets get REF --reveal',
    )
  const secrets = await backend.exportAll(prefix)
  for (const {name} of secrets) {
    try {
      await session.noteReference(await session.parseTarget(name), profile)
    } catch {
      // A name no reference can spell is still exported; the audit keeps the profile.
    }
  }

  return {backend: profile.kind, profile: profile.name, secrets}
}

/** An exportable entry: its value as text, or why it cannot be written in the format. */
export type ExportDecision = {name: string; reason: string} | {name: string; text: string}

const ENV_NAME = /^[A-Za-z_]\w*$/

/** Whether `secret` can be written in `format`: UTF-8 text, and (dotenv) a valid variable name. */
export function exportable(secret: ExportedSecret, format: ExportFormat): ExportDecision {
  const text = secret.value.toString('utf8')
  if (!Buffer.from(text, 'utf8').equals(secret.value)) return {name: secret.name, reason: 'is not UTF-8 text'}
  if (format === 'dotenv' && !ENV_NAME.test(secret.name))
    return {name: secret.name, reason: 'is not a valid variable name for a dotenv file'}
  return {name: secret.name, text}
}

/** YAML (1.1 and 1.2) line breaks and non-printables JSON leaves raw: escape them too. */
const YAML_UNSAFE = /[\u007F-\u009F\u2028\u2029\uFEFF\uFFFE\uFFFF]/g

function yamlString(text: string): string {
  return JSON.stringify(text).replaceAll(
    YAML_UNSAFE,
    (char) => `\\u${char.codePointAt(0)?.toString(16).padStart(4, '0')}`,
  )
}

/**
 * Render name → text pairs. dotenv uses env-file.ts's quoting, which `parseEnvFile` (and so
 * `secrets import`) reads back unchanged; YAML uses double-quoted scalars with every non-printable
 * escaped.
 */
export function formatExport(entries: Array<{name: string; text: string}>, format: ExportFormat): string {
  switch (format) {
    case 'dotenv': {
      return entries.map(({name, text}) => `${name}=${formatEnvValue(text)}\n`).join('')
    }

    case 'json': {
      return `${JSON.stringify(Object.fromEntries(entries.map(({name, text}) => [name, text])), null, 2)}\n`
    }

    case 'yaml': {
      if (entries.length === 0) return '{}\n'
      return entries.map(({name, text}) => `${yamlString(name)}: ${yamlString(text)}\n`).join('')
    }
  }
}
