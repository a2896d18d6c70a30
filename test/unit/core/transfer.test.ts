// The project imports fast-check's default export (`fc.string()`, …) as its docs do.

import fc from 'fast-check'
import assert from 'node:assert/strict'

import {parseEnvFile} from '../../../src/core/env-file.js'
import {exportable, formatExport} from '../../../src/core/transfer.js'

const envName = fc.stringMatching(/^[A-Za-z_]\w{0,20}$/)
/** Any text at all: control characters, quotes, `$`, `#`, CR/LF, astral characters. */
const anyText = fc.string({maxLength: 200, unit: 'binary'})

describe('core/transfer', () => {
  it('dotenv export is read back unchanged by the env-file parser (what `secrets import` uses)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(envName, anyText), {maxLength: 12, selector: ([name]) => name}),
        (rows) => {
          const entries = rows.map(([name, text]) => ({name, text}))
          const parsed = parseEnvFile(formatExport(entries, 'dotenv'), 'export.env')
          assert.deepEqual(
            parsed.map(({name, value}) => [name, value]),
            rows,
          )
        },
      ),
      {numRuns: 300},
    )
  })

  it('json export parses back to the same object, however hostile the names', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(anyText, anyText), {maxLength: 8, selector: ([name]) => name}),
        (rows) => {
          const entries = rows.map(([name, text]) => ({name, text}))
          const parsed = JSON.parse(formatExport(entries, 'json')) as Record<string, string>
          assert.deepEqual(Object.entries(parsed).sort(), [...rows].sort())
        },
      ),
    )
  })

  it('yaml export has one line per secret: every line break and non-printable is escaped', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(anyText, anyText), {maxLength: 8, selector: ([name]) => name}),
        (rows) => {
          const text = formatExport(
            rows.map(([name, value]) => ({name, text: value})),
            'yaml',
          )
          const lines = text.split('\n').slice(0, -1)
          assert.equal(lines.length, Math.max(rows.length, 1))
          assert.doesNotMatch(text, /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u2028\u2029\uFEFF]/)
        },
      ),
    )
  })

  it('leaves out values that are not UTF-8, and (dotenv) names that are not variable names', () => {
    assert.deepEqual(exportable({name: 'B', value: Buffer.from([0xff])}, 'json'), {
      name: 'B',
      reason: 'is not UTF-8 text',
    })
    assert.ok('reason' in exportable({name: 'a-b', value: Buffer.from('v')}, 'dotenv'))
    assert.deepEqual(exportable({name: 'a-b', value: Buffer.from('v')}, 'yaml'), {name: 'a-b', text: 'v'})
  })
})
