/**
 * A thin adapter over the OS keychain (@napi-rs/keyring): macOS Keychain, Windows Credential
 * Manager, the Secret Service on Linux. It answers one question the rest of agentvault cares
 * about — "is there a keychain that will give back what we put in it?" — and otherwise stays out
 * of the way. @napi-rs/keyring is a native module, so it is imported only when a keychain is
 * actually opened (startup is a feature).
 */
import {randomBytes} from 'node:crypto'

import {BackendUnavailableError} from './errors.js'

/** A place to keep short strings (tokens, base64 keys) under an account name. */
export interface Keychain {
  delete(account: string): Promise<boolean>
  get(account: string): Promise<string | undefined>
  /** The keychain service name entries live under (recorded in vault headers). */
  readonly service: string
  set(account: string, secret: string): Promise<void>
}

export interface OpenKeychainOptions {
  /** Consulted for AGENTVAULT_NO_KEYCHAIN; defaults to process.env. */
  env?: NodeJS.ProcessEnv
  /**
   * Check with a write + read + delete that the keychain really works before returning it
   * (default true). Pass false when a file header already says the keychain holds its key: the
   * read itself is then the check, and a run pays for one keychain round trip, not four.
   */
  probe?: boolean
  /** Service name (default `agentvault`). */
  service?: string
}

export const DEFAULT_KEYCHAIN_SERVICE = 'agentvault'

/** A locked or absent Secret Service should not stall a CLI: give the probe this long. */
const PROBE_TIMEOUT_MS = 5000

/** True when AGENTVAULT_NO_KEYCHAIN asks agentvault to leave the OS keychain alone. */
export function keychainDisabled(env: NodeJS.ProcessEnv): boolean {
  const value = env.AGENTVAULT_NO_KEYCHAIN?.trim().toLowerCase()
  return value === '1' || value === 'true'
}

/**
 * Open the OS keychain, or resolve undefined when there is no usable one: AGENTVAULT_NO_KEYCHAIN=1,
 * no prebuilt binary for this platform, no Secret Service (`AccessDenied`), a locked keyring (which
 * fails the write or reads back `null`), or any other platform error. Never throws.
 *
 * On Linux entries are pinned to the Secret Service: @napi-rs/keyring would otherwise fall back
 * silently to the kernel keyutils store, which lives in memory and is gone after a reboot — a
 * vault key kept there would make the vault unreadable for good.
 */
export async function openKeychain(options: OpenKeychainOptions = {}): Promise<Keychain | undefined> {
  const env = options.env ?? process.env
  if (keychainDisabled(env)) return undefined
  const service = options.service ?? DEFAULT_KEYCHAIN_SERVICE

  let keyring: typeof import('@napi-rs/keyring')
  try {
    keyring = await import('@napi-rs/keyring')
  } catch {
    return undefined
  }

  const entryOptions = process.platform === 'linux' ? {linux: {store: 'secret-service' as const}} : undefined
  const entry = (account: string) => new keyring.AsyncEntry(service, account, entryOptions)
  const keychain = new OsKeychain(service, entry)
  if (options.probe === false) return keychain
  return (await probe(entry)) ? keychain : undefined
}

type EntryFactory = (account: string) => import('@napi-rs/keyring').AsyncEntry

async function probe(entry: EntryFactory): Promise<boolean> {
  const account = `agentvault-probe-${process.pid}-${randomBytes(6).toString('hex')}`
  const expected = randomBytes(12).toString('hex')
  let written = false
  try {
    const probeEntry = entry(account)
    await probeEntry.setPassword(expected, AbortSignal.timeout(PROBE_TIMEOUT_MS))
    written = true
    // A locked keyring may accept the write and then read back null instead of throwing.
    return (await probeEntry.getPassword(AbortSignal.timeout(PROBE_TIMEOUT_MS))) === expected
  } catch {
    return false
  } finally {
    if (written)
      await entry(account)
        .deleteCredential(AbortSignal.timeout(PROBE_TIMEOUT_MS))
        .catch(() => false)
  }
}

class OsKeychain implements Keychain {
  constructor(
    readonly service: string,
    private readonly entry: EntryFactory,
  ) {}

  async delete(account: string): Promise<boolean> {
    try {
      return await this.entry(account).deleteCredential()
    } catch (error) {
      throw unavailable(this.service, error)
    }
  }

  async get(account: string): Promise<string | undefined> {
    try {
      return (await this.entry(account).getPassword()) ?? undefined
    } catch (error) {
      throw unavailable(this.service, error)
    }
  }

  async set(account: string, secret: string): Promise<void> {
    try {
      await this.entry(account).setPassword(secret)
    } catch (error) {
      throw unavailable(this.service, error)
    }
  }
}

// Platform messages name the failure (AccessDenied, "prompt was dismissed"), never the secret.
function unavailable(service: string, error: unknown): BackendUnavailableError {
  const reason = error instanceof Error ? error.message : String(error)
  return new BackendUnavailableError(
    'KEYCHAIN_UNAVAILABLE',
    `The OS keychain (service ${service}) failed: ${reason}`,
    {
      cause: error,
      suggestion:
        'Unlock your keyring (or start a Secret Service on Linux), or set AGENTVAULT_NO_KEYCHAIN=1 to keep credentials in an encrypted file.',
    },
  )
}

/** An in-memory keychain for tests; `entries` lets a test look inside. */
export interface MemoryKeychain extends Keychain {
  readonly entries: Map<string, string>
}

/** Create an in-memory {@link Keychain} (unit tests; never used by the CLI itself). */
export function createMemoryKeychain(service = 'memory'): MemoryKeychain {
  const entries = new Map<string, string>()
  return {
    entries,
    service,
    async delete(account) {
      return entries.delete(account)
    },
    async get(account) {
      return entries.get(account)
    },
    async set(account, secret) {
      entries.set(account, secret)
    },
  }
}
