/**
 * Where the data key of a sealed agentvault file (the vault, the credential file) comes from
 * (product.md §6). The source is chosen once, when the file is created — first that applies:
 * AGENTVAULT_PASSPHRASE (scrypt wraps the key), the OS keychain (holds the key), a key file
 * `$AGENTVAULT_HOME/vault.key` — and recorded in the file's header as a {@link KeyDescriptor}, so
 * later runs go straight to it instead of probing the keychain every time.
 *
 * This module knows nothing about vault entries or backends: the credential store reuses it.
 */
import {randomBytes, scrypt} from 'node:crypto'
import {chmodSync} from 'node:fs'
import {join} from 'node:path'

import {AuthError, BackendUnavailableError, ConfigError} from './errors.js'
import {readRegularFile, removeDeadTemporariesOf} from './file-lock.js'
import {type Keychain, keychainDisabled, openKeychain} from './keychain.js'
import {decodeBase64, generateKey, KEY_BYTES, NONCE_BYTES, seal, TAG_BYTES, unseal, wipe} from './sealing.js'

export type KeySourceKind = 'file' | 'keychain' | 'passphrase'

/** The order in which sources are tried when a new vault is created. */
export const KEY_SOURCE_ORDER: readonly KeySourceKind[] = ['passphrase', 'keychain', 'file']

/** The key file's name inside `$AGENTVAULT_HOME`; one per home, shared by the vault and credentials. */
export const KEY_FILE_NAME = 'vault.key'

export const PASSPHRASE_ENV = 'AGENTVAULT_PASSPHRASE'

export interface ScryptParams {
  N: number
  p: number
  r: number
}

/** Interactive-login strength (the scrypt paper's recommendation): ~50–100 ms and 32 MiB. */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = {N: 2 ** 15, r: 8, p: 1}

/** How to get a sealed file's data key; stored in the file header (no secret in it). */
export type KeyDescriptor =
  | {
      /** scrypt(passphrase, salt) is a key-encryption key; `wrapped` is the data key sealed under it. */
      kdf: ScryptParams & {name: 'scrypt'; salt: string}
      source: 'passphrase'
      wrapped: {box: string; nonce: string}
    }
  | {account: string; service: string; source: 'keychain'}
  | {file: string; source: 'file'}

export interface KeySourceContext {
  env: NodeJS.ProcessEnv
  home: string
  /** undefined: use the OS keychain when it works; null: never use a keychain; else this one (tests). */
  keychain?: Keychain | null
  /**
   * Asks for a hidden answer at the terminal (interactive commands only): a passphrase vault asks
   * for its passphrase when AGENTVAULT_PASSPHRASE is unset.
   */
  promptHidden?(message: string): Promise<Buffer>
  /** Where one-time notices go (the key file was created). */
  warn?(message: string): void
}

export interface CreateKeyOptions {
  /** Sources to try, in order; the first that applies wins. */
  candidates: readonly KeySourceKind[]
  /** The keychain account that will hold the key when the keychain is chosen. */
  keychainAccount: string
  /** An explicit choice: use exactly this source, and fail when it is unavailable. */
  required?: KeySourceKind
}

export interface CreatedKey {
  descriptor: KeyDescriptor
  /** The new data key; the caller wipes it when done. */
  key: Buffer
}

/** The passphrase from AGENTVAULT_PASSPHRASE, or undefined when unset or empty. */
export function passphraseFromEnv(env: NodeJS.ProcessEnv): Buffer | undefined {
  const value = env[PASSPHRASE_ENV]
  return value ? Buffer.from(value, 'utf8') : undefined
}

/** `$home/vault.key`. */
export function keyFilePath(home: string): string {
  return join(home, KEY_FILE_NAME)
}

/**
 * Make a new data key held by the first applicable source (or by `options.required`). Creating the
 * key file emits a one-time notice through `context.warn`. The home directory must exist.
 */
