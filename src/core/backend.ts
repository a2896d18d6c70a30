/**
 * The contract every backend implements. Core and commands only see this interface; a backend
 * module is loaded lazily through the registry.
 */
import type {AuditEvent, AuditFilter} from './audit.js'
import type {Profile} from './config.js'
import type {AgentVaultError} from './errors.js'
import type {SecretReference} from './references.js'

export const BACKEND_KINDS = ['local', 'sanctum', 'agentsecrets', 'openbao', 'agentauth'] as const
export type BackendKind = (typeof BACKEND_KINDS)[number]

/**
 * The operations agentvault's own engine (use-engine.ts) performs with a value a backend hands
 * over (local, openbao); backends that perform operations server-side list their own.
 */
export const ENGINE_USE_OPERATIONS = Object.freeze([
  'http_request',
  'http_header',
  'sign',
  'verify',
  'encrypt',
  'decrypt',
] as const)

export function isBackendKind(value: string): value is BackendKind {
  return (BACKEND_KINDS as readonly string[]).includes(value)
}

/** What a backend can do (product.md §2). Calling a missing one fails with NotSupportedError. */
export interface Capabilities {
  auditSource: boolean
  delete: boolean
  get: boolean
  list: boolean
  login: boolean
  runInjection: boolean
  set: boolean
  useOperations: readonly string[]
  /**
   * Keeps previous values of a secret (local): `secrets versions`, `secrets rollback` and
   * `?version=N` in references; none of KV v2's check-and-set, soft delete or wrapping.
   */
  versionHistory?: boolean
  /**
   * Versioned secrets (openbao KV v2): `set --cas`, `set --json-stdin`, `delete --versions |
   * --destroy | --all-versions` (plain delete is a reversible soft delete), `secrets versions`,
   * `get --wrap-ttl` and `secrets unwrap`.
   */
  versioned?: boolean
}

/** Names and metadata of a secret: never its value. */
export interface SecretMetadata {
  allowedDomains?: string[]
  created?: string
  description?: string
  name: string
  tags?: string[]
  type?: string
  updated?: string
  version?: number
}

export interface SetSecretOptions {
  allowedDomains?: string[]
  /**
   * `secrets set --allow-argv`: the backend may pass the value to its own CLI as a command-line
   * argument when that CLI has no other way (agentsecrets only; product.md §10).
   */
  allowArgv?: boolean
  /** Versioned backends: write only if the current version is this one (0 = only if absent). */
  cas?: number
  description?: string
  /** Versioned backends: the value is a JSON object holding the whole new version. */
  json?: boolean
  tags?: string[]
}

/** Versioned backends: which versions `delete` removes (default: soft-delete the current one). */
export interface DeleteOptions {
  /** Every version and the key's metadata, irreversibly. */
  allVersions?: boolean
  /** Destroy `versions` irreversibly instead of soft-deleting them. */
  destroy?: boolean
  versions?: number[]
}

/** Options of `list`. */
export interface ListOptions {
  /** Walk sub-folders too (versioned backends with folders). */
  recursive?: boolean
}

/** One version of a versioned secret (`secrets versions`). */
export interface SecretVersionInfo {
  created_time: string
  deletion_time: string
  destroyed: boolean
  /** destroyed › deleted (past deletion_time) › scheduled (future deletion_time) › active. */
  state: 'active' | 'deleted' | 'destroyed' | 'scheduled'
  version: number
}

/** The version history of a versioned secret: metadata only, never values. */
export interface SecretVersions {
  cas_required: boolean
  created_time: string
  current_version: number
  custom_metadata: null | Record<string, string>
  delete_version_after: string
  max_versions: number
  oldest_version: number
  reference: string
  updated_time: string
  versions: SecretVersionInfo[]
}

/** A response-wrapping token standing for one read (`secrets get --wrap-ttl`). */
export interface WrapResult {
  accessor: string
  creation_path: string
  creation_time: string
  token: string
  ttl: number
}

/** Options of `unwrap`. */
export interface UnwrapOptions {
  /** Refuse (before unwrapping) a token that was not made for this reference's secret. */
  expect?: SecretReference
  /** Return one key of the unwrapped data map instead of the whole map (JSON). */
  field?: string
}

export interface ProfileStatus {
  details?: Record<string, unknown>
  /**
   * Why the profile cannot be used now, as a product.md §9 category, when the backend knows better
   * than "unreachable → unavailable, not signed in → auth" (e.g. a local vault whose key is
   * missing); `null` when it works without being signed in (a local vault not created yet).
   */
  problem?: 'auth' | 'config' | 'unavailable' | null
  /** Who we are signed in as, when the backend has identities. */
  identity?: string
  message?: string
  reachable: boolean
  signedIn: boolean
  tokenExpiry?: string
}

