/**
 * The embedded `local` backend (product.md §6): secrets in an encrypted vault file of
 * agentvault's own, `$AGENTVAULT_HOME/vault.json`. File format: sealed-file.ts; key sources:
 * key-source.ts; locking and atomic writes: vault-store.ts.
 */
import type {
  Backend,
  BackendContext,
  Capabilities,
  ExportedSecret,
  LoginOptions,
  LoginResult,
  MetadataChanges,
  ProfileStatus,
  RenameOptions,
  SecretMetadata,
  SecretVersions,
  SetManyItem,
  SetManyOptions,
  SetManyResult,
  SetSecretOptions,
} from '../../core/backend.js'
import type {Keychain} from '../../core/keychain.js'
import type {SecretReference} from '../../core/references.js'

import {ENGINE_USE_OPERATIONS, statusProblem} from '../../core/backend.js'
import {AgentVaultError, SecretNotFoundError, UsageError} from '../../core/errors.js'
import {type KeySourceContext, type KeySourceKind} from '../../core/key-source.js'
import {
  DEFAULT_KEEP_VERSIONS,
  type VaultEntries,
  type VaultEntry,
  type VaultMetadata,
  VaultStore,
} from './vault-store.js'

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
  versionHistory: true,
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
    ...(context.promptHidden && {promptHidden: context.promptHidden}),
    warn: (message) => context.warn(message),
  }
}

const MAX_NAME_LENGTH = 512

/** The name a write (set, delete, rollback) targets: a `?version=N` would be ambiguous there. */
function writableName(reference: SecretReference): string {
  const name = secretName(reference)
  if (reference.version !== undefined)
    throw new UsageError(
      'VERSION_READ_ONLY',
      `${reference.canonical}: ?version=N only reads an older value`,
      {
        suggestion: `Drop ?version=${reference.version}; to make it current again: agentvault secrets rollback local://${name} --version ${reference.version}`,
      },
    )
  return name
}

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

