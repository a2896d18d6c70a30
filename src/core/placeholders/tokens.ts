/**
 * Placeholders of `run --placeholders` (issue 15): the child's environment holds
 * `avph_<NAME>_<32 hex digits>` instead of each secret's value — recognisable (`avph_` and the
 * variable's name), fixed for the whole run, and unguessable (128 random bits per variable per run).
 *
 * This module finds placeholders in request bytes, swaps in real values in the encoding of where
 * they stand (URL, header, JSON, form, plain text), and builds the response rewriter that turns
 * every echoed value (all the masker's forms) back into its placeholder. Pure apart from the
 * randomness of {@link makePlaceholder}.
 */
import {randomBytes} from 'node:crypto'

import {Masker, maskPatterns} from '../mask.js'

export const PLACEHOLDER_PREFIX = 'avph_'
const PREFIX_BYTES = Buffer.from(PLACEHOLDER_PREFIX, 'latin1')
/** Values shorter than this are not rewritten in responses (as `run` does not mask them). */
const MIN_REWRITE_LENGTH = 4

/** A fresh placeholder for variable `name`: `avph_<name>_<32 hex>`, name reduced to [A-Za-z0-9_] (≤ 64). */
export function makePlaceholder(name: string): string {
  const safe = name.replaceAll(/\W/g, '_').slice(0, 64)
  return `${PLACEHOLDER_PREFIX}${safe}_${randomBytes(16).toString('hex')}`
}

/** One variable of the run under placeholder: its stand-in and (never shown) its value. */
export interface Stand {
  name: string
  placeholder: string
  /** The secret's canonical reference (for audit lines and messages). */
  reference: string
  value: Buffer
}

/** Where a placeholder stands: decides how its value is encoded when swapped in. */
export type Context = 'form' | 'header' | 'json' | 'raw' | 'url'

/** The value in the encoding of its context, as a latin1 string of the bytes to send. */
export function encodeFor(value: Buffer, context: Context): string {
  const text = value.toString('utf8')
  switch (context) {
    case 'form': {
      return new URLSearchParams([['', text]]).toString().slice(1)
    }

    case 'header': {
      // Header values travel as latin1 bytes: the value's own bytes, unchanged.
      return value.toString('latin1')
    }

    case 'json': {
      // As latin1 of the UTF-8 bytes, like every string this module swaps into wire bytes.
      return Buffer.from(JSON.stringify(text).slice(1, -1), 'utf8').toString('latin1')
    }

    case 'raw': {
      return value.toString('latin1')
    }

    case 'url': {
      return encodeURIComponent(text)
    }
  }
}

/** The stands whose placeholder occurs in `data` (a latin1 string or bytes). */
export function standsIn(data: Buffer | string, stands: readonly Stand[]): Stand[] {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data
  if (!bytes.includes(PREFIX_BYTES)) return []
  return stands.filter((stand) => bytes.includes(stand.placeholder, 0, 'latin1'))
}

/** `text` (latin1) with each given stand's placeholder replaced by its value encoded for `context`. */
export function substitute(text: string, stands: readonly Stand[], context: Context): string {
  let out = text
  for (const stand of stands) {
    if (out.includes(stand.placeholder)) {
      const encoded = encodeFor(stand.value, context)
      // A function, not the string: `$&`, `$$` or `$'` in a value are not replacement patterns.
      out = out.replaceAll(stand.placeholder, () => encoded)
    }
  }

  return out
}

/**
 * Finds and swaps the placeholders of one run without allocating: texts without the placeholder
 * prefix (nearly all) are passed over at once; swapping is one precompiled scan for all stands.
 */
export interface PlaceholderScanner {
  /** The stands whose placeholder occurs in `text` (latin1), as {@link standsIn} finds them. */
  find(text: string): Stand[]
  /**
   * `text` (latin1) with every placeholder replaced by its value encoded for `context`, in one
   * pass: a value is never scanned again, so a value that holds another placeholder stays as it is.
   */
  substitute(text: string, context: Context): string
}

