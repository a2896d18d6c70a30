import fc from 'fast-check'
import assert from 'node:assert/strict'

import {alignedLine, fitWidths, renderTable, terminalWidth, wrapCell} from '../../../src/ui/table.js'

interface Row {
  a: string
  b: string
  c: string
}

const COLUMNS = [
  {get: (r: Row) => r.a, header: 'name'},
  {get: (r: Row) => r.b, header: 'kind'},
  {get: (r: Row) => r.c, header: 'note'},
]

describe('ui/table', () => {
  it('no width: one line per row, columns aligned to the longest cell', () => {
    const text = renderTable([{a: 'x', b: 'local', c: 'a long note that stays on its line'}], COLUMNS, {})
    assert.equal(text, 'NAME  KIND   NOTE\nx     local  a long note that stays on its line\n')
  })

  it('a narrow terminal: the widest column is narrowed and wrapped between words, aligned', () => {
    const text = renderTable(
      [{a: 'openbao', b: 'openbao', c: 'http://127.0.0.1:1 unreachable (ECONNREFUSED); not signed in'}],
      COLUMNS,
      {width: 40},
    )
    const lines = text.trimEnd().split('\n')
    for (const line of lines) assert.ok(line.length <= 40, line)
    assert.deepEqual(lines, [
      'NAME     KIND     NOTE',
      'openbao  openbao  http://127.0.0.1:1',
      '                  unreachable',
      '                  (ECONNREFUSED); not',
      '                  signed in',
    ])
  })

  it('wraps lists after commas and paths after slashes; cuts a too-long word with …', () => {
    assert.deepEqual(wrapCell('a.example.com,b.example.com', 16), ['a.example.com,', 'b.example.com'])
    assert.deepEqual(wrapCell('local://A,local://B', 10), ['local://A,', 'local://B'])
    assert.deepEqual(wrapCell('/srv/app/config/secret.pem', 12), ['/srv/app/', 'config/', 'secret.pem'])
    assert.deepEqual(wrapCell('supercalifragilistic word', 8), ['superca…', 'word'])
    assert.deepEqual(wrapCell('', 5), [''])
  })

  it('the terminal width: a TTY’s columns, else $COLUMNS, else none', () => {
    assert.equal(terminalWidth({columns: 90, isTTY: true}, {COLUMNS: '50'}), 90)
    assert.equal(terminalWidth({isTTY: false}, {COLUMNS: '50'}), 50)
    assert.equal(terminalWidth({isTTY: false}, {}), undefined)
    assert.equal(terminalWidth({isTTY: false}, {COLUMNS: 'wide'}), undefined)
  })

  it('any text, any width: lines fit whenever the minimums do, and no word is split (fast-check)', () => {
    const word = fc.stringMatching(/^[a-z0-9.:_-]{1,12}$/)
    const cell = fc.array(word, {maxLength: 6}).map((words) => words.join(' '))
    fc.assert(
      fc.property(
        fc.array(fc.record({a: cell, b: cell, c: cell}), {maxLength: 5}),
        fc.integer({min: 1, max: 120}),
        (rows, width) => {
          const lines = renderTable(rows, COLUMNS, {width}).trimEnd().split('\n')
          const natural = [0, 1, 2].map((i) =>
            Math.max(4, ...rows.map((r) => [r.a, r.b, r.c][i]?.length ?? 0)),
          )
          const minimum = natural.map((w) => Math.min(w, 6))
          if (minimum.reduce((sum, w) => sum + w, 0) + 4 <= width)
            for (const line of lines) assert.ok(line.length <= width, `${line.length} > ${width}`)
          // Every word of every cell appears whole (or cut with …) on some line.
          const text = lines.join('\n')
          for (const row of rows)
            for (const w of [row.a, row.b, row.c].join(' ').split(' ').filter(Boolean))
              assert.ok(
                text.includes(w) || [...w].some((_, k) => k > 0 && text.includes(`${w.slice(0, k)}…`)),
                w,
              )
        },
      ),
    )
  })

  it('fitWidths never goes below a minimum and leaves fitting tables alone', () => {
    assert.deepEqual(fitWidths([4, 10, 30], [[4, 6, 6]], 100), [4, 10, 30])
    assert.deepEqual(fitWidths([4, 10, 30], [[4, 6, 6]], 30), [4, 10, 12])
    assert.deepEqual(fitWidths([4, 10, 30], [[4, 6, 6]], 5), [4, 6, 6])
    // Soft minimums first: the single-word column keeps its width while the text column can shrink.
    assert.deepEqual(
      fitWidths(
        [12, 30],
        [
          [12, 8],
          [6, 6],
        ],
        30,
      ),
      [12, 16],
    )
    assert.deepEqual(
      fitWidths(
        [12, 30],
        [
          [12, 8],
          [6, 6],
        ],
        16,
      ),
      [7, 7],
    )
  })

  it('no control character of a cell reaches the output (escape sequences from backend text)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({unit: 'binary'}), {maxLength: 3, minLength: 3}), ([a, b, c]) => {
        const rows = renderTable([{a: a!, b: b!, c: c!}], COLUMNS, {width: 40}).split('\n')
        for (const line of [...rows, alignedLine([a!, b!, c!], [4, 4, 4])])
          assert.doesNotMatch(line, /[\u0000-\u001F\u007F-\u009F]/)
      }),
    )
  })
})
