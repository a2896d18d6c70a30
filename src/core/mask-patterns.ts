/**
 * The byte patterns that conceal a secret value in output: the value itself and the forms in which
 * programs commonly print it (product.md §4). Shared by `run`'s masker and the use engine's
 * response redaction.
 *
 * Coverage, per value of at least `minLength` bytes:
 * - the value, and its trimmed forms (without trailing newlines; without surrounding whitespace);
 * - base64 (standard and URL alphabets) at each of the three byte alignments, as the value appears
 *   inside a longer encoded text (`printf 'user:%s' "$P" | base64`, `curl -v -u`): the characters
 *   that depend on the value alone (values of 5 bytes or more: fewer characters would match
 *   unrelated base64 too often), plus the whole padded and unpadded forms of the value and of
 *   the value followed by a newline (`echo "$P" | base64`);
 * - percent-encoding as encodeURIComponent, RFC 3986 (Python `quote(safe='')`, PHP `rawurlencode`,
 *   curl), Python `quote` (keeps `/`), encodeURI (keeps `;,/?:@&=+$#`), Go `url.PathEscape` and
 *   URL paths (keep `$&+:=@`, and `,/;`), Rust `NON_ALPHANUMERIC` (keeps nothing) and the form
 *   encodings (`+` for space: URLSearchParams, `quote_plus`, PHP `urlencode`, .NET
 *   `HttpUtility.UrlEncode`, jQuery.param's `encodeURIComponent` with `+`), each with upper- and
 *   lower-case hex, and JavaScript's legacy `escape()` (`%uXXXX` beyond Latin-1);
 * - JSON string escapes as JavaScript, Python `json.dumps` (non-ASCII as `\uXXXX`, astral
 *   characters as surrogate pairs), PHP `json_encode` (also `\/`), Go `encoding/json` (`\u003c
 *   \u003e \u0026 \u2028 \u2029`), Java's Gson (also `\u003d \u0027`) and .NET
 *   `System.Text.Json` write them, each with upper- and lower-case hex;
 * - HTML and XML escapes, as template engines and escapers write a value into a page or an error
 *   page (`&amp; &lt; &gt;`, with `"` as `&quot;` or `&#34;` or kept, `'` as `&#x27;`, `&#039;`,
 *   `&#39;`, `&apos;` or kept, Go html/template's `&#43;` for `+`, and mustache.js's and
 *   Handlebars' `&#x2F;` for `/`, `&#x3D;` for `=`, `&#x60;` for a backtick);
 * - shell quoting, as `set -x` traces print a command's arguments (bash, zsh: `'\''` for a quote;
 *   `${v@Q}` too), Python `shlex.quote` (`'"'"'`), bash `printf %q` and zsh `${(q)v}` (a backslash
 *   before each special character), and single-quoted literals with backslash escapes (Python
 *   `repr`, PHP `var_export`, Perl Data::Dumper: `\'` and `\\`), and `''` for a quote (YAML
 *   single-quoted scalars as PyYAML and Go's yaml write them, SQL string literals);
 * - UTF-16LE (PowerShell `-EncodedCommand`, .NET `Encoding.Unicode`) of a valid UTF-8 value when
 *   both are 5 bytes or more: the raw bytes, and their base64 at every alignment as for the value;
 * - hexadecimal (values of 4 bytes or more), lower and upper case, as one run of digits (`xxd -p` of a value up to 30 bytes,
 *   `od -An -tx1 -v | tr -d ' \n'`, Python `.hex()`, `hexdump -ve '1/1 "%02x"'`, `printf %X`);
 * - for a multi-line value (a PEM key), each line of at least {@link MIN_LINE_LENGTH} bytes (its
 *   first {@link MAX_LINES} such lines), raw and in the URL and JSON forms (not base64: a line is
 *   rarely encoded on its own).
 *
 * Not covered (the honest limits): values under `minLength` bytes, other transformations (hashes,
 * encryption, compression, case changes, reversed or interleaved text), nested encodings (the
 * base64 of a URL-encoded value, …), base64 or hex wrapped across lines (`xxd -p` of a value over 30 bytes) or spaced
 * (`od -tx1`, `xxd` without -p), and a value printed partially.
 */
