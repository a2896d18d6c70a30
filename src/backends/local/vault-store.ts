/**
 * The vault file `$AGENTVAULT_HOME/vault.json`: read it, and change it safely.
 *
 * Format version 2 (written by this build) seals each secret on its own, so reading one secret
 * decrypts one small box and a write re-seals only the entries it changed:
 *
 * ```json
 * {"format": "agentvault-vault", "version": 2, "id": …, "keyFingerprint": …, "key": {…},
 *  "entries": {"<slot>": {"version": 3, "meta": {nonce, box}, "value": {nonce, box},
 *                         "history": [{"version": 2, "nonce": …, "box": …}]}},
 *  "mac": "hmac-sha256:<64 hex>", "checksum": "sha256:<64 hex>"}
 * ```
 *
 * - `<slot>` is HMAC-SHA256(slot key, name): names never appear in the clear, and a reader finds
 *   an entry without opening the others.
 * - `meta` seals {kind: "meta", id, name, created, updated, version, description, tags,
 *   allowedDomains, history: [{version, updated}]}; `value` and each `history` item seal
 *   {kind: "value", id, name, version, value}. Every box repeats the vault id and the entry name
 *   (secretbox has no associated data), so a box moved to another entry or vault is refused.
 * - `mac` is HMAC-SHA256 (mac key) over the id, fingerprint, key descriptor and the `entries`
 *   table: removing, adding, swapping or replaying any box is detected before anything is opened.
 *   Both keys are derived from the vault key with HMAC-SHA256 (Node's native crypto: cheap).
 *
 * Version 1 (one sealed body with every entry) is still read; the next write rewrites it as
 * version 2 (reads never write).
 * Reads take no lock
 * (writes replace the file atomically, so a reader sees the old or the new vault, never half of
 * one) and create nothing. Writes take `vault.lock`, re-read the file under the lock, apply the
 * change and replace the file atomically, so concurrent writers in many processes lose nothing.
 *
 * Where shell completion was set up (`agentvault autocomplete`), every read of the names and every
 * write also leaves the names (never a value) in the completion cache (core/completion/names-cache).
 */
import {createHmac, timingSafeEqual} from 'node:crypto'
import {lstatSync} from 'node:fs'
import {join} from 'node:path'

import {changeSecretNames, recordSecretNames} from '../../core/completion/names-cache.js'
import {ConfigError} from '../../core/errors.js'
import {ensureHome, withWriteLock, writeFileAtomic} from '../../core/file-lock.js'
import {
  createKey,
  KEY_SOURCE_ORDER,
  type KeyDescriptor,
  type KeySourceContext,
  type KeySourceKind,
  PASSPHRASE_ENV,
  reassertKeyFileMode,
  unlockKey,
} from '../../core/key-source.js'
import {keychainDisabled} from '../../core/keychain.js'
import {
  checkKeyFingerprint,
  corruptError,
  decodeSealedBody,
  decodeSealedEnvelope,
  encodeEnvelope,
  newFileId,
  openSealedFile,
  readSealedBytes,
  type SealedEnvelope,
  type SealedFileHeader,
  type SealedFileKind,
  tamperedError,
} from '../../core/sealed-file.js'
import {
  decodeBase64,
  keyFingerprint,
  loadNacl,
  NONCE_BYTES,
  seal,
  TAG_BYTES,
  wipe,
} from '../../core/sealing.js'

export const VAULT_FILE_KIND: SealedFileKind = {
  codePrefix: 'VAULT',
  format: 'agentvault-vault',
  label: 'vault',
  versions: [1, 2],
}

/** The vault format version this build writes. */
export const VAULT_FORMAT_VERSION = 2

/** How many previous values of each secret a vault keeps unless the profile says otherwise. */
export const DEFAULT_KEEP_VERSIONS = 10

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
  header: VaultHeader
}

/** A vault file's header: who it is, how its key is found, and its format version. */
export interface VaultHeader extends SealedFileHeader {
  formatVersion: number
}

/** One kept previous value of a secret (its value is not opened). */
export interface VaultVersionInfo {
  updated: string
  version: number
}

/** A secret's metadata and the versions kept of it, without any value. */
export type VaultMetadata = Omit<VaultEntry, 'value'> & {history: VaultVersionInfo[]}

/** Helpers `update`'s change function may use while the vault is open (synchronously). */
export interface VaultUpdateTools {
  /** The value (base64) of version `version` of `name` as it was before this change, if kept. */
  valueAt(name: string, version: number): string | undefined
}

export interface VaultPaths {
  file: string
  home: string
  lock: string
}

export function vaultPaths(home: string): VaultPaths {
  return {file: join(home, 'vault.json'), home, lock: join(home, 'vault.lock')}
}

interface BoxText {
  box: string
  nonce: string
}

