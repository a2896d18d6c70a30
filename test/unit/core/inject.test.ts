// The project imports fast-check's default export (`fc.string()`, …) as its docs do.

import fc from 'fast-check'
import assert from 'node:assert/strict'

import {AgentVaultError} from '../../../src/core/errors.js'
import {parseTemplate, type TemplatePart} from '../../../src/core/inject.js'

function rebuild(parts: TemplatePart[]): string {
  return parts.map((part) => ('text' in part ? part.text : part.raw)).join('')
}

function refs(parts: TemplatePart[]): string[] {
  return parts.flatMap((part) => ('reference' in part ? [part.reference.canonical] : []))
}

/** Pieces that make hostile templates: braces, half references, blanks, newlines. */
const piece = fc.constantFrom(
  '{',
  '}',
  '{{',
  '}}',
  ' ',
  '\t',
  '\n',
  'local://',
  'local://A',
  'KEY',
  'https://x',
  '{{ local://B }}',
  '{{local://C}}',
  '://',
  'x',
  '#',
  '?profile=p',
)

describe('core/inject: the template parser', () => {
  it('finds references with or without blanks inside the braces, keeps everything else verbatim', () => {
    const parts = parseTemplate('a: {{ local://A }}\nb: {{local://B}} {{\tlocal://C?profile=p\t}}\n', 't')
    assert.deepEqual(refs(parts), ['local://A', 'local://B', 'local://C?profile=p'])
    assert.deepEqual(
      parts.flatMap((part) => ('line' in part ? [part.line] : [])),
      [1, 2, 2],
    )
  })

  it('leaves other template languages, URLs and unbalanced braces alone', () => {
    for (const text of [
      '{{ .Values.image }}',
      '{{ https://example.com }}',
      '{{ local://A }',
      '{ local://A }}',
      '{{ local://A B }}',
      '{{\nlocal://A\n}}',
      '{{{{',
      '',
    ]) {
      const parts = parseTemplate(text, 't')
      assert.deepEqual(refs(parts), [], text)
      assert.equal(rebuild(parts), text)
    }

    assert.deepEqual(refs(parseTemplate('{{{ local://A }}}', 't')), ['local://A'])
  })

  it('a misspelt scheme or an invalid reference inside braces is a usage error naming the line', () => {
    assert.throws(
      () => parseTemplate('ok\n\nx: {{ lcoal://A }}', 'app.tpl'),
      (error: AgentVaultError) =>
        error.code === 'INJECT_UNKNOWN_SCHEME' && /^app\.tpl:3: "lcoal:\/\/"/.test(error.message),
    )
    assert.throws(
      () => parseTemplate('\n{{ local:// }}', 'app.tpl'),
      (error: AgentVaultError) => error.category === 'usage' && error.message.startsWith('app.tpl:2: '),
    )
  })

  it('property: any mix of hostile pieces parses (or fails as usage) and rebuilds to the input', () => {
    fc.assert(
      fc.property(fc.array(piece, {maxLength: 60}), (pieces) => {
        const text = pieces.join('')
        let parts: TemplatePart[]
        try {
          parts = parseTemplate(text, 't')
        } catch (error) {
          assert.ok(error instanceof AgentVaultError && error.category === 'usage', String(error))
          return
        }

        assert.equal(rebuild(parts), text)
        for (const part of parts)
          if ('reference' in part) assert.match(part.raw, /^\{\{[ \t]*local:\/\/\S+[ \t]*\}\}$/)
      }),
      {numRuns: 2000},
    )
  })

  it('property: arbitrary text never throws anything but a usage error', () => {
    fc.assert(
      fc.property(fc.string({maxLength: 300, unit: 'binary'}), (text) => {
        try {
          assert.equal(rebuild(parseTemplate(text, 't')), text)
        } catch (error) {
          assert.ok(error instanceof AgentVaultError && error.category === 'usage', String(error))
        }
      }),
    )
  })

  it('huge hostile input (megabytes of unclosed braces) is scanned in linear time', () => {
    // Each of these would take minutes with a quadratic scan; mocha's timeout bounds the test.
    for (const unit of ['{{', '{{local://', '{{ local://A', '{{ local://A }', 'local://A}}']) {
      const text = unit.repeat(Math.ceil((4 * 1024 * 1024) / unit.length))
      const parts = parseTemplate(text, 't')
      assert.equal(rebuild(parts), text)
    }

    const many = '{{ local://A }}\n'.repeat(200_000)
    assert.equal(refs(parseTemplate(many, 't')).length, 200_000)
  })
})
