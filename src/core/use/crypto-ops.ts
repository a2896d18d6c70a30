/**
 * The cryptographic use operations (product.md §5): sign / verify with HMAC-SHA-256/512 or Ed25519,
 * and encrypt / decrypt with XSalsa20-Poly1305 under a key derived from the secret. The secret is
 * a Buffer owned by the caller; derived keys are wiped after use.
 */
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  type KeyObject,
  sign as signWith,
  timingSafeEqual,
  verify as verifyWith,
} from 'node:crypto'

import {UsageError} from '../errors.js'
import {decodeBase64, KEY_BYTES, NONCE_BYTES, seal, TAG_BYTES, unseal} from '../sealing.js'

export const SIGN_ALGORITHMS = ['hmac-sha256', 'hmac-sha512', 'ed25519'] as const
export type SignAlgorithm = (typeof SIGN_ALGORITHMS)[number]

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows it (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
/** HKDF-SHA256 parameters: fixed, so the same secret always derives the same encryption key. */
const HKDF_SALT = Buffer.from('agentvault/use/encrypt', 'utf8')
const HKDF_INFO = Buffer.from('xsalsa20-poly1305 key v1', 'utf8')

export interface Signature {
  /** Ed25519 only: the public key (hex) that verifies the signature. */
  public_key?: string
  /** base64 for HMAC, hex for Ed25519. */
  signature: string
}

/** The Ed25519 private key of a secret holding a 32-byte seed as 64 hex characters. */
function ed25519Key(secret: Buffer, reference: string): KeyObject {
  const text = secret.toString('latin1').trim()
  if (!/^[\da-fA-F]{64}$/.test(text))
    throw new UsageError('NOT_AN_ED25519_SEED', `${reference} is not an Ed25519 seed`, {
      suggestion:
        'ed25519 needs a secret that is a 32-byte seed written as 64 hex characters; use hmac-sha256 otherwise.',
    })
  const der = Buffer.concat([ED25519_PKCS8_PREFIX, Buffer.from(text, 'hex')])
  try {
    return createPrivateKey({format: 'der', key: der, type: 'pkcs8'})
  } finally {
    der.fill(0)
  }
}

function hmac(algorithm: 'hmac-sha256' | 'hmac-sha512', secret: Buffer, data: Buffer): Buffer {
  return createHmac(algorithm.slice('hmac-'.length), secret).update(data).digest()
}

/** Sign `data` with the secret. `reference` names the secret in errors (never its value). */
export function signData(
  algorithm: SignAlgorithm,
  secret: Buffer,
  data: Buffer,
  reference: string,
): Signature {
  if (algorithm !== 'ed25519') return {signature: hmac(algorithm, secret, data).toString('base64')}
  const key = ed25519Key(secret, reference)
  const publicKey = createPublicKey(key).export({format: 'der', type: 'spki'}).subarray(-32)
  return {public_key: publicKey.toString('hex'), signature: signWith(null, data, key).toString('hex')}
}

function decodeSignature(text: string, encoding: 'base64' | 'hex'): Buffer {
  const valid = encoding === 'hex' ? /^(?:[\da-fA-F]{2})*$/.test(text) : /^[A-Za-z\d+/_-]*={0,2}$/.test(text)
  if (!valid)
    throw new UsageError('BAD_SIGNATURE_ENCODING', `The signature is not ${encoding}`, {
      suggestion:
        encoding === 'hex'
          ? 'Pass the Ed25519 signature as hex, as `sign` prints it.'
          : 'Pass the HMAC signature as base64, as `sign` prints it.',
    })
  return Buffer.from(text, encoding)
}

/** Whether `signature` (as {@link signData} encodes it) is valid for `data` under the secret. */
export function verifyData(
  algorithm: SignAlgorithm,
  secret: Buffer,
  {data, signature}: {data: Buffer; signature: string},
  reference: string,
): boolean {
  if (algorithm === 'ed25519') {
    const given = decodeSignature(signature, 'hex')
    const key = ed25519Key(secret, reference)
    return given.length === 64 && verifyWith(null, data, createPublicKey(key), given)
  }

  const given = decodeSignature(signature, 'base64')
  const expected = hmac(algorithm, secret, data)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

function encryptionKey(secret: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, HKDF_INFO, KEY_BYTES))
}

/** base64(nonce ‖ secretbox) of `plaintext` under a key derived from the secret by HKDF-SHA256. */
export async function encryptData(secret: Buffer, plaintext: Buffer): Promise<string> {
  const key = encryptionKey(secret)
  try {
    const {box, nonce} = await seal(key, plaintext)
    return Buffer.concat([nonce, box]).toString('base64')
  } finally {
    key.fill(0)
  }
}

/** Open what {@link encryptData} produced; a clear UsageError when it was altered or is foreign. */
export async function decryptData(secret: Buffer, ciphertext: string, reference: string): Promise<Buffer> {
  const raw = decodeBase64(ciphertext.trim())
  if (!raw || raw.length < NONCE_BYTES + TAG_BYTES)
    throw new UsageError('BAD_CIPHERTEXT', 'The ciphertext is not what `encrypt` produces', {
      suggestion: 'Pass the base64 text printed by `agentvault use REF encrypt`, unchanged.',
    })
  const key = encryptionKey(secret)
  try {
    const opened = await unseal(key, {box: raw.subarray(NONCE_BYTES), nonce: raw.subarray(0, NONCE_BYTES)})
    if (!opened)
      throw new UsageError(
        'DECRYPT_FAILED',
        `The ciphertext could not be decrypted with ${reference}: it was altered, truncated, or encrypted under another secret`,
        {
          suggestion:
            'Use the exact ciphertext `encrypt` printed, with the same secret (and the same version of it).',
        },
      )
    return opened
  } finally {
    key.fill(0)
  }
}