export async function createKey(context: KeySourceContext, options: CreateKeyOptions): Promise<CreatedKey> {
  const candidates = options.required ? [options.required] : options.candidates
  for (const source of candidates) {
    const explicit = options.required !== undefined
    switch (source) {
      case 'file': {
        return {descriptor: {file: KEY_FILE_NAME, source: 'file'}, key: await loadOrCreateKeyFile(context)}
      }

      case 'keychain': {
        const keychain = await keychainFor(context)
        if (!keychain) {
          if (explicit) throw keychainUnavailable(context, 'hold the new key', true)
          continue
        }

        const key = generateKey()
        await keychain.set(options.keychainAccount, key.toString('base64'))
        return {
          descriptor: {account: options.keychainAccount, service: keychain.service, source: 'keychain'},
          key,
        }
      }

      case 'passphrase': {
        const passphrase = passphraseFromEnv(context.env)
        if (!passphrase) {
          if (explicit)
            throw new AuthError(
              'PASSPHRASE_REQUIRED',
              `A passphrase was chosen as the key source, but ${PASSPHRASE_ENV} is not set`,
              {
                suggestion: `Set ${PASSPHRASE_ENV} to the passphrase to protect the vault with, then run the command again.`,
              },
            )
          continue
        }

        const key = generateKey()
        const salt = randomBytes(16)
        const kek = await deriveKey(passphrase, salt, DEFAULT_SCRYPT)
        wipe(passphrase)
        try {
          const wrapped = await seal(kek, key)
          return {
            descriptor: {
              kdf: {name: 'scrypt', ...DEFAULT_SCRYPT, salt: salt.toString('base64')},
              source: 'passphrase',
              wrapped: {box: wrapped.box.toString('base64'), nonce: wrapped.nonce.toString('base64')},
            },
            key,
          }
        } finally {
          wipe(kek)
        }
      }
    }
  }

  // Unreachable with a candidate list that ends in 'file'; a bug otherwise.
  throw new ConfigError(
    'KEY_SOURCE_UNAVAILABLE',
    `None of the key sources ${candidates.join(', ')} is available`,
    {
      suggestion: `Set ${PASSPHRASE_ENV}, or let agentvault create ${keyFilePath(context.home)}.`,
    },
  )
}

/**
 * Get the data key a header's descriptor points at. `sealedFile` names the file for messages.
 * Errors: no/wrong passphrase, missing key file or keychain entry → AuthError (exit 4); keychain
 * unreachable → BackendUnavailableError (exit 5); an unreadable key file → ConfigError (exit 3).
 * A wrong key from the file or the keychain is caught by the caller through the key fingerprint.
 */
export async function unlockKey(
  descriptor: KeyDescriptor,
  context: KeySourceContext,
  sealedFile: string,
): Promise<Buffer> {
  switch (descriptor.source) {
    case 'file': {
      const path = join(context.home, descriptor.file)
      const key = await readKeyFile(path)
      if (!key)
        throw new AuthError(
          'KEY_FILE_MISSING',
          `${sealedFile} is encrypted with the key file ${path}, which does not exist`,
          {
            suggestion: `Restore ${path} from your backup (agentvault never recreates it for an existing file).`,
          },
        )
      return key
    }

    case 'keychain': {
      const keychain =
        context.keychain === undefined
          ? await openKeychain({env: context.env, probe: false, service: descriptor.service})
          : context.keychain
      if (!keychain) throw keychainUnavailable(context, `open ${sealedFile}, whose key it holds`)
      const stored = await keychain.get(descriptor.account)
      if (stored === undefined)
        throw new AuthError(
          'KEYCHAIN_KEY_MISSING',
          `The OS keychain has no key for ${sealedFile} (service ${descriptor.service}, account ${descriptor.account})`,
          {
            suggestion:
              'Unlock your keyring (a locked keyring can look empty) and try again, or restore that keychain entry from a backup.',
          },
        )
      const key = decodeBase64(stored)
      if (key?.length !== KEY_BYTES)
        throw new AuthError(
          'KEYCHAIN_KEY_INVALID',
          `The OS keychain entry for ${sealedFile} (account ${descriptor.account}) is not an agentvault key`,
          {
            suggestion: 'Restore that keychain entry from a backup; something else overwrote it.',
          },
        )
      return key
    }

    case 'passphrase': {
      // At a terminal, unset means "ask", as op and gpg do: no passphrase in the shell's history.
      const fromEnv = passphraseFromEnv(context.env)
      const passphrase =
        fromEnv ??
        (context.promptHidden ? await context.promptHidden(`Passphrase for ${sealedFile}`) : undefined)
      if (!passphrase?.length)
        throw new AuthError(
          'PASSPHRASE_REQUIRED',
          `${sealedFile} is protected by a passphrase and ${PASSPHRASE_ENV} is not set`,
          {
            suggestion: `Set ${PASSPHRASE_ENV} to the vault's passphrase (at a terminal, agentvault asks for it).`,
          },
        )
      const salt = Buffer.from(descriptor.kdf.salt, 'base64')
      const kek = await deriveKey(passphrase, salt, descriptor.kdf)
      wipe(passphrase)
      try {
        const key = await unseal(kek, {
          box: Buffer.from(descriptor.wrapped.box, 'base64'),
          nonce: Buffer.from(descriptor.wrapped.nonce, 'base64'),
        })
        if (key?.length !== KEY_BYTES)
          throw new AuthError(
            'PASSPHRASE_WRONG',
            fromEnv
              ? `The passphrase in ${PASSPHRASE_ENV} does not open ${sealedFile}`
              : `The passphrase typed does not open ${sealedFile}`,
            {
              suggestion: fromEnv
                ? `Set ${PASSPHRASE_ENV} to the passphrase the vault was created with.`
                : 'Run the command again and type the passphrase the vault was created with.',
            },
          )
        return key
      } finally {
        wipe(kek)
      }
    }
  }
}