/** A scanner for the placeholders of `stands` (one alternation of the exact placeholders; encoded values cached). */
export function placeholderScanner(stands: readonly Stand[]): PlaceholderScanner {
  const byPlaceholder = new Map(stands.map((stand) => [stand.placeholder, stand]))
  // Placeholders are word characters only: no escaping. Longest first, should one prefix another.
  const alternation = [...byPlaceholder.keys()].sort((a, b) => b.length - a.length).join('|')
  const pattern = stands.length === 0 ? undefined : new RegExp(alternation, 'g')
  const encoded = new Map<string, string>()
  const encode = (placeholder: string, context: Context): string => {
    const key = `${context}:${placeholder}`
    let value = encoded.get(key)
    if (value === undefined) {
      value = encodeFor(byPlaceholder.get(placeholder)!.value, context)
      encoded.set(key, value)
    }

    return value
  }

  return {
    find(text) {
      // Each placeholder looked for on its own: overlapping ones (one's last hex digit the `a` of
      // the next one's prefix) are all found, as a single leftmost scan would not.
      if (!text.includes(PLACEHOLDER_PREFIX)) return []
      return stands.filter((stand) => text.includes(stand.placeholder))
    },
    substitute(text, context) {
      if (!pattern || !text.includes(PLACEHOLDER_PREFIX)) return text
      return text.replace(pattern, (match) => encode(match, context))
    },
  }
}

const BASIC = /^basic[\t ]+([\d+/A-Za-z]+={0,2})[\t ]*$/i

/**
 * The user:password text (latin1) of an `Authorization: Basic …` value, or undefined for any other
 * value. curl -u, Python requests' auth=, git and URL user parts all send credentials this way: a
 * placeholder there is hidden in base64 and is looked for (and swapped) inside it.
 */
export function basicCredentials(value: string): string | undefined {
  const encoded = BASIC.exec(value)?.[1]
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('latin1')
}

/** An `Authorization` value carrying `credentials` (latin1) as Basic authentication. */
export function basicValue(credentials: string): string {
  return `Basic ${Buffer.from(credentials, 'latin1').toString('base64')}`
}

/** The body context a content type calls for, or undefined when the body is not text we rewrite. */
export function bodyContext(contentType?: string): Context | undefined {
  if (contentType === undefined || contentType.trim() === '') return 'raw'
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase()
  if (type === 'application/x-www-form-urlencoded') return 'form'
  if (type === 'application/json' || type.endsWith('+json') || type === 'application/x-ndjson') return 'json'
  if (
    type.startsWith('text/') ||
    type.endsWith('+xml') ||
    ['application/graphql', 'application/javascript', 'application/xml', 'application/yaml'].includes(type)
  )
    return 'raw'
  return undefined
}

/**
 * Whether a value can be swapped into a header: no CR, LF or NUL (they would split or end it).
 * A value that cannot is refused rather than sent mangled.
 */
export function headerSafe(value: Buffer): boolean {
  return !value.includes(13) && !value.includes(10) && !value.includes(0)
}

/** The application/x-www-form-urlencoded form where it differs from the URL-encoded one. */
function formForm(value: Buffer): Buffer[] {
  const text = value.toString('utf8')
  const form = new URLSearchParams([['', text]]).toString().slice(1)
  return form === encodeURIComponent(text) ? [] : [Buffer.from(form, 'utf8')]
}

/** Streaming rewriter of response bytes: every form of every value becomes its placeholder. */
export interface Rewriter {
  end(): Buffer
  push(chunk: Buffer): Buffer
}

/**
 * A rewriter for one response at a time (maskers hold state; `end()` resets them, so a finished
 * rewriter can be reused), or undefined when no value is long enough to rewrite.
 */
export function responseRewriter(stands: readonly Stand[]): Rewriter | undefined {
  const maskers = stands
    .filter((stand) => stand.value.length >= MIN_REWRITE_LENGTH)
    .map(
      (stand) =>
        new Masker(
          [...maskPatterns([stand.value], {minLength: MIN_REWRITE_LENGTH}), ...formForm(stand.value)],
          Buffer.from(stand.placeholder, 'latin1'),
        ),
    )
  if (maskers.length === 0) return undefined
  const run = (chunk: Buffer, last: boolean): Buffer => {
    let data = chunk
    for (const masker of maskers) data = Buffer.concat([...masker.push(data), ...(last ? masker.end() : [])])
    return data
  }

  return {
    end: () => run(Buffer.alloc(0), true),
    push: (chunk) => run(chunk, false),
  }
}

