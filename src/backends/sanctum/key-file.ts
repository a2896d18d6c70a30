/**
 * Sanctum agent keys (protocols/sanctum.md §9): a plain `.key` file holding the hex of a 32-byte
 * Ed25519 seed, or a `.key.enc` file (PBKDF2-HMAC-SHA256 + NaCl secretbox) opened with a
 * passphrase. Files that other users can access are refused, as ssh does. Every error is an
 * AuthError that names the file, never its content.
 */
import {dirname, join} from 'node:path'

import {AuthError, UsageError} from '../../core/errors.js'
import {loadNacl, unseal, wipe} from '../../core/sealing.js'

export const SEED_BYTES = 32
export const SALT_BYTES = 16
export const NONCE_BYTES = 24
/** salt ‖ nonce ‖ secretbox(tag 16 ‖ seed 32) */
export const ENCRYPTED_KEY_BYTES = SALT_BYTES + NONCE_BYTES + 16 + SEED_BYTES
export const PBKDF2_ITERATIONS = 100_000

const HEX = /^(?:[0-9a-fA-F]{2})*$/

/** An agent's Ed25519 key pair; `close()` overwrites the secret half. */
export interface AgentKey {
  close(): void
  readonly publicKey: Buffer
  /** Pure Ed25519 (RFC 8032) over the raw bytes. */
  sign(message: Buffer): Buffer
}

/** Derive the key pair from a seed. The seed is wiped by the caller. */
export async function agentKeyFromSeed(seed: Buffer): Promise<AgentKey> {
  const nacl = await loadNacl()
  const pair = nacl.sign.keyPair.fromSeed(seed)
  const {secretKey} = pair
  return {
    close: () => secretKey.fill(0),
    publicKey: Buffer.from(pair.publicKey),
    sign: (message) => Buffer.from(nacl.sign.detached(message, secretKey)),
  }
}

/** Strict hex → bytes, or undefined (odd length, a non-hex character). Whitespace is trimmed. */
function decodeHexText(text: string): Buffer | undefined {
  const trimmed = text.trim()
  return HEX.test(trimmed) ? Buffer.from(trimmed, 'hex') : undefined
}

/** A plain key file's text → the 32-byte seed. */
export function decodeSeedFile(text: string, path: string): Buffer {
  const seed = decodeHexText(text)
  if (!seed)
    throw new AuthError('SANCTUM_KEY_INVALID', `Key file ${path} is not a hex Ed25519 seed`, {
      suggestion:
        'A Sanctum key file holds the 64 hex characters of a 32-byte Ed25519 seed (not PEM, not base64); `agentvault login sanctum --generate-key` writes one.',
    })
  if (seed.length !== SEED_BYTES) {
    const {length} = seed
    wipe(seed)
    throw new AuthError('SANCTUM_KEY_INVALID', `Key file has ${length} bytes, expected 32 (${path})`, {
      suggestion:
        length === ENCRYPTED_KEY_BYTES
          ? 'This looks like an encrypted .key.enc file: keyPath is read as a plain seed, so unset keyPath and keep the file at ~/.sanctum/keys/<agent>.key.enc with SANCTUM_KEY_PASSPHRASE set.'
          : 'A Sanctum key file holds the hex of a 32-byte Ed25519 seed; `agentvault login sanctum --generate-key` writes one.',
    })
  }

  return seed
}

/** PBKDF2-HMAC-SHA256(passphrase, salt, 100 000 iterations, 32 bytes). */
export async function deriveKeyFileKey(passphrase: Buffer, salt: Buffer): Promise<Buffer> {
  const {pbkdf2} = await import('node:crypto')
  return new Promise((resolve, reject) => {
    pbkdf2(passphrase, salt, PBKDF2_ITERATIONS, 32, 'sha256', (error, key) =>
      error ? reject(error) : resolve(key),
    )
  })
}

