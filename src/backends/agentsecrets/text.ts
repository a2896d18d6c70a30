/**
 * Reading the AgentSecrets CLI's human-oriented output (protocols/agentsecrets.md §4.5): strip
 * ANSI, undo spinner redraws, find the lipgloss table by its header and read its rows by column
 * name. Everything else (banners, `Update Available`, footers) is ignored. Pure; every failure is
 * an {@link AgentSecretsProtocolError}.
 */
import {AgentSecretsProtocolError, quoteOutput} from './errors.js'

/** ANSI CSI (`ESC [ … final`) and OSC (`ESC ] … BEL | ESC \`) sequences. */
const ANSI = /\u001B\[[0-?]*[ -/]*[@-~]|\u001B\][^\u0007\u001B]*(?:\u0007|\u001B\\|$)/g
/** Box drawing (U+2500–U+257F), `+`, `-`, `=` and spaces only. */
const BORDER = /^[\u2500-\u257F+\-= ]*$/
const SEPARATOR = /[│|]/
const EMPTY_STATES = ['No secrets found', 'No log entries found', 'No audit log found']

export function stripAnsi(text: string): string {
  return text.replaceAll(ANSI, '')
}

/** Steps 1–2: ANSI removed, split on `\n`, the text after the last `\r` of each line (a CRLF's `\r` aside), right-trimmed. */
export function cleanLines(text: string): string[] {
  return stripAnsi(text)
    .split('\n')
    .map((line) => {
      // A CRLF line ending is not a redraw.
      const body = line.endsWith('\r') ? line.slice(0, -1) : line
      return body.slice(body.lastIndexOf('\r') + 1).trimEnd()
    })
}

function cells(line: string): string[] | undefined {
  if (!SEPARATOR.test(line)) return undefined
  const parts = line.split(SEPARATOR).map((cell) => cell.trim())
  // The outer pieces (before the first and after the last separator) are empty in a bordered row.
  if (parts.length > 0 && parts[0] === '') parts.shift()
  if (parts.length > 0 && parts.at(-1) === '') parts.pop()
  return parts
}

/** One data row, read by (lower-cased) header name. */
export type TableRow = Record<string, string>

export interface ParsedTable {
  /** Header names as printed. */
  headers: string[]
  rows: TableRow[]
}

/**
 * Steps 3–8: the first line whose cells contain every `required` column (case-insensitive) is the
 * header; the following lines with the same cell count are rows. With no header, a known
 * empty-state message gives no rows and anything else is a protocol error quoting ≤200 characters.
 */
export function parseTable(text: string, required: readonly string[], what: string): ParsedTable {
  const lines = cleanLines(text).filter((line) => !BORDER.test(line))
  const wanted = required.map((name) => name.toLowerCase())
  for (const [index, line] of lines.entries()) {
    const header = cells(line)
    if (!header) continue
    const lower = header.map((cell) => cell.toLowerCase())
    if (!wanted.every((name) => lower.includes(name))) continue
    const rows: TableRow[] = []
    for (const next of lines.slice(index + 1)) {
      const row = cells(next)
      if (!row || row.length !== header.length) break
      const record: TableRow = Object.create(null) as TableRow
      for (const [column, name] of lower.entries()) {
        // The first of two equally named columns wins; unknown extra columns are kept but unused.
        if (!(name in record)) record[name] = row[column] ?? ''
      }

      rows.push(record)
    }

    return {headers: header, rows}
  }

  const flat = lines.join('\n')
  if (EMPTY_STATES.some((state) => flat.includes(state))) return {headers: [], rows: []}
  throw new AgentSecretsProtocolError(
    `no ${what} table in the output of the AgentSecrets CLI: "${quoteOutput(flat)}"`,
  )
}

/** The value after `Label:` on its own line (e.g. `Environment: development`), if any. */
export function labelledValue(text: string, label: string): string | undefined {
  const prefix = `${label.toLowerCase()}:`
  for (const line of cleanLines(text)) {
    const trimmed = line.trim()
    if (trimmed.toLowerCase().startsWith(prefix)) {
      const value = trimmed.slice(prefix.length).trim()
      return value === '' ? undefined : value
    }
  }

  return undefined
}

/** The `x …` / `✗ …` / `Error: …` error lines of CLI output, markers removed. */
export function errorLines(text: string): string[] {
  const found: string[] = []
  for (const line of cleanLines(text)) {
    const match = /^\s*(?:x|✗|Error:)\s+(.+)$/.exec(line)
    if (match?.[1]) found.push(match[1].trim())
  }

  return found
}

/** Lines that start with a success marker (`*` or `✓`), marker removed. */
export function successLines(text: string): string[] {
  const found: string[] = []
  for (const line of cleanLines(text)) {
    const match = /^\s*(?:\*|✓)\s+(.+)$/.exec(line)
    if (match?.[1]) found.push(match[1].trim())
  }

  return found
}