/** The status problem an error stands for: auth and config as they are, anything else unavailable. */
export function statusProblem(category: string): 'auth' | 'config' | 'unavailable' {
  return category === 'auth' || category === 'config' ? category : 'unavailable'
}

/** Everything a backend instance gets from core; it reads no global state. */
export interface BackendContext {
  env: NodeJS.ProcessEnv
  /** `$AGENTVAULT_HOME`, already resolved. */
  home: string
  /** Whether the user may be prompted (TTY, no --no-prompt, no CI). */
  interactive: boolean
  profile: Profile
  /**
   * A hidden prompt supplied by the command layer when the user may be prompted (else absent), for
   * a secret a backend finds it needs only late (sanctum: the passphrase of a `.key.enc`).
   */
  promptHidden?(message: string): Promise<Buffer>
  /** Print a warning on stderr (commands decide how). */
  warn(message: string): void
}

/**
 * The inputs of `login`, already read by the command layer from the backend's declaration (flags,
 * stdin, variables, prompts), by the input's `name`. Secrets arrive as Buffers, which the command
 * wipes once login returns; a backend never reads the terminal itself.
 */
export type LoginOptions = Record<string, boolean | Buffer | string | string[] | undefined>

/** Flag values given to `logout`. */
export interface LogoutOptions {
  /** Also revoke the token on the server (openbao `revoke-self`). */
  revoke?: boolean
}

export interface LoginResult {
  details?: Record<string, unknown>
  identity?: string
  message: string
}

/** Options of a single read. */
export interface GetOptions {
  /** Ask for a lease of at most this many seconds (sanctum); backends without leases ignore it. */
  ttl?: number
  /**
   * `secrets get` only: a reference without `#field` to a secret holding several fields (openbao)
   * returns the whole map as JSON. Without it (`run`, `use`, `call`) such a reference is a usage error.
   */
  whole?: boolean
}

/** Where `call`/`use … http_request` puts one secret (the styles of `call`). */
export interface UseHttpInjection {
  reference: SecretReference
  style: 'basic' | 'bearer' | 'body' | 'form' | 'header' | 'query'
  /** Header name, query parameter, form field, or dotted JSON path. */
  target?: string
}

/**
 * A whole HTTP request, already checked, for backends that inject server-side every secret of one
 * request (agentsecrets): `call` with any combination of styles, or `use REF http_request`.
 */
export interface UseHttpRequest {
  body?: Buffer
  /** Plain (non-secret) headers. */
  headers: Array<[string, string]>
  injections: UseHttpInjection[]
  method: string
  url: string
}

/** A use-not-retrieve request (product.md §5): the backend (or the local engine) performs it. */
export interface UseRequest {
  /**
   * `http_request` only, for backends whose capabilities say `get: false` (they never hand values
   * out, so `call` reaches them through `use`): the request with every injection. Backends that
   * take the operation's params instead may ignore it. The result then has `call --json`'s shape
   * (status, headers, body, bodyEncoding?, redacted, duration_ms).
   */
  http?: UseHttpRequest
  operation: string
  params: Record<string, unknown>
}

/** The operation's result: never the secret value itself. */
export type UseResult = Record<string, unknown>

/** An event from a backend's audit source, in agentvault's audit shape. */
export type ExternalAuditEvent = AuditEvent & {
  /** The upstream call was blocked by the backend's policy. */
  blocked?: boolean
  source: string
}

/** One `NAME=REF` of `run` that a backend injects itself (see `Backend.wrapRun`). */
export interface RunInjection {
  name: string
  reference: SecretReference
}

/** How a backend that injects values itself wants the child started. */
export interface WrappedCommand {
  /** The command to start instead (it runs the original command as its own child). */
  command: string[]
  /** Variables to drop from the child's environment so no stale copy sits beside the injected one. */
  removeEnv: string[]
  /**
   * Credential variables the wrapper reads itself: `run` keeps them in the environment although it
   * withholds credentials (core/child-env.ts), and masks their values, which the command inherits.
   */
  keepEnv?: string[]
}