/** One entry of a version-2 file as stored (boxes still sealed). */
interface StoredRecord {
  history: Array<BoxText & {version: number}>
  meta: BoxText
  value: BoxText
  version: number
}

interface MetaPlain extends VaultMetadata {
  id: string
  kind: 'meta'
  name: string
}

/** An opened file: version 1 holds every entry opened; version 2 its sealed records by slot. */
type Loaded =
  | {entries: VaultEntries; header: VaultHeader; kind: 1}
  | {header: VaultHeader; keys: DerivedKeys; kind: 2; path: string; records: Map<string, StoredRecord>}

/**
 * A version-2 file as last read, kept while the file on disk is that same file (see `loadForReading`):
 * its checked, authenticated records (still sealed), the derived keys, and what reads learnt since
 * — the slots of names found and their opened metadata. Never a value.
 */
interface ReadCache {
  loaded: Extract<Loaded, {kind: 2}>
  /** Slot → the entry's name and metadata (frozen), once opened. */
  meta: Map<string, readonly [string, VaultMetadata]>
  /** Name → slot, for names that have an entry. */
  slots: Map<string, string>
  stamp: string
}

interface DerivedKeys {
  key: Buffer
  mac: Buffer
  slot: Buffer
}

/** What `update` knows of an entry before the change: its metadata and how to get its value. */
interface Original {
  history: Array<BoxText & {version: number}>
  meta: VaultMetadata
  record?: StoredRecord
  value(): string
  /** A kept previous value (base64), opened on demand. */
  valueAt(version: number): string | undefined
}

/** The tools of a change made while there is no vault: nothing is kept. */
const NO_TOOLS: VaultUpdateTools = {
  // eslint-disable-next-line unicorn/no-useless-undefined -- "not kept" is undefined by contract
  valueAt: () => undefined,
}

/** Vault writes made by this process so far: a store's per-turn stamp is kept only while none was made. */
let processWrites = 0

/** Marks an entry object (and its spread copies) with the name it was read under. */
const ORIGIN = Symbol('agentvault vault entry origin')

/**
 * One process's view of a vault. It caches the unlocked data key (keyed by file id and key
 * fingerprint) so a run derives a passphrase or asks the keychain once, not once per secret.
 */
export class VaultStore {
  readonly paths: VaultPaths
  private cached: undefined | {fingerprint: string; id: string; key: Buffer}
  /** The file read last, while it is unchanged; and a read of it in progress. */
  private readCache: ReadCache | undefined
  private reading: undefined | {loaded: Promise<Loaded | undefined>; stamp: string}
  /** The stamp lstat gave in this turn of the event loop, and the process's writes then (see `loadForReading`). */
  private turn: undefined | {stamp: string; writes: number}
  private readonly keepVersions: number
  /** An unlock in progress, shared by every read that needs the same key meanwhile. */
  private unlocking: undefined | {fingerprint: string; id: string; key: Promise<Buffer>}

  constructor(
    private readonly context: KeySourceContext,
    options: {keepVersions?: number} = {},
  ) {
    this.paths = vaultPaths(context.home)
    this.keepVersions = options.keepVersions ?? DEFAULT_KEEP_VERSIONS
  }

  /** Forget the cached key and the file read last. */
  close(): void {
    wipe(this.cached?.key)
    this.cached = undefined
    if (this.readCache) {
      wipe(this.readCache.loaded.keys.mac)
      wipe(this.readCache.loaded.keys.slot)
    }

    this.readCache = undefined
    this.reading = undefined
    this.turn = undefined
  }

  /**
   * Create an empty vault with the chosen key source (default: first that applies). When a vault
   * already exists (and is a valid vault file) nothing changes and `created` is false.
   */
  async initialise(required?: KeySourceKind): Promise<{created: boolean; keySource: KeySourceKind}> {
    await ensureHome(this.paths.home)
    return withWriteLock(this.paths.lock, async () => {
      const existing = this.readHeader()
      if (existing) return {created: false, keySource: existing.key.source}
      const header = await this.create(new Map(), required)
      return {created: true, keySource: header.key.source}
    })
  }

  /**
   * The checked header, or undefined when there is no vault. The whole file's structure is checked
   * too (nothing is opened: that needs the key).
   */
  readHeader(): undefined | VaultHeader {
    const envelope = this.readEnvelope()
    if (!envelope) return undefined
    if (envelope.version === 1) decodeSealedBody(VAULT_FILE_KIND, envelope, this.paths.file)
    else parseRecords(envelope, this.paths.file)
    return {...envelope.header, formatVersion: envelope.version}
  }

  /**
   * How many secrets the vault holds, from its authenticated entry table (no entry is opened);
   * undefined when there is no vault. For `status`: the key fits and the table is intact.
   */
  async count(): Promise<number | undefined> {
    const loaded = await this.loadForReading()
    if (!loaded) return undefined
    return loaded.kind === 1 ? loaded.entries.size : loaded.records.size
  }

