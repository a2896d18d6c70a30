// The project imports fast-check's default export (`fc.string()`, …) as its docs do.

import fc from 'fast-check'
import assert from 'node:assert/strict'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {
  type EnvFileEntry,
  formatEnvValue,
  MAX_ENV_FILE_BYTES,
  parseEnvFile,
  readEnvFile,
} from '../../../src/core/env-file.js'
import {UsageError} from '../../../src/core/errors.js'

function entries(text: string): Array<[string, string]> {
  return parseEnvFile(text, '.env').map((e) => [e.name, e.value])
}

function syntaxError(text: string, source = '.env'): UsageError {
  try {
    parseEnvFile(text, source)
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`)
    assert.equal(error.code, 'ENV_FILE_SYNTAX')
    assert.equal(error.exitCode, 2)
    assert.ok(error.suggestion)
    return error
  }

  assert.fail(`expected ${JSON.stringify(text)} to be rejected`)
}

interface Row {
  exported: boolean
  name: string
  noise: string
  spaces: string
  value: string
}

/** An env file holding each row as `[export ]NAME=formatted`, after the row's noise line. */
function buildFile(rows: Row[], crlf: boolean, bom: boolean): string {
  let text = bom ? '\uFEFF' : ''
  for (const row of rows) {
    text += row.noise
    text += `${row.exported ? 'export ' : ''}${row.name}${row.spaces}=${row.spaces}${formatEnvValue(row.value)}\n`
  }

  return crlf ? text.replaceAll('\n', '\r\n') : text
}

function pairOf(row: Row): [string, string] {
  return [row.name, row.value]
}

/** What parsing `text` throws, or undefined when it parses. */
function envFileError(text: string, source: string): unknown {
  try {
    parseEnvFile(text, source)
  } catch (error) {
    return error
  }

  return undefined
}

describe('core/env-file', () => {
  describe('parseEnvFile', () => {
    const cases: Array<[title: string, text: string, expected: Array<[string, string]>]> = [
      ['empty file', '', []],
      ['blank lines and comments', '\n  \n# comment\n   # indented comment\n\t\n', []],
      ['plain assignment', 'FOO=bar', [['FOO', 'bar']]],
      ['reference value', 'DB=openbao://secret/db#password', [['DB', 'openbao://secret/db#password']]],
      ['spaces around =', 'FOO = bar baz  ', [['FOO', 'bar baz']]],
      ['tab around =', 'FOO\t=\tbar', [['FOO', 'bar']]],
      ['indented name', '   FOO=bar', [['FOO', 'bar']]],
      [
        'empty value',
        'FOO=\nBAR=',
        [
          ['FOO', ''],
          ['BAR', ''],
        ],
      ],
      [
        'export prefix',
        'export FOO=bar\nexport\tBAR=baz',
        [
          ['FOO', 'bar'],
          ['BAR', 'baz'],
        ],
      ],
      [
        'a variable named export',
        'export=1\nexport = 2',
        [
          ['export', '1'],
          ['export', '2'],
        ],
      ],
      ['exported variable named export', 'export export=3', [['export', '3']]],
      [
        'inline comment after a blank',
        'FOO=bar # note\nBAR=x\t#tab',
        [
          ['FOO', 'bar'],
          ['BAR', 'x'],
        ],
      ],
      [
        '# without a blank is part of the value',
        'FOO=bar#baz\nCOLOR=#fff',
        [
          ['FOO', 'bar#baz'],
          ['COLOR', '#fff'],
        ],
      ],
      ['comment right after =', 'FOO= # nothing', [['FOO', '']]],
      ['= in the value', 'URL=https://x.test/?a=b&c=d', [['URL', 'https://x.test/?a=b&c=d']]],
      ['quotes inside an unquoted value', 'FOO=it\'s "fine"', [['FOO', 'it\'s "fine"']]],
      [
        'single quotes are literal',
        "FOO='a \\n $HOME # not a comment'",
        [['FOO', 'a \\n $HOME # not a comment']],
      ],
      ['single quote with trailing comment', "FOO='bar' # c", [['FOO', 'bar']]],
      ['double quotes keep blanks and #', 'FOO="  a # b  "', [['FOO', '  a # b  ']]],
      ['double-quote escapes', 'FOO="a\\nb\\rc\\td\\\\e\\"f\\$g"', [['FOO', 'a\nb\rc\td\\e"f$g']]],
      ['unknown escapes are kept', 'P="C:\\Users\\x"', [['P', 'C:\\Users\\x']]],
      // eslint-disable-next-line no-template-curly-in-string -- a literal `${X}` that must not be expanded
      ['$ is not expanded', 'FOO="$HOME ${X}"', [['FOO', '$HOME ${X}']]],
      ['comment straight after the closing quote', 'FOO="bar"#c', [['FOO', 'bar']]],
      [
        'empty quoted values',
        'A=""\nB=\'\'',
        [
          ['A', ''],
          ['B', ''],
        ],
      ],
      [
        'multi-line double-quoted',
        'KEY="-----BEGIN-----\nabc\n-----END-----"\nNEXT=1',
        [
          ['KEY', '-----BEGIN-----\nabc\n-----END-----'],
          ['NEXT', '1'],
        ],
      ],
      [
        'multi-line single-quoted',
        "A='x\n\ny'\nB=2",
        [
          ['A', 'x\n\ny'],
          ['B', '2'],
        ],
      ],
      [
        'CRLF line ends',
        'A=1\r\nB="x\r\ny"\r\n# c\r\nC=3 \r\n',
        [
          ['A', '1'],
          ['B', 'x\ny'],
          ['C', '3'],
        ],
      ],
      ['UTF-8 BOM', '\uFEFFA=1', [['A', '1']]],
      [
        'unicode values',
        'A=héllo 😀\nB="日本"',
        [
          ['A', 'héllo 😀'],
          ['B', '日本'],
        ],
      ],
      [
        'duplicates kept in order',
        'A=1\nB=2\nA=3',
        [
          ['A', '1'],
          ['B', '2'],
          ['A', '3'],
        ],
      ],
      ['no trailing newline', 'A="x"', [['A', 'x']]],
    ]
    for (const [title, text, expected] of cases) {
      it(title, () => assert.deepEqual(entries(text), expected))
    }

    it('reports the line where each entry starts', () => {
      const text = '# head\n\nA=1\nB="two\nlines"\nexport C=\'3\'\n\nD=4'
      assert.deepEqual(
        parseEnvFile(text, '.env').map((e: EnvFileEntry) => [e.name, e.line]),
        [
          ['A', 3],
          ['B', 4],
          ['C', 6],
          ['D', 8],
        ],
      )
    })

    const errors: Array<[title: string, text: string, line: number, pattern: RegExp]> = [
      ['no =', 'A=1\njust some words', 2, /no "="/],
      ['export without =', 'export FOO', 1, /no "="/],
      ['invalid name', '\n1FOO=bar', 2, /invalid variable name/],
      ['dashed name', 'MY-VAR=x', 1, /invalid variable name/],
      ['dotted name', 'a.b=x', 1, /invalid variable name/],
      ['quoted name', '"FOO"=x', 1, /invalid variable name/],
      ['unterminated double quote', 'A=1\nB="abc\nC=2\n', 2, /B: the double quote .* never closed/],
      ['unterminated single quote', "A='abc", 1, /A: the single quote .* never closed/],
      ['escaped closing quote does not close', 'A="abc\\"', 1, /never closed/],
      ['text after closing double quote', 'A="abc"def', 1, /A: unexpected text after the closing quote/],
      ['text after closing single quote', "A='abc' def", 1, /unexpected text after the closing quote/],
      ['text after a multi-line value names the closing line', 'A="a\nb\nc" x', 3, /unexpected text/],
      ['error after a multi-line value keeps counting', 'A="a\r\nb"\r\nB\r\n', 3, /no "="/],
      ['error after a BOM', '\uFEFF\n\nbad line', 3, /no "="/],
    ]
    for (const [title, text, line, pattern] of errors) {
      it(`error: ${title} (line ${line})`, () => {
        const error = syntaxError(text, 'conf/.env.ci')
        assert.ok(error.message.startsWith(`conf/.env.ci:${line}: `), error.message)
        assert.match(error.message, pattern)
      })
    }

    it('never echoes the value text in errors', () => {
      for (const text of [
        'TOKEN="sk-canary123',
        "TOKEN='sk-canary123",
        'TOKEN="x" sk-canary123',
        'sk-canary123',
        'TOKEN sk-canary123',
      ]) {
        const error = syntaxError(text)
        assert.ok(!error.message.includes('sk-canary123'), error.message)
        assert.ok(!(error.suggestion ?? '').includes('sk-canary123'))
      }
    })
  })

  describe('readEnvFile', () => {
    let dir: string

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'agentvault-envfile-'))
    })

    after(() => rm(dir, {force: true, recursive: true}))

    it('reads a file of exactly the limit, refuses one byte more naming the file and the limit', async () => {
      const file = join(dir, 'edge.env')
      await writeFile(file, `A=${'x'.repeat(62)}\n`)
      assert.equal(await readEnvFile(file, 65), `A=${'x'.repeat(62)}\n`)
      await assert.rejects(readEnvFile(file, 64), (error: unknown) => {
        assert.ok(error instanceof UsageError)
        assert.equal(error.code, 'ENV_FILE_TOO_LARGE')
        assert.match(error.message, /edge\.env.*64 bytes/)
        return true
      })
    })

    it('stops reading an endless device at the limit', async function () {
      if (process.platform === 'win32') this.skip()
      await assert.rejects(readEnvFile('/dev/zero'), (error: unknown) => {
        assert.ok(error instanceof UsageError)
        assert.equal(error.code, 'ENV_FILE_TOO_LARGE')
        assert.equal(error.details?.maxBytes, MAX_ENV_FILE_BYTES)
        return true
      })
    })

    it('a missing file or a directory: ENV_FILE_UNREADABLE with the errno code', async () => {
      for (const [path, code] of [
        [join(dir, 'missing.env'), 'ENOENT'],
        [dir, 'EISDIR'],
      ] as const)
        await assert.rejects(readEnvFile(path), (error: unknown) => {
          assert.ok(error instanceof UsageError)
          assert.equal(error.code, 'ENV_FILE_UNREADABLE')
          assert.ok(error.message.includes(`(${code})`), error.message)
          return true
        })
    })
  })

  describe('formatEnvValue', () => {
    const cases: Array<[string, string]> = [
      ['', '""'],
      ['plain', '"plain"'],
      ['a"b', '"a\\"b"'],
      ['a\\b', '"a\\\\b"'],
      ['$HOME', '"\\$HOME"'],
      ['l1\nl2\r\tx', '"l1\\nl2\\r\\tx"'],
      ['# not a comment', '"# not a comment"'],
      ['`id` $(id)', '"\\`id\\` \\$(id)"'],
    ]
    for (const [value, formatted] of cases) {
      it(`${JSON.stringify(value)} → ${formatted}`, () => {
        assert.equal(formatEnvValue(value), formatted)
        assert.deepEqual(entries(`X=${formatted}`), [['X', value]])
      })
    }
  })

  it('a shell sourcing formatted values gets them exactly and runs nothing they hold (bash, sh)', async () => {
    const {execFileSync} = await import('node:child_process')
    const dir = await mkdtemp(join(tmpdir(), 'agentvault-envsh-'))
    const marker = join(dir, 'ran')
    try {
      // Values without CR/LF/TAB (whose escapes are the parser's, not the shell's).
      const values = [
        `$(touch ${marker})`,
        `\`touch ${marker}\``,
        `"; touch ${marker}; echo "`,
        `\\$(touch ${marker})`,
        `a'b\\c$HOME!x`,
        '',
      ]
      const file = join(dir, 'backup.env')
      await writeFile(file, values.map((value, i) => `V${i}=${formatEnvValue(value)}\n`).join(''))
      for (const shell of ['bash', 'sh']) {
        const script = `. "$1"; ${values.map((_, i) => `printf '%s\\0' "$V${i}"`).join('; ')}`
        const out = execFileSync(shell, ['-c', script, shell, file], {encoding: 'utf8'})
        assert.deepEqual(out.split('\0').slice(0, -1), values, shell)
      }

      assert.equal((await import('node:fs')).existsSync(marker), false, 'sourcing ran a command from a value')
      assert.deepEqual(
        entries(values.map((value, i) => `V${i}=${formatEnvValue(value)}`).join('\n')),
        values.map((value, i) => [`V${i}`, value]),
      )
    } finally {
      await rm(dir, {force: true, recursive: true})
    }
  })

  describe('properties', () => {
    const name = fc.stringMatching(/^[A-Za-z_]\w{0,11}$/)
    const value = fc.oneof(
      fc.string(),
      fc.string({unit: 'binary'}),
      fc.string({unit: 'grapheme'}),
      fc
        .array(
          fc.constantFrom(
            '"',
            "'",
            '\\',
            '\n',
            '\r',
            '\r\n',
            '\t',
            '#',
            ' #',
            '=',
            '$',
            'export ',
            '\uFEFF',
            'é',
            '😀',
            'x',
          ),
          {
            maxLength: 12,
          },
        )
        .map((parts) => parts.join('')),
    )
    const noise = fc.constantFrom('', '\n', '# comment\n', '   \n', '\t# x = "y\n')
    const row = fc.record({
      exported: fc.boolean(),
      name,
      noise,
      spaces: fc.constantFrom('', ' ', '\t '),
      value,
    })

    it('(a) formatted entries parse back to the same entries', () => {
      fc.assert(
        fc.property(fc.array(row, {maxLength: 8}), fc.boolean(), fc.boolean(), (rows, crlf, bom) => {
          assert.deepEqual(entries(buildFile(rows, crlf, bom)), rows.map(pairOf))
        }),
        {numRuns: 1000},
      )
    })

    const hostile = fc.oneof(
      fc.string(),
      fc.string({unit: 'binary'}),
      fc
        .array(
          fc.oneof(
            fc.constantFrom(
              'A=',
              'export ',
              'B = ',
              '"',
              "'",
              '\\',
              '\n',
              '\r\n',
              '\r',
              '#',
              ' ',
              '=',
              '1X=',
              'x',
              '\uFEFF',
              '\u2028',
            ),
            fc.string({maxLength: 4}),
          ),
          {maxLength: 20},
        )
        .map((parts) => parts.join('')),
    )

    it('(b) arbitrary text only parses or throws ENV_FILE_SYNTAX', () => {
      fc.assert(
        fc.property(hostile, (text) => {
          try {
            const result = parseEnvFile(text, 'h.env')
            for (const entry of result) {
              assert.match(entry.name, /^[A-Za-z_]\w*$/)
              assert.ok(entry.line >= 1)
            }
          } catch (error) {
            assert.ok(error instanceof UsageError, String(error))
            assert.equal(error.code, 'ENV_FILE_SYNTAX')
            assert.match(error.message, /^h\.env:\d+: /)
          }
        }),
        {numRuns: 3000},
      )
    })

    it('(c) error messages never contain a canary from a value position', () => {
      // The canary has a dash so it can never be mistaken for (and echoed as) a variable name.
      const canary = 'CANARY-7f3a9'
      const broken = fc.constantFrom(
        (v: string) => `"${v}`, // unterminated double
        (v: string) => `'${v}`, // unterminated single
        (v: string) => `"x"${v}`, // junk after the quote
        (v: string) => `'x' ${v}`,
        (v: string) => `"${v}\n${v}`, // unterminated across lines
      )
      fc.assert(
        fc.property(
          fc.record({
            before: fc.array(row, {maxLength: 3}),
            brokenName: name,
            post: fc.string({maxLength: 5}).map((t) => t.replaceAll(/["'\\]/g, '')),
            pre: fc.stringMatching(/^[\w-]{0,5}$/),
            wrap: broken,
          }),
          ({before, brokenName, post, pre, wrap}) => {
            const text = `${buildFile(before, false, false)}${brokenName}=${wrap(`${pre}${canary}${post}`)}\n`
            const error = envFileError(text, 'c.env')
            assert.ok(error instanceof UsageError, 'the broken line must be rejected')
            assert.ok(!error.message.includes(canary), error.message)
            assert.ok(!(error.suggestion ?? '').includes(canary))
          },
        ),
        {numRuns: 1000},
      )
    })
  })
})