export interface Backend {
  readonly capabilities: Capabilities
  /** Release connections, leases and locks. Always safe to call twice. */
  close(): Promise<void>
  delete?(reference: SecretReference, options?: DeleteOptions): Promise<void>
  /** Metadata of one secret (e.g. its allowedDomains), without its value. */
  describe?(reference: SecretReference): Promise<SecretMetadata>
  /**
   * Why this backend lacks a capability and what to do instead, used in place of the generic
   * "not supported" error (e.g. sanctum: store secrets on the vault host).
   */
  explainUnsupported?(capability: 'delete' | 'get' | 'set', reference?: SecretReference): AgentVaultError
  /**
   * Every secret (whose name starts with `prefix`) with its value, in one read (`secrets export`).
   * Zero-knowledge backends never have it.
   */
  exportAll?(prefix?: string): Promise<ExportedSecret[]>
  /** Read one value. The caller owns the Buffer and should drop it as soon as it can. */
  get?(reference: SecretReference, options?: GetOptions): Promise<Buffer>
  readonly kind: BackendKind
  list?(prefix?: string, options?: ListOptions): Promise<SecretMetadata[]>
  /** Sign in (or initialise, for local) and store what is needed in the credential store. */
  login?(options: LoginOptions): Promise<LoginResult>
  /** Forget stored credentials; resolves to whether anything was cleared. */
  logout?(options?: LogoutOptions): Promise<boolean>
  /** Read many values concurrently over one session; keys are `reference.canonical`. */
  resolveMany?(references: SecretReference[]): Promise<Map<string, Buffer>>
  /** Move a secret, its value, version and metadata, to a new name in one write (`secrets rename`). */
  rename?(from: SecretReference, to: SecretReference, options: RenameOptions): Promise<SecretMetadata>
  set?(reference: SecretReference, value: Buffer, options: SetSecretOptions): Promise<SecretMetadata>
  /**
   * Store many values in one write under one lock (`secrets import`): all or nothing. Existing
   * secrets are skipped unless `overwrite`.
   */
  setMany?(items: SetManyItem[], options: SetManyOptions): Promise<SetManyResult>
  status(): Promise<ProfileStatus>
  /** Change a secret's description, tags or allowed domains without touching its value (`secrets edit`). */
  updateMetadata?(reference: SecretReference, changes: MetadataChanges): Promise<SecretMetadata>
  /** Versioned backends: unwrap a response-wrapping token (once) into the value it stands for. */
  unwrap?(wrappingToken: string, options: UnwrapOptions): Promise<Buffer>
  /**
   * A backend's own audit source (AgentSecrets proxy logs, AgentAuth activity), normalised to
   * agentvault's event fields with `source` set to the backend kind; `audit --source KIND|all`
   * merges it with the local trail in time order. Never carries a value.
   */
  auditEvents?(filter: AuditFilter): Promise<ExternalAuditEvent[]>
  /**
   * For backends that never hand values to agentvault (agentsecrets): wrap `run`'s command so the
   * backend injects its references itself. Such references are not resolved by agentvault.
   */
  wrapRun?(injections: RunInjection[], command: string[]): Promise<WrappedCommand>
  /**
   * Perform a use operation server-side (sanctum, agentsecrets). Backends without it have their
   * values used by agentvault's own engine (core/use-engine.ts) under its guards.
   */
  use?(reference: SecretReference, request: UseRequest): Promise<UseResult>
  /**
   * Backends that keep previous values (local): make version `version` of a secret its value
   * again, as a new version. Returns the new version's metadata.
   */
  rollback?(reference: SecretReference, version: number): Promise<SecretMetadata>
  /** Versioned backends (and local's kept versions): the version history of a secret, without values. */
  versions?(reference: SecretReference): Promise<SecretVersions>
  /** Versioned backends: a single-use wrapping token for one read, valid for `ttl` (`30s`, `5m`, `1h`, seconds). */
  wrap?(reference: SecretReference, ttl: string): Promise<WrapResult>
}

/** One value of a batch write (`secrets import`). */
export interface SetManyItem {
  reference: SecretReference
  value: Buffer
}

/** Options of `setMany`. */
export interface SetManyOptions {
  /** Replace secrets that already exist (default: leave them and report them as skipped). */
  overwrite?: boolean
}

/** What a batch write did, by `reference.canonical`; never values. */
export interface SetManyResult {
  created: string[]
  replaced: string[]
  skipped: string[]
}

/** One secret with its value, from `exportAll` (`secrets export`). The caller owns the Buffer. */
export interface ExportedSecret {
  name: string
  value: Buffer
}

/** `secrets edit`: metadata to change; what is undefined stays as it is. */
export interface MetadataChanges {
  allowedDomains?: string[]
  description?: string
  tags?: string[]
}

/** Options of `rename`. */
export interface RenameOptions {
  /** Replace a secret already stored under the new name. */
  overwrite?: boolean
}

export type BackendFactory = (context: BackendContext) => Backend | Promise<Backend>