  /** The names and metadata of every secret (values stay sealed); undefined when there is no vault. */
  async readMetadata(): Promise<Map<string, VaultMetadata> | undefined> {
    const loaded = await this.loadForReading()
    if (!loaded) return undefined
    const result = new Map<string, VaultMetadata>()
    for (const [name, original] of await this.originals(loaded)) result.set(name, original.meta)
    await recordSecretNames(this.paths.home, result.keys())
    return result
  }

  /**
   * One secret's metadata (its value stays sealed): undefined when the vault or the name is absent.
   * The object is shared with later reads: do not change it.
   */
  async readEntryMetadata(name: string): Promise<undefined | VaultMetadata> {
    const loaded = await this.loadForReading()
    if (!loaded) return undefined
    if (loaded.kind === 1) {
      const entry = loaded.entries.get(name)
      return entry && {...plainMetadata(entry), history: []}
    }

    const slot = this.slotFor(loaded, name)
    const cache = this.readCache?.loaded === loaded ? this.readCache : undefined
    let opened = cache?.meta.get(slot)
    if (!opened) {
      const record = loaded.records.get(slot)
      if (!record) return undefined
      opened = metaOf(loaded, slot, record)
      deepFreeze(opened[1])
      cache?.meta.set(slot, opened)
    }

    if (opened[0] !== name)
      throw tamperedError(VAULT_FILE_KIND, loaded.path, 'an entry belongs to another name')
    return opened[1]
  }

  /**
   * Decrypt every entry; undefined when there is no vault. Prefer readMetadata / readValues,
   * which open only what they need.
   */
  async read(): Promise<undefined | VaultSnapshot> {
    const loaded = await this.load()
    if (!loaded) return undefined
    const entries: VaultEntries = new Map()
    for (const [name, original] of await this.originals(loaded))
      entries.set(name, {...withoutHistory(original.meta), value: original.value()})
    await recordSecretNames(this.paths.home, entries.keys())
    return {entries, header: loaded.header}
  }

  /**
   * The values of `wanted` (name, optional version), opening only their boxes. A missing name or
   * version is undefined in the result; undefined (no map) when there is no vault.
   */
  async readValues(
    wanted: Array<{name: string; version?: number}>,
  ): Promise<Array<Buffer | undefined> | undefined> {
    const loaded = await this.loadForReading()
    if (!loaded) return undefined
    if (loaded.kind === 1)
      return wanted.map(({name, version}) => {
        const entry = loaded.entries.get(name)
        return entry && (version === undefined || version === entry.version)
          ? Buffer.from(entry.value, 'base64')
          : undefined
      })
    return wanted.map(({name, version}) => {
      const record = loaded.records.get(this.slotFor(loaded, name))
      if (!record) return
      const box =
        version === undefined || version === record.version
          ? record.value
          : record.history.find((item) => item.version === version)
      if (!box) return
      return Buffer.from(openValueSync(loaded, name, box, version ?? record.version), 'base64')
    })
  }

  /**
   * Apply `change` to the entries under the vault lock and write the result. When `change`
   * throws, nothing is written. Without `createIfMissing`, a missing vault is handed to `change`
   * as an empty map and never created. Entries `change` leaves alone keep their sealed boxes as
   * they are; a value given a new version keeps the previous one (up to keepVersions).
   */
  async update<T>(
    change: (entries: VaultEntries, tools: VaultUpdateTools) => T,
    options: {createIfMissing: boolean},
  ): Promise<T> {
    const header = options.createIfMissing && !this.mayUnlockSlowly() ? undefined : this.readHeader()
    if (!options.createIfMissing && header === undefined) return change(new Map(), NO_TOOLS)
    await this.unlockAhead(header)
    await ensureHome(this.paths.home)
    return withWriteLock(this.paths.lock, async () => this.changeLocked(await this.load(), change))
  }