import {isUtf8} from 'node:buffer'

/** Lines of a multi-line value shorter than this are not masked on their own (they are too common). */
export const MIN_LINE_LENGTH = 8

/**
 * Shortest run of base64 characters masked inside a longer base64 text (36 bits: on random base64
 * a false match once in ~7·10¹⁰ positions; four characters would be once in ~1.7·10⁷). A value of
 * 5 bytes or more yields at least this many at every alignment.
 */
const MIN_BASE64_INNER = 6

/** Shortest value, and UTF-16LE form of it, whose UTF-16LE forms are masked (as for base64 inside a longer text). */
const MIN_UTF16_BYTES = 5

/** Shortest value whose hexadecimal is masked (8 digits: once in ~4·10⁹ positions of random hex). */
const MIN_HEX_BYTES = 4

/** Lines of one value masked on their own, at most (a bound on the patterns a huge value makes). */
export const MAX_LINES = 1000

/** Options for {@link maskPatterns}. */
export interface MaskPatternOptions {
  /**
   * Values shorter than this many bytes are not masked (default 4): concealing every occurrence of
   * a 1–3 byte value would shred all output. The caller is expected to warn about such values.
   */
  minLength?: number
}

/**
 * The byte patterns to conceal for the given secret values (see the module comment for what they
 * cover). Values shorter than `minLength` bytes are skipped. The result is deduplicated and sorted
 * longest first (ties in byte order, so the result is deterministic).
 */
export function maskPatterns(values: readonly Buffer[], options: MaskPatternOptions = {}): Buffer[] {
  const minLength = Math.max(1, options.minLength ?? 4)
  const patterns: Buffer[] = []
  for (const value of values) {
    if (value.length < minLength) continue
    const wholes = unique([value, trimEnd(value, NEWLINE), trim(value)]).filter((v) => v.length >= minLength)
    for (const whole of wholes) {
      patterns.push(whole, ...base64Forms(whole), ...textForms(whole), ...hexForms(whole))
      if (whole.at(-1) !== 0x0a) patterns.push(...base64Whole(Buffer.concat([whole, NEWLINE_BYTE])))
    }

    // UTF-16LE, as PowerShell's -EncodedCommand, .NET's Encoding.Unicode and Windows APIs carry
    // text: the raw bytes, and their base64 at every alignment (a script that names the value).
    if (value.length >= MIN_UTF16_BYTES && isUtf8(value)) {
      const utf16 = Buffer.from(value.toString('utf8'), 'utf16le')
      if (utf16.length >= MIN_UTF16_BYTES) patterns.push(utf16, ...base64Forms(utf16))
    }

    const lineLength = Math.max(minLength, MIN_LINE_LENGTH)
    const lines = splitLines(value)
    if (lines.length > 1) {
      const long = unique(lines.filter((line) => line.length >= lineLength)).slice(0, MAX_LINES)
      for (const line of long) patterns.push(line, ...textForms(line))
    }
  }

  return uniqueLongestFirst(patterns)
}

/** Non-empty patterns without duplicates, longest first, ties in byte order (deterministic). */
export function uniqueLongestFirst(patterns: readonly Buffer[]): Buffer[] {
  const sorted = patterns
    .filter((p) => p.length > 0)
    .sort((a, b) => b.length - a.length || Buffer.compare(a, b))
  return sorted.filter((p, i) => i === 0 || !p.equals(sorted[i - 1]!))
}

const NEWLINE = new Set([0x0a, 0x0d])
const WHITESPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20])
const NEWLINE_BYTE = Buffer.of(0x0a)

