/**
 * The `openbao` backend (protocols/openbao.md): Canonical Secret URIs resolved against OpenBao or
 * HashiCorp Vault KV v2 over HTTP, through node-vault wrapped in our typed adapter (kv-client.ts).
 * One backend instance serves one profile for one command; nothing is read or sent until the
 * first call. `use` and `call` run in agentvault's own engine with the value from `get` and the
 * `allowedDomains` from `describe` (KV custom metadata `allowed_domains`).
 */
import type {Debugger} from 'debug'

import type {
  Backend,
  BackendContext,
  Capabilities,
  DeleteOptions,
  GetOptions,
  ListOptions,
  LoginOptions,
  LoginResult,
  LogoutOptions,
  ProfileStatus,
  SecretMetadata,
  SecretVersions,
  SetSecretOptions,
  UnwrapOptions,
  WrapResult,
} from '../../core/backend.js'
import type {CredentialStore} from '../../core/credentials.js'
import type {GuardedAgents} from './agents.js'
import type {HealthReport, KvLocation, KvV2Client} from './kv-client.js'

import {ENGINE_USE_OPERATIONS} from '../../core/backend.js'
import {AgentVaultError, ConfigError, DeniedError, UsageError} from '../../core/errors.js'
import {
  checkMountAllowed,
  parseFolderReference,
  parseReference,
  type SecretReference,
} from '../../core/references.js'
import {authRequired, fieldValue, isAgentVaultError, type KvSecret} from './errors.js'
import {type OpenBaoSettings, resolveOpenBaoSettings, settingsWarnings} from './settings.js'
import {
  accountFor,
  readStoredToken,
  type ResolvedToken,
  resolveToken,
  saveStoredToken,
} from './token-store.js'

/** What the openbao backend can do (product.md §2). */
export const OPENBAO_CAPABILITIES: Readonly<Capabilities> = Object.freeze({
  auditSource: false,
  delete: true,
  get: true,
  list: true,
  login: true,
  runInjection: true,
  set: true,
  useOperations: ENGINE_USE_OPERATIONS,
  versioned: true,
})

/** Test seams; production uses the defaults. */
export interface OpenBaoBackendOptions {
  /** The local clock, for the renewal decision. */
  now?: () => number
  /** Waits between 429 retries. */
  sleep?: (ms: number) => Promise<void>
}

/** The backend plus what only the adapter offers in v1 (protocols/openbao.md §15: undelete). */
export interface OpenBaoBackend extends Backend {
  /** `POST {m}/undelete/{p}`: restore soft-deleted versions (destroyed ones stay destroyed). */
  undelete(reference: SecretReference, versions: number[]): Promise<void>
}

/** Create the openbao backend for a profile. Nothing is read until the first call. */
export function createBackend(context: BackendContext, options: OpenBaoBackendOptions = {}): OpenBaoBackend {
  return new KvV2Backend(context, options)
}

const WRAP_TTL = /^[1-9]\d{0,8}[smh]?$/
/** Keys of KV custom metadata that `secrets set` maintains and `describe` reads. */
const META_ALLOWED_DOMAINS = 'allowed_domains'
const META_DESCRIPTION = 'description'
const META_TAGS = 'tags'

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function locationOf(reference: SecretReference): KvLocation {
  if (reference.kind !== 'openbao' || reference.mount === undefined || reference.secretPath === undefined)
    throw new UsageError('WRONG_BACKEND', `${reference.canonical} is not an openbao reference`, {
      suggestion: 'Use an openbao+kv2://MOUNT/PATH#FIELD reference with an openbao profile.',
    })
  return {mount: reference.mount, path: reference.secretPath}
}

function fieldRequired(reference: SecretReference): AgentVaultError {
  return new UsageError(
    'FIELD_REQUIRED',
    `${reference.canonical} names a whole secret; name one of its fields`,
    {
      suggestion: `Add #FIELD, e.g. ${reference.canonical.replace(/\?.*$/, '')}#token (\`secrets get REF --reveal\` shows the whole map).`,
    },
  )
}

