import fc from 'fast-check'
import assert from 'node:assert/strict'
// The project imports fast-check's default export (`fc.uint8Array()`, …) as its docs do.
import {randomBytes} from 'node:crypto'

import {DEFAULT_REPLACEMENT, Masker, maskers, maskPatterns, MaskTables} from '../../../src/core/mask.js'

const R = Buffer.from(DEFAULT_REPLACEMENT)
const KiB = 1024
const MiB = 1024 * KiB

/**
 * An independent, deliberately naive implementation of the documented semantics: at each position
 * try every pattern, longest first; on a match emit the replacement and continue after it.
 */
function reference(data: Buffer, patterns: readonly Buffer[], replacement: Buffer = R): Buffer {
  const sorted = patterns.filter((p) => p.length > 0).sort((a, b) => b.length - a.length)
  const out: Buffer[] = []
  let plainFrom = 0
  let i = 0
  while (i < data.length) {
    const hit = sorted.find((p) => p[0] === data[i] && data.subarray(i, i + p.length).equals(p))
    if (hit === undefined) {
      i++
    } else {
      out.push(data.subarray(plainFrom, i), replacement)
      i += hit.length
      plainFrom = i
    }
  }

  out.push(data.subarray(plainFrom))
  return Buffer.concat(out)
}

/** Feed `chunks` one by one, then end; the concatenated output. */
function maskChunks(masker: Masker, chunks: readonly Buffer[]): Buffer {
  const out: Buffer[] = []
  for (const chunk of chunks) for (const piece of masker.push(chunk)) out.push(piece)
  for (const piece of masker.end()) out.push(piece)
  return Buffer.concat(out)
}

function maskWhole(data: Buffer, patterns: readonly Buffer[], replacement: Buffer = R): Buffer {
  return maskChunks(new Masker(patterns, replacement), [data])
}

/** Split `data` at the given cut points (any order, duplicates and out-of-range points allowed). */
function cut(data: Buffer, points: readonly number[]): Buffer[] {
  const sorted = [...new Set(points.map((p) => (data.length === 0 ? 0 : p % (data.length + 1))))].sort(
    (a, b) => a - b,
  )
  const chunks: Buffer[] = []
  let from = 0
  for (const point of sorted) {
    chunks.push(data.subarray(from, point))
    from = point
  }

  chunks.push(data.subarray(from))
  return chunks
}

function chunksOfSize(data: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = []
  for (let offset = 0; offset < data.length; offset += size) chunks.push(data.subarray(offset, offset + size))
  return chunks
}

function p(...spellings: string[]): Buffer[] {
  return spellings.map((s) => Buffer.from(s))
}

/** Mask a whole string with `#` as the replacement. */
function mask(data: string, patterns: Buffer[]): string {
  return maskWhole(Buffer.from(data), patterns, Buffer.from('#')).toString()
}

/** Prefixes (2 bytes or longer) of patterns picked by `picks`. */
function prefixesOf(patterns: readonly Buffer[], picks: readonly number[]): Buffer[] {
  return picks.map((k) => {
    const pattern = patterns[k % patterns.length]!
    return pattern.subarray(0, 2 + (k % (pattern.length - 1)))
  })
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes)
}

function containsAny(data: Buffer, patterns: readonly Buffer[]): boolean {
  return patterns.some((p) => data.includes(p))
}

function count(data: Buffer, needle: Buffer): number {
  let n = 0
  for (let at = data.indexOf(needle); at !== -1; at = data.indexOf(needle, at + needle.length)) n++
  return n
}