/** A `.key.enc` file's text and its passphrase → the 32-byte seed. */
export async function decryptKeyFile(text: string, passphrase: Buffer, path: string): Promise<Buffer> {
  const blob = decodeHexText(text)
  const damaged = (): AuthError =>
    new AuthError('SANCTUM_KEY_DECRYPT_FAILED', `cannot decrypt ${path}: wrong passphrase or damaged file`, {
      suggestion: 'Check SANCTUM_KEY_PASSPHRASE (or the passphrase you typed) for this key file.',
    })
  if (!blob || blob.length !== ENCRYPTED_KEY_BYTES) throw damaged()
  const salt = blob.subarray(0, SALT_BYTES)
  const nonce = blob.subarray(SALT_BYTES, SALT_BYTES + NONCE_BYTES)
  const box = blob.subarray(SALT_BYTES + NONCE_BYTES)
  const key = await deriveKeyFileKey(passphrase, salt)
  try {
    const seed = await unseal(key, {box, nonce})
    if (!seed || seed.length !== SEED_BYTES) {
      wipe(seed)
      throw damaged()
    }

    return seed
  } finally {
    wipe(key)
    wipe(blob)
  }
}

/** Refuse a key file that group or others may access (mode & 0o077), before reading it. */
export async function readPrivateFile(
  path: string,
  platform: NodeJS.Platform = process.platform,
): Promise<string> {
  const {readFile, stat} = await import('node:fs/promises')
  let mode: number
  try {
    mode = (await stat(path)).mode
  } catch (error) {
    const {code} = error as NodeJS.ErrnoException
    throw new AuthError(
      code === 'ENOENT' ? 'SANCTUM_KEY_MISSING' : 'SANCTUM_KEY_UNREADABLE',
      code === 'ENOENT' ? `Key file ${path} does not exist` : `Cannot read key file ${path} (${code})`,
      {
        suggestion:
          code === 'ENOENT'
            ? 'Create one with `agentvault login sanctum --agent NAME --generate-key`, or point keyPath / SANCTUM_KEY_PATH at your seed file.'
            : `Check the permissions of ${path}.`,
      },
    )
  }

  if (platform !== 'win32' && (mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, '0')
    throw new AuthError(
      'SANCTUM_KEY_TOO_OPEN',
      `key file ${path} is accessible by other users (mode ${octal}); run: chmod 600 ${path}`,
      {suggestion: `chmod 600 ${path}`},
    )
  }

  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    throw new AuthError(
      'SANCTUM_KEY_UNREADABLE',
      `Cannot read key file ${path} (${(error as NodeJS.ErrnoException).code})`,
      {
        suggestion: `Check the permissions of ${path}.`,
      },
    )
  }
}

export interface KeyLocation {
  agent: string
  /** `~/.sanctum/keys`, expanded. */
  keyDir: string
  /** `keyPath` / `SANCTUM_KEY_PATH`, expanded: read as a plain key. */
  keyPath?: string
}

/** The seed an earlier `login sanctum` decrypted from a `.key.enc`, kept in the credential store. */
export interface RememberedSeed {
  /** {@link keyFileFingerprint} of the `.key.enc` it came from: a changed file makes it unused. */
  fingerprint: string
  seed: Buffer
}

export interface PassphraseSources {
  /** Given up front (SANCTUM_KEY_PASSPHRASE, --key-passphrase-stdin). */
  given?: Buffer
  /** Told the seed whenever a `.key.enc` was decrypted (login keeps it); the callee copies it. */
  onDecrypted?: (seed: Buffer, fingerprint: string) => void
  /** Ask for one (a hidden prompt on a terminal); absent when prompting is not allowed. */
  prompt?: (message: string) => Promise<Buffer>
  /** The seed `login` kept for this key, looked up only when no passphrase was given. */
  remembered?: () => Promise<RememberedSeed | undefined>
}

