/**
 * The vault file `$AGENTVAULT_HOME/vault.json`: read it, and change it safely. Reads take no lock
 * (writes replace the file atomically, so a reader sees the old or the new vault, never half of
 * one) and create nothing. Writes take `vault.lock`, re-read the file under the lock, apply the
 * change and replace the file atomically, so concurrent writers in many processes lose nothing.
 */
import {chmod} from 'node:fs/promises'
import {join} from 'node:path'

import {ConfigError} from '../../core/errors.js'
import {ensureHome, withFileLock, writeFileAtomic} from '../../core/file-lock.js'
import {
  createKey,
  KEY_SOURCE_ORDER,
  type KeySourceContext,
  type KeySourceKind,
  reassertKeyFileMode,
  unlockKey,
} from '../../core/key-source.js'
import {
  decodeSealedFile,
  encodeSealedFile,
  newFileId,
  openSealedFile,
  readSealedBytes,
  type SealedFile,
  type SealedFileHeader,
  type SealedFileKind,
} from '../../core/sealed-file.js'
import {decodeBase64, keyFingerprint, wipe} from '../../core/sealing.js'

export const VAULT_FILE_KIND: SealedFileKind = {
  codePrefix: 'VAULT',
  format: 'agentvault-vault',
  label: 'vault',
}

/** One secret as stored inside the sealed body. `value` is base64 so any bytes survive JSON. */
export interface VaultEntry {
  allowedDomains?: string[]
  created: string
  description?: string
  tags?: string[]
  updated: string
  value: string
  version: number
}

/** Name → entry. A Map, because a secret may well be called `__proto__`. */
export type VaultEntries = Map<string, VaultEntry>

export interface VaultSnapshot {
  entries: VaultEntries
  header: SealedFileHeader
}

export interface VaultPaths {
  file: string
  home: string
  lock: string
}

export function vaultPaths(home: string): VaultPaths {
  return {file: join(home, 'vault.json'), home, lock: join(home, 'vault.lock')}
}

/**
 * One process's view of a vault. It caches the unlocked data key (keyed by file id and key
 * fingerprint) so a run derives a passphrase or asks the keychain once, not once per secret.
 */
export class VaultStore {
  readonly paths: VaultPaths
  private cached: undefined | {fingerprint: string; id: string; key: Buffer}
  /** An unlock in progress, shared by every read that needs the same key meanwhile. */
  private unlocking: undefined | {fingerprint: string; id: string; key: Promise<Buffer>}

  constructor(private readonly context: KeySourceContext) {
    this.paths = vaultPaths(context.home)
  }

  /** Forget the cached key. */
  close(): void {
    wipe(this.cached?.key)
    this.cached = undefined
  }

  /**
   * Create an empty vault with the chosen key source (default: first that applies). When a vault
   * already exists (and is a valid vault file) nothing changes and `created` is false.
   */
  async initialise(required?: KeySourceKind): Promise<{created: boolean; keySource: KeySourceKind}> {
    await ensureHome(this.paths.home)
    return withFileLock(this.paths.lock, async () => {
      const existing = this.readHeader()
      if (existing) return {created: false, keySource: existing.key.source}
      const header = await this.create(new Map(), required)
      return {created: true, keySource: header.key.source}
    })
  }

  /** The decoded file (header and sealed body, not yet opened), or undefined when there is no vault. */
  readHeader(): SealedFile | undefined {
    const bytes = readSealedBytes(this.paths.file, VAULT_FILE_KIND.label)
    return bytes === undefined ? undefined : decodeSealedFile(VAULT_FILE_KIND, bytes, this.paths.file)
  }

  /** Decrypt the whole vault once; undefined when there is none. */
  async read(): Promise<undefined | VaultSnapshot> {
    const file = this.readHeader()
    if (!file) return undefined
    return {entries: await this.open(file), header: file}
  }

  /**
   * Apply `change` to the entries under the vault lock and write the result. When `change`
   * throws, nothing is written. Without `createIfMissing`, a missing vault is handed to `change`
   * as an empty map and never created.
   */
  async update<T>(change: (entries: VaultEntries) => T, options: {createIfMissing: boolean}): Promise<T> {
    if (!options.createIfMissing && this.readHeader() === undefined) return change(new Map())
    await ensureHome(this.paths.home)
    return withFileLock(this.paths.lock, async () => {
      const file = this.readHeader()
      if (!file) {
        const entries: VaultEntries = new Map()
        const result = change(entries)
        await this.create(entries)
        return result
      }

      const entries = await this.open(file)
      const result = change(entries)
      await this.write(file, entries)
      return result
    })
  }