  /**
   * Change one entry under the vault lock: `change` gets the entry (undefined when absent) and
   * returns the new one (undefined deletes it). Only that entry's boxes are opened and sealed;
   * every other entry is kept as written. Same semantics as `update` otherwise.
   */
  async updateEntry<T>(
    name: string,
    change: (
      entry: undefined | VaultEntry,
      tools: VaultUpdateTools,
    ) => {entry: undefined | VaultEntry; result: T},
    options: {createIfMissing: boolean},
  ): Promise<T> {
    const viaMap = (entries: VaultEntries, tools: VaultUpdateTools): T => {
      const {entry, result} = change(entries.get(name), tools)
      if (entry) entries.set(name, entry)
      else entries.delete(name)
      return result
    }

    const header = options.createIfMissing && !this.mayUnlockSlowly() ? undefined : this.readHeader()
    if (!options.createIfMissing && header === undefined) return viaMap(new Map(), NO_TOOLS)
    await this.unlockAhead(header)
    await ensureHome(this.paths.home)
    return withWriteLock(this.paths.lock, async () => {
      const loaded = await this.load()
      if (loaded?.kind !== 2) return this.changeLocked(loaded, viaMap)
      const slot = slotOf(loaded.keys, name)
      const record = loaded.records.get(slot)
      const originals = new Map<string, Original>()
      let current: undefined | VaultEntry
      if (record) {
        const [found, original] = originalOf(loaded, slot, record)
        if (found !== name)
          throw tamperedError(VAULT_FILE_KIND, loaded.path, 'an entry belongs to another name')
        originals.set(name, original)
        current = lazyEntry(name, original)
      }

      const {entry, result} = change(current, {
        valueAt: (wanted, version) => (wanted === name ? originals.get(name)?.valueAt(version) : undefined),
      })
      const rest = new Map(loaded.records)
      rest.delete(slot)
      const entries: VaultEntries = new Map()
      if (entry) entries.set(name, entry)
      await this.write(loaded.header, entries, originals, (e) => e === current && !isDirty(e), rest)
      await changeSecretNames(this.paths.home, entry ? {added: [name]} : {removed: [name]})
      return result
    })
  }

  /**
   * Unlock the key of the vault as it is now before queueing for the lock: from a passphrase that
   * is scrypt (about 100 ms of CPU), from the keychain a call to the OS — under the lock, every
   * writer would wait for every other's (with 120 concurrent `secrets set`, half timed out), and a
   * wrong passphrase would be reported only after the queue. The key is cached for this file id
   * and fingerprint, so the read under the lock finds it; a vault replaced meanwhile is unlocked
   * again there. A key file is cheap to read: it is left to the read under the lock.
   */
  private async unlockAhead(header: undefined | VaultHeader): Promise<void> {
    if (header && header.key.source !== 'file') await this.keyFor(header)
  }

  /**
   * Whether the key may come from a passphrase or the keychain, so that a write that would not
   * read the header before the lock anyway (one that may create the vault) does: reading a large
   * vault once more costs milliseconds, paid only where the unlock costs far more.
   */
  private mayUnlockSlowly(): boolean {
    const {env, keychain, promptHidden} = this.context
    // A passphrase typed at the terminal too: nobody waits on the lock while someone types.
    return (
      env[PASSPHRASE_ENV] !== undefined ||
      promptHidden !== undefined ||
      (keychain !== null && !keychainDisabled(env))
    )
  }

  private async changeLocked<T>(
    loaded: Loaded | undefined,
    change: (entries: VaultEntries, tools: VaultUpdateTools) => T,
  ): Promise<T> {
    if (!loaded) {
      const entries: VaultEntries = new Map()
      const result = change(entries, NO_TOOLS)
      await this.create(entries)
      await recordSecretNames(this.paths.home, entries.keys())
      return result
    }

    const originals = await this.originals(loaded)
    const entries: VaultEntries = new Map()
    const untouched = new WeakSet<VaultEntry>()
    for (const [name, original] of originals) {
      const entry = lazyEntry(name, original)
      untouched.add(entry)
      entries.set(name, entry)
    }

    const result = change(entries, {valueAt: (name, version) => originals.get(name)?.valueAt(version)})
    await this.write(loaded.header, entries, originals, (entry) => untouched.has(entry) && !isDirty(entry))
    await recordSecretNames(this.paths.home, entries.keys())
    return result
  }