function unique(buffers: readonly Buffer[]): Buffer[] {
  const seen = new Set<string>()
  return buffers.filter((b) => {
    const key = b.toString('latin1')
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

function trimEnd(value: Buffer, bytes: ReadonlySet<number>): Buffer {
  let end = value.length
  while (end > 0 && bytes.has(value[end - 1]!)) end--
  return value.subarray(0, end)
}

function trim(value: Buffer): Buffer {
  let start = 0
  while (start < value.length && WHITESPACE.has(value[start]!)) start++
  return trimEnd(value.subarray(start), WHITESPACE)
}

/** The lines of a value, each without surrounding whitespace (as `while read line` prints them). */
function splitLines(value: Buffer): Buffer[] {
  const lines: Buffer[] = []
  let from = 0
  for (let at = value.indexOf(0x0a); at !== -1; at = value.indexOf(0x0a, from)) {
    lines.push(trim(value.subarray(from, at)))
    from = at + 1
  }

  lines.push(trim(value.subarray(from)))
  return lines.filter((line) => line.length > 0)
}

function latin1(text: string): Buffer {
  return Buffer.from(text, 'latin1')
}

/** The whole base64 of `value` at alignment 0: padded and unpadded, standard and URL alphabets. */
function base64Whole(value: Buffer): Buffer[] {
  const standard = value.toString('base64')
  const url = value.toString('base64url')
  return [
    latin1(standard),
    latin1(standard.replace(/=+$/, '')),
    latin1(url),
    latin1(`${url}${'='.repeat((4 - (url.length % 4)) % 4)}`),
  ]
}

/**
 * Base64 of the value at each byte alignment: when `k` bytes precede it in the encoded text (k
 * mod 3 = 0, 1, 2), the characters whose six bits all come from the value are fixed whatever
 * surrounds it. Plus the whole forms at alignment 0, which also conceal the last characters.
 */
function base64Forms(value: Buffer): Buffer[] {
  const forms = base64Whole(value)
  for (let k = 0; k < 3; k++) {
    const shifted = Buffer.concat([Buffer.alloc(k), value])
    const start = Math.ceil((8 * k) / 6)
    const end = Math.floor((8 * shifted.length) / 6)
    for (const alphabet of ['base64', 'base64url'] as const) {
      const inner = shifted.toString(alphabet).slice(start, end)
      if (inner.length >= MIN_BASE64_INNER) forms.push(latin1(inner))
    }
  }

  return forms
}

/** URL and JSON forms (JSON only for valid UTF-8: decoding anything else would invent characters). */
/**
 * The value in hexadecimal, lower and upper case (ASCII); none under {@link MIN_HEX_BYTES} bytes,
 * whatever `minLength` says (six hex digits turn up in any hex dump).
 */
function hexForms(value: Buffer): Buffer[] {
  if (value.length < MIN_HEX_BYTES) return []
  const hex = value.toString('hex')
  return [Buffer.from(hex, 'latin1'), Buffer.from(hex.toUpperCase(), 'latin1')]
}

function textForms(value: Buffer): Buffer[] {
  const forms = URL_STYLES.flatMap((style) => [
    percentEncode(value, style, false),
    percentEncode(value, style, true),
  ])
  forms.push(...htmlForms(value), ...shellForms(value))
  if (isUtf8(value)) {
    const text = value.toString('utf8')
    forms.push(latin1(jsEscape(text)))
    for (const style of JSON_STYLES) {
      forms.push(
        Buffer.from(jsonEscape(text, style, false), 'utf8'),
        Buffer.from(jsonEscape(text, style, true), 'utf8'),
      )
    }
  }

  return forms
}

interface UrlStyle {
  /** Bytes kept as they are besides ASCII letters and digits. */
  keep: string
  /** Space as `+` (application/x-www-form-urlencoded). */
  plus: boolean
}

const URL_STYLES: readonly UrlStyle[] = [
  {keep: "-_.!~*'()", plus: false}, // encodeURIComponent
  {keep: '-_.~', plus: false}, // RFC 3986 unreserved: Python quote(safe=''), PHP rawurlencode, curl
  {keep: '-_.~/', plus: false}, // Python quote() (safe='/')
  {keep: '-_.*', plus: true}, // URLSearchParams, HTML forms
  {keep: '-_.~', plus: true}, // Python quote_plus / urlencode
  {keep: '-_.', plus: true}, // PHP urlencode
  {keep: "-_.!~*'();,/?:@&=+$#", plus: false}, // encodeURI (keeps the reserved characters)
  {keep: '-_.~$&+:=@', plus: false}, // Go url.PathEscape
  {keep: '-_.~$&+,/:;=@', plus: false}, // Go URL paths (URL.String, EscapedPath)
  {keep: '-_.!*()', plus: true}, // .NET HttpUtility.UrlEncode
  {keep: "-_.!~*'()", plus: true}, // jQuery.param: encodeURIComponent, then + for space
  {keep: '', plus: false}, // Rust percent_encoding NON_ALPHANUMERIC
]

const HEX_UPPER = '0123456789ABCDEF'
const HEX_LOWER = '0123456789abcdef'

function percentEncode(value: Buffer, style: UrlStyle, lower: boolean): Buffer {
  const hex = lower ? HEX_LOWER : HEX_UPPER
  const keep = new Set([...style.keep].map((c) => c.codePointAt(0)))
  let out = ''
  for (const byte of value) {
    const alnum =
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
    if (alnum || keep.has(byte)) out += String.fromCodePoint(byte)
    else if (byte === 0x20 && style.plus) out += '+'
    else out += `%${hex[byte >> 4]}${hex[byte & 15]}`
  }

  return latin1(out)
}

/**
 * How HTML and XML escapers write `"`, `'`, `+`, `/`, `=` and `` ` `` (all write `&amp; &lt; &gt;`);
 * undefined keeps the character. Each differs from the others in at least one of them.
 */
const HTML_STYLES: ReadonlyArray<Readonly<Record<number, string>>> = [
  {0x22: '&quot;', 0x27: '&#x27;'}, // Python html.escape, Django escape
  {}, // html.escape(quote=False), xml.sax.saxutils.escape, PHP ENT_NOQUOTES
  {0x22: '&quot;'}, // xml.sax.saxutils.quoteattr, ElementTree attributes
  {0x22: '&quot;', 0x27: '&#039;'}, // PHP htmlspecialchars (ENT_QUOTES)
  {0x22: '&#34;', 0x27: '&#39;'}, // Go html.EscapeString, markupsafe (Jinja2, Flask)
  {0x22: '&quot;', 0x27: '&#39;'}, // Ruby CGI.escapeHTML, lodash escape, .NET WebUtility.HtmlEncode
  {0x22: '&#34;', 0x27: '&#39;', 0x2b: '&#43;'}, // Go html/template
  {0x22: '&quot;', 0x27: '&apos;'}, // XML: PHP ENT_XML1, .NET SecurityElement.Escape
  {0x22: '&quot;', 0x27: '&#39;', 0x2f: '&#x2F;', 0x3d: '&#x3D;', 0x60: '&#x60;'}, // mustache.js
  {0x22: '&quot;', 0x27: '&#x27;', 0x3d: '&#x3D;', 0x60: '&#x60;'}, // Handlebars
]
/** The bytes some style above rewrites: a value without any has no HTML form of its own. */
const HTML_SPECIAL = new Set([0x22, 0x26, 0x27, 0x2b, 0x2f, 0x3c, 0x3d, 0x3e, 0x60])
const HTML_ALWAYS: Readonly<Record<number, string>> = {0x26: '&amp;', 0x3c: '&lt;', 0x3e: '&gt;'}

/** The value as each HTML/XML escaper writes it (byte by byte: only ASCII characters change). */
function htmlForms(value: Buffer): Buffer[] {
  if (!value.some((byte) => HTML_SPECIAL.has(byte))) return []
  return HTML_STYLES.map((style) => {
    let out = ''
    for (const byte of value) out += HTML_ALWAYS[byte] ?? style[byte] ?? String.fromCodePoint(byte)
    return latin1(out)
  })
}

/** What bash's `printf %q` puts a backslash before (`#` and `~` only as the first character). */
const SHELL_SPECIAL = new Set([...' !"$&\'()*,;<>?[\\]^`{|}'].map((char) => char.codePointAt(0)!))
const SHELL_SPECIAL_FIRST = new Set([0x23, 0x7e])
const QUOTE = 0x27
const BACKSLASH = 0x5c

/**
 * The value as shells and quoting functions write it (see the module comment). Byte by byte: only
 * ASCII characters change. None when the value holds no character any of them rewrites.
 */
function shellForms(value: Buffer): Buffer[] {
  if (!value.some((byte) => SHELL_SPECIAL.has(byte) || SHELL_SPECIAL_FIRST.has(byte))) return []
  const text = value.toString('latin1')
  let backslashed = ''
  for (const byte of value)
    backslashed += SHELL_SPECIAL.has(byte) ? `\\${String.fromCodePoint(byte)}` : String.fromCodePoint(byte)
  // A leading # or ~ is escaped too when the value starts the word (printf %q "$V"), not inside one.
  const forms = [latin1(backslashed)]
  if (SHELL_SPECIAL_FIRST.has(value[0]!)) forms.push(latin1(`\\${backslashed}`))
  if (value.includes(QUOTE))
    forms.push(
      latin1(text.replaceAll("'", "'\\''")),
      latin1(text.replaceAll("'", `'"'"'`)),
      latin1(text.replaceAll("'", "''")),
    )
  if (value.includes(QUOTE) || value.includes(BACKSLASH))
    forms.push(latin1(text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")))
  return forms
}

/**
 * JavaScript's legacy `escape()` (still found writing cookies and query strings): letters, digits
 * and `@*_+-./` kept, other UTF-16 code units as `%XX` below U+0100 and `%uXXXX` above.
 */
function jsEscape(text: string): string {
  let out = ''
  for (let i = 0; i < text.length; i++) {
    // eslint-disable-next-line unicorn/prefer-code-point -- escape() works on UTF-16 code units
    const unit = text.charCodeAt(i)
    const char = text[i]!
    if (/[\dA-Za-z@*_+\-./]/.test(char)) out += char
    else if (unit < 0x1_00) out += `%${unit.toString(16).toUpperCase().padStart(2, '0')}`
    else out += `%u${unit.toString(16).toUpperCase().padStart(4, '0')}`
  }

  return out
}

interface JsonStyle {
  /** Characters written as `\u00XX` although they need no escape (Go, .NET: HTML-safe output). */
  escapeAlso: string
  /** Everything above U+007F as `\uXXXX` (astral characters as surrogate pairs). */
  nonAscii: boolean
  /** `/` as `\/`. */
  solidus: boolean
  /** `"` as `\u0022` rather than `\"` (.NET). */
  quoteAsHex: boolean
}

const JSON_STYLES: readonly JsonStyle[] = [
  {escapeAlso: '', nonAscii: false, quoteAsHex: false, solidus: false}, // JavaScript, Ruby, jq
  {escapeAlso: '', nonAscii: true, quoteAsHex: false, solidus: false}, // Python json.dumps
  {escapeAlso: '', nonAscii: true, quoteAsHex: false, solidus: true}, // PHP json_encode
  {escapeAlso: '', nonAscii: false, quoteAsHex: false, solidus: true}, // PHP JSON_UNESCAPED_UNICODE
  {escapeAlso: '<>&\u2028\u2029', nonAscii: false, quoteAsHex: false, solidus: false}, // Go encoding/json
  {escapeAlso: "<>&='\u2028\u2029", nonAscii: false, quoteAsHex: false, solidus: false}, // Java Gson (HTML-safe default)
  {escapeAlso: "<>&'+`\u007f", nonAscii: true, quoteAsHex: true, solidus: false}, // .NET System.Text.Json
]

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\\': '\\\\',
}

/** The contents of a JSON string holding `text`, as a serialiser of the given style writes it. */
function jsonEscape(text: string, style: JsonStyle, upper: boolean): string {
  const unit = (code: number): string => {
    const hex = code.toString(16).padStart(4, '0')
    return `\\u${upper ? hex.toUpperCase() : hex}`
  }

  let out = ''
  for (const char of text) {
    const code = char.codePointAt(0)!
    if (char === '"') out += style.quoteAsHex ? unit(code) : '\\"'
    else if (SHORT_ESCAPES[char]) out += SHORT_ESCAPES[char]
    else if (char === '/' && style.solidus) out += '\\/'
    else if (code < 0x20 || style.escapeAlso.includes(char)) out += unit(code)
    else if (code > 0xff_ff && style.nonAscii)
      out += unit(0xd8_00 + ((code - 0x1_00_00) >> 10)) + unit(0xdc_00 + (code & 0x3_ff))
    else if (code > 0x7f && style.nonAscii) out += unit(code)
    else out += char
  }

  return out
}