describe('core/mask', () => {
  describe('maskPatterns', () => {
    it('covers the raw value and its base64, base64url, URL-encoded and JSON-escaped forms', () => {
      const text = 'p+ss/wo"rd\\ é ü??'
      const value = Buffer.from(text)
      const spelled = new Set(maskPatterns([value]).map((p) => p.toString('utf8')))
      for (const form of [
        text,
        value.toString('base64'),
        value.toString('base64').replace(/=+$/, ''),
        value.toString('base64url'),
        encodeURIComponent(text),
        JSON.stringify(text).slice(1, -1),
        'cCtzcy93byJyZFwgw6kgw7w_Pw',
        // Python json.dumps, PHP json_encode, upper-case hex
        String.raw`p+ss/wo\"rd\\ \u00e9 \u00fc??`,
        String.raw`p+ss\/wo\"rd\\ \u00e9 \u00fc??`,
        String.raw`p+ss/wo\"rd\\ \u00E9 \u00FC??`,
        // .NET System.Text.Json
        String.raw`p\u002Bss/wo\u0022rd\\ \u00E9 \u00FC??`,
        // Python quote(safe=''), lower-case hex, form encoding, quote() keeping '/'
        'p%2Bss%2Fwo%22rd%5C%20%C3%A9%20%C3%BC%3F%3F',
        'p%2bss%2fwo%22rd%5c%20%c3%a9%20%c3%bc%3f%3f',
        'p%2Bss%2Fwo%22rd%5C+%C3%A9+%C3%BC%3F%3F',
        'p%2Bss/wo%22rd%5C%20%C3%A9%20%C3%BC%3F%3F',
        // base64 of the value + newline, and behind one and two other bytes
        Buffer.from(`${text}\n`).toString('base64'),
        Buffer.from(`x${text}`)
          .toString('base64')
          .slice(2, Math.floor(((value.length + 1) * 8) / 6)),
        Buffer.from(`xy${text}`)
          .toString('base64')
          .slice(3, Math.floor(((value.length + 2) * 8) / 6)),
      ])
        assert.ok(spelled.has(form), form)
    })

    it('sorts longest first and drops duplicates, also across values', () => {
      const patterns = maskPatterns([Buffer.from('abcdef'), Buffer.from('abcdef'), Buffer.from('YWJjZGVm')])
      const spelled = patterns.map(String)
      assert.equal(new Set(spelled).size, spelled.length)
      assert.deepEqual(
        maskPatterns([Buffer.from('abcdef')]),
        maskPatterns([Buffer.from('abcdef'), Buffer.from('abcdef')]),
      )
      for (const form of ['abcdef', 'YWJjZGVm', 'WVdKalpHVm0=', 'WVdKalpHVm0'])
        assert.ok(spelled.includes(form), form)
      for (let i = 1; i < patterns.length; i++) assert.ok(patterns[i - 1]!.length >= patterns[i]!.length)
    })

    it('skips values shorter than minLength (default 4 bytes)', () => {
      assert.deepEqual(maskPatterns([Buffer.from('abc'), Buffer.from('')]), [])
      assert.deepEqual(
        maskPatterns([Buffer.from('abc')], {minLength: 3})
          .map(String)
          .sort(),
        ['YWJj', 'YWJjCg', 'YWJjCg==', 'abc'],
      )
      const patterns = maskPatterns([Buffer.from('xyz'), Buffer.from('long enough')])
      assert.ok(patterns.every((p) => !p.equals(Buffer.from('xyz'))))
      assert.ok(patterns.some((p) => p.equals(Buffer.from('long enough'))))
    })

    it('gives byte forms (base64, percent-encoding) but no JSON forms for a value that is not valid UTF-8', () => {
      const value = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x25])
      const spelled = maskPatterns([value]).map((p) => p.toString('latin1'))
      for (const form of [
        value.toString('latin1'),
        value.toString('base64'),
        value.toString('base64').replace(/=+$/, ''),
        value.toString('base64url'),
        '%FF%FE%00%80%25',
        '%ff%fe%00%80%25',
      ])
        assert.ok(spelled.includes(form), form)
      assert.ok(spelled.every((form) => !form.includes('\\u')))
    })

    it('adds the trimmed value and, for several lines, each line of 8 bytes or more', () => {
      const spelled = new Set(
        maskPatterns([Buffer.from('-----BEGIN-----\nline one is long\n  short\nMIIEvQIBADAN\n')]).map(String),
      )
      for (const form of [
        '-----BEGIN-----\nline one is long\n  short\nMIIEvQIBADAN',
        'line one is long',
        'line%20one%20is%20long',
        'MIIEvQIBADAN',
      ])
        assert.ok(spelled.has(form), form)
      assert.ok(!spelled.has('short'))
    })

    it('returns nothing for no values', () => {
      assert.deepEqual(maskPatterns([]), [])
    })
  })

  describe('Masker', () => {
    const secret = Buffer.from('s3cr3t-V4LUE')

    it('masks a value split across two writes', () => {
      const masker = new Masker([secret])
      const out = maskChunks(masker, [Buffer.from('before s3cr3'), Buffer.from('t-V4LUE after')])
      assert.equal(out.toString(), `before ${DEFAULT_REPLACEMENT} after`)
    })

    it('masks a value split at every possible point', () => {
      const data = Buffer.from(`x${secret}y${secret}${secret}z`)
      const expected = `x${DEFAULT_REPLACEMENT}y${DEFAULT_REPLACEMENT}${DEFAULT_REPLACEMENT}z`
      for (let at = 0; at <= data.length; at++) {
        const out = maskChunks(new Masker([secret]), [data.subarray(0, at), data.subarray(at)])
        assert.equal(out.toString(), expected, `split at ${at}`)
      }

      for (let a = 0; a <= data.length; a++) {
        for (let b = a; b <= data.length; b++) {
          const out = maskChunks(new Masker([secret]), cut(data, [a, b]))
          assert.equal(out.toString(), expected, `split at ${a} and ${b}`)
        }
      }
    })

    it('masks values fed one byte at a time', () => {
      const patterns = maskPatterns([secret, Buffer.from('another one')])
      const data = Buffer.from(`a ${secret} b ${secret.toString('base64')} c another one d s3cr3t-V4LU`)
      const out = maskChunks(new Masker(patterns), chunksOfSize(data, 1))
      assert.equal(
        out.toString(),
        `a ${DEFAULT_REPLACEMENT} b ${DEFAULT_REPLACEMENT} c ${DEFAULT_REPLACEMENT} d s3cr3t-V4LU`,
      )
    })

    it('masks the encoded forms of a value inside surrounding text', () => {
      const text = 'p+ss/wo"rd\\ é ü??'
      const value = Buffer.from(text)
      const forms = [
        value.toString('base64'),
        value.toString('base64url'),
        encodeURIComponent(text),
        JSON.stringify(text).slice(1, -1),
        text,
      ]
      const data = Buffer.from(
        `Authorization: Basic ${forms[0]}\n` +
          `?token=${forms[2]}&x=1\n` +
          `{"password":"${forms[3]}"}\n` +
          `url-safe ${forms[1]} and raw ${forms[4]}.\n`,
      )
      const patterns = maskPatterns([value])
      for (const size of [1, 3, 7, 64, data.length]) {
        const out = maskChunks(new Masker(patterns), chunksOfSize(data, size))
        assert.equal(count(out, R), forms.length, `chunks of ${size}`)
        assert.ok(!containsAny(out, patterns), `chunks of ${size}`)
        assert.ok(out.toString().startsWith(`Authorization: Basic ${DEFAULT_REPLACEMENT}\n`))
        assert.ok(out.toString().includes(`{"password":"${DEFAULT_REPLACEMENT}"}`))
      }
    })

    it('lets the leftmost match win, then the longest, and resumes after a match', () => {
      assert.equal(mask('abcdefg', p('bcdefg', 'abcd')), '#efg') // leftmost, although shorter
      assert.equal(mask('abcdefg', p('abcd', 'abcdef')), '#g') // longest at the same position
      assert.equal(mask('abcdefg', p('abcdef', 'abcd')), '#g') // whatever the order given
      assert.equal(mask('ababab', p('abab')), '#ab') // no overlapping second match
      assert.equal(mask('aaaaaaa', p('aa')), '###a')
      assert.equal(mask('xaxyzx', p('x', 'xyz')), '#a##') // single-byte patterns work too
    })

    it('passes all 256 byte values and random binary through unchanged when no value is present', () => {
      const all = Buffer.from(Array.from({length: 256}, (_, i) => i))
      const data = Buffer.concat([all, randomBytes(256 * KiB), Buffer.from(all).reverse()])
      const patterns = maskPatterns([
        Buffer.from('\u0000\u0001 not in there'),
        Buffer.from([0xff, 0x00, 0xfe, 0x01, 0xfd]),
      ])
      assert.ok(!containsAny(data, patterns)) // guards the premise (astronomically unlikely to fail)
      for (const size of [1, 255, 4 * KiB, 64 * KiB, data.length]) {
        const out = maskChunks(new Masker(patterns), chunksOfSize(data, size))
        assert.ok(out.equals(data), `chunks of ${size}`)
      }
    })

    it('flush gives up on held bytes now and masks what follows as usual', () => {
      const masker = new Masker([secret])
      assert.equal(Buffer.concat(masker.push(Buffer.from('prompt: s3cr'))).toString(), 'prompt: ')
      assert.equal(Buffer.concat(masker.flush()).toString(), 's3cr')
      assert.equal(masker.heldBack, 0)
      // The rest of that value alone is not a value: the known limit of flushing.
      const rest = Buffer.concat([...masker.push(Buffer.from(`3t-V4LUE then ${secret}.`)), ...masker.end()])
      assert.equal(rest.toString(), `3t-V4LUE then ${DEFAULT_REPLACEMENT}.`)
    })

    it('flushes a trailing prefix of a value unchanged at the end', () => {
      const masker = new Masker([secret])
      const first = Buffer.concat(masker.push(Buffer.from('tail: s3cr3t-V4')))
      assert.equal(first.toString(), 'tail: ')
      assert.equal(masker.heldBack, 'tail: s3cr3t-V4'.length - first.length)
      assert.equal(Buffer.concat(masker.end()).toString(), 's3cr3t-V4')
      assert.equal(masker.heldBack, 0)
    })

    it('masks values around internal boundaries of large chunks', () => {
      const patterns = maskPatterns([secret, Buffer.from('second value!'), Buffer.from('hunter22')])
      const data = randomBytes(300 * KiB)
      // Straddling the places where the search splits a range (lanes, slices), and at both ends.
      const spots = [0, 4090, 16_380, 32_760, 49_140, 65_530, 98_300, 131_070, 196_600, 262_140]
      for (const [i, spot] of spots.entries()) patterns[i % patterns.length]!.copy(data, spot)
      patterns[0]!.copy(data, data.length - patterns[0]!.length)
      const expected = reference(data, patterns)
      assert.equal(count(expected, R), spots.length + 1)
      for (const size of [data.length, 64 * KiB, 65_537, 1000]) {
        assert.ok(
          maskChunks(new Masker(patterns), chunksOfSize(data, size)).equals(expected),
          `chunks of ${size}`,
        )
      }
    })

    it('streams the same output as masking the whole input at once, with no value left (property)', () => {
      // Values avoid 0x00 and the replacement is a 0x00 byte, so no pattern can straddle a
      // replacement: the output must then contain none of the patterns.
      const zero = Buffer.of(0)
      fc.assert(
        fc.property(
          fc.array(fc.uint8Array({minLength: 4, maxLength: 24, min: 1}), {minLength: 1, maxLength: 10}),
          fc.oneof(fc.uint8Array({maxLength: 300}), fc.uint8Array({maxLength: 12_000})),
          fc.array(fc.record({at: fc.nat(), which: fc.nat()}), {maxLength: 12}),
          fc.array(fc.nat(), {maxLength: 30}),
          (rawValues, base, insertions, cuts) => {
            // Without the UTF-16LE forms, which hold 0x00 (masked as any other pattern elsewhere).
            const patterns = maskPatterns(rawValues.map(toBuffer)).filter((pattern) => !pattern.includes(0))
            let data = Buffer.from(base)
            for (const {at, which} of insertions) {
              const position = at % (data.length + 1)
              const inserted = patterns[which % patterns.length]!
              data = Buffer.concat([data.subarray(0, position), inserted, data.subarray(position)])
            }

            const whole = maskWhole(data, patterns, zero)
            const streamed = maskChunks(new Masker(patterns, zero), cut(data, cuts))
            assert.ok(streamed.equals(whole))
            assert.ok(whole.equals(reference(data, patterns, zero)))
            assert.ok(!containsAny(streamed, patterns))
            // Patterns contain no 0x00, so each replacement adds one.
            if (insertions.length > 0) assert.ok(count(streamed, zero) > count(data, zero))
          },
        ),
        {numRuns: 200},
      )
    })

    it('whole() masks one input as push and end do, and returns untouched input as one view of it (property)', () => {
      fc.assert(
        fc.property(
          fc.array(fc.uint8Array({minLength: 1, maxLength: 6, max: 3}), {maxLength: 5}),
          fc.uint8Array({maxLength: 200, max: 3}),
          fc.array(fc.nat(), {maxLength: 4}),
          (rawPatterns, raw, cuts) => {
            const patterns = rawPatterns.map(toBuffer)
            const data = toBuffer(raw)
            const masker = new Masker(patterns)
            const out = masker.whole(data)
            assert.ok(Buffer.concat(out).equals(reference(data, patterns)))
            if (!containsAny(data, patterns) && data.length > 0) {
              assert.equal(out.length, 1)
              assert.equal(out[0]!.buffer, data.buffer)
              assert.equal(out[0]!.byteOffset, data.byteOffset)
              assert.equal(out[0]!.length, data.length)
            }

            // After a push that left bytes held back, whole() ends that stream with its input.
            const [first = Buffer.alloc(0), ...rest] = cut(data, cuts)
            const streamed = [...masker.push(first), ...masker.whole(Buffer.concat(rest))]
            assert.ok(Buffer.concat(streamed).equals(reference(data, patterns)))
            assert.equal(masker.heldBack, 0)
            assert.ok(Buffer.concat(masker.whole(data)).equals(reference(data, patterns)))
          },
        ),
        {numRuns: 300},
      )
    })

    it('matches the reference on dense, overlapping short patterns (property)', () => {
      // A 3-letter alphabet makes overlaps and near-misses at chunk edges the common case.
      const letters = fc.uint8Array({min: 97, max: 99, minLength: 1, maxLength: 6}).map((v) => Buffer.from(v))
      fc.assert(
        fc.property(
          fc.array(letters, {minLength: 1, maxLength: 6}),
          fc.uint8Array({min: 97, max: 99, maxLength: 400}),
          fc.array(fc.nat(), {maxLength: 40}),
          (patterns, base, cuts) => {
            const data = Buffer.from(base)
            const expected = reference(data, patterns, Buffer.from('#'))
            assert.ok(maskChunks(new Masker(patterns, Buffer.from('#')), cut(data, cuts)).equals(expected))
          },
        ),
        {numRuns: 300},
      )
    })

    it('pushAfter: the held bytes go into the room before the chunk; same output as push (property)', () => {
      const letters = fc.uint8Array({min: 97, max: 99, minLength: 1, maxLength: 8}).map((v) => Buffer.from(v))
      fc.assert(
        fc.property(
          fc.array(letters, {minLength: 1, maxLength: 6}),
          fc.uint8Array({min: 97, max: 100, maxLength: 400}),
          fc.array(fc.nat(), {maxLength: 40}),
          fc.array(fc.nat({max: 10}), {minLength: 1, maxLength: 8}),
          (patterns, base, cuts, rooms) => {
            const data = Buffer.from(base)
            const masker = new Masker(patterns, Buffer.from('#'))
            const out: Buffer[] = []
            for (const [index, chunk] of cut(data, cuts).entries()) {
              // A fresh buffer per chunk (the output holds views of it), room filled with a marker.
              const room = rooms[index % rooms.length]!
              const buffer = Buffer.concat([Buffer.alloc(room, 0xee), chunk])
              const held = masker.heldBack
              const pieces = masker.pushAfter(buffer, room, buffer.length)
              const untouched = held <= room ? room - held : room
              assert.ok(
                buffer.subarray(0, untouched).equals(Buffer.alloc(untouched, 0xee)),
                'wrote outside the room it needs',
              )
              const first = pieces[0]
              if (held > 0 && held <= room && first && first.length > 1) {
                // Not the replacement: a view of the buffer from the held bytes on, not a copy.
                assert.equal(first.buffer, buffer.buffer)
                assert.equal(first.byteOffset, buffer.byteOffset + room - held)
              }

              out.push(...pieces)
            }

            out.push(...masker.end())
            assert.ok(Buffer.concat(out).equals(reference(data, patterns, Buffer.from('#'))))
          },
        ),
        {numRuns: 300},
      )
    })

    it('finds what a naive search finds through the four-lane scan: overlaps, prefixes, long inputs (property)', () => {
      // Inputs of 4–20 KiB over 4 letters: the four-lane scan runs, and candidates are dense.
      const letters = fc
        .uint8Array({min: 97, max: 100, minLength: 2, maxLength: 12})
        .map((v) => Buffer.from(v))
      fc.assert(
        fc.property(
          fc.array(letters, {minLength: 1, maxLength: 8}),
          fc.array(fc.nat(), {maxLength: 4}),
          fc.uint8Array({min: 97, max: 100, minLength: 4096, maxLength: 20_000}),
          fc.array(fc.nat(), {maxLength: 6}),
          (base, prefixes, bytes, cuts) => {
            // Some patterns are prefixes of others.
            const patterns = [...base, ...prefixesOf(base, prefixes)]
            const data = Buffer.from(bytes)
            const make = maskers(patterns, Buffer.from('#'))
            assert.ok(maskChunks(make(), cut(data, cuts)).equals(reference(data, patterns, Buffer.from('#'))))
          },
        ),
        {numRuns: 60},
      )
    })

    it('gives the same output for a value split at every offset, with tables shared by two maskers (property)', () => {
      fc.assert(
        fc.property(
          fc.array(fc.uint8Array({minLength: 4, maxLength: 20}), {minLength: 1, maxLength: 4}),
          fc.uint8Array({maxLength: 24}),
          fc.uint8Array({maxLength: 24}),
          fc.nat(),
          (rawValues, before, after, which) => {
            const patterns = maskPatterns(rawValues.map(toBuffer))
            const data = Buffer.concat([before, patterns[which % patterns.length]!, after])
            const expected = reference(data, patterns)
            const make = maskers(patterns)
            for (let at = 0; at <= data.length; at++) {
              const out = make()
              assert.ok(
                maskChunks(out, [data.subarray(0, at), data.subarray(at)]).equals(expected),
                `split at ${at}`,
              )
            }
          },
        ),
        {numRuns: 100},
      )
    })

    it('outputs its input unchanged when the input contains no pattern (property)', () => {
      fc.assert(
        fc.property(
          fc.array(fc.uint8Array({minLength: 4, maxLength: 16}), {minLength: 1, maxLength: 10}),
          fc.uint8Array({maxLength: 5000}),
          fc.array(fc.nat(), {maxLength: 20}),
          (rawValues, base, cuts) => {
            const patterns = maskPatterns(rawValues.map(toBuffer))
            const data = Buffer.from(base)
            fc.pre(!containsAny(data, patterns))
            assert.ok(maskChunks(new Masker(patterns), cut(data, cuts)).equals(data))
          },
        ),
      )
    })

    it('holds back at most longest − 1 bytes and emits everything else (bounded memory)', () => {
      const patterns = [secret, Buffer.from('a much longer secret value, 48 bytes long......')]
      const longest = patterns[1]!.length
      // Adversarial: chunks end with a long prefix of the longest pattern, so holding back is needed
      // at the boundaries, and the rest is random.
      const chunkSize = 64 * KiB
      const masker = new Masker(patterns)
      let input = 0
      let emitted = 0
      let maxHeld = 0
      for (let i = 0; i < (8 * MiB) / chunkSize; i++) {
        const chunk = randomBytes(chunkSize)
        // NUL bytes (in no pattern) start each chunk, so the held prefix can never be completed by
        // chance across the boundary: that would replace bytes and change the counts below.
        chunk.fill(0, 0, longest)
        patterns[1]!.copy(chunk, chunkSize - (longest - 2), 0, longest - 2 - (i % 5))
        assert.ok(!containsAny(chunk, patterns))
        input += chunk.length
        for (const piece of masker.push(chunk)) emitted += piece.length
        assert.ok(masker.heldBack <= longest - 1, `held ${masker.heldBack}`)
        assert.equal(emitted, input - masker.heldBack)
        maxHeld = Math.max(maxHeld, masker.heldBack)
      }

      assert.equal(maxHeld, longest - 2, 'the test must exercise holding back')
      for (const piece of masker.end()) emitted += piece.length
      assert.equal(emitted, input)
      assert.equal(masker.heldBack, 0)
    })

    it('stays bounded on input that keeps looking like the start of a value', () => {
      const pattern = Buffer.from('aaaaaaaaaaaaaaab')
      const masker = new Masker([pattern])
      let emitted = 0
      for (let i = 0; i < 64; i++) {
        for (const piece of masker.push(Buffer.alloc(16 * KiB, 'a'))) emitted += piece.length
        assert.ok(masker.heldBack <= pattern.length - 1)
      }

      assert.equal(emitted + masker.heldBack, 64 * 16 * KiB)
    })

    it('maskers made from one set of tables (one per stream) each keep their own held bytes', () => {
      const patterns = maskPatterns([secret, Buffer.from('another-v4lue')])
      const make = maskers(patterns)
      const [out, err] = [make(), make()]
      // Both streams stop in the middle of a different value, then go on in turns.
      const outFirst = out.push(Buffer.from('o: s3cr'))
      const errFirst = err.push(Buffer.from('e: another-'))
      assert.ok(out.heldBack > 0 && err.heldBack > 0)
      const outText = Buffer.concat([...outFirst, ...out.push(Buffer.from('3t-V4LUE.')), ...out.end()])
      const errText = Buffer.concat([...errFirst, ...err.push(Buffer.from('v4lue!')), ...err.end()])
      assert.equal(outText.toString(), `o: ${DEFAULT_REPLACEMENT}.`)
      assert.equal(errText.toString(), `e: ${DEFAULT_REPLACEMENT}!`)
      assert.deepEqual(new MaskTables(patterns).patterns, patterns)
    })

    it('with no patterns passes chunks through without copying', () => {
      const masker = new Masker([])
      const chunk = Buffer.from('anything at all')
      const out = masker.push(chunk)
      assert.equal(out.length, 1)
      assert.equal(out[0], chunk)
      assert.deepEqual(masker.push(Buffer.alloc(0)), [])
      assert.deepEqual(masker.end(), [])
      assert.equal(masker.heldBack, 0)
      assert.deepEqual(new Masker([Buffer.alloc(0)]).push(chunk), [chunk])
    })

    it('does not keep views of a chunk the caller reuses after consuming the output', () => {
      const masker = new Masker([secret])
      const buffer = Buffer.from('held: s3cr3t')
      const first = Buffer.concat(masker.push(buffer))
      assert.ok(masker.heldBack > 0)
      buffer.fill(0) // e.g. a read buffer recycled by its producer
      const rest = Buffer.concat([...masker.push(Buffer.from('-V4LUE!')), ...masker.end()])
      assert.equal(Buffer.concat([first, rest]).toString(), `held: ${DEFAULT_REPLACEMENT}!`)
    })

    it('emits views of the input, not copies, when nothing is held or replaced', () => {
      const masker = new Masker([secret])
      const chunk = Buffer.from('plain output with no secret in it\n')
      const [piece] = masker.push(chunk)
      assert.equal(piece?.buffer, chunk.buffer)
      assert.equal(piece?.byteOffset, chunk.byteOffset)
      assert.equal(piece?.length, chunk.length)
    })
  })
})
