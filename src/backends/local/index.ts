/**
 * The embedded `local` backend (product.md §6): secrets in an encrypted vault file of
 * agentvault's own, `$AGENTVAULT_HOME/vault.json`. File format: sealed-file.ts; key sources:
 * key-source.ts; locking and atomic writes: vault-store.ts.
 */
import type {
  Backend,
  BackendContext,
  Capabilities,
  LoginOptions,
  LoginResult,
  ProfileStatus,
  SecretMetadata,
  SetSecretOptions,
} from '../../core/backend.js'
import type {Keychain} from '../../core/keychain.js'
import type {SecretReference} from '../../core/references.js'

import {ENGINE_USE_OPERATIONS, statusProblem} from '../../core/backend.js'
import {AgentVaultError, SecretNotFoundError, UsageError} from '../../core/errors.js'
import {type KeySourceContext, type KeySourceKind} from '../../core/key-source.js'
import {type VaultEntries, type VaultEntry, VaultStore} from './vault-store.js'

export type {KeySourceKind} from '../../core/key-source.js'

export const LOCAL_CAPABILITIES: Readonly<Capabilities> = Object.freeze({
  auditSource: false,
  delete: true,
  get: true,
  list: true,
  login: true,
  runInjection: true,
  set: true,
  useOperations: ENGINE_USE_OPERATIONS,
})

export interface LocalBackendOptions {
  /**
   * The keychain to use as a key source: undefined (default) uses the OS keychain when it works;
   * null never uses one; a Keychain (e.g. createMemoryKeychain()) is used as is — for tests.
   */
  keychain?: Keychain | null
}

/** Create the local backend for a profile. Nothing is read until the first call. */
export function createBackend(context: BackendContext, options: LocalBackendOptions = {}): Backend {
  return new LocalBackend(context, options)
}

function keySourceContext(context: BackendContext, options: LocalBackendOptions): KeySourceContext {
  return {
    env: context.env,
    home: context.home,
    keychain: options.keychain,
    warn: (message) => context.warn(message),
  }
}

const MAX_NAME_LENGTH = 512

function secretName(reference: SecretReference): string {
  const name = reference.path
  if (reference.kind !== 'local')
    throw new UsageError('WRONG_BACKEND', `${reference.canonical} is not a local:// reference`, {
      suggestion: 'Use a local://NAME reference with the local backend.',
    })
  // Names go into listings and terminals: keep control characters (escape sequences) out.

  if (name === '' || name.length > MAX_NAME_LENGTH || /[\u0000-\u001F\u007F]/.test(name))
    throw new UsageError(
      'INVALID_SECRET_NAME',
      `Invalid secret name in ${JSON.stringify(reference.canonical).slice(0, 120)}`,
      {
        suggestion: `Use a non-empty name of at most ${MAX_NAME_LENGTH} printable characters, e.g. local://OPENAI_API_KEY.`,
      },
    )
  return name
}

function metadataOf(name: string, entry: VaultEntry): SecretMetadata {
  return {
    name,
    created: entry.created,
    updated: entry.updated,
    version: entry.version,
    ...(entry.description === undefined ? {} : {description: entry.description}),
    ...(entry.tags === undefined ? {} : {tags: [...entry.tags]}),
    ...(entry.allowedDomains === undefined ? {} : {allowedDomains: [...entry.allowedDomains]}),
  }
}

class LocalBackend implements Backend {
  readonly capabilities = LOCAL_CAPABILITIES
  readonly kind = 'local' as const
  private readonly store: VaultStore

  constructor(context: BackendContext, options: LocalBackendOptions) {
    this.store = new VaultStore(keySourceContext(context, options))
  }

  async close(): Promise<void> {
    this.store.close()
  }

  async delete(reference: SecretReference): Promise<void> {
    const name = secretName(reference)
    await this.store.update(
      (entries) => {
        if (!entries.delete(name)) throw new SecretNotFoundError(reference.canonical)
      },
      {createIfMissing: false},
    )
  }

  /** Metadata (including allowedDomains) of one secret, without its value. */
  async describe(reference: SecretReference): Promise<SecretMetadata> {
    const name = secretName(reference)
    const entry = (await this.store.read())?.entries.get(name)
    if (!entry) throw new SecretNotFoundError(reference.canonical)
    return metadataOf(name, entry)
  }