  private async create(entries: VaultEntries, required?: KeySourceKind): Promise<SealedFileHeader> {
    const id = newFileId()
    const {descriptor, key} = await createKey(this.context, {
      candidates: KEY_SOURCE_ORDER,
      keychainAccount: `vault-key:${id}`,
      required,
    })
    const header: SealedFileHeader = {id, key: descriptor, keyFingerprint: keyFingerprint(key)}
    this.remember(header, key)
    await this.write(header, entries)
    return header
  }

  private async keyFor(header: SealedFileHeader): Promise<Buffer> {
    const fits = (entry?: {fingerprint: string; id: string}): boolean =>
      entry?.id === header.id && entry.fingerprint === header.keyFingerprint
    if (fits(this.cached)) return (this.cached as {key: Buffer}).key
    // One unlock for concurrent reads (a run resolving several references at once): each unlocking
    // on its own would replace, and wipe, the key another read is still using.
    if (!fits(this.unlocking)) {
      const unlocking = {
        fingerprint: header.keyFingerprint,
        id: header.id,
        key: unlockKey(header.key, this.context, this.paths.file).then((key) => {
          this.remember(header, key)
          return key
        }),
      }
      this.unlocking = unlocking
      const forget = (): void => {
        if (this.unlocking === unlocking) this.unlocking = undefined
      }

      unlocking.key.then(forget, forget)
    }

    return (this.unlocking as {key: Promise<Buffer>}).key
  }

  private async open(file: SealedFile): Promise<VaultEntries> {
    const key = await this.keyFor(file)
    try {
      return parseEntries(await openSealedFile(VAULT_FILE_KIND, file, key, this.paths.file), this.paths.file)
    } catch (error) {
      // A key that does not fit must not stay cached as if it did.
      this.close()
      throw error
    }
  }

  private remember(header: SealedFileHeader, key: Buffer): void {
    if (this.cached?.key !== key) wipe(this.cached?.key)
    this.cached = {fingerprint: header.keyFingerprint, id: header.id, key}
  }

  private async write(header: SealedFileHeader, entries: VaultEntries): Promise<void> {
    const key = await this.keyFor(header)
    const data = {entries: Object.fromEntries(entries)}
    await writeFileAtomic(this.paths.file, await encodeSealedFile(VAULT_FILE_KIND, header, key, data), 0o600)
    // The temp file was created 0600; an existing file's mode is not inherited, but say it anyway
    // (cheap) in case a tool replaced vault.json with a wider mode behind our back.
    await chmod(this.paths.file, 0o600)
    await reassertKeyFileMode(header.key, this.paths.home)
  }
}

function parseEntries(data: unknown, path: string): VaultEntries {
  const invalid = (what: string) =>
    new ConfigError('VAULT_CORRUPT', `The vault ${path} holds ${what}. agentvault has not modified it`, {
      details: {path},
      suggestion: 'It may have been written by a newer agentvault; upgrade, or restore it from a backup.',
    })
  if (!isRecord(data) || !isRecord(data.entries)) throw invalid('no entry table')
  const entries: VaultEntries = new Map()
  for (const [name, entry] of Object.entries(data.entries)) {
    if (!isVaultEntry(entry)) throw invalid(`an invalid entry (${JSON.stringify(name).slice(0, 80)})`)
    entries.set(name, entry)
  }

  return entries
}

function isVaultEntry(value: unknown): value is VaultEntry {
  if (!isRecord(value)) return false
  const {allowedDomains, created, description, tags, updated, value: encoded, version} = value
  return (
    decodeBase64(encoded) !== undefined &&
    typeof created === 'string' &&
    typeof updated === 'string' &&
    Number.isInteger(version) &&
    (version as number) >= 1 &&
    (description === undefined || typeof description === 'string') &&
    isOptionalStringArray(tags) &&
    isOptionalStringArray(allowedDomains)
  )
}

function isOptionalStringArray(value: unknown): boolean {
  return value === undefined || (Array.isArray(value) && value.every((item) => typeof item === 'string'))
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
