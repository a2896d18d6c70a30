import fc from 'fast-check'
import assert from 'node:assert/strict'
import {createPublicKey, verify} from 'node:crypto'
import {chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {
  agentKeyFromSeed,
  decodeSeedFile,
  decryptKeyFile,
  deriveKeyFileKey,
  ENCRYPTED_KEY_BYTES,
  generateKeyFile,
  loadAgentKey,
  readPrivateFile,
} from '../../../src/backends/sanctum/key-file.js'
import {AuthError, UsageError} from '../../../src/core/errors.js'
import {OTHER_SEED_HEX, VECTOR} from '../../servers/sanctum/fixtures.js'

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  return assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof AuthError || error instanceof UsageError, String(error))
    assert.equal(error.code, code)
    if (message) assert.match(error.message, message)
    return true
  })
}

async function expectKey(
  result: Promise<{key: {publicKey: Buffer}; path: string}>,
  seedHex: string,
  path: string,
): Promise<void> {
  const {key, path: used} = await result
  const expected = await agentKeyFromSeed(Buffer.from(seedHex, 'hex'))
  assert.equal(key.publicKey.toString('hex'), expected.publicKey.toString('hex'))
  assert.equal(used, path)
}

describe('sanctum key files (protocols/sanctum.md §9, §13)', () => {
  let dir: string
  let keyDir: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sanctum-keys-'))
    keyDir = join(dir, 'keys')
    await mkdir(keyDir, {mode: 0o700})
  })

  afterEach(() => rm(dir, {force: true, recursive: true}))

  const writeKey = async (name: string, text: string, mode = 0o600): Promise<string> => {
    const path = join(keyDir, name)
    await writeFile(path, text, {mode})
    await chmod(path, mode)
    return path
  }

  describe('test vectors', () => {
    it('derives the RFC 8032 TEST 1 public key from the seed', async () => {
      const key = await agentKeyFromSeed(Buffer.from(VECTOR.seedHex, 'hex'))
      assert.equal(key.publicKey.toString('hex'), VECTOR.publicKeyHex)
    })

    it('signs the raw challenge bytes: the §13 signature, which Node crypto verifies', async () => {
      const key = await agentKeyFromSeed(Buffer.from(VECTOR.seedHex, 'hex'))
      const challenge = Buffer.from(VECTOR.challengeHex, 'hex')
      const signature = key.sign(challenge)
      assert.equal(signature.toString('hex'), VECTOR.signatureHex)
      const publicKey = createPublicKey({
        format: 'der',
        key: Buffer.concat([SPKI_PREFIX, Buffer.from(VECTOR.publicKeyHex, 'hex')]),
        type: 'spki',
      })
      assert.ok(verify(null, challenge, publicKey, signature))
    })

    it('PBKDF2-HMAC-SHA256 (100 000 iterations) gives the §13 key', async () => {
      const key = await deriveKeyFileKey(Buffer.from(VECTOR.passphrase), Buffer.alloc(16, 0x11))
      assert.equal(key.toString('hex'), VECTOR.pbkdf2KeyHex)
    })

    it('decrypts the §13 .key.enc to the seed', async () => {
      const seed = await decryptKeyFile(VECTOR.keyEncText, Buffer.from(VECTOR.passphrase), 'x.key.enc')
      assert.equal(seed.toString('hex'), VECTOR.seedHex)
    })

    it('reads the §13 plain key file (whitespace trimmed) as the seed', () => {
      assert.equal(decodeSeedFile(`  ${VECTOR.seedHex}\n`, 'k').toString('hex'), VECTOR.seedHex)
    })
  })

  it('a wrong passphrase or a damaged file: "cannot decrypt <path>", no key material', async () => {
    await rejectsWith(
      decryptKeyFile(VECTOR.keyEncText, Buffer.from('wrong horse'), '/k/a.key.enc'),
      'SANCTUM_KEY_DECRYPT_FAILED',
      /^cannot decrypt \/k\/a\.key\.enc: wrong passphrase or damaged file$/,
    )
    const flipped = VECTOR.keyEncText.slice(0, -1) + (VECTOR.keyEncText.endsWith('b') ? 'c' : 'b')
    await rejectsWith(
      decryptKeyFile(flipped, Buffer.from(VECTOR.passphrase), 'p'),
      'SANCTUM_KEY_DECRYPT_FAILED',
    )
    await rejectsWith(
      decryptKeyFile('abc', Buffer.from(VECTOR.passphrase), 'p'),
      'SANCTUM_KEY_DECRYPT_FAILED',
    )
  })

  it('a plain key of the wrong length or not hex is an auth error that never quotes the file', () => {
    const short = VECTOR.seedHex.slice(0, 62)
    assert.throws(
      () => decodeSeedFile(short, '/k/a.key'),
      (error: unknown) =>
        error instanceof AuthError &&
        error.message.startsWith('Key file has 31 bytes, expected 32') &&
        !error.message.includes(short),
    )
    for (const text of [
      'zz' + VECTOR.seedHex.slice(2),
      VECTOR.seedHex.slice(1),
      Buffer.from(VECTOR.seedHex, 'hex').toString('base64'),
    ])
      assert.throws(
        () => decodeSeedFile(text, '/k/a.key'),
        (error: unknown) =>
          error instanceof AuthError && error.exitCode === 4 && !error.message.includes(text),
      )
  })

  it('any key file text (property): 64 hex characters give the seed, anything else an auth error quoting none of it', async () => {
    // The file's text is key material: a canary inside it must never reach a message or a suggestion.
    const canary = 'c0ffee00c0ffee00'
    const around = fc.oneof(
      fc.string({maxLength: 80}),
      fc.string({maxLength: 80, unit: 'binary'}),
      fc.stringMatching(/^[\s\dA-Fa-f]{0,140}$/),
      fc.constantFrom('', '\n', ' \t', '\0', '-----BEGIN PRIVATE KEY-----\n', 'xx', '\uFEFF'),
    )
    const text = fc.oneof(
      fc.tuple(around, around).map(([before, after]) => `${before}${canary}${after}`),
      fc.tuple(fc.stringMatching(/^[\dA-Fa-f]{64}$/), around).map(([hex, noise]) => `${hex}${noise}`),
    )
    const quotes = (error: AuthError, input: string): boolean =>
      [error.message, error.suggestion ?? ''].some(
        (said) => said.includes(canary) || (input.trim().length >= 16 && said.includes(input.trim())),
      )
    await fc.assert(
      fc.asyncProperty(text, async (input) => {
        const trimmed = input.trim()
        let seed: Buffer | undefined
        try {
          seed = decodeSeedFile(input, '/k/a.key')
        } catch (error) {
          assert.ok(error instanceof AuthError, String(error))
          assert.equal(error.code, 'SANCTUM_KEY_INVALID')
          assert.equal(error.exitCode, 4)
          assert.ok(!quotes(error, input), error.message)
        }

        assert.equal(seed !== undefined, /^[\dA-Fa-f]{64}$/.test(trimmed), JSON.stringify(input))
        if (seed) assert.equal(seed.toString('hex'), trimmed.toLowerCase())
        // The encrypted form: only its own error, whatever the text (a wrong length never reaches
        // the key derivation, so this stays fast).
        if (trimmed.length !== ENCRYPTED_KEY_BYTES * 2)
          await assert.rejects(decryptKeyFile(input, Buffer.from('p'), '/k/a.key.enc'), (error: unknown) => {
            assert.ok(error instanceof AuthError, String(error))
            assert.equal(error.code, 'SANCTUM_KEY_DECRYPT_FAILED')
            assert.ok(!quotes(error, input), error.message)
            return true
          })
      }),
      {numRuns: 400},
    )
  })

  it('refuses a key file group or others can access, naming its mode and the chmod fix', async () => {
    for (const mode of [0o644, 0o640, 0o604, 0o610]) {
      const path = await writeKey(`m${mode.toString(8)}.key`, VECTOR.seedHex, mode)
      await rejectsWith(
        readPrivateFile(path),
        'SANCTUM_KEY_TOO_OPEN',
        new RegExp(
          `^key file ${path} is accessible by other users \\(mode 0${mode.toString(8)}\\); run: chmod 600 ${path}$`,
        ),
      )
    }

    const open = await writeKey('open.key', VECTOR.seedHex, 0o644)
    assert.equal(await readPrivateFile(open, 'win32'), VECTOR.seedHex, 'no POSIX modes on Windows')
    assert.equal(await readPrivateFile(await writeKey('ok.key', VECTOR.seedHex, 0o600)), VECTOR.seedHex)
    assert.equal(await readPrivateFile(await writeKey('ro.key', VECTOR.seedHex, 0o400)), VECTOR.seedHex)
  })

  describe('resolution order', () => {
    it('keyPath is read as a plain key, whatever else exists', async () => {
      await writeKey('agent.key.enc', VECTOR.keyEncText)
      const path = await writeKey('custom.key', OTHER_SEED_HEX)
      await expectKey(
        loadAgentKey({agent: 'agent', keyDir, keyPath: path}, {given: Buffer.from(VECTOR.passphrase)}),
        OTHER_SEED_HEX,
        path,
      )
    })

    it('<agent>.key.enc when it exists and a passphrase is given', async () => {
      await writeKey('agent.key', OTHER_SEED_HEX)
      const enc = await writeKey('agent.key.enc', VECTOR.keyEncText)
      await expectKey(
        loadAgentKey({agent: 'agent', keyDir}, {given: Buffer.from(VECTOR.passphrase)}),
        VECTOR.seedHex,
        enc,
      )
    })

    it('<agent>.key otherwise, even next to a .key.enc', async () => {
      await writeKey('agent.key.enc', VECTOR.keyEncText)
      const plain = await writeKey('agent.key', OTHER_SEED_HEX)
      let prompted = false
      await expectKey(
        loadAgentKey(
          {agent: 'agent', keyDir},
          {
            async prompt() {
              prompted = true
              return Buffer.from('')
            },
          },
        ),
        OTHER_SEED_HEX,
        plain,
      )
      assert.equal(prompted, false)
    })

    it('only a .key.enc: a prompted passphrase opens it; with no prompt, the error names SANCTUM_KEY_PASSPHRASE', async () => {
      const enc = await writeKey('agent.key.enc', VECTOR.keyEncText)
      const asked: string[] = []
      await expectKey(
        loadAgentKey(
          {agent: 'agent', keyDir},
          {
            async prompt(message) {
              asked.push(message)
              return Buffer.from(VECTOR.passphrase)
            },
          },
        ),
        VECTOR.seedHex,
        enc,
      )
      assert.deepEqual(asked, [`Passphrase for ${enc}`])
      await assert.rejects(loadAgentKey({agent: 'agent', keyDir}), (error: unknown) => {
        assert.ok(error instanceof AuthError)
        assert.equal(error.code, 'SANCTUM_KEY_PASSPHRASE_REQUIRED')
        assert.match(error.suggestion ?? '', /SANCTUM_KEY_PASSPHRASE/)
        return true
      })
    })

    it('no key at all: SANCTUM_KEY_MISSING with the --generate-key hint', async () => {
      await assert.rejects(loadAgentKey({agent: 'nobody', keyDir}), (error: unknown) => {
        assert.ok(error instanceof AuthError)
        assert.equal(error.code, 'SANCTUM_KEY_MISSING')
        assert.match(error.suggestion ?? '', /--generate-key/)
        return true
      })
    })
  })

  it('--generate-key writes a 0600 hex seed in a 0700 directory and never overwrites', async () => {
    const path = join(dir, 'new', 'dir', 'bot.key')
    const publicKey = await generateKeyFile(path)
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    assert.equal((await stat(join(dir, 'new', 'dir'))).mode & 0o777, 0o700)
    const text = await readFile(path, 'utf8')
    assert.match(text, /^[0-9a-f]{64}\n$/)
    const {key} = await loadAgentKey({agent: 'bot', keyDir: '/nowhere', keyPath: path})
    assert.deepEqual(key.publicKey, publicKey)
    await assert.rejects(
      generateKeyFile(path),
      (error: unknown) => error instanceof UsageError && error.code === 'SANCTUM_KEY_EXISTS',
    )
    assert.equal(await readFile(path, 'utf8'), text)
  })
})
