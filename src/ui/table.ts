/**
 * Plain aligned tables for terminals: no colour codes in the data, width from the longest cell.
 * (A full table library would cost startup time for what is a dozen lines.)
 */
export interface Column<Row> {
  get(row: Row): string
  header: string
}

export function renderTable<Row>(rows: Row[], columns: Array<Column<Row>>): string {
  const cells = rows.map((row) => columns.map((column) => column.get(row).replaceAll(/[\r\n\t]/g, ' ')))
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...cells.map((row) => (row[i] ?? '').length)),
  )
  const line = (values: string[]): string =>
    values
      .map((value, i) => (i === values.length - 1 ? value : value.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return (
    [line(columns.map((c) => c.header.toUpperCase())), ...cells.map((row) => line(row))].join('\n') + '\n'
  )
}