/** Validate a header's `key` field; undefined when it is not a descriptor we can use safely. */
export function parseKeyDescriptor(value: unknown): KeyDescriptor | undefined {
  if (!isRecord(value)) return undefined
  switch (value.source) {
    case 'file': {
      // A plain name inside the home: a crafted header must not point us at another file.
      return typeof value.file === 'string' && /^[\w.-]+$/.test(value.file) && !value.file.startsWith('.')
        ? {file: value.file, source: 'file'}
        : undefined
    }

    case 'keychain': {
      return typeof value.service === 'string' &&
        value.service !== '' &&
        typeof value.account === 'string' &&
        value.account !== ''
        ? {account: value.account, service: value.service, source: 'keychain'}
        : undefined
    }

    case 'passphrase': {
      return parsePassphraseDescriptor(value)
    }

    default: {
      return undefined
    }
  }
}

function parsePassphraseDescriptor(value: Record<string, unknown>): KeyDescriptor | undefined {
  const {kdf, wrapped} = value
  if (!isRecord(kdf) || !isRecord(wrapped) || kdf.name !== 'scrypt') return undefined
  const params = scryptParams(kdf)
  if (!params) return undefined
  const salt = decodeBase64(kdf.salt)
  const nonce = decodeBase64(wrapped.nonce)
  const box = decodeBase64(wrapped.box)
  if (!salt || salt.length < 16 || nonce?.length !== NONCE_BYTES || box?.length !== KEY_BYTES + TAG_BYTES)
    return undefined
  return {
    kdf: {name: 'scrypt', ...params, salt: kdf.salt as string},
    source: 'passphrase',
    wrapped: {box: wrapped.box as string, nonce: wrapped.nonce as string},
  }
}

/** Make sure a key file keeps mode 0600 (called on writes: "re-assert modes"). */
export async function reassertKeyFileMode(descriptor: KeyDescriptor, home: string): Promise<void> {
  if (descriptor.source !== 'file') return
  try {
    chmodSync(join(home, descriptor.file), 0o600) // one local metadata call: no thread-pool round trip
  } catch {
    // missing or not ours: reading it reports that
  }
}