  private async create(entries: VaultEntries, required?: KeySourceKind): Promise<VaultHeader> {
    const id = newFileId()
    const {descriptor, key} = await createKey(this.context, {
      candidates: KEY_SOURCE_ORDER,
      keychainAccount: `vault-key:${id}`,
      required,
    })
    const header: VaultHeader = {
      formatVersion: VAULT_FORMAT_VERSION,
      id,
      key: descriptor,
      keyFingerprint: keyFingerprint(key),
    }
    this.remember(header, key)
    await this.write(header, entries, new Map(), () => false)
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

  /**
   * `load` for reads: a version-2 file is read, checked and authenticated once, then kept while
   * lstat says it is the same file (device, inode, size, modification and change times to the
   * nanosecond; every write replaces the file, so a new inode and ctime). A long-lived process
   * (`proxy`) thus pays one lstat per read, and still sees at once what another process wrote.
   * Only the sealed records and metadata are kept; each value is opened when read. Writes always
   * read the file again, under the lock.
   *
   * The lstat is shared by the reads of one turn of the event loop (a request's metadata read and
   * value read, requests handled together): until the loop's next check phase (setImmediate) they
   * see the file as it was at that turn's first read, as if they had all read then. Anything that
   * arrives later (a request sent after another process changed the vault) comes in a later turn
   * and looks again. A write of this process (any store) makes every store look again at once.
   */
  private async loadForReading(): Promise<Loaded | undefined> {
    let stamp = this.turn?.writes === processWrites ? this.turn.stamp : undefined
    if (stamp === undefined) {
      stamp = fileStamp(this.paths.file)
      if (stamp !== undefined) {
        const turn = {stamp, writes: processWrites}
        this.turn = turn
        setImmediate(() => {
          if (this.turn === turn) this.turn = undefined
        })
      }
    }

    if (stamp === undefined) {
      this.readCache = undefined
      return this.load()
    }

    if (this.readCache?.stamp === stamp) return this.readCache.loaded
    // Concurrent reads of a file just changed (or first read) share one load.
    if (this.reading?.stamp !== stamp) {
      const reading = {
        loaded: this.load().then((loaded) => {
          if (this.reading === reading && loaded?.kind === 2)
            this.readCache = {loaded, meta: new Map(), slots: new Map(), stamp}
          return loaded
        }),
        stamp,
      }
      this.reading = reading
      const forget = (): void => {
        if (this.reading === reading) this.reading = undefined
      }

      reading.loaded.then(forget, forget)
    }

    return (this.reading as {loaded: Promise<Loaded | undefined>}).loaded
  }

  /** The slot of `name` (HMAC), remembered for names that have an entry while the file is kept. */
  private slotFor(loaded: Extract<Loaded, {kind: 2}>, name: string): string {
    const cache = this.readCache?.loaded === loaded ? this.readCache : undefined
    const known = cache?.slots.get(name)
    if (known !== undefined) return known
    const slot = slotOf(loaded.keys, name)
    // Only names of the vault: a client asking for ever new names cannot grow the map.
    if (cache && loaded.records.has(slot)) cache.slots.set(name, slot)
    return slot
  }

  /** Read, check and (for version 2) authenticate the file; version 1 is opened whole. */
  private async load(): Promise<Loaded | undefined> {
    const envelope = this.readEnvelope()
    if (!envelope) return undefined
    const header: VaultHeader = {...envelope.header, formatVersion: envelope.version}
    if (envelope.version === 1) {
      const file = decodeSealedBody(VAULT_FILE_KIND, envelope, this.paths.file)
      const key = await this.keyFor(file)
      try {
        const data = await openSealedFile(VAULT_FILE_KIND, file, key, this.paths.file)
        return {entries: parseEntries(data, this.paths.file), header, kind: 1}
      } catch (error) {
        // A key that does not fit must not stay cached as if it did.
        this.close()
        throw error
      }
    }

    const records = parseRecords(envelope, this.paths.file)
    const key = await this.keyFor(header)
    try {
      checkKeyFingerprint(VAULT_FILE_KIND, header, key, this.paths.file)
      const keys = deriveKeys(key)
      // Over the key descriptor exactly as written (parsing may order its fields differently).
      const expected = macOf(
        keys,
        {...header, key: envelope.parsed.key as KeyDescriptor},
        envelope.parsed.entries,
      )
      const given = Buffer.from(String(envelope.parsed.mac).slice(MAC_PREFIX.length), 'hex')
      if (given.length !== expected.length || !timingSafeEqual(given, expected))
        throw tamperedError(VAULT_FILE_KIND, this.paths.file, 'its entry table fails authentication')
      naclRef ??= await loadNacl()
      return {header, keys, kind: 2, path: this.paths.file, records}
    } catch (error) {
      this.close()
      throw error
    }
  }

  /** Every entry's metadata (opening the meta boxes of version 2), by name. */
  private async originals(loaded: Loaded): Promise<Map<string, Original>> {
    const originals = new Map<string, Original>()
    if (loaded.kind === 1) {
      for (const [name, entry] of loaded.entries) {
        const {value, ...meta} = entry
        originals.set(name, {
          history: [],
          meta: {...meta, history: []},
          value: () => value,
          valueAt: (version) => (version === entry.version ? value : undefined),
        })
      }

      return originals
    }

    for (const [slot, record] of loaded.records) {
      const [name, original] = originalOf(loaded, slot, record)
      originals.set(name, original)
    }

    return originals
  }

  private readEnvelope(): SealedEnvelope | undefined {
    const bytes = readSealedBytes(this.paths.file, VAULT_FILE_KIND.label)
    return bytes === undefined ? undefined : decodeSealedEnvelope(VAULT_FILE_KIND, bytes, this.paths.file)
  }

  private remember(header: SealedFileHeader, key: Buffer): void {
    if (this.cached?.key !== key) wipe(this.cached?.key)
    this.cached = {fingerprint: header.keyFingerprint, id: header.id, key}
  }

  /** Seal what changed, keep what did not, and replace the file atomically (under the lock). */
  private async write(
    header: SealedFileHeader,
    entries: VaultEntries,
    originals: Map<string, Original>,
    unchanged: (entry: VaultEntry) => boolean,
    rest: Map<string, StoredRecord> = new Map(),
  ): Promise<void> {
    const key = await this.keyFor(header)
    const keys = deriveKeys(key)
    const path = this.paths.file
    // Entries outside this change, as written (updateEntry).
    const table: Record<string, StoredRecord> = Object.fromEntries(rest)
    for (const [name, entry] of entries) {
      const originName = (entry as {[ORIGIN]?: string})[ORIGIN] ?? name
      const original = originals.get(originName) ?? (originName === name ? undefined : originals.get(name))
      const sameName = originName === name
      const slot = slotOf(keys, name)
      if (original?.record && sameName && unchanged(entry)) {
        table[slot] = original.record
        continue
      }

      if (!isVaultEntry(entry))
        throw corruptError(VAULT_FILE_KIND, path, `an invalid entry would be written (${name.slice(0, 80)})`)
      const originalValue = original?.value()
      const valueChanged = originalValue !== entry.value
      const versionChanged = original?.meta.version !== entry.version
      // Versions kept: the original's, plus the value it replaces when the version moves on.
      let kept: Array<{box?: BoxText; updated: string; version: number}> = []
      if (original) {
        const times = new Map(original.meta.history.map((item) => [item.version, item.updated]))
        kept = original.history.map((item) => ({
          box: sameName ? item : undefined,
          updated: times.get(item.version) ?? '',
          version: item.version,
        }))
        if (versionChanged && original.meta.version < entry.version)
          kept.push({
            box: sameName && original.record ? original.record.value : undefined,
            updated: original.meta.updated,
            version: original.meta.version,
          })
      }

      kept = kept.filter((item) => item.version < entry.version)
      kept = kept.slice(Math.max(0, kept.length - this.keepVersions))
      const history: StoredRecord['history'] = []
      for (const item of kept) {
        let {box} = item
        if (!box) {
          // Renamed, or migrated from version 1: seal the old value again under the new name.
          const old = original?.valueAt(item.version) as string
          box = await sealJson(key, {id: header.id, kind: 'value', name, value: old, version: item.version})
        }

        history.push({...box, version: item.version})
      }

      const reuseValue = original?.record && sameName && !valueChanged && !versionChanged
      const {value, ...metadata} = entry
      const meta: MetaPlain = {
        ...plainMetadata(metadata),
        history: kept.map(({updated, version}) => ({updated, version})),
        id: header.id,
        kind: 'meta',
        name,
      }
      table[slot] = {
        history,
        meta: await sealJson(key, meta),
        value: reuseValue
          ? (original.record as StoredRecord).value
          : await sealJson(key, {id: header.id, kind: 'value', name, value, version: entry.version}),
        version: entry.version,
      }
    }

    const envelope = {
      format: VAULT_FILE_KIND.format,
      version: VAULT_FORMAT_VERSION,
      id: header.id,
      keyFingerprint: header.keyFingerprint,
      key: header.key,
      entries: table,
      mac: `${MAC_PREFIX}${macOf(keys, header, table).toString('hex')}`,
    }
    // The temp file that replaces vault.json gets exactly 0600 (writeFileAtomic fchmods it, whatever
    // the umask or the mode of the file it replaces).
    processWrites++
    await writeFileAtomic(path, encodeEnvelope(envelope), 0o600)
    processWrites++
    await reassertKeyFileMode(header.key, this.paths.home)
  }
}

const MAC_PREFIX = 'hmac-sha256:'

function deriveKeys(key: Buffer): DerivedKeys {
  return {
    key,
    mac: createHmac('sha256', key).update('agentvault vault v2 index mac').digest(),
    slot: createHmac('sha256', key).update('agentvault vault v2 entry slot').digest(),
  }
}

function slotOf(keys: DerivedKeys, name: string): string {
  return createHmac('sha256', keys.slot).update(name, 'utf8').digest('hex')
}

function macOf(keys: DerivedKeys, header: SealedFileHeader, entries: unknown): Buffer {
  return createHmac('sha256', keys.mac)
    .update(
      JSON.stringify([
        VAULT_FILE_KIND.format,
        VAULT_FORMAT_VERSION,
        header.id,
        header.keyFingerprint,
        header.key,
      ]),
    )
    .update('\0')
    .update(JSON.stringify(entries))
    .digest()
}

async function sealJson(key: Buffer, data: unknown): Promise<BoxText> {
  const plaintext = Buffer.from(JSON.stringify(data), 'utf8')
  try {
    const sealed = await seal(key, plaintext)
    return {nonce: sealed.nonce.toString('base64'), box: sealed.box.toString('base64')}
  } finally {
    plaintext.fill(0)
  }
}

/**
 * Sealed boxes decoded from their base64 text, per text object of a parsed file (kept while the
 * file is kept, collected with it). Ciphertext and nonce only: opening still authenticates them.
 */
const decodedBoxes = new WeakMap<BoxText, {box: Buffer | undefined; nonce: Buffer | undefined}>()

/** Open one box (nacl already loaded) and parse its JSON; a box that fails is tampering. */
function openBoxSync(loaded: Extract<Loaded, {kind: 2}>, text: BoxText): unknown {
  const {path} = loaded
  const nacl = naclRef as Awaited<ReturnType<typeof loadNacl>>
  // Decoded (strictly) only here: checking every box of a large vault on each read costs more than
  // the one box a read opens. The MAC already vouched for the text. A box read again (a long-lived
  // reader keeps the file's records) is decoded once: the sealed bytes and nonce, never the plaintext.
  let decoded = decodedBoxes.get(text)
  if (!decoded) {
    decoded = {box: decodeBase64(text.box), nonce: decodeBase64(text.nonce)}
    decodedBoxes.set(text, decoded)
  }

  const {box, nonce} = decoded
  const opened =
    box && nonce?.length === NONCE_BYTES && box.length >= TAG_BYTES
      ? nacl.secretbox.open(box, nonce, loaded.keys.key)
      : null
  if (!opened) throw tamperedError(VAULT_FILE_KIND, path, 'a sealed entry fails authentication')
  const plaintext = Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength)
  try {
    return JSON.parse(plaintext.toString('utf8'))
  } catch {
    throw tamperedError(VAULT_FILE_KIND, path, 'a sealed entry is not JSON')
  } finally {
    plaintext.fill(0)
  }
}

