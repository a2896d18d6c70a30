import fc from 'fast-check'
import assert from 'node:assert/strict'

import {UsageError} from '../../../src/core/errors.js'
import {decryptData, encryptData, signData, verifyData} from '../../../src/core/use/crypto-ops.js'

const REF = 'local://KEY'
const hex = (text: string): Buffer => Buffer.from(text, 'hex')
const fill = (byte: number, length: number): Buffer => Buffer.alloc(length, byte)

/** RFC 4231 §4 test cases (5, the truncated one, does not apply). */
const RFC4231: Array<{data: Buffer; key: Buffer; name: string; sha256: string; sha512: string}> = [
  {
    name: 'test case 1',
    key: fill(0x0b, 20),
    data: Buffer.from('Hi There'),
    sha256: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    sha512:
      '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854',
  },
  {
    name: 'test case 2',
    key: Buffer.from('Jefe'),
    data: Buffer.from('what do ya want for nothing?'),
    sha256: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    sha512:
      '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737',
  },
  {
    name: 'test case 3',
    key: fill(0xaa, 20),
    data: fill(0xdd, 50),
    sha256: '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe',
    sha512:
      'fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb',
  },
  {
    name: 'test case 4',
    key: hex('0102030405060708090a0b0c0d0e0f10111213141516171819'),
    data: fill(0xcd, 50),
    sha256: '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b',
    sha512:
      'b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd',
  },
  {
    name: 'test case 6',
    key: fill(0xaa, 131),
    data: Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'),
    sha256: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
    sha512:
      '80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598',
  },
  {
    name: 'test case 7',
    key: fill(0xaa, 131),
    data: Buffer.from(
      'This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.',
    ),
    sha256: '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
    sha512:
      'e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58',
  },
]

/** RFC 8032 §7.1, TEST 1: the empty message. */
const RFC8032_TEST1 = {
  seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
}

function usageError(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof UsageError, String(error))
    assert.equal(error.code, code)
    return true
  }
}

describe('core/use/crypto-ops', () => {
  for (const vector of RFC4231) {
    it(`HMAC-SHA-256 and HMAC-SHA-512: RFC 4231 ${vector.name}`, () => {
      for (const algorithm of ['hmac-sha256', 'hmac-sha512'] as const) {
        const expected = hex(algorithm === 'hmac-sha256' ? vector.sha256 : vector.sha512).toString('base64')
        const {signature} = signData(algorithm, vector.key, vector.data, REF)
        assert.equal(signature, expected, algorithm)
        assert.equal(verifyData(algorithm, vector.key, {data: vector.data, signature: expected}, REF), true)
        const flipped = Buffer.from(expected, 'base64')
        flipped[0]! ^= 1
        assert.equal(
          verifyData(algorithm, vector.key, {data: vector.data, signature: flipped.toString('base64')}, REF),
          false,
        )
      }
    })
  }

  it('Ed25519: RFC 8032 test 1 (seed in hex, hex signature, public key)', () => {
    const secret = Buffer.from(`${RFC8032_TEST1.seed}\n`)
    const result = signData('ed25519', secret, Buffer.alloc(0), REF)
    assert.deepEqual(result, {public_key: RFC8032_TEST1.publicKey, signature: RFC8032_TEST1.signature})
    assert.equal(
      verifyData('ed25519', secret, {data: Buffer.alloc(0), signature: RFC8032_TEST1.signature}, REF),
      true,
    )
    assert.equal(
      verifyData('ed25519', secret, {data: Buffer.from('x'), signature: RFC8032_TEST1.signature}, REF),
      false,
    )
    assert.equal(verifyData('ed25519', secret, {data: Buffer.alloc(0), signature: 'abcd'}, REF), false)
    assert.throws(
      () => verifyData('ed25519', secret, {data: Buffer.alloc(0), signature: 'not hex!'}, REF),
      usageError('BAD_SIGNATURE_ENCODING'),
    )
  })

  it('Ed25519 refuses a secret that is not a 64-hex-character seed, without quoting it', () => {
    assert.throws(
      () => signData('ed25519', Buffer.from('canary-not-a-seed'), Buffer.alloc(0), REF),
      (error) => {
        usageError('NOT_AN_ED25519_SEED')(error)
        assert.ok(!(error as Error).message.includes('canary'))
        return true
      },
    )
  })

  it('encrypt → decrypt round-trips any plaintext under any secret (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({minLength: 1, maxLength: 64}),
        fc.uint8Array({maxLength: 512}),
        async (secret, plaintext) => {
          const key = Buffer.from(secret)
          const ciphertext = await encryptData(key, Buffer.from(plaintext))
          assert.deepEqual(await decryptData(key, ciphertext, REF), Buffer.from(plaintext))
        },
      ),
      {numRuns: 200},
    )
  })

  it('a fresh nonce each time: the same plaintext encrypts differently', async () => {
    const key = Buffer.from('k'.repeat(32))
    assert.notEqual(await encryptData(key, Buffer.from('same')), await encryptData(key, Buffer.from('same')))
  })

  it('any flipped ciphertext bit, another secret, or garbage fails cleanly with a UsageError', async () => {
    const key = Buffer.from('canary-encryption-secret')
    const ciphertext = await encryptData(key, Buffer.from('attack at dawn'))
    const raw = Buffer.from(ciphertext, 'base64')
    await fc.assert(
      fc.asyncProperty(fc.nat(raw.length * 8 - 1), async (bit) => {
        const tampered = Buffer.from(raw)
        tampered[bit >> 3]! ^= 1 << (bit & 7)
        await assert.rejects(decryptData(key, tampered.toString('base64'), REF), (error) => {
          usageError('DECRYPT_FAILED')(error)
          assert.ok(!(error as Error).message.includes('canary'))
          return true
        })
      }),
    )
    await assert.rejects(
      decryptData(Buffer.from('another secret'), ciphertext, REF),
      usageError('DECRYPT_FAILED'),
    )
    await assert.rejects(decryptData(key, 'not base64 at all!', REF), usageError('BAD_CIPHERTEXT'))
    await assert.rejects(
      decryptData(key, raw.subarray(0, 30).toString('base64'), REF),
      usageError('BAD_CIPHERTEXT'),
    )
  })
})
