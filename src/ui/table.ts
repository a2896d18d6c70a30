/**
 * Plain aligned tables for terminals: no colour codes in the data, width from the longest cell.
 * (A full table library would cost startup time for what is a few dozen lines.)
 *
 * A table wider than the terminal would be wrapped by the terminal in the middle of words, with
 * every column out of line; instead the widest columns are narrowed and their cells wrapped at word
 * boundaries (spaces, and after `,` `/` `;`), each row spanning as many lines as it needs. A single
 * word longer than its column is cut short with `…`, never split across lines.
 */
import {isTerminal} from './terminal.js'

export interface Column<Row> {
  get(row: Row): string
  header: string
}

export interface TableOptions {
  /** Fit the table into this many characters per line; undefined: no limit. */
  width?: number
}

/** Columns are never narrowed below this (or their natural width, when smaller). */
const MIN_COLUMN = 6
const GAP = '  '

/**
 * The width tables fit: the terminal's when stdout is one, else `$COLUMNS` when set (as `ls` and
 * `git` honour it), else none — output piped to a program is data and stays on one line per row.
 */
export function terminalWidth(
  stream: {columns?: number; isTTY?: boolean} = isTerminal(1) ? process.stdout : {isTTY: false},
  env: NodeJS.ProcessEnv = process.env,
): number | undefined {
  if (stream.isTTY && stream.columns !== undefined && stream.columns > 0) return stream.columns
  const columns = Number(env.COLUMNS)
  return Number.isInteger(columns) && columns > 0 ? columns : undefined
}

/**
 * The widths of the columns: natural, or narrowed until the table fits `width` — first the columns
 * that wrap (free text, lists) down to their longest word, then any column down to `hard` (words
 * cut with `…`), widest first each time.
 */
export function fitWidths(
  natural: readonly number[],
  minimums: ReadonlyArray<readonly number[]>,
  width?: number,
): number[] {
  const widths = [...natural]
  if (width === undefined) return widths
  const total = (): number => widths.reduce((sum, w) => sum + w, 0) + GAP.length * (widths.length - 1)
  for (const minimum of minimums) {
    while (total() > width) {
      let widest = -1
      for (const [i, w] of widths.entries())
        if (w > (minimum[i] ?? 0) && (widest === -1 || w > (widths[widest] ?? 0))) widest = i
      if (widest === -1) break
      widths[widest] = (widths[widest] ?? 0) - 1
    }
  }

  return widths
}

/** Split into words (at spaces) and break points after `,` `/` `;`; `space` says a space preceded. */
function tokens(text: string): Array<{space: boolean; text: string}> {
  const found: Array<{space: boolean; text: string}> = []
  for (const [w, word] of text.split(' ').entries()) {
    if (word === '') continue
    const parts = word.match(/[^,/;]*(?:[,/;]|$)/g)?.filter((part) => part !== '') ?? [word]
    for (const [p, part] of parts.entries())
      found.push({space: p === 0 && w > 0 && found.length > 0, text: part})
  }

  return found
}

function longestWord(texts: string[]): number {
  return Math.max(0, ...texts.flatMap((text) => tokens(text).map((token) => token.text.length)))
}

/**
 * A cell as one line of plain text: line breaks and tabs become spaces, and every other control
 * character (C0, DEL, C1) a `?`. Cells hold text backends return (secret names of a shared mount,
 * agent names, audit sources): an escape sequence there would reach the terminal and set the
 * clipboard (OSC 52), retitle the window or hide lines. `--json` keeps the exact text.
 */
export function cellText(text: string): string {
  return text.replaceAll(/[\r\n\t]/g, ' ').replaceAll(/[\u0000-\u001F\u007F-\u009F]/g, '?')
}

/** `text` in lines of at most `width` characters, broken only between words. */
export function wrapCell(text: string, width: number): string[] {
  if (text.length <= width) return [text]
  const lines: string[] = []
  let line = ''
  for (const token of tokens(text)) {
    const piece = token.text.length > width ? `${token.text.slice(0, Math.max(0, width - 1))}…` : token.text
    const joined = line === '' ? piece : `${line}${token.space ? ' ' : ''}${piece}`
    if (joined.length <= width) {
      line = joined
    } else {
      if (line !== '') lines.push(line)
      line = piece
    }
  }

  if (line !== '' || lines.length === 0) lines.push(line)
  return lines
}

/**
 * One row of cells padded to fixed widths, for rows printed one at a time (`audit --follow`): a
 * cell longer than its width pushes the rest of that row along rather than being cut.
 */
export function alignedLine(values: readonly string[], widths: readonly number[]): string {
  return values
    .map((value) => cellText(value))
    .map((value, i) => (i === values.length - 1 ? value : value.padEnd(widths[i] ?? 0)))
    .join(GAP)
    .trimEnd()
}

/** Without `options`, the table fits the terminal (see {@link terminalWidth}). */
export function renderTable<Row>(rows: Row[], columns: Array<Column<Row>>, options?: TableOptions): string {
  const width = options === undefined ? terminalWidth() : options.width
  const headers = columns.map((c) => c.header.toUpperCase())
  const cells = rows.map((row) => columns.map((column) => cellText(column.get(row))))
  const natural = columns.map((_, i) =>
    Math.max(headers[i]?.length ?? 0, ...cells.map((row) => (row[i] ?? '').length)),
  )
  const column = (i: number): string[] => cells.map((row) => row[i] ?? '')
  // Columns whose cells are single words (names, dates, numbers) keep them whole while others wrap.
  const soft = natural.map((w, i) =>
    column(i).some((text) => tokens(text).length > 1)
      ? Math.min(w, Math.max(MIN_COLUMN, longestWord([headers[i] ?? '', ...column(i)])))
      : w,
  )
  const hard = natural.map((w, i) => Math.min(w, Math.max(MIN_COLUMN, longestWord([headers[i] ?? '']))))
  const widths = fitWidths(natural, [soft, hard], width)
  const render = (values: string[]): string[] => {
    const wrapped = values.map((value, i) => wrapCell(value, widths[i] ?? value.length))
    const height = Math.max(1, ...wrapped.map((lines) => lines.length))
    return Array.from({length: height}, (_, n) =>
      wrapped
        .map((lines, i) =>
          i === wrapped.length - 1 ? (lines[n] ?? '') : (lines[n] ?? '').padEnd(widths[i] ?? 0),
        )
        .join(GAP)
        .trimEnd(),
    )
  }

  return [...render(headers), ...cells.flatMap((row) => render(row))].join('\n') + '\n'
}