/**
 * Values already opened (and checked) from a kept file's boxes, per box: a long-lived reader
 * (`proxy`, `mcp`) serves the same secrets request after request from the same unchanged file,
 * and opening a box (XSalsa20-Poly1305 in JavaScript, JSON, strict base64) was a tenth of a proxy
 * request's CPU. A changed file is a new load with new boxes, so nothing outlives the file it
 * came from. Holds the base64 text of values a reader already had in memory while it used them;
 * a `proxy` also keeps their masking patterns for its whole life.
 */
const openedValues = new WeakMap<BoxText, {name: string; value: string; version: number}>()

function openValueSync(
  loaded: Extract<Loaded, {kind: 2}>,
  name: string,
  box: BoxText,
  version: number,
): string {
  const kept = openedValues.get(box)
  if (kept?.name === name && kept.version === version) return kept.value
  const plain = openBoxSync(loaded, box)
  if (
    !isRecord(plain) ||
    plain.kind !== 'value' ||
    plain.id !== loaded.header.id ||
    plain.name !== name ||
    plain.version !== version ||
    decodeBase64(plain.value) === undefined
  )
    throw tamperedError(
      VAULT_FILE_KIND,
      loaded.path,
      'a sealed value belongs to another vault, name or version',
    )
  openedValues.set(box, {name, value: plain.value as string, version})
  return plain.value as string
}