/** A latin1 string as a regular-expression source that matches exactly it (non-alphanumerics as \\xHH). */
function literal(text: string): string {
  let source = ''
  for (let i = 0; i < text.length; i++) {
    const code = text.codePointAt(i)!
    source += /[\dA-Za-z]/.test(text[i]!) ? text[i] : `\\x${code.toString(16).padStart(2, '0')}`
  }

  return source
}

/** Forms of values past which {@link echoTest} stops testing (each secret has ten or more). */
const MAX_ECHO_FORMS = 200

/** One regular expression matching any of `texts` (latin1), each once; none for an empty list. */
function alternation(texts: readonly string[]): RegExp {
  // `(?!)` never matches: an empty alternation would match everywhere.
  return new RegExp(texts.length === 0 ? '(?!)' : [...new Set(texts)].map((text) => literal(text)).join('|'))
}

/**
 * Quick tests of whether a response header name or value may hold some form of some value: one
 * precompiled scan, so the rewriters (which allocate) run only on the rare text that does. Never
 * false where {@link headerNameRewriter} or a {@link responseRewriter} would change the text.
 */
export interface EchoTest {
  /** Whether a header name (any case) may hold a value's form. */
  inName(name: string): boolean
  /** Whether a header value (latin1) may hold a value's form. */
  inValue(value: string): boolean
}

interface CompiledEchoes {
  names: RegExp
  values: RegExp
}

export function echoTest(stands: readonly Stand[]): EchoTest {
  // Compiled on first use (not while the child waits to start); undefined: not yet, null: no test.
  let compiled: CompiledEchoes | null | undefined
  const compile = (): CompiledEchoes | null => {
    const forms = stands
      .filter((stand) => stand.value.length >= MIN_REWRITE_LENGTH)
      .flatMap((stand) => [
        ...maskPatterns([stand.value], {minLength: MIN_REWRITE_LENGTH}),
        ...formForm(stand.value),
      ])
      .map((form) => form.toString('latin1'))
    // A regular expression tries the alternatives one by one: past a few secrets' worth of forms it
    // costs more than the rewriters it saves, so every text goes to them (as without the test).
    if (forms.length > MAX_ECHO_FORMS) return null
    return {names: alternation(forms.map((form) => form.toLowerCase())), values: alternation(forms)}
  }

  return {
    inName(name) {
      compiled ??= compile()
      return compiled === null || compiled.names.test(name.toLowerCase())
    },
    inValue(value) {
      compiled ??= compile()
      return compiled === null || compiled.values.test(value)
    },
  }
}

/** The bytes with letters lower-cased, as latin1 (header names compare without regard to case). */
function lower(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString('latin1').toLowerCase(), 'latin1')
}

/**
 * A rewriter of response header names: every form of every value, compared without regard to
 * ASCII case (names arrive in any case), becomes its placeholder; a name that holds none is
 * returned as it came. A placeholder is a header-name token, so the result still is one.
 */
export function headerNameRewriter(stands: readonly Stand[]): (name: string) => string {
  const maskers = stands
    .filter((stand) => stand.value.length >= MIN_REWRITE_LENGTH)
    .map(
      (stand) =>
        new Masker(
          [...maskPatterns([stand.value], {minLength: MIN_REWRITE_LENGTH}), ...formForm(stand.value)].map(
            (pattern) => lower(pattern),
          ),
          Buffer.from(stand.placeholder, 'latin1'),
        ),
    )
  return (name) => {
    if (maskers.length === 0) return name
    const bytes = lower(Buffer.from(name, 'latin1'))
    let data = bytes
    for (const masker of maskers) data = Buffer.concat([...masker.push(data), ...masker.end()])
    return data.equals(bytes) ? name : data.toString('latin1')
  }
}

/**
 * One header value (latin1) rewritten whole with `rewriter`, which is left ready for the next
 * input (ending a masker resets it): one rewriter serves a response's headers and then its body.
 */
export function rewriteText(text: string, rewriter: Rewriter | undefined): string {
  if (!rewriter || !text) return text
  const bytes = Buffer.from(text, 'latin1')
  return Buffer.concat([rewriter.push(bytes), rewriter.end()]).toString('latin1')
}
