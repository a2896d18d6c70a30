/**
 * Dotenv-style env files for `run --env-file` (product.md §4). The parser is pure and synchronous:
 * the caller reads the file (readEnvFile, bounded) and decides precedence. Values may be secrets
 * (or references), so errors name only the file, the line and the variable, never any text from a
 * value position.
 */
import {UsageError} from './errors.js'
import {describeBytes} from './value-size.js'

/** The largest env file `run` reads: a dotenv file is a few KiB; /dev/zero would never end. */
export const MAX_ENV_FILE_BYTES = 4 * 1024 * 1024

/**
 * Read an env file (a regular file, a FIFO or `<(…)`, a device) as UTF-8, never more than
 * `maxBytes` (one byte past tells "exactly the limit" from "over it").
 *
 * @throws UsageError ENV_FILE_TOO_LARGE past the limit, ENV_FILE_UNREADABLE when it cannot be read.
 */
export async function readEnvFile(file: string, maxBytes: number = MAX_ENV_FILE_BYTES): Promise<string> {
  const {open} = await import('node:fs/promises')
  const chunks: Buffer[] = []
  let total = 0
  try {
    const handle = await open(file, 'r')
    try {
      for (;;) {
        const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - total))
        const {bytesRead} = await handle.read(chunk, 0, chunk.length, null)
        if (bytesRead === 0) break
        chunks.push(chunk.subarray(0, bytesRead))
        total += bytesRead
        if (total > maxBytes)
          throw new UsageError(
            'ENV_FILE_TOO_LARGE',
            `Env file ${file} is larger than the limit of ${describeBytes(maxBytes)}`,
            {
              details: {maxBytes},
              suggestion: 'Give --env-file a dotenv file of NAME=value lines, not a data file.',
            },
          )
      }
    } finally {
      await handle.close()
    }
  } catch (error) {
    if (error instanceof UsageError) throw error
    const {code} = error as NodeJS.ErrnoException
    throw new UsageError(
      'ENV_FILE_UNREADABLE',
      `Cannot read env file ${file} (${code ?? 'it could not be read'})`,
      {suggestion: 'Check the path given to --env-file.'},
    )
  }

  const text = Buffer.concat(chunks)
  const decoded = text.toString('utf8')
  text.fill(0)
  for (const chunk of chunks) chunk.fill(0)
  return decoded
}

/** One `NAME=value` assignment, in file order. */
export interface EnvFileEntry {
  /** 1-based line where the assignment starts (a quoted value may continue on later lines). */
  line: number
  name: string
  value: string
}

/**
 * Indentation, an optional `export ` prefix, the name, and `=` with optional blanks around it.
 * `export` is also a legal name: `export = 1` backtracks to assign the variable `export`.
 */
const ASSIGNMENT = /^[ \t]*(?:export[ \t]+)?([A-Za-z_]\w*)[ \t]*=([ \t]*)/
/** A line, or what follows a closing quote on its line, that holds nothing but blanks and a comment. */
const BLANK_OR_COMMENT = /^[ \t\f\v\r]*(?:#.*)?$/s
/** An inline comment in an unquoted value starts at a `#` preceded by a blank (as Docker's env_file). */
const INLINE_COMMENT = /[ \t]#/
const EDGE_BLANKS = /^[ \t\f\v\r]+|[ \t\f\v\r]+$/g

const DOUBLE_QUOTE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  $: '$',
  '`': '`',
  '\\': '\\',
  n: '\n',
  r: '\r',
  t: '\t',
}

const SUGGESTION =
  'Write one NAME=value per line; quote values with spaces, "#" or several lines ("…" allows \\n \\t \\" \\\\ \\$; \'…\' is literal).'

function syntaxError(source: string, line: number, what: string): UsageError {
  return new UsageError('ENV_FILE_SYNTAX', `${source}:${line}: ${what}`, {suggestion: SUGGESTION})
}

function countNewlines(text: string): number {
  let count = 0
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) count++
  return count
}

interface Quoted {
  /** Index of the closing quote. */
  end: number
  value: string
}

/** Reads a single-quoted value starting just after its opening quote: everything up to the next `'`, verbatim. */
function readSingleQuoted(text: string, start: number): Quoted | undefined {
  const end = text.indexOf("'", start)
  return end === -1 ? undefined : {end, value: text.slice(start, end)}
}

