/**
 * `call`'s response redaction beyond header values and plain bodies (issue 11 §3): header names,
 * and bodies whose content coding agentvault must decode to scan, or cannot scan at all.
 */
import assert from 'node:assert/strict'
import {gunzipSync} from 'node:zlib'

import {CANARY, createUseWorld, leakedForms, MASK, type UseWorld} from '../servers/http-upstream/fixture.js'

/** Every form of the canary a test must not find, including the lower-cased URL form. */
function forms(): string[] {
  return [...leakedForms(CANARY), encodeURIComponent(CANARY).toLowerCase(), 'canary%2b7f3a']
}

describe('e2e: call response redaction', () => {
  let world: UseWorld
  const call = (args: string[]) => world.cli(['call', ...args])
  const url = (path: string) => world.upstream.url(path)

  before(async () => {
    world = await createUseWorld()
  })

  after(() => world.dispose())

  it('conceals the value a page quotes HTML-escaped (&amp;, &#43;): body as printed and in --json', async () => {
    const escaped = [CANARY.replace('&', '&amp;'), CANARY.replace('&', '&amp;').replace('+', '&#43;')]
    const plain = await call([url('/html'), '--bearer', 'K'])
    assert.equal(plain.code, 22, plain.stderr) // an HTTP error status, as curl --fail
    assert.equal(plain.stdout, `<p>Invalid token: ${MASK}</p><input value="${MASK}">\n`)
    const json = await call([url('/html'), '--bearer', 'K', '--json', '--no-fail'])
    assert.equal(json.code, 0, json.stderr)
    const result = JSON.parse(json.stdout) as {body: string; redacted: boolean; status: number}
    assert.deepEqual([result.status, result.redacted], [400, true])
    for (const output of [plain.stdout, plain.stderr, json.stdout, json.stderr])
      for (const form of [...forms(), ...escaped]) assert.ok(!output.includes(form), `${form} in ${output}`)
  })

  it('conceals the value in response header names, also after Node lower-cased them (-i and --json)', async () => {
    const plain = await call([url('/header-name'), '--bearer', 'K', '-i'])
    assert.equal(plain.code, 0, plain.stderr)
    assert.match(plain.stdout, new RegExp(`x-session-${MASK}: active\\r\\n`))
    const json = await call([url('/header-name'), '--bearer', 'K', '--json'])
    assert.equal(json.code, 0, json.stderr)
    const result = JSON.parse(json.stdout) as {headers: Record<string, string>; redacted: boolean}
    assert.equal(result.redacted, true)
    assert.equal(result.headers[`x-session-${MASK}`], 'active')
    assert.equal(result.headers[`x-other-${MASK}`], 'also')
    for (const output of [plain.stdout, plain.stderr, json.stdout, json.stderr])
      for (const form of forms()) assert.ok(!output.toLowerCase().includes(form.toLowerCase()), form)
  })

  it('decodes a body compressed twice (Content-Encoding: gzip, gzip) and redacts it', async () => {
    const json = await call([url('/gzip?layers=2&declare=gzip,%20gzip'), '--bearer', 'K', '--json'])
    assert.equal(json.code, 0, json.stderr)
    const result = JSON.parse(json.stdout) as {body: string; redacted: boolean}
    assert.equal(result.redacted, true)
    assert.match(result.body, /Bearer <concealed by agentvault>/)
    for (const form of forms()) assert.ok(!json.stdout.includes(form), form)
  })

  for (const [what, query] of [
    ['an undeclared gzip body', 'declare=none'],
    ['a second, undeclared gzip layer', 'layers=2&declare=gzip'],
  ]) {
    it(`refuses ${what} that holds the value: exit 7, an Error and a Try this, never the body`, async () => {
      const plain = await call([url(`/gzip?${query}`), '--bearer', 'K'])
      assert.equal(plain.code, 7, plain.stderr)
      assert.equal(plain.stdout, '')
      assert.match(plain.stderr, /^Error: .*gzip.*\nTry this: .+/m)
      const json = await call([url(`/gzip?${query}`), '--bearer', 'K', '--json'])
      assert.equal(json.code, 7)
      const {error} = JSON.parse(json.stdout) as {error: {category: string; code: string}}
      assert.deepEqual([error.category, error.code], ['denied', 'SECRET_IN_COMPRESSED_BODY'])
      for (const output of [plain.stderr, json.stdout, json.stderr])
        for (const form of forms()) assert.ok(!output.includes(form), form)
    })
  }

  it('passes an undeclared gzip body without the value through byte for byte', async () => {
    const clean = await call([url('/gzip?declare=none&plain=1'), '--bearer', 'K', '--json'])
    assert.equal(clean.code, 0, clean.stdout)
    const parsed = JSON.parse(clean.stdout) as {body: string; bodyEncoding?: string; redacted: boolean}
    assert.equal(parsed.bodyEncoding, 'base64')
    assert.equal(parsed.redacted, false)
    assert.equal(gunzipSync(Buffer.from(parsed.body, 'base64')).toString(), 'nothing echoed here')
  })

  it('refuses a content coding it cannot decode (exit 7), never printing the raw body', async () => {
    for (const coding of ['zstd', 'compress', 'gzip, x-custom']) {
      const plain = await call([url(`/gzip?declare=${encodeURIComponent(coding)}`), '--bearer', 'K'])
      assert.equal(plain.code, 7, `${coding}: ${plain.stderr}`)
      assert.equal(plain.stdout, '')
      assert.match(plain.stderr, /^Error: .*cannot.*\nTry this: .*Accept-Encoding: identity/m)
      const json = await call([url(`/gzip?declare=${encodeURIComponent(coding)}`), '--bearer', 'K', '--json'])
      const {error} = JSON.parse(json.stdout) as {error: {code: string}}
      assert.equal(error.code, 'UNSCANNABLE_RESPONSE')
      for (const output of [plain.stderr, json.stdout, json.stderr])
        for (const form of forms()) assert.ok(!output.includes(form), form)
    }
  })
})