/** A string list kept in KV custom metadata (values are strings): comma-separated. */
function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
}

function versionState(
  entry: {deletion_time: string; destroyed: boolean},
  now: number,
): 'active' | 'deleted' | 'destroyed' | 'scheduled' {
  if (entry.destroyed) return 'destroyed'
  if (entry.deletion_time === '') return 'active'
  const at = Date.parse(entry.deletion_time)
  return Number.isNaN(at) || at <= now ? 'deleted' : 'scheduled'
}

/** The value to write: a JSON object (no field), or one UTF-8 text field merged into `current`. */
function parseObject(value: Buffer, reference: SecretReference): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(value.toString('utf8'))
  } catch {
    // The parser's message quotes the input: never repeat it.
    parsed = undefined
  }

  if (!isRecord(parsed))
    throw new UsageError(
      'JSON_OBJECT_REQUIRED',
      `Without #field, the value for ${reference.canonical} must be a JSON object`,
      {
        suggestion:
          'Pipe a JSON object (the whole new version) with --json-stdin, or name one field: REF#FIELD.',
      },
    )
  return parsed
}

function utf8Text(value: Buffer): string {
  try {
    return new TextDecoder('utf8', {fatal: true}).decode(value)
  } catch {
    throw new UsageError('VALUE_NOT_TEXT', 'KV v2 stores text: the value is not valid UTF-8', {
      suggestion: 'Store binary data encoded, e.g. base64 < file | agentvault secrets set REF#FIELD.',
    })
  }
}

class KvV2Backend implements OpenBaoBackend {
  readonly capabilities = OPENBAO_CAPABILITIES
  readonly kind = 'openbao' as const
  private readonly clients: Array<{agents: GuardedAgents}> = []
  private clientPromise?: Promise<KvV2Client>
  private log?: Debugger
  private settingsValue?: OpenBaoSettings
  private signedInPromise?: Promise<KvV2Client>
  private storePromise?: Promise<CredentialStore>
  private tokenPromise?: Promise<ResolvedToken | undefined>

  constructor(
    private readonly context: BackendContext,
    private readonly options: OpenBaoBackendOptions,
  ) {}

  async close(): Promise<void> {
    this.clientPromise = undefined
    this.signedInPromise = undefined
    for (const {agents} of this.clients.splice(0)) agents.destroy()
  }

  async delete(reference: SecretReference, options: DeleteOptions = {}): Promise<void> {
    const location = locationOf(reference)
    if (reference.field !== undefined)
      throw new UsageError('DELETE_FIELD', 'KV v2 deletes versions, not fields: drop the #field', {
        suggestion: 'To remove one field, write the map without it: secrets set REF --json-stdin.',
      })
    const {allVersions = false, destroy = false} = options
    if (options.versions !== undefined && reference.version !== undefined)
      throw new UsageError(
        'DELETE_VERSIONS',
        'Give the versions either as ?version=N or with --versions, not both',
      )
    const versions = options.versions ?? (reference.version === undefined ? undefined : [reference.version])
    if (allVersions && (destroy || versions !== undefined))
      throw new UsageError(
        'DELETE_VERSIONS',
        '--all-versions removes every version: it excludes --versions, ?version and --destroy',
      )
    if (destroy && versions === undefined)
      throw new UsageError('DELETE_VERSIONS', '--destroy needs the versions to destroy', {
        suggestion: 'Add --versions 1,2 (see `agentvault secrets versions REF`), or use --all-versions.',
      })
    if (
      versions !== undefined &&
      (versions.length === 0 || !versions.every((v) => Number.isSafeInteger(v) && v > 0))
    )
      throw new UsageError('DELETE_VERSIONS', '--versions takes version numbers, e.g. --versions 1,2')
    const client = await this.client()
    const action = allVersions
      ? ({kind: 'all-versions'} as const)
      : versions === undefined
        ? ({kind: 'current'} as const)
        : ({kind: destroy ? 'destroy' : 'delete', versions} as const)
    await this.guard(() => client.remove(location, action, reference.canonical))
  }

