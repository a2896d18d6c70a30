import fc from 'fast-check'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'

import {MAX_LINES} from '../../../src/core/mask-patterns.js'
import {Masker, maskPatterns, MIN_LINE_LENGTH} from '../../../src/core/mask.js'

/*
 * Each encoder below is how a real program prints a value (written here independently of
 * src/core/mask-patterns.ts, from the programs' documented behaviour). For random values, the
 * encoded value inside random surroundings, fed through the masker in random chunks, must not
 * survive. The replacement is a NUL byte (in no value), so a replacement can never help form a
 * pattern.
 */

const ZERO = Buffer.of(0)

function cut(data: Buffer, points: readonly number[]): Buffer[] {
  const sorted = [...new Set(points.map((p) => p % (data.length + 1)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let from = 0
  for (const point of sorted) {
    chunks.push(data.subarray(from, point))
    from = point
  }

  chunks.push(data.subarray(from))
  return chunks
}

function maskChunks(patterns: Buffer[], chunks: readonly Buffer[]): Buffer {
  const masker = new Masker(patterns, ZERO)
  const out: Buffer[] = []
  for (const chunk of chunks) out.push(...masker.push(chunk))
  out.push(...masker.end())
  return Buffer.concat(out)
}

const hex4 = (code: number, upper: boolean): string => {
  const digits = code.toString(16).padStart(4, '0')
  return `\\u${upper ? digits.toUpperCase() : digits}`
}

/** JSON string contents as several serialisers write them. */
interface JsonFlavour {
  /** Also escape `=` and `'` (Gson's default HTML-safe output), with `html`. */
  gson?: boolean
  /** Escape U+2028/U+2029 and `<`, `>`, `&` (Go's encoding/json). */
  html?: boolean
  /** Escape everything above U+007F, astral characters as surrogate pairs (Python, PHP). */
  nonAscii?: boolean
  /** Escape `/` as `\/` (PHP's json_encode). */
  solidus?: boolean
  upper?: boolean
}

function jsonString(text: string, flavour: JsonFlavour): string {
  const short: Record<string, string> = {
    '\b': '\\b',
    '\f': '\\f',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '"': '\\"',
    '\\': '\\\\',
  }
  let out = ''
  for (const char of text) {
    const code = char.codePointAt(0)!
    if (short[char]) out += short[char]
    else if (char === '/' && flavour.solidus) out += '\\/'
    else if (code < 0x20) out += hex4(code, Boolean(flavour.upper))
    else if (
      flavour.html &&
      (char === '<' || char === '>' || char === '&' || code === 0x20_28 || code === 0x20_29)
    )
      out += hex4(code, Boolean(flavour.upper))
    else if (flavour.gson && (char === '=' || char === "'")) out += hex4(code, Boolean(flavour.upper))
    else if (flavour.nonAscii && code > 0x7f) {
      // UTF-16 code units: a surrogate pair for astral characters.
      // eslint-disable-next-line unicorn/prefer-code-point -- UTF-16 code units are what is wanted here
      for (let i = 0; i < char.length; i++) out += hex4(char.charCodeAt(i), Boolean(flavour.upper))
    } else out += char
  }

  return out
}

/** Percent-encoding of the UTF-8 bytes, keeping `safe`, with `+` for space when `plus`. */
function percent(text: string, safe: string, options: {lower?: boolean; plus?: boolean} = {}): string {
  let out = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCodePoint(byte)
    if (/[A-Za-z0-9]/.test(char) || safe.includes(char)) out += char
    else if (char === ' ' && options.plus) out += '+'
    else {
      const digits = byte.toString(16).padStart(2, '0')
      out += `%${options.lower ? digits : digits.toUpperCase()}`
    }
  }

  return out
}

/**
 * The part of `base64(prefix + value + suffix)` that depends on the value alone: encode with two
 * prefixes (and suffixes) that differ in every bit, keep the longest run of characters that agree.
 */
function base64Core(value: Buffer, prefixLength: number, suffixLength: number, url: boolean): string {
  const encode = (fill: number): string =>
    Buffer.concat([Buffer.alloc(prefixLength, fill), value, Buffer.alloc(suffixLength, fill)]).toString(
      url ? 'base64url' : 'base64',
    )
  const a = encode(0x00).replace(/=+$/, '')
  const b = encode(0xff).replace(/=+$/, '')
  let best = ''
  let run = ''
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    run = a[i] === b[i] ? run + a[i] : ''
    if (run.length > best.length) best = run
  }

  return best
}

/** Values with the characters that encoders treat differently, plus any Unicode. */
const tricky = fc.constantFrom(...'"\\/<>&\' +%()*!~=?#é€😀\u2028\u2029\t\u0001\u007fAz09-_.'.match(/./gsu)!)
const textValue = fc
  .oneof(
    fc.array(tricky, {minLength: 2, maxLength: 16}).map((chars) => chars.join('')),
    fc.string({minLength: 2, maxLength: 16, unit: 'binary'}),
    fc.string({minLength: 4, maxLength: 24}),
  )
  .filter((text) => Buffer.byteLength(text) >= 4 && !text.includes('\0') && !/^\s|\s$/.test(text))
  .filter((text) => Buffer.from(text, 'utf8').toString('utf8') === text) // no lone surrogates

const surroundings = fc
  .string({maxLength: 40, unit: 'grapheme-ascii'})
  .map((text) => text.replaceAll('\0', ''))

/** Two hex digits per byte, as `printf %02x` (or `%02X`) writes them. */
function hex(bytes: Uint8Array, upper: boolean): string {
  return Array.from(bytes, (byte) => {
    const digits = byte.toString(16).padStart(2, '0')
    return upper ? digits.toUpperCase() : digits
  }).join('')
}

/** Property: `encode(value)` between random text, in random chunks, never survives. */
function neverSurvives(encode: (value: string) => string, values = textValue): void {
  fc.assert(
    fc.property(
      values,
      surroundings,
      surroundings,
      fc.array(fc.nat(), {maxLength: 12}),
      (value, before, after, cuts) => {
        const encoded = Buffer.from(encode(value), 'utf8')
        const data = Buffer.concat([Buffer.from(before), encoded, Buffer.from(after)])
        const out = maskChunks(maskPatterns([Buffer.from(value, 'utf8')]), cut(data, cuts))
        assert.ok(
          !out.includes(encoded),
          `${JSON.stringify(encode(value))} survived in ${JSON.stringify(out.toString())}`,
        )
      },
    ),
    {numRuns: 150},
  )
}

/** bash `printf %q` and zsh's (q) flag: a backslash before each special character (# and ~ first only). */
function backslashQuoted(value: string): string {
  return [...value]
    .map((char, i) =>
      ' !"$&\'()*,;<>?[\\]^`{|}'.includes(char) || (i === 0 && '#~'.includes(char)) ? `\\${char}` : char,
    )
    .join('')
}

describe('core/mask: encodings that programs print (property)', () => {
  describe('base64', () => {
    it('at every byte alignment, behind and before other bytes (printf "user:%s" | base64)', () => {
      fc.assert(
        fc.property(
          // Inside a longer text, values of 5 bytes or more (see MIN_BASE64_INNER).
          fc.uint8Array({minLength: 5, maxLength: 40}).map((bytes) => Buffer.from(bytes)),
          fc.nat(7),
          fc.nat(4),
          fc.boolean(),
          fc.array(fc.nat(), {maxLength: 10}),
          (value, prefixLength, suffixLength, url, cuts) => {
            const core = base64Core(value, prefixLength, suffixLength, url)
            const data = Buffer.from(
              Buffer.concat([
                Buffer.alloc(prefixLength, 0x3a),
                value,
                Buffer.alloc(suffixLength, 0x0a),
              ]).toString(url ? 'base64url' : 'base64'),
            )
            const out = maskChunks(maskPatterns([value]), cut(data, cuts)).toString('latin1')
            const text = data.toString('latin1')
            const at = text.indexOf(core)
            const outside = `${text.slice(0, at)}\0${text.slice(at + core.length)}`
            // At most two characters of the value's part survive together (the ones at its ends
            // that padding can make look value-only): no three in a row that only it contains.
            for (let i = 0; i + 3 <= core.length; i++) {
              const piece = core.slice(i, i + 3)
              assert.ok(!out.includes(piece) || outside.includes(piece), `${piece} of ${core} in ${out}`)
            }
          },
        ),
        {numRuns: 300},
      )
    })

    it('of the value followed by a newline (echo "$P" | base64), whole', () => {
      neverSurvives((value) => Buffer.from(`${value}\n`).toString('base64'))
    })

    it('of the value as UTF-16LE inside a longer script (PowerShell -EncodedCommand), and UTF-16LE raw', () => {
      fc.assert(
        fc.property(
          // UTF-16LE forms are made when value and form are 5 bytes or more (as for base64 inside a text).
          textValue.filter((text) => Buffer.byteLength(text) >= 5 && Buffer.byteLength(text, 'utf16le') >= 5),
          surroundings,
          surroundings,
          fc.array(fc.nat(), {maxLength: 10}),
          (value, a, b, cuts) => {
            const script = Buffer.from(`${a}$env:TOKEN = "${value}"${b}`, 'utf16le')
            const encoded = Buffer.from(script.toString('base64'))
            const utf16 = Buffer.from(value, 'utf16le')
            const out = maskChunks(maskPatterns([Buffer.from(value, 'utf8')]), cut(encoded, cuts))
            // Nothing of the value's own UTF-16LE comes back out of the masked base64.
            const decoded = Buffer.from(out.toString('latin1').replaceAll(/[^\w+/=]/g, ''), 'base64')
            assert.ok(!decoded.includes(utf16), `${value} survived in ${out.toString('latin1')}`)
            const raw = maskChunks(maskPatterns([Buffer.from(value, 'utf8')]), cut(script, cuts))
            assert.ok(!raw.includes(utf16), `${value} survived raw in UTF-16LE`)
          },
        ),
        {numRuns: 200},
      )
    })
  })

  describe('JSON escapes', () => {
    const flavours: Record<string, JsonFlavour> = {
      'JavaScript JSON.stringify': {},
      'Python json.dumps (ensure_ascii)': {nonAscii: true},
      'PHP json_encode': {nonAscii: true, solidus: true},
      'PHP json_encode JSON_UNESCAPED_UNICODE': {solidus: true},
      'Go encoding/json (HTML-safe)': {html: true},
      'upper-case hex (Python style)': {nonAscii: true, upper: true},
      'upper-case hex (Go style)': {html: true, upper: true},
      "Java Gson (HTML-safe by default: also = and ')": {gson: true, html: true},
    }
    for (const [name, flavour] of Object.entries(flavours)) {
      it(name, () => {
        neverSurvives((value) => jsonString(value, flavour))
      })
    }

    it('the test encoder agrees with JSON.stringify for the JavaScript flavour', () => {
      fc.assert(
        fc.property(textValue, (value) => {
          assert.equal(jsonString(value, {}), JSON.stringify(value).slice(1, -1))
        }),
      )
    })
  })

  describe('URL encodings', () => {
    const flavours: Record<string, (value: string) => string> = {
      encodeURIComponent: (value) => encodeURIComponent(value),
      "Python quote(safe='')": (value) => percent(value, '_.-~'),
      'Python quote (safe="/")': (value) => percent(value, '_.-~/'),
      'lower-case hex': (value) => percent(value, '_.-~', {lower: true}),
      'form encoding (URLSearchParams)': (value) => new URLSearchParams([['', value]]).toString().slice(1),
      'form encoding (Python quote_plus)': (value) => percent(value, '_.-~', {plus: true}),
      'form encoding (PHP urlencode)': (value) => percent(value, '_.-', {plus: true}),
      'form encoding, lower-case hex': (value) => percent(value, '_.-~', {lower: true, plus: true}),
      // Encoders that keep some reserved characters as they are (a value with `$&+,;=:@/?#`).
      encodeURI: (value) => encodeURI(value),
      'Go url.PathEscape (keeps $&+:=@)': (value) => percent(value, '-_.~$&+:=@'),
      'Go URL paths, URL.EscapedPath (keeps $&+,/:;=@)': (value) => percent(value, '-_.~$&+,/:;=@'),
      '.NET HttpUtility.UrlEncode (keeps !*(), + for space, lower-case hex)': (value) =>
        percent(value, '-_.!*()', {lower: true, plus: true}),
      'Rust percent_encoding NON_ALPHANUMERIC (keeps nothing)': (value) => percent(value, ''),
      'jQuery.param (encodeURIComponent, then + for space)': (value) =>
        encodeURIComponent(value).replaceAll('%20', '+'),
      'JavaScript escape() (%uXXXX beyond Latin-1)': (value) => escape(value),
    }
    for (const [name, encode] of Object.entries(flavours)) {
      it(name, () => {
        neverSurvives(encode)
      })
    }
  })

  describe('HTML and XML escapes (a page or error template that echoes the value)', () => {
    /** Character-by-character escaping, `&` included, as each library's table says. */
    const escaper =
      (table: Readonly<Record<string, string>>) =>
      (value: string): string =>
        [...value].map((char) => table[char] ?? char).join('')
    const TEXT = {'&': '&amp;', '<': '&lt;', '>': '&gt;'}
    const flavours: Record<string, (value: string) => string> = {
      'Python html.escape, Django escape': escaper({...TEXT, '"': '&quot;', "'": '&#x27;'}),
      'Python html.escape(quote=False), xml.sax.saxutils.escape': escaper(TEXT),
      'xml.sax.saxutils.quoteattr, ElementTree attributes (&quot; only)': escaper({...TEXT, '"': '&quot;'}),
      'PHP htmlspecialchars (ENT_QUOTES, the default since 8.1)': escaper({
        ...TEXT,
        '"': '&quot;',
        "'": '&#039;',
      }),
      'Go html.EscapeString, markupsafe (Jinja2, Flask)': escaper({...TEXT, '"': '&#34;', "'": '&#39;'}),
      'Ruby CGI.escapeHTML, lodash escape, .NET WebUtility.HtmlEncode': escaper({
        ...TEXT,
        '"': '&quot;',
        "'": '&#39;',
      }),
      'Go html/template (also +)': escaper({...TEXT, '"': '&#34;', "'": '&#39;', '+': '&#43;'}),
      'XML with &apos; (PHP ENT_XML1, .NET SecurityElement.Escape)': escaper({
        ...TEXT,
        '"': '&quot;',
        "'": '&apos;',
      }),
      'mustache.js (also / = `)': escaper({
        ...TEXT,
        '"': '&quot;',
        "'": '&#39;',
        '/': '&#x2F;',
        '=': '&#x3D;',
        '`': '&#x60;',
      }),
      'Handlebars (also = `)': escaper({...TEXT, '"': '&quot;', "'": '&#x27;', '=': '&#x3D;', '`': '&#x60;'}),
    }
    for (const [name, encode] of Object.entries(flavours)) {
      it(name, () => {
        neverSurvives(encode)
      })
    }
  })

  describe('shell quoting and quoted string literals (set -x, printf %q, repr)', () => {
    /** Printable text (ASCII and beyond): what these quoters keep as text rather than octal escapes. */
    const printable = textValue.filter((text) => !/[\u0000-\u001F\u007F-\u009F\u2028\u2029]/.test(text))
    const flavours: Record<string, (value: string) => string> = {
      "bash and zsh set -x, bash's @Q expansion ('\\'' for a quote)": (value) =>
        value.replaceAll("'", String.raw`'\''`),
      "Python shlex.quote ('\"'\"' for a quote)": (value) => value.replaceAll("'", `'"'"'`),
      "YAML single-quoted (PyYAML, Go yaml), SQL literals ('' for a quote)": (value) =>
        value.replaceAll("'", "''"),
      'bash printf %q, zsh (q) expansion': backslashQuoted,
      "Python repr, PHP var_export, Perl Data::Dumper ('…\\'…')": (value) =>
        value.replaceAll('\\', '\\\\').replaceAll("'", String.raw`\'`),
    }
    for (const [name, encode] of Object.entries(flavours)) {
      it(name, () => {
        neverSurvives(encode, printable)
      })
    }
  })

  describe('hexadecimal (xxd -p, Python .hex(), od | tr -d)', () => {
    for (const upper of [false, true]) {
      it(`${upper ? 'upper' : 'lower'}-case digits of any bytes, inside other hex text`, () => {
        fc.assert(
          fc.property(
            fc.uint8Array({minLength: 4, maxLength: 40}),
            fc.uint8Array({maxLength: 20}),
            surroundings,
            fc.array(fc.nat(), {maxLength: 12}),
            (value, hexAround, after, cuts) => {
              const encoded = Buffer.from(hex(value, upper))
              const data = Buffer.concat([Buffer.from(hex(hexAround, upper)), encoded, Buffer.from(after)])
              const out = maskChunks(maskPatterns([Buffer.from(value)]), cut(data, cuts))
              assert.ok(!out.includes(encoded), `${encoded.toString()} survived in ${out.toString()}`)
            },
          ),
          {numRuns: 150},
        )
      })
    }
  })

  describe('trimmed and partial values', () => {
    it('a value stored with a trailing newline is masked without it', () => {
      fc.assert(
        fc.property(
          textValue,
          fc.constantFrom('\n', '\r\n', '\n\n', ' \n'),
          surroundings,
          (value, ending, after) => {
            const patterns = maskPatterns([Buffer.from(value + ending)])
            const out = maskChunks(patterns, [Buffer.from(`[${value}]${after}`)])
            assert.ok(!out.includes(Buffer.from(value)), JSON.stringify(out.toString()))
          },
        ),
        {numRuns: 150},
      )
    })

    it(`a multi-line value printed line by line: every line of at least ${MIN_LINE_LENGTH} bytes is masked`, () => {
      const line = fc.string({minLength: 1, maxLength: 30, unit: 'grapheme-ascii'}).map((text) => text.trim())
      fc.assert(
        fc.property(
          fc.array(line, {minLength: 2, maxLength: 8}),
          fc.array(fc.nat(), {maxLength: 10}),
          (lines, cuts) => {
            fc.pre(
              lines.some((item) => item.length >= MIN_LINE_LENGTH) &&
                !lines.some((item) => item.includes('\0')),
            )
            const value = Buffer.from(`${lines.join('\n')}\n`)
            const printed = Buffer.from(lines.map((item, i) => `${i}: ${item}\n`).join(''))
            const out = maskChunks(maskPatterns([value]), cut(printed, cuts))
            for (const item of lines)
              if (item.length >= MIN_LINE_LENGTH)
                assert.ok(!out.includes(Buffer.from(item)), `${item} in ${out}`)
          },
        ),
        {numRuns: 150},
      )
    })

    it('a PEM key printed line by line', () => {
      const body = randomBytes(300).toString('base64')
      const lines = [
        '-----BEGIN PRIVATE KEY-----',
        ...(body.match(/.{1,64}/g) ?? []),
        '-----END PRIVATE KEY-----',
      ]
      const value = Buffer.from(`${lines.join('\n')}\n`)
      const printed = Buffer.from(lines.map((item) => `log: ${item} |\n`).join(''))
      const out = maskChunks(maskPatterns([value]), [printed]).toString()
      for (const item of lines.slice(1, -1)) assert.ok(!out.includes(item), out)
    })
  })

  describe('bounds', () => {
    it('keeps the number of patterns per value bounded', () => {
      fc.assert(
        fc.property(textValue, (value) => {
          // One pattern per encoder's form of the value (and of its trimmed and newline-ended
          // variants): at most 73 seen over 100,000 generated values (68 before the jQuery,
          // escape(), mustache and Gson forms; 64 was too tight for both). Bounded, not growing.
          const count = maskPatterns([Buffer.from(value)]).length
          assert.ok(count <= 96, String(count))
        }),
      )
      const pem = Buffer.from(
        Array.from({length: 100}, (_, i) => `line ${String(i).padStart(3, '0')} ${'x'.repeat(50)}`).join(
          '\n',
        ),
      )
      // Lines get their raw and text forms, not every base64 alignment.
      assert.ok(maskPatterns([pem]).length <= 100 * 12 + 64)
      // A huge multi-line value: at most MAX_LINES of its lines get patterns of their own.
      const bundle = Buffer.from(
        Array.from({length: 5 * MAX_LINES}, (_, i) => `distinct line ${i}`).join('\n'),
      )
      const patterns = maskPatterns([bundle])
      assert.ok(patterns.some((p) => p.equals(Buffer.from('distinct line 0'))))
      assert.ok(patterns.length <= MAX_LINES * 25 + 64, String(patterns.length))
    })
  })
})