// Bounds keep a crafted header from making us allocate gigabytes or spin for minutes.
function scryptParams(kdf: Record<string, unknown>): ScryptParams | undefined {
  const {N, p, r} = kdf
  if (typeof N !== 'number' || typeof r !== 'number' || typeof p !== 'number') return undefined
  if (!Number.isInteger(N) || !Number.isInteger(r) || !Number.isInteger(p)) return undefined
  const powerOfTwo = Number.isInteger(Math.log2(N))
  const inRange = N >= 2 ** 10 && N <= 2 ** 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16 && N * r <= 2 ** 22
  return powerOfTwo && inRange ? {N, p, r} : undefined
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function deriveKey(passphrase: Buffer, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const {N, p, r} = params
  return new Promise((resolve, reject) => {
    scrypt(passphrase, salt, KEY_BYTES, {N, p, r, maxmem: 256 * N * r}, (error, key) =>
      error ? reject(error) : resolve(key),
    )
  })
}

async function keychainFor(context: KeySourceContext): Promise<Keychain | undefined> {
  if (context.keychain !== undefined) return context.keychain ?? undefined
  return openKeychain({env: context.env})
}

function keychainUnavailable(
  context: KeySourceContext,
  purpose: string,
  newKey = false,
): BackendUnavailableError {
  const disabled = keychainDisabled(context.env) || context.keychain === null
  const why = disabled ? 'it is disabled (AGENTVAULT_NO_KEYCHAIN)' : 'none is usable here'
  const unlock = 'unlock your keyring (on Linux, start a Secret Service such as gnome-keyring)'
  // Only a new key may go elsewhere; an existing one is in the keychain and nowhere else.
  const elsewhere = newKey ? '; or keep the key in a file: `agentvault login local --key-source file`' : ''
  return new BackendUnavailableError(
    'KEYCHAIN_UNAVAILABLE',
    `The OS keychain is needed to ${purpose}, but ${why}`,
    {
      suggestion: `${disabled ? `Unset AGENTVAULT_NO_KEYCHAIN and ${unlock}` : `${unlock[0]?.toUpperCase()}${unlock.slice(1)}`}${elsewhere}.`,
    },
  )
}

/** The key in a key file, or undefined when the file does not exist. */
async function readKeyFile(path: string): Promise<Buffer | undefined> {
  const file = readRegularFile(path)
  if (!file) return undefined
  // As ssh does with private keys: a key others can read is no longer a secret; say so and stop.
  if (process.platform !== 'win32' && (file.info.mode & 0o077) !== 0) {
    file.bytes.fill(0)
    throw new ConfigError(
      'KEY_FILE_PERMISSIONS',
      `The key file ${path} is accessible by other users (mode ${(file.info.mode & 0o777).toString(8).padStart(3, '0')}); agentvault will not use it`,
      {details: {path}, suggestion: `chmod 600 ${path}`},
    )
  }

  const text = file.bytes.toString('utf8')
  file.bytes.fill(0)

  const key = decodeBase64(text.trim())
  if (key?.length !== KEY_BYTES)
    throw new ConfigError('KEY_FILE_INVALID', `${path} does not hold an agentvault key (32 bytes, base64)`, {
      suggestion: `Restore ${path} from your backup; agentvault will not replace it.`,
    })
  return key
}

/**
 * Read `$home/vault.key`, or create it. Creation writes a complete temp file and hard-links it into
 * place, which fails if the name exists: two processes racing never see a half-written key, and an
 * existing key file is never overwritten (that would orphan everything sealed with it).
 */
async function loadOrCreateKeyFile(context: KeySourceContext): Promise<Buffer> {
  const path = keyFilePath(context.home)
  // A process killed while it made the key file left its temp file: a copy of a key (or, killed
  // after the link, a second name of the key file itself), which nothing else would ever remove.
  removeDeadTemporariesOf(path)
  const existing = await readKeyFile(path)
  if (existing) return existing

  const key = generateKey()
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const {chmod, link, open, unlink} = await import('node:fs/promises')
  const handle = await open(temporary, 'wx', 0o600)
  let created = false
  try {
    await handle.writeFile(`${key.toString('base64')}\n`)
    await handle.sync()
    await handle.close()
    await link(temporary, path)
    created = true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  } finally {
    await handle.close().catch(() => {})
    await unlink(temporary).catch(() => {})
  }

  if (!created) {
    wipe(key)
    const winner = await readKeyFile(path)
    if (!winner)
      throw new ConfigError('KEY_FILE_INVALID', `${path} vanished while it was being created`, {
        suggestion: 'Run the command again.',
      })
    return winner
  }

  await chmod(path, 0o600)
  context.warn?.(
    `Created the agentvault key file ${path}: it encrypts the local vault and stored credentials. ` +
      `Back it up somewhere safe — without it they cannot be opened. ` +
      `(To use a passphrase instead, set ${PASSPHRASE_ENV} before the first secret is stored.)`,
  )
  return key
}
