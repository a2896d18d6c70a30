/**
 * The contract every backend implements. Core and commands only see this interface; a backend
 * module is loaded lazily through the registry.
 */
import type {Profile} from './config.js'
import type {SecretReference} from './references.js'

export const BACKEND_KINDS = ['local', 'sanctum', 'agentsecrets', 'openbao', 'agentauth'] as const
export type BackendKind = (typeof BACKEND_KINDS)[number]

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
  description?: string
  tags?: string[]
}

export interface ProfileStatus {
  details?: Record<string, unknown>
  /** Who we are signed in as, when the backend has identities. */
  identity?: string
  message?: string
  reachable: boolean
  signedIn: boolean
  tokenExpiry?: string
}

/** Everything a backend instance gets from core; it reads no global state. */
export interface BackendContext {
  env: NodeJS.ProcessEnv
  /** `$AGENTVAULT_HOME`, already resolved. */
  home: string
  /** Whether the user may be prompted (TTY, no --no-prompt, no CI). */
  interactive: boolean
  profile: Profile
  /** Print a warning on stderr (commands decide how). */
  warn(message: string): void
}

/** Flag values given to `login`; each backend reads the ones it knows. */
export type LoginOptions = Record<string, boolean | string | undefined>

export interface LoginResult {
  details?: Record<string, unknown>
  identity?: string
  message: string
}

/** A use-not-retrieve request (product.md §5): the backend (or the local engine) performs it. */
export interface UseRequest {
  operation: string
  params: Record<string, unknown>
}

/** The operation's result: never the secret value itself. */
export type UseResult = Record<string, unknown>

export interface Backend {
  readonly capabilities: Capabilities
  /** Release connections, leases and locks. Always safe to call twice. */
  close(): Promise<void>
  delete?(reference: SecretReference): Promise<void>
  /** Metadata of one secret (e.g. its allowedDomains), without its value. */
  describe?(reference: SecretReference): Promise<SecretMetadata>
  /** Read one value. The caller owns the Buffer and should drop it as soon as it can. */
  get?(reference: SecretReference): Promise<Buffer>
  readonly kind: BackendKind
  list?(prefix?: string): Promise<SecretMetadata[]>
  /** Sign in (or initialise, for local) and store what is needed in the credential store. */
  login?(options: LoginOptions): Promise<LoginResult>
  /** Forget stored credentials; resolves to whether anything was cleared. */
  logout?(): Promise<boolean>
  /** Read many values concurrently over one session; keys are `reference.canonical`. */
  resolveMany?(references: SecretReference[]): Promise<Map<string, Buffer>>
  set?(reference: SecretReference, value: Buffer, options: SetSecretOptions): Promise<SecretMetadata>
  status(): Promise<ProfileStatus>
  /**
   * Perform a use operation server-side (sanctum, agentsecrets). Backends without it have their
   * values used by agentvault's own engine (core/use-engine.ts) under its guards.
   */
  use?(reference: SecretReference, request: UseRequest): Promise<UseResult>
}

export type BackendFactory = (context: BackendContext) => Backend | Promise<Backend>