  async get(reference: SecretReference): Promise<Buffer> {
    const name = secretName(reference)
    const snapshot = await this.store.read()
    return valueOf(snapshot?.entries, name, reference)
  }

  async list(prefix = ''): Promise<SecretMetadata[]> {
    const snapshot = await this.store.read()
    if (!snapshot) return []
    return [...snapshot.entries]
      .filter(([name]) => name.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, entry]) => metadataOf(name, entry))
  }

  /** One read and one decryption for all references; any missing name fails the whole call. */
  /** `agentvault login local`: create the vault with the chosen (or first available) key source. */
  async login(options: LoginOptions): Promise<LoginResult> {
    const wanted = options.keySource
    if (wanted !== undefined && wanted !== 'passphrase' && wanted !== 'keychain' && wanted !== 'file')
      throw new UsageError('BAD_KEY_SOURCE', 'The key source must be passphrase, keychain or file')
    const {created, keySource} = await this.store.initialise(wanted as KeySourceKind | undefined)
    const path = this.store.paths.file
    return {
      details: {created, keySource, path},
      message: created
        ? `Created the local vault at ${path} (key source: ${keySource}).`
        : `The local vault at ${path} already exists (key source: ${keySource}); nothing changed.`,
    }
  }

  async resolveMany(references: SecretReference[]): Promise<Map<string, Buffer>> {
    const names = references.map((reference) => secretName(reference))
    const resolved = new Map<string, Buffer>()
    if (references.length === 0) return resolved
    const snapshot = await this.store.read()
    for (const [index, reference] of references.entries()) {
      resolved.set(reference.canonical, valueOf(snapshot?.entries, names[index] as string, reference))
    }

    return resolved
  }

  /**
   * Store a value. A new secret gets version 1; an update increments the version, keeps `created`,
   * and keeps description/tags/allowedDomains unless new ones are given (as `op item edit` does).
   */
  async set(reference: SecretReference, value: Buffer, options: SetSecretOptions): Promise<SecretMetadata> {
    const name = secretName(reference)
    return this.store.update(
      (entries) => {
        const previous = entries.get(name)
        const now = new Date().toISOString()
        const description = options.description ?? previous?.description
        const tags = options.tags ?? previous?.tags
        const allowedDomains = options.allowedDomains ?? previous?.allowedDomains
        const entry: VaultEntry = {
          value: value.toString('base64'),
          created: previous?.created ?? now,
          updated: now,
          version: (previous?.version ?? 0) + 1,
          ...(description === undefined ? {} : {description}),
          ...(tags === undefined ? {} : {tags: [...tags]}),
          ...(allowedDomains === undefined ? {} : {allowedDomains: [...allowedDomains]}),
        }
        entries.set(name, entry)
        return metadataOf(name, entry)
      },
      {createIfMissing: true},
    )
  }

  async status(): Promise<ProfileStatus> {
    const path = this.store.paths.file
    let keySource: KeySourceKind | undefined
    try {
      keySource = this.store.readHeader()?.key.source
      if (!keySource)
        return {
          details: {path, secrets: 0},
          message: 'No vault yet: `agentvault secrets set NAME` or `agentvault login local` creates one.',
          // Usable as it is: the first `secrets set` creates the vault.
          problem: null,
          reachable: true,
          signedIn: false,
        }
      const snapshot = await this.store.read()
      return {
        details: {keySource, path, secrets: snapshot?.entries.size ?? 0},
        reachable: true,
        signedIn: true,
      }
    } catch (error) {
      if (!(error instanceof AgentVaultError)) throw error
      return {
        details: {code: error.code, path, ...(keySource ? {keySource} : {})},
        message: error.message,
        problem: statusProblem(error.category),
        reachable: true,
        signedIn: false,
      }
    }
  }
}

function valueOf(entries: undefined | VaultEntries, name: string, reference: SecretReference): Buffer {
  const entry = entries?.get(name)
  if (!entry) throw new SecretNotFoundError(reference.canonical)
  return Buffer.from(entry.value, 'base64')
}
