/**
 * XSalsa20-Poly1305 (tweetnacl secretbox) with fresh random nonces, plus a key fingerprint. The
 * one place that loads tweetnacl, lazily, so commands that never open a vault never parse it.
 */
import {createHash, randomBytes} from 'node:crypto'

export const KEY_BYTES = 32
export const NONCE_BYTES = 24
/** Poly1305 tag length: the smallest valid box (an empty plaintext). */
export const TAG_BYTES = 16

type Nacl = typeof import('tweetnacl')

let nacl: Nacl | undefined

/** tweetnacl, loaded on first use (Ed25519 for the sanctum backend, secretbox here). */
export async function loadNacl(): Promise<Nacl> {
  // tweetnacl is CommonJS: require() it rather than import(), which would first run Node's CJS
  // export scanner over the whole file (≈10 ms on every `run`).
  if (!nacl) {
    const {createRequire} = await import('node:module')
    nacl = createRequire(import.meta.url)('tweetnacl') as Nacl
  }

  return nacl
}

export interface Sealed {
  box: Buffer
  nonce: Buffer
}

/** Seal `plaintext` under `key` with a fresh random nonce. */
export async function seal(key: Buffer, plaintext: Buffer): Promise<Sealed> {
  const {secretbox} = await loadNacl()
  const nonce = randomBytes(NONCE_BYTES)
  return {box: Buffer.from(secretbox(plaintext, nonce, key)), nonce}
}

/** Open a box; undefined when the key is wrong or the box was altered (Poly1305 cannot tell which). */
export async function unseal(key: Buffer, sealed: Sealed): Promise<Buffer | undefined> {
  const {secretbox} = await loadNacl()
  const opened = secretbox.open(sealed.box, sealed.nonce, key)
  return opened ? Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength) : undefined
}

/** A new random data key. */
export function generateKey(): Buffer {
  return randomBytes(KEY_BYTES)
}

/**
 * A public fingerprint of a data key, stored in file headers. Comparing it before opening a box
 * tells "this is the wrong key" (AuthError) apart from "the right key no longer opens the box"
 * (the file was altered). SHA-256 of a 256-bit random key reveals nothing usable about it.
 */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update('agentvault key fingerprint v1\0').update(key).digest('hex').slice(0, 32)
}

/** Overwrite key material we no longer need (best effort: V8 may have copied it). */
export function wipe(buffer: Buffer | undefined): void {
  buffer?.fill(0)
}

/** Strict base64 decode: undefined unless `text` is canonical base64 (so a flipped bit never decodes quietly). */
export function decodeBase64(text: unknown): Buffer | undefined {
  if (typeof text !== 'string') return undefined
  const decoded = Buffer.from(text, 'base64')
  return decoded.toString('base64') === text ? decoded : undefined
}
