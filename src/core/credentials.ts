/**
 * The credential store for backend tokens (product.md §7): the OS keychain when it works, else an
 * encrypted file `$AGENTVAULT_HOME/credentials.enc` (0600). Accounts name what a token is for,
 * e.g. `openbao:prod-bao`. Tokens never go to config.json.
 *
 * The file uses the same sealed envelope and key sources as the local vault (AGENTVAULT_PASSPHRASE
 * via scrypt, else the home's key file), so one backup of `vault.key` covers both.
 */
import {join, resolve} from 'node:path'

import {ConfigError, InternalError} from './errors.js'
import {ensureHome, withWriteLock, writeFileAtomic} from './file-lock.js'
import {createKey, type KeySourceContext, reassertKeyFileMode, unlockKey} from './key-source.js'
import {type Keychain, openKeychain} from './keychain.js'
import {
  decodeSealedFile,
  encodeSealedFile,
  newFileId,
  openSealedFile,
  readSealedBytes,
  type SealedFile,
  type SealedFileHeader,
  type SealedFileKind,
} from './sealed-file.js'
import {keyFingerprint, wipe} from './sealing.js'

/** Where tokens are kept. Values are short strings (tokens); callers keep them in the smallest scope. */
export interface CredentialStore {
  readonly backend: 'file' | 'keychain'
  delete(account: string): Promise<boolean>
  get(account: string): Promise<string | undefined>
  set(account: string, secret: string): Promise<void>
}

export interface CredentialStoreOptions {
  env: NodeJS.ProcessEnv
  /** `$AGENTVAULT_HOME`, already resolved. */
  home: string
  /** undefined: the OS keychain when usable (probed); null: always the file; a Keychain: that one (tests). */
  keychain?: Keychain | null
  /** One-time notices (the key file was created). */
  warn?(message: string): void
}

export const CREDENTIALS_FILE_KIND: SealedFileKind = {
  codePrefix: 'CREDENTIALS',
  format: 'agentvault-credentials',
  label: 'credential file',
}

/** Open the credential store: the keychain when available, else the encrypted file. */
export async function openCredentialStore(options: CredentialStoreOptions): Promise<CredentialStore> {
  const keychain = options.keychain === undefined ? await openKeychain({env: options.env}) : options.keychain
  if (keychain) return new KeychainCredentialStore(keychain, options.home)
  return new FileCredentialStore({env: options.env, home: options.home, keychain: null, warn: options.warn})
}

/**
 * The keychain is shared by every agentvault home on the machine, so entries carry the home they
 * belong to: a token stored for `openbao:prod` in one home must never be sent to the server that
 * another home's `prod` profile points at.
 */
class KeychainCredentialStore implements CredentialStore {
  readonly backend = 'keychain' as const
  private readonly home: string

  constructor(
    private readonly keychain: Keychain,
    home: string,
  ) {
    this.home = resolve(home)
  }

  delete(account: string): Promise<boolean> {
    return this.keychain.delete(this.account(account))
  }

  get(account: string): Promise<string | undefined> {
    return this.keychain.get(this.account(account))
  }

  set(account: string, secret: string): Promise<void> {
    return this.keychain.set(this.account(account), secret)
  }

  private account(account: string): string {
    return `${checkAccount(account)} @ ${this.home}`
  }
}

class FileCredentialStore implements CredentialStore {
  readonly backend = 'file' as const
  private cached: undefined | {fingerprint: string; id: string; key: Buffer}
  private readonly lockPath: string
  private readonly path: string

  constructor(private readonly context: KeySourceContext) {
    this.path = join(context.home, 'credentials.enc')
    this.lockPath = join(context.home, 'credentials.lock')
  }

  async delete(account: string): Promise<boolean> {
    checkAccount(account)
    if (!this.readFile()) return false
    return this.update((accounts) => accounts.delete(account))
  }

  async get(account: string): Promise<string | undefined> {
    checkAccount(account)
    const file = this.readFile()
    if (!file) return undefined
    return (await this.open(file)).get(account)
  }

  async set(account: string, secret: string): Promise<void> {
    checkAccount(account)
    await this.update((accounts) => {
      accounts.set(account, secret)
    })
  }

  private async keyFor(header: SealedFileHeader): Promise<Buffer> {
    if (this.cached?.id === header.id && this.cached.fingerprint === header.keyFingerprint)
      return this.cached.key
    const key = await unlockKey(header.key, this.context, this.path)
    this.remember(header, key)
    return key
  }

  private async open(file: SealedFile): Promise<Map<string, string>> {
    const key = await this.keyFor(file)
    let data: unknown
    try {
      data = await openSealedFile(CREDENTIALS_FILE_KIND, file, key, this.path)
    } catch (error) {
      wipe(this.cached?.key)
      this.cached = undefined
      throw error
    }

    const accounts = isRecord(data) && isRecord(data.accounts) ? Object.entries(data.accounts) : undefined
    if (!accounts || accounts.some(([, value]) => typeof value !== 'string'))
      throw new ConfigError(
        'CREDENTIALS_CORRUPT',
        `The credential file ${this.path} holds no valid account table. agentvault has not modified it`,
        {
          details: {path: this.path},
          suggestion: `Move ${this.path} aside and sign in again.`,
        },
      )
    return new Map(accounts as Array<[string, string]>)
  }

  private readFile(): SealedFile | undefined {
    const bytes = readSealedBytes(this.path, CREDENTIALS_FILE_KIND.label)
    return bytes === undefined ? undefined : decodeSealedFile(CREDENTIALS_FILE_KIND, bytes, this.path)
  }

  private remember(header: SealedFileHeader, key: Buffer): void {
    if (this.cached?.key !== key) wipe(this.cached?.key)
    this.cached = {fingerprint: header.keyFingerprint, id: header.id, key}
  }

  private async update<T>(change: (accounts: Map<string, string>) => T): Promise<T> {
    await ensureHome(this.context.home)
    // The key of the file as it is now is unlocked (scrypt, a passphrase) before queueing for the
    // lock, as the vault's is: under it every other writer would wait on the derivation, and a
    // wrong passphrase would be reported only after the queue (or as a lock timeout). Under the
    // lock, the same file needs no second unlock; one rewritten meanwhile is unlocked there.
    const current = this.readFile()
    if (current) await this.keyFor(current)
    // A change reported as made is one that was made (see withWriteLock).
    return withWriteLock(this.lockPath, async () => {
      const file = this.readFile()
      let header: SealedFileHeader
      let accounts: Map<string, string>
      if (file) {
        header = file
        accounts = await this.open(file)
      } else {
        // The keychain is not a candidate: this file exists precisely because there is none.
        const id = newFileId()
        const {descriptor, key} = await createKey(this.context, {
          candidates: ['passphrase', 'file'],
          keychainAccount: `credentials-key:${id}`,
        })
        header = {id, key: descriptor, keyFingerprint: keyFingerprint(key)}
        this.remember(header, key)
        accounts = new Map()
      }

      const result = change(accounts)
      const key = await this.keyFor(header)
      await writeFileAtomic(
        this.path,
        await encodeSealedFile(CREDENTIALS_FILE_KIND, header, key, {accounts: Object.fromEntries(accounts)}),
        0o600,
      )
      await (await import('node:fs/promises')).chmod(this.path, 0o600)
      await reassertKeyFileMode(header.key, this.context.home)
      return result
    })
  }
}

function checkAccount(account: string): string {
  if (account === '' || account.length > 256)
    throw new InternalError(
      'A credential account name must be 1–256 characters (accounts look like `openbao:prod-bao`)',
    )
  return account
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
