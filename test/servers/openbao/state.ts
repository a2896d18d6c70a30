/**
 * The data an OpenBao test node serves (protocols/openbao.md §14): namespaces with KV v2 mounts,
 * auth mounts and policies; tokens; wrapped responses; and a fake clock. One state may be shared
 * by several nodes of a test cluster.
 */
import {randomBytes, randomUUID} from 'node:crypto'

export type Capability = 'create' | 'delete' | 'deny' | 'list' | 'read' | 'sudo' | 'update'

/** One policy rule: an API path (`secret/data/app`), or a prefix ending in `*`. */
export interface PolicyRule {
  capabilities: Capability[]
  path: string
}

export interface KvVersion {
  createdMs: number
  createdTime: string
  data: null | Record<string, unknown>
  /** RFC 3339, or "" when not (scheduled to be) deleted. */
  deletionTime: string
  destroyed: boolean
}

export interface KvKey {
  casRequired: boolean
  createdTime: string
  currentVersion: number
  customMetadata: null | Record<string, string>
  /** Seconds; 0 = never. */
  deleteVersionAfter: number
  /** 0 = the mount's setting. */
  maxVersions: number
  oldestVersion: number
  updatedTime: string
  versions: Map<number, KvVersion>
}

export interface KvMount {
  casRequired: boolean
  deleteVersionAfter: number
  keys: Map<string, KvKey>
  maxVersions: number
}

export interface UserpassUser {
  maxTtl: number
  password: string
  policies: string[]
  renewable: boolean
  ttl: number
}

export interface AppRole {
  maxTtl: number
  name: string
  policies: string[]
  renewable: boolean
  secretIds: Set<string>
  ttl: number
}

export type AuthMount =
  {roles: Map<string, AppRole>; type: 'approle'} | {type: 'userpass'; users: Map<string, UserpassUser>}

export interface NamespaceState {
  authMounts: Map<string, AuthMount>
  mounts: Map<string, KvMount>
  policies: Map<string, PolicyRule[]>
}

export interface TokenRecord {
  accessor: string
  /** Seconds the token was created (or last renewed) with; 0 for root. */
  creationTtl: number
  displayName: string
  entityId: string
  /** ms on the fake clock, or null: never expires (root). */
  expiresAt: null | number
  id: string
  issuedAt: number
  /** Seconds from issue a renewal may reach; 0 = unlimited. */
  maxTtl: number
  namespace: string
  policies: string[]
  renewable: boolean
  revoked: boolean
  root: boolean
}

export interface WrappedResponse {
  accessor: string
  body: unknown
  creationPath: string
  creationTime: string
  expiresAt: number
  namespace: string
  ttl: number
}

export interface TokenOptions {
  displayName?: string
  /** Pretend the token was issued this many seconds ago (its TTL already partly spent). */
  issuedSecondsAgo?: number
  maxTtl?: number
  namespace?: string
  policies?: string[]
  renewable?: boolean
  root?: boolean
  /** Seconds; default 3600. */
  ttl?: number
}

/** Wall-clock time plus an offset that tests move forward: TTLs and deletion times follow it. */
export class FakeClock {
  private counter = 0
  private offsetMs = 0

  /** Move time forward by `seconds`. */
  advance(seconds: number): void {
    this.offsetMs += seconds * 1000
  }

  now(): number {
    return Date.now() + this.offsetMs
  }

  /** RFC 3339 UTC with nanoseconds, as OpenBao prints times. */
  rfc3339(ms = this.now()): string {
    const iso = new Date(ms).toISOString()
    this.counter = (this.counter + 1) % 1_000_000
    return `${iso.slice(0, 23)}${String(this.counter).padStart(6, '0')}Z`
  }
}

function newNamespace(): NamespaceState {
  return {authMounts: new Map(), mounts: new Map([['secret', newMount()]]), policies: new Map()}
}

export function newMount(options: Partial<Omit<KvMount, 'keys'>> = {}): KvMount {
  return {casRequired: false, deleteVersionAfter: 0, keys: new Map(), maxVersions: 10, ...options}
}

/** The whole server-side world of one cluster. */
export class ServerState {
  readonly clock = new FakeClock()
  readonly namespaces = new Map<string, NamespaceState>([['', newNamespace()]])
  readonly tokens = new Map<string, TokenRecord>()
  readonly wrapped = new Map<string, WrappedResponse>()

  /** Add a namespace (path like `team-a` or `team-a/sub`) with a default `secret/` mount. */
  addNamespace(path: string): NamespaceState {
    const key = path.replaceAll(/^\/+|\/+$/g, '')
    let ns = this.namespaces.get(key)
    if (!ns) {
      ns = newNamespace()
      this.namespaces.set(key, ns)
    }

    return ns
  }

