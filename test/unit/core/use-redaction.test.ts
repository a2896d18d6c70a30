import assert from 'node:assert/strict'

import {createRedactor, shareMaskers} from '../../../src/core/use/redaction.js'

const SECRET = 'can ary/+=&!secret'
const MASK = '<concealed by agentvault>'

describe('core/use/redaction', () => {
  it('conceals the raw, base64, URL-encoded, form-encoded and JSON-escaped forms', () => {
    const forms = [
      SECRET,
      Buffer.from(SECRET).toString('base64'),
      Buffer.from(SECRET).toString('base64url'),
      encodeURIComponent(SECRET),
      new URLSearchParams([['', SECRET]]).toString().slice(1),
    ]
    for (const form of forms) {
      const redactor = createRedactor([Buffer.from(SECRET)])
      assert.equal(redactor.bytes(Buffer.from(`<${form}>`)).toString(), `<${MASK}>`, form)
      assert.equal(redactor.redacted, true)
    }
  })

  it('conceals a value in a header name whatever its case; other names are kept as they are', () => {
    const redactor = createRedactor([Buffer.from('MixedCase-Token-77')])
    assert.equal(redactor.headerName('x-session-mixedcase-token-77'), `x-session-${MASK}`)
    assert.equal(redactor.headerName('X-Session-MIXEDCASE-TOKEN-77-end'), `x-session-${MASK}-end`)
    assert.equal(redactor.redacted, true)
    const clean = createRedactor([Buffer.from('MixedCase-Token-77')])
    assert.equal(clean.headerName('Content-Type'), 'Content-Type')
    assert.equal(clean.redacted, false)
  })

  it('leaves other bytes alone and says so', () => {
    const redactor = createRedactor([Buffer.from(SECRET)])
    const binary = Buffer.from(Array.from({length: 256}, (_, i) => i))
    assert.equal(redactor.bytes(binary), binary)
    assert.equal(redactor.text('nothing here'), 'nothing here')
    assert.equal(redactor.redacted, false)
  })

  it('finds a secret in a URL however its query is encoded (lower-case hex, +, raw)', () => {
    const redactor = createRedactor([Buffer.from(SECRET)])
    const lower = encodeURIComponent(SECRET).replaceAll(/%[\dA-F]{2}/g, (hex) => hex.toLowerCase())
    assert.equal(redactor.inUrl(new URL(`https://x.example/?k=${lower}`)), true)
    assert.equal(redactor.inUrl(new URL(`https://x.example/p/${encodeURIComponent(SECRET)}`)), true)
    assert.equal(redactor.inUrl(new URL('https://x.example/?k=other')), false)
    assert.equal(redactor.inUrl(new URL('https://x.example/%E0%A4%A')), false)
    assert.equal(redactor.redacted, false, 'checking a URL redacts nothing')
  })

  it('finds a secret in a URL whose parsing lower-cased it (a redirect to http://<Value>.example/)', () => {
    const redactor = createRedactor([Buffer.from('MixedCaseTok3n')])
    // URL parsing lower-cases hosts and schemes: the value is there, in another case.
    assert.equal(redactor.inUrl(new URL('http://MixedCaseTok3n.allowed.example/')), true)
    assert.equal(redactor.inUrl(new URL('MixedCaseTok3n:rest')), true)
    assert.equal(redactor.inUrl(new URL('http://other.allowed.example/')), false)
    assert.equal(redactor.redacted, false, 'checking a URL redacts nothing')
  })

  it('message: conceals every form whatever its case, and keeps the rest of the text as written', () => {
    const redactor = createRedactor([Buffer.from('MixedCase-Token-77')], '[M]')
    assert.equal(
      redactor.message('To mixedcase-token-77.Evil.Example’s — MixedCase-Token-77, MIXEDCASE-TOKEN-77 ✓'),
      'To [M].Evil.Example’s — [M], [M] ✓',
    )
    assert.equal(redactor.redacted, true)
    const clean = createRedactor([Buffer.from('MixedCase-Token-77')])
    const text = 'Refused to follow a redirect from A.example to B.example’s host ✓'
    assert.equal(clean.message(text), text)
    assert.equal(clean.redacted, false)
  })

  it('redacts strings anywhere inside a result value, object keys too', () => {
    const redactor = createRedactor([Buffer.from(SECRET)])
    assert.deepEqual(redactor.value({a: [SECRET, 1, null], b: {c: `x${SECRET}`}, d: true}), {
      a: [MASK, 1, null],
      b: {c: `x${MASK}`},
      d: true,
    })
    // A backend's error JSON keyed by what it was sent.
    assert.deepEqual(redactor.value({[SECRET]: 'unknown key', nested: {[`k-${SECRET}`]: 1}}), {
      [MASK]: 'unknown key',
      nested: {[`k-${MASK}`]: 1},
    })
  })
})

describe('core/use/redaction: maskers shared by a long-lived process', () => {
  afterEach(() => {
    shareMaskers(false)
  })

  it('with sharing on, each redactor also conceals every value redacted before; each keeps its own `redacted`', () => {
    const a = Buffer.from('alpha-secret-1234')
    const b = Buffer.from('bravo-secret-5678')
    const data = Buffer.from(`x ${a.toString()} y ${b.toString()} X-ALPHA-SECRET-1234`)
    const results = (redactor: ReturnType<typeof createRedactor>): string[] => [
      redactor.bytes(data).toString(),
      redactor.headerName('x-alpha-secret-1234'),
    ]
    const [onlyA, onlyB, both] = [[a], [b], [a, b]].map((values) => results(createRedactor(values, '[M]')))
    assert.equal(shareMaskers(true), true)
    for (let round = 0; round < 3; round++) {
      for (const [index, values] of [[a], [b], [a, b]].entries()) {
        const copies = values.map((value) => Buffer.from(value))
        const shared = createRedactor(copies, '[M]')
        for (const copy of copies) copy.fill(0) // the caller wipes its values: the masker is its own
        assert.equal(shared.redacted, false)
        // Only the very first redactor has nothing remembered before it.
        assert.deepEqual(results(shared), round === 0 && index === 0 ? onlyA : both)
        assert.equal(shared.redacted, true)
        assert.equal(createRedactor(values, '[M]').redacted, false, 'a fresh redactor starts clean')
      }
    }

    // Sharing off: the remembered values are forgotten.
    shareMaskers(false)
    assert.deepEqual(results(createRedactor([b], '[M]')), onlyB)
    shareMaskers(true)
    // Another marker is another masker.
    assert.ok(createRedactor([a], '[N]').bytes(data).toString().includes('[N]'))
  })
})