function metadataOf(name: string, entry: Omit<VaultEntry, 'value'>): SecretMetadata {
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
  private readonly keepVersions: number

  constructor(context: BackendContext, options: LocalBackendOptions) {
    const keep = context.profile.settings.keepVersions
    this.keepVersions = typeof keep === 'number' ? keep : DEFAULT_KEEP_VERSIONS
    this.store = new VaultStore(keySourceContext(context, options), {keepVersions: this.keepVersions})
  }

  async close(): Promise<void> {
    this.store.close()
  }

  async delete(reference: SecretReference): Promise<void> {
    const name = writableName(reference)
    await this.store.updateEntry(
      name,
      (entry) => {
        if (!entry) throw new SecretNotFoundError(reference.canonical)
        return {entry: undefined, result: undefined}
      },
      {createIfMissing: false},
    )
  }

  /** Metadata (including allowedDomains) of one secret, without its value. */
  async describe(reference: SecretReference): Promise<SecretMetadata> {
    const name = secretName(reference)
    const entry = await this.store.readEntryMetadata(name)
    if (!entry) throw new SecretNotFoundError(reference.canonical)
    return metadataOf(name, entry)
  }

  async get(reference: SecretReference): Promise<Buffer> {
    return (await this.resolveMany([reference])).get(reference.canonical) as Buffer
  }

  async list(prefix = ''): Promise<SecretMetadata[]> {
    const metadata = await this.store.readMetadata()
    if (!metadata) return []
    return [...metadata]
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
    // Only the boxes of the names asked for are opened, whatever the vault holds.
    const values = await this.store.readValues(
      references.map((reference, index) => ({name: names[index] as string, version: reference.version})),
    )
    for (const [index, reference] of references.entries()) {
      const value = values?.[index]
      if (!value) throw notFound(reference)
      resolved.set(reference.canonical, value)
    }

    return resolved
  }

  /**
   * `secrets rollback local://K --version N`: the value of version N becomes a new version (the
   * current value is kept as a previous version, as any set keeps it).
   */
  async rollback(reference: SecretReference, version: number): Promise<SecretMetadata> {
    const name = writableName(reference)
    return this.store.updateEntry(
      name,
      (current, tools) => {
        if (!current) throw new SecretNotFoundError(reference.canonical)
        const value = tools.valueAt(name, version)
        if (value === undefined || version === current.version) {
          const suggestion = `See the versions kept with \`agentvault secrets versions ${reference.canonical}\`.`
          // The current version: nothing to do (a usage error). One that is not kept is not found
          // (product.md §9, exit 6), as reading it with ?version= is.
          if (version === current.version)
            throw new UsageError(
              'VERSION_NOT_KEPT',
              `Version ${version} of ${reference.canonical} is already the current one`,
              {suggestion},
            )
          throw new AgentVaultError(
            'not_found',
            'VERSION_NOT_KEPT',
            `Version ${version} of ${reference.canonical} is not kept`,
            {suggestion},
          )
        }

        const entry: VaultEntry = {
          ...plainCopy(current),
          updated: new Date().toISOString(),
          value,
          version: current.version + 1,
        }
        return {entry, result: metadataOf(name, entry)}
      },
      {createIfMissing: false},
    )
  }

  /**
   * Store a value. A new secret gets version 1; an update increments the version, keeps `created`,
   * and keeps description/tags/allowedDomains unless new ones are given (as `op item edit` does).
   */
  async set(reference: SecretReference, value: Buffer, options: SetSecretOptions): Promise<SecretMetadata> {
    const name = writableName(reference)
    // One entry opened and sealed, whatever the vault holds.
    return this.store.updateEntry(
      name,
      (previous) => {
        const entry = nextEntry(previous, value, options)
        return {entry, result: metadataOf(name, entry)}
      },
      {createIfMissing: true},
    )
  }

  /** `secrets import`: every value in one locked write; existing names skipped unless `overwrite`. */
  async setMany(items: SetManyItem[], options: SetManyOptions): Promise<SetManyResult> {
    const named = items.map((item) => ({...item, name: writableName(item.reference)}))
    const result: SetManyResult = {created: [], replaced: [], skipped: []}
    if (named.length === 0) return result
    return this.store.update(
      (entries) => {
        for (const {name, reference, value} of named) {
          const exists = entries.has(name)
          if (exists && !options.overwrite) {
            result.skipped.push(reference.canonical)
            continue
          }

          storeValue(entries, name, value, {})
          ;(exists ? result.replaced : result.created).push(reference.canonical)
        }

        return result
      },
      {createIfMissing: true},
    )
  }

  /** `secrets export`: every value under `prefix` from one read, sorted by name. */
  async exportAll(prefix = ''): Promise<ExportedSecret[]> {
    const snapshot = await this.store.read()
    if (!snapshot) return []
    return [...snapshot.entries]
      .filter(([name]) => name.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, entry]) => ({name, value: Buffer.from(entry.value, 'base64')}))
  }

  /** `secrets edit`: new metadata, same value and version. */
  async updateMetadata(reference: SecretReference, changes: MetadataChanges): Promise<SecretMetadata> {
    const name = writableName(reference)
    return this.store.update(
      (entries) => {
        const previous = entries.get(name)
        if (!previous) throw new SecretNotFoundError(reference.canonical)
        const entry: VaultEntry = {
          ...previous,
          updated: new Date().toISOString(),
          ...(changes.description === undefined ? {} : {description: changes.description}),
          ...(changes.tags === undefined ? {} : {tags: [...changes.tags]}),
          ...(changes.allowedDomains === undefined ? {} : {allowedDomains: [...changes.allowedDomains]}),
        }
        entries.set(name, entry)
        return metadataOf(name, entry)
      },
      {createIfMissing: false},
    )
  }

  /** `secrets rename`: the entry moves as it is (value, version, metadata) in one write. */
  async rename(from: SecretReference, to: SecretReference, options: RenameOptions): Promise<SecretMetadata> {
    const oldName = writableName(from)
    const newName = writableName(to)
    return this.store.update(
      (entries) => {
        const entry = entries.get(oldName)
        if (!entry) throw new SecretNotFoundError(from.canonical)
        if (oldName === newName) return metadataOf(newName, entry)
        if (entries.has(newName) && !options.overwrite)
          throw new UsageError('SECRET_EXISTS', `${to.canonical} already exists`, {
            details: {reference: to.canonical},
            suggestion: `Pick another name, or replace it: agentvault secrets rename ${oldName} ${newName} --overwrite`,
          })
        const moved: VaultEntry = {...entry, updated: new Date().toISOString()}
        entries.delete(oldName)
        entries.set(newName, moved)
        return metadataOf(newName, moved)
      },
      {createIfMissing: false},
    )
  }

  /** The versions kept of one secret (metadata only; no value is opened). */
  async versions(reference: SecretReference): Promise<SecretVersions> {
    const name = secretName(reference)
    const entry = await this.store.readEntryMetadata(name)
    if (!entry) throw new SecretNotFoundError(reference.canonical)
    return versionsOf(reference, entry, this.keepVersions)
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
      return {
        details: {keySource, path, secrets: (await this.store.count()) ?? 0},
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

/**
 * The entry that stores `value` after `previous`: a new secret gets version 1; an update
 * increments the version, keeps `created`, and keeps description/tags/allowedDomains unless new
 * ones are given (as `op item edit` does).
 */
function nextEntry(
  previous: Omit<VaultEntry, 'value'> | undefined,
  value: Buffer,
  options: SetSecretOptions,
): VaultEntry {
  const now = new Date().toISOString()
  const description = options.description ?? previous?.description
  const tags = options.tags ?? previous?.tags
  const allowedDomains = options.allowedDomains ?? previous?.allowedDomains
  return {
    value: value.toString('base64'),
    created: previous?.created ?? now,
    updated: now,
    version: (previous?.version ?? 0) + 1,
    ...(description === undefined ? {} : {description}),
    ...(tags === undefined ? {} : {tags: [...tags]}),
    ...(allowedDomains === undefined ? {} : {allowedDomains: [...allowedDomains]}),
  }
}

/** Store a value under `name` in a whole-vault update (`secrets import`). */
function storeValue(
  entries: VaultEntries,
  name: string,
  value: Buffer,
  options: SetSecretOptions,
): SecretMetadata {
  const entry = nextEntry(entries.get(name), value, options)
  entries.set(name, entry)
  return metadataOf(name, entry)
}

/** An entry's metadata fields as a plain object (the value is replaced by the caller). */
function plainCopy(entry: VaultEntry): Omit<VaultEntry, 'value'> {
  return {
    created: entry.created,
    updated: entry.updated,
    version: entry.version,
    ...(entry.description === undefined ? {} : {description: entry.description}),
    ...(entry.tags === undefined ? {} : {tags: [...entry.tags]}),
    ...(entry.allowedDomains === undefined ? {} : {allowedDomains: [...entry.allowedDomains]}),
  }
}

function notFound(reference: SecretReference): SecretNotFoundError {
  if (reference.version === undefined) return new SecretNotFoundError(reference.canonical)
  // `?version=N` of a secret that exists: `secrets list` would only show that it does.
  const secret = reference.canonical.replace(/([?&])version=\d+&?/, '$1').replace(/[?&]$/, '')
  return new SecretNotFoundError(reference.canonical, {
    suggestion: `See the versions kept with \`agentvault secrets versions ${secret}\`.`,
  })
}

/** `secrets versions local://K`, in the shape openbao's KV v2 metadata has. */
function versionsOf(reference: SecretReference, entry: VaultMetadata, keep: number): SecretVersions {
  const versions = [
    ...entry.history.map((item) => ({version: item.version, created_time: item.updated})),
    {version: entry.version, created_time: entry.updated},
  ].map((item) => ({...item, deletion_time: '', destroyed: false, state: 'active' as const}))
  return {
    cas_required: false,
    created_time: entry.created,
    current_version: entry.version,
    custom_metadata: null,
    delete_version_after: '0s',
    max_versions: keep + 1,
    oldest_version: versions[0]?.version ?? entry.version,
    reference: reference.canonical,
    updated_time: entry.updated,
    versions,
  }
}
