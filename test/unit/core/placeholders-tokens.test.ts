import fc from 'fast-check'
import assert from 'node:assert/strict'

import {
  basicCredentials,
  basicValue,
  bodyContext,
  echoTest,
  encodeFor,
  headerNameRewriter,
  makePlaceholder,
  placeholderScanner,
  responseRewriter,
  rewriteText,
  type Stand,
  standsIn,
  substitute,
} from '../../../src/core/placeholders/tokens.js'
import {parseRunArgv} from '../../../src/core/run-options.js'

const SECRET = 'can ary/+=&!"secret é'

function stand(name: string, value: string): Stand {
  return {name, placeholder: makePlaceholder(name), reference: `local://${name}`, value: Buffer.from(value)}
}

describe('core/placeholders/tokens', () => {
  it('placeholders are avph_<name>_<32 hex>, distinct per call, with the name reduced to word characters', () => {
    assert.match(makePlaceholder('OPENAI_API_KEY'), /^avph_OPENAI_API_KEY_[\da-f]{32}$/)
    assert.notEqual(makePlaceholder('K'), makePlaceholder('K'))
    fc.assert(
      fc.property(fc.string({maxLength: 200}), (name) => {
        const placeholder = makePlaceholder(name)
        assert.match(placeholder, /^avph_\w{0,64}_[\da-f]{32}$/)
        // A placeholder survives URL, JSON, form and header contexts unchanged.
        assert.equal(encodeURIComponent(placeholder), placeholder)
        assert.equal(JSON.stringify(placeholder), `"${placeholder}"`)
      }),
    )
  })

  it('swaps each placeholder for its value encoded for where it stands', () => {
    const k = stand('K', SECRET)
    const url = substitute(`/p?k=${k.placeholder}&x=1`, [k], 'url')
    assert.equal(new URL(url, 'https://h').searchParams.get('k'), SECRET)
    const json = substitute(`{"k":"${k.placeholder}"}`, [k], 'json')
    assert.deepEqual(JSON.parse(Buffer.from(json, 'latin1').toString('utf8')), {k: SECRET})
    const form = substitute(`a=1&k=${k.placeholder}`, [k], 'form')
    assert.equal(new URLSearchParams(form).get('k'), SECRET)
    const header = substitute(`Bearer ${k.placeholder}`, [k], 'header')
    assert.equal(Buffer.from(header, 'latin1').toString('utf8'), `Bearer ${SECRET}`)
  })

  it("a value holding $&, $$, $` or $' goes in as it is (no replacement patterns)", () => {
    for (const value of ['p$&ss', 'p$$ss', 'p$`ss', "p$'ss", '$1$<n>']) {
      const k = stand('K', value)
      for (const swap of [
        (text: string) => substitute(text, [k], 'header'),
        (text: string) => placeholderScanner([k]).substitute(text, 'header'),
      ])
        assert.equal(
          Buffer.from(swap(`Bearer ${k.placeholder}!`), 'latin1').toString('utf8'),
          `Bearer ${value}!`,
        )
    }
  })

  it('JSON and URL substitution round-trips any value (property)', () => {
    fc.assert(
      fc.property(fc.string({minLength: 1, maxLength: 80, unit: 'grapheme'}), (value) => {
        const k = stand('K', value)
        const json = substitute(`{"a":"x${k.placeholder}y"}`, [k], 'json')
        assert.deepEqual(JSON.parse(Buffer.from(json, 'latin1').toString('utf8')), {a: `x${value}y`})
        const url = substitute(`/?k=${k.placeholder}`, [k], 'url')
        assert.equal(new URL(url, 'http://h').searchParams.get('k'), value)
      }),
    )
  })

  it('finds only the placeholders present, in hostile bytes too (property)', () => {
    const k = stand('K', SECRET)
    const s = stand('S', 'another-secret')
    fc.assert(
      fc.property(
        fc.uint8Array({maxLength: 300}),
        fc.uint8Array({maxLength: 300}),
        fc.boolean(),
        (a, b, withK) => {
          const data = Buffer.concat([
            Buffer.from(a),
            Buffer.from(withK ? k.placeholder : 'avph_K_'),
            Buffer.from(b),
          ])
          const found = standsIn(data, [k, s])
          assert.deepEqual(
            found.map((x) => x.name),
            withK ? ['K'] : [],
          )
        },
      ),
    )
    assert.deepEqual(standsIn('avph_K_' + '0'.repeat(32), [k]), [], 'a guessed placeholder matches nothing')
  })

  it('rewrites every echoed form of a value into its placeholder, however the response is chunked (property)', () => {
    const k = stand('K', SECRET)
    const forms = [
      SECRET,
      Buffer.from(SECRET).toString('base64'),
      encodeURIComponent(SECRET),
      JSON.stringify(SECRET).slice(1, -1),
      new URLSearchParams([['', SECRET]]).toString().slice(1),
    ]
    fc.assert(
      fc.property(
        fc.constantFrom(...forms),
        fc.string({maxLength: 40}),
        fc.integer({min: 1, max: 64}),
        (form, pad, size) => {
          const text = Buffer.from(`${pad}[${form}]${pad}`, 'utf8')
          const rewriter = responseRewriter([k])!
          const out: Buffer[] = []
          for (let i = 0; i < text.length; i += size) out.push(rewriter.push(text.subarray(i, i + size)))
          out.push(rewriter.end())
          const result = Buffer.concat(out).toString('utf8')
          assert.ok(result.includes(`[${k.placeholder}]`), result)
          assert.ok(!result.includes(SECRET))
        },
      ),
    )
    const reused = responseRewriter([k])
    assert.equal(
      rewriteText(`x-token: ${SECRET}`, reused).includes(k.placeholder),
      false,
      'header text is latin1',
    )
    const latin1 = Buffer.from(SECRET).toString('latin1')
    assert.equal(rewriteText(`x-token: ${latin1}`, reused), `x-token: ${k.placeholder}`)
    assert.equal(
      rewriteText(`again ${latin1}`, reused),
      `again ${k.placeholder}`,
      'a rewriter is reusable after end()',
    )
    assert.equal(responseRewriter([stand('T', 'abc')]), undefined, 'values under 4 bytes are not rewritten')
  })

  it('rewrites a value in a header name whatever its case, and leaves other names alone (property)', () => {
    const k = stand('K', 'Tok3n-Value_9')
    const rename = headerNameRewriter([k])
    assert.equal(rename('X-Session-tok3n-value_9'), `x-session-${k.placeholder}`)
    assert.equal(rename('X-TOK3N-VALUE_9'), `x-${k.placeholder}`)
    assert.equal(rename('Content-Type'), 'Content-Type')
    fc.assert(
      fc.property(
        fc.stringMatching(/^[\w!#$%&'*+.^`|~-]{0,30}$/),
        fc.stringMatching(/^[\w-]{0,30}$/),
        (a, b) => {
          const name = `${a}${k.value.toString('latin1').toUpperCase()}${b}`
          const out = rename(name)
          assert.ok(!out.toLowerCase().includes('tok3n-value_9'), out)
          assert.match(out, /^[\w!#$%&'*+.^`|~-]+$/, 'still a header-name token')
          assert.equal(rename(`${a}${b}`).toLowerCase().includes('tok3n'), false)
        },
      ),
    )
    assert.equal(headerNameRewriter([stand('S', 'abc')])('x-abc'), 'x-abc', 'short values are not rewritten')
  })

  it('one scanner finds and swaps every stand’s placeholder as standsIn and substitute do (property)', () => {
    const k = stand('K', SECRET)
    const s = stand('S', 'another-secret')
    const t = stand('K_2', 'third')
    const scanner = placeholderScanner([k, s, t])
    const piece = fc.oneof(
      fc.string({maxLength: 20, unit: 'binary-ascii'}),
      fc.constantFrom(
        k.placeholder,
        s.placeholder,
        t.placeholder,
        'avph_K_',
        `${k.placeholder.slice(0, -1)}`,
      ),
    )
    fc.assert(
      fc.property(
        fc.array(piece, {maxLength: 8}),
        fc.constantFrom('form', 'header', 'json', 'raw', 'url'),
        (pieces, context) => {
          const glued = pieces.join('')
          const found = scanner.find(glued)
          assert.deepEqual(
            new Set(found.map((x) => x.name)),
            new Set(standsIn(glued, [k, s, t]).map((x) => x.name)),
          )
          assert.equal(found.length, new Set(found).size, 'each stand once')
          // Apart (no placeholder overlapping another), one pass swaps what one pass per stand does.
          const apart = pieces.join(' ')
          assert.equal(scanner.substitute(apart, context), substitute(apart, [k, s, t], context))
        },
      ),
    )
    // Overlapping: K's placeholder ending in `a`, glued to the next one's `avph_`.
    const ka = {...k, placeholder: `${k.placeholder.slice(0, -1)}a`}
    assert.deepEqual(
      placeholderScanner([ka, t])
        .find(`${ka.placeholder}${t.placeholder.slice(1)}`)
        .map((x) => x.name),
      ['K', 'K_2'],
      'both found',
    )
    assert.deepEqual(placeholderScanner([]).find(k.placeholder), [])
    assert.equal(placeholderScanner([]).substitute(k.placeholder, 'raw'), k.placeholder)
    // One pass: a value that happens to hold another placeholder is sent as it is.
    const holder = stand('H', `x${t.placeholder}x`)
    assert.equal(
      placeholderScanner([holder, t]).substitute(`${holder.placeholder}|${t.placeholder}`, 'raw'),
      `x${t.placeholder}x|third`,
    )
  })

  it('the echo test is true wherever a rewriter would change a header value or name (property)', () => {
    const k = stand('K', SECRET)
    const s = stand('S', 'Tok3n-Value_9')
    const test = echoTest([k, s, stand('T', 'abc')])
    const body = responseRewriter([k, s])!
    const rename = headerNameRewriter([k, s])
    const forms = [SECRET, 'Tok3n-Value_9', 'TOK3N-VALUE_9'].flatMap((value) => [
      Buffer.from(value).toString('latin1'),
      Buffer.from(value).toString('base64'),
      encodeURIComponent(value),
      JSON.stringify(value).slice(1, -1),
    ])
    fc.assert(
      fc.property(
        fc
          .string({maxLength: 30, unit: 'binary'})
          .map((text) => Buffer.from(text, 'utf8').toString('latin1')),
        fc.option(fc.constantFrom(...forms)),
        fc.string({maxLength: 30, unit: 'binary-ascii'}),
        (before, form, after) => {
          const text = `${before}${form ?? ''}${after}`
          if (rewriteText(text, body) !== text) assert.ok(test.inValue(text), text)
          if (rename(text) !== text) assert.ok(test.inName(text), text)
        },
      ),
    )
    assert.ok(test.inValue(`Bearer ${Buffer.from(SECRET).toString('latin1')}`))
    assert.ok(test.inName('X-Session-TOK3N-value_9'))
    for (const text of ['Mon, 07 Dec 2026 05:40:37 GMT', 'application/json', 'keep-alive', 'abc', 'x-abc'])
      assert.equal(test.inValue(text) || test.inName(text), false, text)
    assert.equal(echoTest([stand('T', 'abc')]).inValue('abc'), false, 'short values are not rewritten')
    const many = echoTest(Array.from({length: 30}, (_, i) => stand(`M${i}`, `many-secret-value-${i}`)))
    assert.ok(many.inValue('plain') && many.inName('plain'), 'past the cap every text goes to the rewriters')
  })

  it('treats JSON, form, text and XML bodies as text, and others (or odd types) not', () => {
    assert.equal(bodyContext('application/json; charset=utf-8'), 'json')
    assert.equal(bodyContext('application/vnd.api+json'), 'json')
    assert.equal(bodyContext('application/x-www-form-urlencoded'), 'form')
    assert.equal(bodyContext('text/plain'), 'raw')
    assert.equal(bodyContext(), 'raw')
    assert.equal(bodyContext('application/octet-stream'), undefined)
    assert.equal(bodyContext('multipart/form-data; boundary=x'), undefined)
    fc.assert(
      fc.property(fc.string({maxLength: 100}), (type) => {
        const context = bodyContext(type)
        assert.ok(context === undefined || ['form', 'json', 'raw'].includes(context))
      }),
    )
    assert.equal(encodeFor(Buffer.from('a b'), 'form'), 'a+b')
  })
})

describe('core/run-options: --placeholders, --allow-domain, --isolate', () => {
  it('reads the flags and their variables', () => {
    const flags = parseRunArgv(
      ['--placeholders', '--allow-host', 'a.example', '--allow-host=*.b.example', '--isolate', '--', 'x'],
      {},
    )
    assert.equal(flags.placeholders, true)
    assert.equal(flags.isolate, true)
    assert.deepEqual(flags.allowHosts, ['a.example', '*.b.example'])
    const none = parseRunArgv(['x'], {})
    assert.equal(none.placeholders, false)
    assert.equal(none.isolate, false)
    assert.deepEqual(none.allowHosts, [])
    const fromEnv = parseRunArgv(['x'], {
      AGENTVAULT_ALLOW_HOST: 'a,b',
      AGENTVAULT_ISOLATE: 'true',
      AGENTVAULT_PLACEHOLDERS: '1',
    })
    assert.equal(fromEnv.placeholders, true)
    assert.equal(fromEnv.isolate, true)
    assert.deepEqual(fromEnv.allowHosts, ['a', 'b'])
    assert.equal(parseRunArgv(['x'], {AGENTVAULT_PLACEHOLDERS: '0'}).placeholders, false)
    assert.throws(() => parseRunArgv(['--placeholders=yes', 'x'], {}), /takes no value/)
  })

  it('--allow-domain is the name; --allow-host and AGENTVAULT_ALLOW_HOST still work, each with one warning', () => {
    const current = parseRunArgv(['--allow-domain', 'a.example', 'x'], {AGENTVAULT_ALLOW_DOMAIN: 'ignored'})
    assert.deepEqual([current.allowHosts, current.warnings], [['a.example'], undefined])
    assert.deepEqual(parseRunArgv(['x'], {AGENTVAULT_ALLOW_DOMAIN: 'a,b'}).allowHosts, ['a', 'b'])
    const old = parseRunArgv(['--allow-host', 'a', '--allow-host=b', '--allow-domain', 'c', 'x'], {})
    assert.deepEqual(old.allowHosts, ['a', 'b', 'c'])
    assert.deepEqual(old.warnings, [
      'The "--allow-host" flag has been deprecated. Use "--allow-domain" instead.',
    ])
    const oldEnv = parseRunArgv(['x'], {AGENTVAULT_ALLOW_HOST: 'a'})
    assert.deepEqual(oldEnv.warnings, [
      'AGENTVAULT_ALLOW_HOST has been deprecated. Use AGENTVAULT_ALLOW_DOMAIN instead.',
    ])
    // The new variable wins over the old one, silently.
    const both = parseRunArgv(['x'], {AGENTVAULT_ALLOW_DOMAIN: 'new', AGENTVAULT_ALLOW_HOST: 'old'})
    assert.deepEqual([both.allowHosts, both.warnings], [['new'], undefined])
  })

  it('reads Basic credentials back exactly, in any case and spacing, and nothing else (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({minLength: 1, unit: 'binary'}), (text) => {
        const credentials = Buffer.from(text, 'utf8').toString('latin1')
        assert.equal(basicCredentials(basicValue(credentials)), credentials)
        assert.equal(basicCredentials(`bASIC \t${basicValue(credentials).slice(6)} `), credentials)
      }),
    )
    fc.assert(
      fc.property(fc.string({unit: 'binary'}), (value) => {
        const read = basicCredentials(value)
        if (read !== undefined) assert.match(value, /^basic[\t ]/i)
      }),
    )
    for (const other of ['Bearer abc', 'Basic', 'Basic a b', 'Digest x', 'Basic ab=c', 'xBasic YQ=='])
      assert.equal(basicCredentials(other), undefined, other)
  })
})