/** Open an entry's metadata box (checked against the vault, its slot and its version). */
function metaOf(
  loaded: Extract<Loaded, {kind: 2}>,
  slot: string,
  record: StoredRecord,
): [string, VaultMetadata] {
  const {path} = loaded
  const plain = openBoxSync(loaded, record.meta)
  if (!isMetaPlain(plain, loaded.header.id) || slotOf(loaded.keys, plain.name) !== slot)
    throw tamperedError(VAULT_FILE_KIND, path, 'an entry belongs to another vault or name')
  const meta: VaultMetadata = {...plainMetadata(plain), history: plain.history}
  if (meta.version !== record.version) throw tamperedError(VAULT_FILE_KIND, path, 'an entry version differs')
  return [plain.name, meta]
}

/** Metadata kept across reads: frozen, so that no reader changes what the next one gets. */
function deepFreeze(meta: VaultMetadata): void {
  for (const list of [meta.tags, meta.allowedDomains, meta.history]) if (list) Object.freeze(list)
  for (const item of meta.history) Object.freeze(item)
  Object.freeze(meta)
}

/**
 * What identifies the file at `path` now: device, inode, size, and modification and change times
 * in nanoseconds; undefined when it is absent or not a regular file (the read then says why).
 */
function fileStamp(path: string): string | undefined {
  try {
    const info = lstatSync(path, {bigint: true})
    if (!info.isFile()) return undefined
    return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`
  } catch {
    return undefined
  }
}

/** Open an entry's metadata box and make it an Original (value opened on demand). */
function originalOf(
  loaded: Extract<Loaded, {kind: 2}>,
  slot: string,
  record: StoredRecord,
): [string, Original] {
  const [name, meta] = metaOf(loaded, slot, record)
  let value: string | undefined
  return [
    name,
    {
      history: record.history,
      meta,
      record,
      value() {
        value ??= openValueSync(loaded, name, record.value, record.version)
        return value
      },
      valueAt(version) {
        if (version === record.version) return this.value()
        const box = record.history.find((item) => item.version === version)
        return box ? openValueSync(loaded, name, box, box.version) : undefined
      },
    },
  ]
}

/** tweetnacl, once a version-2 vault was loaded (so opening a box needs no await). */
let naclRef: Awaited<ReturnType<typeof loadNacl>> | undefined

/** An entry as `update` hands it out: its value opens only when read; assigning it marks it dirty. */
function lazyEntry(name: string, original: Original): VaultEntry {
  const entry = {...structuredClone(withoutHistory(original.meta))} as VaultEntry & {[ORIGIN]: string}
  let value: string | undefined
  Object.defineProperty(entry, 'value', {
    configurable: true,
    enumerable: true,
    get() {
      value ??= original.value()
      return value
    },
    set(next: string) {
      value = next
      dirty.add(entry)
    },
  })
  Object.defineProperty(entry, ORIGIN, {enumerable: true, value: name, writable: true})
  snapshots.set(entry, JSON.stringify(withoutHistory(original.meta)))
  return entry
}

const dirty = new WeakSet<object>()
const snapshots = new WeakMap<object, string>()

function isDirty(entry: VaultEntry): boolean {
  const current: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(entry)) if (key !== 'value') current[key] = item
  return (
    dirty.has(entry) ||
    snapshots.get(entry) !== JSON.stringify(plainMetadata(current as Omit<VaultEntry, 'value'>))
  )
}

function withoutHistory(meta: VaultMetadata): Omit<VaultEntry, 'value'> {
  return plainMetadata(meta)
}

/** The metadata fields in one fixed order (so comparisons and sealed text are stable). */
function plainMetadata(meta: Omit<VaultEntry, 'value'>): Omit<VaultEntry, 'value'> {
  return {
    created: meta.created,
    updated: meta.updated,
    version: meta.version,
    ...(meta.description === undefined ? {} : {description: meta.description}),
    ...(meta.tags === undefined ? {} : {tags: [...meta.tags]}),
    ...(meta.allowedDomains === undefined ? {} : {allowedDomains: [...meta.allowedDomains]}),
  }
}

function isMetaPlain(value: unknown, id: string): value is MetaPlain {
  if (!isRecord(value) || value.kind !== 'meta' || value.id !== id || typeof value.name !== 'string')
    return false
  const {history} = value
  return (
    isVaultEntry({...value, value: ''}) &&
    Array.isArray(history) &&
    history.every(
      (item) => isRecord(item) && Number.isInteger(item.version) && typeof item.updated === 'string',
    )
  )
}

/** The `entries` table of a version-2 file, shape-checked (the MAC is checked once the key is known). */
function parseRecords(envelope: SealedEnvelope, path: string): Map<string, StoredRecord> {
  const corrupt = (what: string) => corruptError(VAULT_FILE_KIND, path, what)
  const {entries, mac} = envelope.parsed
  if (typeof mac !== 'string' || !new RegExp(`^${MAC_PREFIX}[\\da-f]{64}$`).test(mac))
    throw corrupt('its entry table has no valid MAC')
  if (!isRecord(entries)) throw corrupt('it has no entry table')
  const records = new Map<string, StoredRecord>()
  for (const [slot, record] of Object.entries(entries)) {
    if (!/^[\da-f]{64}$/.test(slot) || !isRecord(record)) throw corrupt('its entry table is invalid')
    const {history, meta, value, version} = record
    if (
      !isBox(meta) ||
      !isBox(value) ||
      !isVersion(version) ||
      !Array.isArray(history) ||
      !history.every((item) => isBox(item) && isVersion((item as {version?: unknown}).version))
    )
      throw corrupt('an entry is invalid')
    records.set(slot, {history: history as StoredRecord['history'], meta, value, version: version as number})
  }

  return records
}

function isVersion(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 1
}

/** Shape only (cheap): the base64 is decoded strictly when the box is opened. */
function isBox(value: unknown): value is BoxText {
  return (
    isRecord(value) &&
    typeof value.nonce === 'string' &&
    value.nonce.length === NONCE_TEXT_LENGTH &&
    typeof value.box === 'string' &&
    value.box.length >= TAG_TEXT_LENGTH
  )
}

const NONCE_TEXT_LENGTH = Math.ceil(NONCE_BYTES / 3) * 4
const TAG_TEXT_LENGTH = Math.ceil(TAG_BYTES / 3) * 4

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