  addAppRole(
    role: Partial<Omit<AppRole, 'name' | 'secretIds'>> & {name: string; roleId: string; secretIds: string[]},
    options: {mount?: string; namespace?: string} = {},
  ): void {
    const ns = this.ns(options.namespace)
    const mountName = options.mount ?? 'approle'
    let mount = ns.authMounts.get(mountName)
    if (!mount) {
      mount = {roles: new Map(), type: 'approle'}
      ns.authMounts.set(mountName, mount)
    }

    if (mount.type !== 'approle') throw new Error(`auth mount ${mountName} is not approle`)
    mount.roles.set(role.roleId, {
      maxTtl: role.maxTtl ?? 0,
      name: role.name,
      policies: role.policies ?? [],
      renewable: role.renewable ?? true,
      secretIds: new Set(role.secretIds),
      ttl: role.ttl ?? 3600,
    })
  }

  addMount(name: string, options: Partial<Omit<KvMount, 'keys'>> = {}, namespace = ''): KvMount {
    const mount = newMount(options)
    this.ns(namespace).mounts.set(name, mount)
    return mount
  }

  addUser(
    username: string,
    user: Partial<UserpassUser> & {password: string},
    options: {mount?: string; namespace?: string} = {},
  ): void {
    const ns = this.ns(options.namespace)
    const mountName = options.mount ?? 'userpass'
    let mount = ns.authMounts.get(mountName)
    if (!mount) {
      mount = {type: 'userpass', users: new Map()}
      ns.authMounts.set(mountName, mount)
    }

    if (mount.type !== 'userpass') throw new Error(`auth mount ${mountName} is not userpass`)
    mount.users.set(username, {
      maxTtl: user.maxTtl ?? 0,
      password: user.password,
      policies: user.policies ?? [],
      renewable: user.renewable ?? true,
      ttl: user.ttl ?? 3600,
    })
  }

  /** Create a token and return it (its id). */
  createToken(options: TokenOptions = {}): TokenRecord {
    const root = options.root ?? false
    const ttl = root ? 0 : (options.ttl ?? 3600)
    const issuedAt = this.clock.now() - (options.issuedSecondsAgo ?? 0) * 1000
    const token: TokenRecord = {
      accessor: randomBytes(12).toString('base64url'),
      creationTtl: ttl,
      displayName: options.displayName ?? (root ? 'root' : 'token'),
      entityId: root ? '' : randomUUID(),
      expiresAt: root ? null : issuedAt + ttl * 1000,
      id: `s.${randomBytes(18).toString('base64url')}`,
      issuedAt,
      maxTtl: options.maxTtl ?? 0,
      namespace: options.namespace ?? '',
      policies: root ? ['root'] : ['default', ...(options.policies ?? [])],
      renewable: root ? false : (options.renewable ?? true),
      revoked: false,
      root,
    }
    this.tokens.set(token.id, token)
    return token
  }

  /** Current TTL in whole seconds (0 for root or expired). */
  ttlOf(token: TokenRecord): number {
    if (token.expiresAt === null) return 0
    return Math.max(0, Math.ceil((token.expiresAt - this.clock.now()) / 1000))
  }

  /** Whether a token may be used in namespace `namespace` right now. */
  isValid(token: TokenRecord | undefined, namespace: string): token is TokenRecord {
    if (!token || token.revoked || token.namespace !== namespace) return false
    return token.expiresAt === null || this.clock.now() < token.expiresAt
  }

  ns(path = ''): NamespaceState {
    const ns = this.namespaces.get(path.replaceAll(/^\/+|\/+$/g, ''))
    if (!ns) throw new Error(`no namespace ${JSON.stringify(path)}`)
    return ns
  }

  /** Write a new version directly (no policy, no CAS): test setup. */
  putSecret(mount: string, path: string, data: Record<string, unknown>, namespace = ''): number {
    const kv = this.ns(namespace).mounts.get(mount)
    if (!kv) throw new Error(`no mount ${mount}`)
    return writeVersion(kv, path, data, this.clock).version
  }

  setPolicy(name: string, rules: PolicyRule[], namespace = ''): void {
    this.ns(namespace).policies.set(name, rules)
  }
}

/** Append a version to a key (creating it), applying max_versions and delete_version_after. */
export function writeVersion(
  mount: KvMount,
  path: string,
  data: Record<string, unknown>,
  clock: FakeClock,
): {key: KvKey; version: number} {
  const nowMs = clock.now()
  const now = clock.rfc3339(nowMs)
  let key = mount.keys.get(path)
  if (!key) {
    key = newKey(now)
    mount.keys.set(path, key)
  }

  const version = key.currentVersion + 1
  const after = key.deleteVersionAfter || mount.deleteVersionAfter
  key.versions.set(version, {
    createdMs: nowMs,
    createdTime: now,
    data: structuredClone(data),
    deletionTime: after > 0 ? clock.rfc3339(nowMs + after * 1000) : '',
    destroyed: false,
  })
  key.currentVersion = version
  key.updatedTime = now
  const max = key.maxVersions || mount.maxVersions
  const numbers = [...key.versions.keys()].sort((a, b) => a - b)
  while (numbers.length > max) key.versions.delete(numbers.shift() as number)
  key.oldestVersion = numbers[0] ?? 0
  return {key, version}
}

export function newKey(now: string): KvKey {
  return {
    casRequired: false,
    createdTime: now,
    currentVersion: 0,
    customMetadata: null,
    deleteVersionAfter: 0,
    maxVersions: 0,
    oldestVersion: 0,
    updatedTime: now,
    versions: new Map(),
  }
}