/** Reads a double-quoted value starting just after its opening quote; applies the escapes. */
function readDoubleQuoted(text: string, start: number): Quoted | undefined {
  let value = ''
  let i = start
  while (i < text.length) {
    const char = text[i]
    if (char === '"') return {end: i, value}
    if (char === '\\' && i + 1 < text.length) {
      const next = text[i + 1] ?? ''
      // Unknown escapes stay as written, so Windows paths like "C:\Users" survive.
      value += DOUBLE_QUOTE_ESCAPES[next] ?? `\\${next}`
      i += 2
    } else {
      value += char
      i++
    }
  }

  return undefined
}

/**
 * Parses an env file's text. `source` names the file in error messages.
 *
 * Accepted: a UTF-8 BOM; CRLF line ends (read as LF, also inside quoted values); blank and `#`
 * lines; `export NAME=value`; blanks around `=`; unquoted values (trimmed, ` #comment` removed);
 * `'literal'` and `"escaped"` values, both of which may span lines. Duplicate names are all
 * returned in order: the caller lets the later one win.
 *
 * @throws UsageError ENV_FILE_SYNTAX naming `source:line` and, where known, the variable.
 */
export function parseEnvFile(text: string, source: string): EnvFileEntry[] {
  const body = (text.startsWith('\uFEFF') ? text.slice(1) : text).replaceAll('\r\n', '\n')
  const entries: EnvFileEntry[] = []
  let pos = 0
  let line = 1
  while (pos < body.length) {
    const lineEnd = body.includes('\n', pos) ? body.indexOf('\n', pos) : body.length
    const lineText = body.slice(pos, lineEnd)
    const startLine = line
    if (BLANK_OR_COMMENT.test(lineText)) {
      pos = lineEnd + 1
      line++
      continue
    }

    const match = ASSIGNMENT.exec(lineText)
    if (!match) {
      throw lineText.includes('=')
        ? syntaxError(
            source,
            startLine,
            'invalid variable name (use letters, digits and "_", not starting with a digit)',
          )
        : syntaxError(source, startLine, 'expected NAME=value but found no "="')
    }

    const name = match[1] ?? ''
    // Blanks after `=` stay in `raw` below: `A= #c` is a comment, `A=#c` a value.
    const valueStart = pos + match[0].length
    const afterEquals = valueStart - (match[2] ?? '').length
    const quote = body[valueStart]
    if (quote === "'" || quote === '"') {
      const closed =
        quote === "'" ? readSingleQuoted(body, valueStart + 1) : readDoubleQuoted(body, valueStart + 1)
      if (!closed) {
        const kind = quote === "'" ? 'single' : 'double'
        throw syntaxError(source, startLine, `${name}: the ${kind} quote opened on this line is never closed`)
      }

      line += countNewlines(body.slice(valueStart, closed.end))
      const restEnd = body.includes('\n', closed.end) ? body.indexOf('\n', closed.end) : body.length
      if (!BLANK_OR_COMMENT.test(body.slice(closed.end + 1, restEnd))) {
        throw syntaxError(source, line, `${name}: unexpected text after the closing quote`)
      }

      entries.push({line: startLine, name, value: closed.value})
      pos = restEnd + 1
      line++
      continue
    }

    const raw = body.slice(afterEquals, lineEnd)
    const comment = raw.search(INLINE_COMMENT)
    entries.push({
      line: startLine,
      name,
      value: (comment === -1 ? raw : raw.slice(0, comment)).replaceAll(EDGE_BLANKS, ''),
    })
    pos = lineEnd + 1
    line++
  }

  return entries
}

/**
 * Formats a value as a double-quoted env file value that `parseEnvFile` reads back unchanged:
 * `\`, `"`, `$` and backquotes are escaped — so a shell that sources the file (`. ./backup.env`)
 * runs nothing a value holds (`$(…)`, `` `…` ``) — and so are CR, LF and TAB so that the entry
 * stays on one line.
 */
export function formatEnvValue(value: string): string {
  return `"${value.replaceAll(/[\t\n\r"$\\`]/g, (char) => {
    switch (char) {
      case '\t': {
        return '\\t'
      }

      case '\n': {
        return '\\n'
      }

      case '\r': {
        return '\\r'
      }

      default: {
        return `\\${char}`
      }
    }
  })}"`
}