  /** Metadata from `GET {m}/metadata/{p}`; a token that may not read metadata gets the bare name. */
  async describe(reference: SecretReference): Promise<SecretMetadata> {
    const location = locationOf(reference)
    const client = await this.client()
    let custom: null | Record<string, string>
    let version: number | undefined
    let created: string | undefined
    let updated: string | undefined
    try {
      const metadata = await this.guard(() => client.readMetadata(location, reference.canonical))
      custom = metadata.custom_metadata
      version = metadata.current_version
      created = metadata.created_time
      updated = metadata.updated_time
    } catch (error) {
      if (!isAgentVaultError(error) || error.code !== 'PERMISSION_DENIED') throw error
      ;(await this.logger())('describe: no permission to read metadata of %s', reference.canonical)
      return {name: reference.canonical}
    }

    const allowed = splitList(custom?.[META_ALLOWED_DOMAINS])
    if (allowed.length > 0) {
      const {normaliseHostPattern} = await import('../../core/use/hosts.js')
      try {
        allowed.splice(0, allowed.length, ...allowed.map((pattern) => normaliseHostPattern(pattern)))
      } catch {
        throw new ConfigError(
          'SECRET_METADATA_INVALID',
          `The allowed_domains custom metadata of ${reference.canonical} is invalid`,
          {
            suggestion: 'Store it again with --allow-domain HOST (hosts or *.suffix, no scheme or port).',
          },
        )
      }
    }

    const tags = splitList(custom?.[META_TAGS])
    const description = custom?.[META_DESCRIPTION]
    return {
      name: reference.canonical,
      ...(allowed.length > 0 ? {allowedDomains: allowed} : {}),
      ...(created ? {created} : {}),
      ...(description ? {description} : {}),
      ...(tags.length > 0 ? {tags} : {}),
      ...(updated ? {updated} : {}),
      ...(version ? {version} : {}),
    }
  }

  async get(reference: SecretReference, options: GetOptions = {}): Promise<Buffer> {
    const location = locationOf(reference)
    if (reference.field === undefined && !options.whole) throw fieldRequired(reference)
    const client = await this.client()
    const secret = await this.guard(() => client.read(location, reference.version, reference.canonical))
    return this.valueOf(secret, reference)
  }

  /**
   * `secrets list [PREFIX]`: PREFIX is a folder reference (`openbao://secret/myapp`, or the mount
   * root `openbao://secret`), or `mount/folder` for this profile. Names are relative to it; folders
   * end in `/`. With `recursive`, sub-folders are walked (concurrently) and only secrets listed.
   */
  async list(prefix?: string, options: ListOptions = {}): Promise<SecretMetadata[]> {
    if (prefix === undefined || prefix === '')
      throw new UsageError('LIST_PREFIX', 'Which mount? Listing an openbao profile needs a folder', {
        suggestion: 'agentvault secrets list openbao://secret (a mount root) or openbao://secret/myapp',
      })
    const folder = parseFolderReference(prefix.includes('://') ? prefix : `openbao://${prefix}`)
    checkMountAllowed(folder, this.settings().allowedMounts)
    const mount = folder.mount as string
    const client = await this.client()
    const walk = async (path: string): Promise<string[]> => {
      const keys = await this.guard(() => client.list({folder: path, mount}, folder.canonical))
      if (!options.recursive) return keys
      const nested = await Promise.all(
        keys.map(async (key) => {
          if (!key.endsWith('/')) return [key]
          const below = await walk(path === '' ? key.slice(0, -1) : `${path}/${key.slice(0, -1)}`)
          return below.map((name) => `${key}${name}`)
        }),
      )
      return nested.flat()
    }

    return (await walk(folder.secretPath ?? '')).map((name) => ({
      name,
      ...(name.endsWith('/') ? {type: 'folder'} : {}),
    }))
  }

  /** `agentvault login openbao`: see login.ts. */
  async login(options: LoginOptions): Promise<LoginResult> {
    const {loginOpenBao} = await import('./login.js')
    return loginOpenBao({
      client: (settings) => this.newClient(settings),
      context: this.context,
      options,
      store: () => this.store(),
    })
  }