/** SHA-256 (hex) of a `.key.enc` file's text: which file a remembered seed belongs to. */
export async function keyFileFingerprint(text: string): Promise<string> {
  const {createHash} = await import('node:crypto')
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/** The plain key file used when no keyPath is set: `~/.sanctum/keys/<agent>.key`. */
export function defaultKeyPath(location: Omit<KeyLocation, 'keyPath'>): string {
  return join(location.keyDir, `${location.agent}.key`)
}

async function exists(path: string): Promise<boolean> {
  const {access} = await import('node:fs/promises')
  return access(path).then(
    () => true,
    () => false,
  )
}

/**
 * Load the agent key (§9 resolution): keyPath as a plain key; else `<agent>.key.enc` when a
 * passphrase is given; else `<agent>.key`; else `<agent>.key.enc` through the seed `login` kept
 * for exactly that file; else with a prompted passphrase.
 * Returns the key and the file it came from.
 */
export async function loadAgentKey(
  location: KeyLocation,
  passphrase: PassphraseSources = {},
): Promise<{key: AgentKey; path: string}> {
  const fromSeed = async (seed: Buffer, path: string): Promise<{key: AgentKey; path: string}> => {
    try {
      return {key: await agentKeyFromSeed(seed), path}
    } finally {
      wipe(seed)
    }
  }

  if (location.keyPath) {
    const path = location.keyPath
    return fromSeed(decodeSeedFile(await readPrivateFile(path), path), path)
  }

  const plain = defaultKeyPath(location)
  const encrypted = `${plain}.enc`
  const decrypt = async (secret: Buffer): Promise<{key: AgentKey; path: string}> => {
    try {
      const text = await readPrivateFile(encrypted)
      const seed = await decryptKeyFile(text, secret, encrypted)
      passphrase.onDecrypted?.(seed, await keyFileFingerprint(text))
      return await fromSeed(seed, encrypted)
    } finally {
      wipe(secret)
    }
  }

  if (passphrase.given && (await exists(encrypted))) return decrypt(Buffer.from(passphrase.given))
  if ((await exists(plain)) || !(await exists(encrypted)))
    return fromSeed(decodeSeedFile(await readPrivateFile(plain), plain), plain)
  const remembered = await passphrase.remembered?.()
  if (remembered) {
    const fingerprint = await keyFileFingerprint(await readPrivateFile(encrypted))
    if (fingerprint === remembered.fingerprint && remembered.seed.length === SEED_BYTES)
      return fromSeed(remembered.seed, encrypted)
    wipe(remembered.seed)
  }

  if (passphrase.prompt) return decrypt(await passphrase.prompt(`Passphrase for ${encrypted}`))
  throw new AuthError('SANCTUM_KEY_PASSPHRASE_REQUIRED', `${encrypted} needs a passphrase`, {
    suggestion:
      'Sign in once with `agentvault login sanctum --key-passphrase-stdin` (it keeps the decrypted key in the credential store), or set SANCTUM_KEY_PASSPHRASE.',
  })
}

/**
 * `login sanctum --generate-key`: write a new random seed as hex to `path` (mode 0600, its
 * directory 0700); never overwrites. Returns the public key.
 */
export async function generateKeyFile(path: string): Promise<Buffer> {
  const [{mkdir, writeFile}, {randomBytes}] = await Promise.all([
    import('node:fs/promises'),
    import('node:crypto'),
  ])
  await mkdir(dirname(path), {mode: 0o700, recursive: true})
  const seed = randomBytes(SEED_BYTES)
  const text = Buffer.from(`${seed.toString('hex')}\n`, 'utf8')
  try {
    await writeFile(path, text, {flag: 'wx', mode: 0o600})
  } catch (error) {
    const {code} = error as NodeJS.ErrnoException
    throw code === 'EEXIST'
      ? new UsageError('SANCTUM_KEY_EXISTS', `Key file ${path} already exists; refusing to overwrite it`, {
          suggestion: 'Use it (drop --generate-key), or choose another file with --key-path.',
        })
      : new AuthError('SANCTUM_KEY_UNWRITABLE', `Cannot write key file ${path} (${code})`, {
          suggestion: 'Check that the directory exists and is writable, or choose another --key-path.',
        })
  } finally {
    wipe(text)
  }

  const key = await agentKeyFromSeed(seed)
  wipe(seed)
  key.close()
  return key.publicKey
}