  /** Forget the stored token; with `revoke`, revoke it on the server first. */
  async logout(options: LogoutOptions = {}): Promise<boolean> {
    const store = await this.store()
    const stored = await readStoredToken(store, this.context.profile.name)
    if (options.revoke) {
      const resolved = await this.token()
      if (!resolved) throw authRequired(this.context.profile.name, 'there is no token to revoke')
      const client = await this.client()
      await this.guard(() => client.revokeSelf())
    }

    return stored ? store.delete(accountFor(this.context.profile.name)) : false
  }

  /** One read per distinct path and version, all concurrently; every field shares its read. */
  async resolveMany(references: SecretReference[]): Promise<Map<string, Buffer>> {
    for (const reference of references) {
      locationOf(reference)
      if (reference.field === undefined) throw fieldRequired(reference)
    }

    const resolved = new Map<string, Buffer>()
    if (references.length === 0) return resolved
    const client = await this.client()
    const reads = new Map<string, Promise<KvSecret>>()
    for (const reference of references) {
      const location = locationOf(reference)
      const key = `${location.mount}/${location.path}@${reference.version ?? 'current'}`
      if (!reads.has(key)) {
        // The reference naming the read (for messages) is the first one that needs it.
        const pending = this.guard(() =>
          client.read(location, reference.version, reference.canonical.replace(/#[^?]*/, '')),
        )
        pending.catch(() => {})
        reads.set(key, pending)
      }
    }

    await Promise.all(reads.values())
    for (const reference of references) {
      const location = locationOf(reference)
      const secret = await reads.get(`${location.mount}/${location.path}@${reference.version ?? 'current'}`)
      resolved.set(reference.canonical, this.valueOf(secret as KvSecret, reference))
    }

    return resolved
  }

  /**
   * `secrets set` (§7). With `#field`: read the current version, set that key, write with
   * `cas` = the version read (0 when absent), so no concurrent write is lost. Without: the value is
   * the whole new version (a JSON object). `--cas N` replaces the implicit cas.
   */
  async set(reference: SecretReference, value: Buffer, options: SetSecretOptions): Promise<SecretMetadata> {
    const location = locationOf(reference)
    if (reference.version !== undefined)
      throw new UsageError('SET_VERSION', 'A write creates a new version: drop ?version from the reference', {
        suggestion: 'Use --cas N to write only if N is still the current version.',
      })
    if (options.cas !== undefined && (!Number.isSafeInteger(options.cas) || options.cas < 0))
      throw new UsageError('BAD_CAS', '--cas takes a version number (0 = only if the secret does not exist)')
    if (options.json && reference.field !== undefined)
      throw new UsageError('SET_JSON_FIELD', '--json-stdin writes a whole version: drop the #field', {
        suggestion: 'Either REF#FIELD with a plain value, or REF with --json-stdin and a JSON object.',
      })
    const client = await this.client()
    let data: Record<string, unknown>
    let {cas} = options
    if (reference.field === undefined) {
      data = parseObject(value, reference)
    } else {
      const text = utf8Text(value)
      let current: KvSecret | undefined
      try {
        current = await this.guard(() =>
          client.read(location, undefined, reference.canonical.replace(/#[^?]*/, '')),
        )
      } catch (error) {
        if (!isAgentVaultError(error) || error.code !== 'SECRET_NOT_FOUND') throw error
      }

      data = {...current?.data, [reference.field]: text}
      cas ??= current?.metadata.version ?? 0
    }

    const written = await this.guard(() => client.write(location, data, cas, reference.canonical))
    for (const key of Object.keys(data)) data[key] = null
    const custom: Record<string, string> = {}
    if (options.allowedDomains !== undefined) custom[META_ALLOWED_DOMAINS] = options.allowedDomains.join(',')
    if (options.description !== undefined) custom[META_DESCRIPTION] = options.description
    if (options.tags !== undefined) custom[META_TAGS] = options.tags.join(',')
    if (Object.keys(custom).length > 0) {
      const existing = await this.guard(() => client.readMetadata(location, reference.canonical))
      await this.guard(() =>
        client.writeMetadata(
          location,
          {custom_metadata: {...existing.custom_metadata, ...custom}},
          reference.canonical,
        ),
      )
    }

    return {
      name: reference.canonical,
      created: written.created_time,
      updated: written.created_time,
      version: written.version,
      ...(options.allowedDomains ? {allowedDomains: [...options.allowedDomains]} : {}),
      ...(options.description === undefined ? {} : {description: options.description}),
      ...(options.tags ? {tags: [...options.tags]} : {}),
    }
  }

  /** Health of every address, then lookup-self (and renew-self when due). Never throws for the server's state. */
  async status(): Promise<ProfileStatus> {
    const settings = this.settings()
    const client = await this.client(false)
    const health = await client.health()
    const reachable = health.some((report) => report.body !== undefined)
    const details: Record<string, unknown> = {
      addresses: settings.addresses,
      health: health.map((report) => ({...report})),
      ...(settings.namespace ? {namespace: settings.namespace} : {}),
    }
    const summary = describeHealth(health)
    const resolved = await this.token()
    if (!resolved)
      return {
        details,
        message: `${summary}; not signed in: run \`agentvault login openbao --profile ${this.context.profile.name}\` (or set BAO_TOKEN)`,
        reachable,
        signedIn: false,
      }
    details.tokenSource = resolved.source
    client.token = resolved.token
    try {
      let lookup = await client.lookupSelf()
      let renewed = false
      if (lookup.renewable && lookup.ttl > 0 && lookup.ttl < 0.1 * lookup.creation_ttl) {
        renewed = await this.renew(client, resolved)
        if (renewed) lookup = await client.lookupSelf()
      }

      Object.assign(details, {
        policies: lookup.policies,
        renewable: lookup.renewable,
        renewed,
        ttl: lookup.ttl,
      })
      return {
        details,
        identity: lookup.display_name || 'token',
        message: `${summary}; ttl ${lookup.expire_time === null ? 'none (never expires)' : `${lookup.ttl}s`}; policies ${lookup.policies.join(',') || 'none'}; ${lookup.renewable ? 'renewable' : 'not renewable'}${renewed ? '; renewed now' : ''}`,
        reachable: true,
        signedIn: true,
        tokenExpiry: lookup.expire_time ?? 'never',
      }
    } catch (error) {
      if (!isAgentVaultError(error)) throw error
      details.code = error.code
      return {
        details,
        message:
          error.code === 'AUTH_REQUIRED'
            ? `${summary}; the ${resolved.source} token is invalid or expired: run \`agentvault login openbao --profile ${this.context.profile.name}\``
            : `${summary}; ${error.message}`,
        reachable: reachable && error.category !== 'unavailable',
        signedIn: false,
      }
    }
  }

  async undelete(reference: SecretReference, versions: number[]): Promise<void> {
    const location = locationOf(reference)
    if (versions.length === 0 || !versions.every((v) => Number.isSafeInteger(v) && v > 0))
      throw new UsageError('DELETE_VERSIONS', 'undelete takes version numbers')
    const client = await this.client()
    await this.guard(() => client.remove(location, {kind: 'undelete', versions}, reference.canonical))
  }

  /**
   * `secrets unwrap` (§11): look the token up first (not consuming it) and, with `expect`, refuse
   * one made for another secret; then unwrap once.
   */
  async unwrap(wrappingToken: string, options: UnwrapOptions): Promise<Buffer> {
    const client = await this.client(false)
    const label = options.expect?.canonical ?? 'the wrapped secret'
    const lookup = await this.guard(() => client.wrapLookup(wrappingToken))
    if (options.expect) {
      const {mount, path} = locationOf(options.expect)
      const wanted = `${mount}/data/${path}`
      const {namespace} = this.settings()
      const accepted = namespace ? [wanted, `${namespace}/${wanted}`] : [wanted]
      if (!accepted.includes(lookup.creation_path))
        throw new DeniedError(
          'WRAP_PATH_MISMATCH',
          `The wrapping token was not made for ${options.expect.canonical}; it was not unwrapped`,
          {
            details: {creation_path: lookup.creation_path.slice(0, 300)},
            suggestion:
              'Ask the sender which secret they wrapped; the token is still valid for its real recipient.',
          },
        )
    }

    const secret = await this.guard(() => client.unwrap(wrappingToken, label))
    if (options.field === undefined) return Buffer.from(JSON.stringify(secret.data), 'utf8')
    return fieldValue(secret, options.field, {purpose: 'read', reference: label})
  }

  /** `secrets versions` (§7): `GET {m}/metadata/{p}`. */
  async versions(reference: SecretReference): Promise<SecretVersions> {
    const location = locationOf(reference)
    const client = await this.client()
    const metadata = await this.guard(() => client.readMetadata(location, reference.canonical))
    const now = (this.options.now ?? Date.now)()
    return {
      cas_required: metadata.cas_required,
      created_time: metadata.created_time,
      current_version: metadata.current_version,
      custom_metadata: metadata.custom_metadata,
      delete_version_after: metadata.delete_version_after,
      max_versions: metadata.max_versions,
      oldest_version: metadata.oldest_version,
      reference: parseReference(
        `${reference.scheme}://${reference.path}${reference.profile ? `?profile=${reference.profile}` : ''}`,
      ).canonical,
      updated_time: metadata.updated_time,
      versions: Object.entries(metadata.versions)
        .map(([number, entry]) => ({...entry, state: versionState(entry, now), version: Number(number)}))
        .sort((a, b) => a.version - b.version),
    }
  }

  /** `secrets get --wrap-ttl` (§11): the wrap holds the whole version, so `#field` is refused. */
  async wrap(reference: SecretReference, ttl: string): Promise<WrapResult> {
    const location = locationOf(reference)
    if (reference.field !== undefined)
      throw new UsageError('WRAP_FIELD', 'A wrapping token holds the whole version: drop the #field', {
        suggestion: 'Wrap REF without #field; the recipient picks a field with `secrets unwrap --field K`.',
      })
    if (!WRAP_TTL.test(ttl))
      throw new UsageError(
        'BAD_WRAP_TTL',
        '--wrap-ttl takes a duration like 30s, 5m, 1h or whole seconds (> 0)',
      )
    const client = await this.client()
    return this.guard(() => client.wrap(location, reference.version, ttl, reference.canonical))
  }

  /**
   * The command's one client: settings resolved (warnings printed once), agents built, the token
   * resolved (AUTH_REQUIRED before any request when there is none) and renewed when due.
   */
  private async client(authenticated = true): Promise<KvV2Client> {
    this.clientPromise ??= this.newClient(this.settings(), true)
    if (!authenticated) return this.clientPromise
    // Memoised: concurrent callers (run, call) share one token resolution and at most one renewal.
    this.signedInPromise ??= this.clientPromise.then(async (client) => {
      const resolved = await this.token()
      if (!resolved)
        throw authRequired(
          this.context.profile.name,
          'no token (none stored, no BAO_TOKEN / VAULT_TOKEN, no ~/.vault-token)',
        )
      client.token = resolved.token
      await this.renewIfDue(client, resolved)
      return client
    })
    return this.signedInPromise
  }

  /** Run one adapter call; AUTH_REQUIRED gets this profile's login hint. */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } catch (error) {
      if (isAgentVaultError(error) && error.code === 'AUTH_REQUIRED')
        throw authRequired(this.context.profile.name, 'the token is invalid, expired or revoked')
      throw error
    }
  }

  private async logger(): Promise<Debugger> {
    this.log ??= (await import('debug')).default('agentvault:openbao')
    return this.log
  }

  private async newClient(settings: OpenBaoSettings, warn = false): Promise<KvV2Client> {
    if (warn)
      for (const message of settingsWarnings(settings, this.context.env, this.context.profile.name))
        this.context.warn(message)
    let ca: Buffer | undefined
    if (settings.caCertFile !== undefined) {
      const {caFileProblem, readCaFile} = await import('../../core/tls.js')
      try {
        ca = await readCaFile(settings.caCertFile)
      } catch (error) {
        throw new ConfigError(
          'CA_CERT_UNREADABLE',
          `Cannot read the CA certificate file ${caFileProblem(settings.caCertFile, error)}`,
          {
            suggestion:
              'Fix caCert in the profile (or BAO_CACERT / VAULT_CACERT) to name a readable PEM file.',
          },
        )
      }
    }

    const [{createGuardedAgents}, {KvV2Client}, log] = await Promise.all([
      import('./agents.js'),
      import('./kv-client.js'),
      this.logger(),
    ])
    const agents = createGuardedAgents({
      addresses: settings.addresses,
      ...(ca ? {ca} : {}),
      rejectUnauthorized: !settings.tlsSkipVerify,
    })
    this.clients.push({agents})
    return KvV2Client.create({
      addresses: settings.addresses,
      agents,
      hasCa: ca !== undefined,
      log,
      ...(settings.namespace ? {namespace: settings.namespace} : {}),
      ...(this.options.sleep ? {sleep: this.options.sleep} : {}),
      timeoutMs: settings.timeoutMs,
    })
  }

  /** renew-self and store the new lease; a failure is a warning, never fatal (§8). */
  private async renew(client: KvV2Client, resolved: ResolvedToken): Promise<boolean> {
    try {
      const auth = await client.renewSelf()
      if (resolved.stored) {
        const now = (this.options.now ?? Date.now)()
        await saveStoredToken(await this.store(), this.context.profile.name, {
          ...resolved.stored,
          creation_ttl: auth.lease_duration,
          expire_time: new Date(now + auth.lease_duration * 1000).toISOString(),
          renewable: auth.renewable,
        })
      }

      ;(await this.logger())(
        'renewed the token of profile %s for %ds',
        this.context.profile.name,
        auth.lease_duration,
      )
      return true
    } catch (error) {
      if (!isAgentVaultError(error)) throw error
      this.context.warn(
        `Could not renew the OpenBao token of profile ${this.context.profile.name}: ${error.message}`,
      )
      return false
    }
  }

  /** From the stored metadata only (no extra round trip): renew when under 10% of its TTL is left. */
  private async renewIfDue(client: KvV2Client, resolved: ResolvedToken): Promise<void> {
    const {stored} = resolved
    if (!stored?.renewable || stored.expire_time === null || stored.creation_ttl <= 0) return
    const left = (Date.parse(stored.expire_time) - (this.options.now ?? Date.now)()) / 1000
    if (left > 0 && left < 0.1 * stored.creation_ttl) await this.renew(client, resolved)
  }

  private settings(): OpenBaoSettings {
    this.settingsValue ??= resolveOpenBaoSettings(this.context.profile, this.context.env, this.context.home)
    return this.settingsValue
  }

  private store(): Promise<CredentialStore> {
    this.storePromise ??= import('./token-store.js').then(({openTokenStore}) => openTokenStore(this.context))
    return this.storePromise
  }

  private token(): Promise<ResolvedToken | undefined> {
    this.tokenPromise ??= resolveToken(this.context, this.settings(), () => this.store())
    return this.tokenPromise
  }

  private valueOf(secret: KvSecret, reference: SecretReference): Buffer {
    if (reference.field === undefined) return Buffer.from(JSON.stringify(secret.data), 'utf8')
    return fieldValue(secret, reference.field, {purpose: 'read', reference: reference.canonical})
  }
}

function describeHealth(reports: HealthReport[]): string {
  return reports
    .map(({address, body, error}) => {
      if (!body) return `${address} unreachable (${error ?? 'error'})`
      const state =
        body.initialized === false
          ? 'not initialised'
          : body.sealed
            ? 'sealed'
            : body.standby
              ? 'standby'
              : 'active'
      return `${address} ${state}${body.version ? ` v${body.version}` : ''}`
    })
    .join(', ')
}
