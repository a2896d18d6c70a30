/**
 * The `sanctum` backend (protocols/sanctum.md): a client of a SanctumAI vault daemon over its
 * agent protocol. One backend instance serves one profile for one command, over one authenticated
 * connection opened on first use; `close()` releases every lease and ends it. Secrets cannot be
 * stored or deleted over this protocol.
 */
import type {Debugger} from 'debug'

import {join} from 'node:path'

import type {
  Backend,
  BackendContext,
  Capabilities,
  GetOptions,
  LoginOptions,
  LoginResult,
  ProfileStatus,
  SecretMetadata,
  UseHttpRequest,
  UseRequest,
  UseResult,
} from '../../core/backend.js'
import type {SecretReference} from '../../core/references.js'
import type {SanctumClient} from './client.js'
import type {RememberedSeed} from './key-file.js'

import {statusProblem} from '../../core/backend.js'
import {CONFIG_FILE} from '../../core/config.js'
import {AgentVaultError, ConfigError, NotSupportedError, UsageError} from '../../core/errors.js'
import {notOverAgentProtocol} from './errors.js'
import {resolveSanctumSettings, type SanctumOverrides, type SanctumSettings} from './settings.js'

/** The daemon's use operations (§8); anything else fails locally. */
export const SANCTUM_USE_OPERATIONS = Object.freeze([
  'http_request',
  'http_header',
  'sign',
  'encrypt',
  'decrypt',
] as const)

export const SANCTUM_CAPABILITIES: Readonly<Capabilities> = Object.freeze({
  auditSource: false,
  delete: false,
  get: true,
  list: true,
  login: true,
  runInjection: true,
  set: false,
  useOperations: SANCTUM_USE_OPERATIONS,
})

function wipeProved(proved: RememberedSeed | undefined): void {
  proved?.seed.fill(0)
}

/** Create the sanctum backend for a profile. Nothing is read or sent until the first call. */
export function createBackend(context: BackendContext): Backend {
  return new SanctumBackend(context)
}

function sanctumPath(reference: SecretReference): string {
  if (reference.kind !== 'sanctum')
    throw new UsageError('WRONG_BACKEND', `${reference.canonical} is not a sanctum:// reference`, {
      suggestion: 'Use a sanctum://path/to/cred reference with a sanctum profile.',
    })
  return reference.path
}

function stringOption(options: LoginOptions, name: string): string | undefined {
  const value = options[name]
  return typeof value === 'string' ? value : undefined
}

class SanctumBackend implements Backend {
  readonly capabilities = SANCTUM_CAPABILITIES
  readonly kind = 'sanctum' as const
  private client?: SanctumClient
  private log?: Debugger
  private making?: Promise<SanctumClient>

  constructor(private readonly context: BackendContext) {}

  async close(): Promise<void> {
    const {client} = this
    this.client = undefined
    await client?.close()
  }

  explainUnsupported(capability: 'delete' | 'set', reference?: SecretReference): AgentVaultError {
    return notOverAgentProtocol(capability, reference?.kind === 'sanctum' ? reference.path : undefined)
  }

  async get(reference: SecretReference, options: GetOptions = {}): Promise<Buffer> {
    const path = sanctumPath(reference)
    return (await this.connected()).retrieve(path, options.ttl)
  }

  async list(prefix = ''): Promise<SecretMetadata[]> {
    const credentials = await (await this.connected()).list()
    return credentials
      .filter((credential) => credential.path.startsWith(prefix))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .map((credential) => ({
        name: credential.path,
        ...(credential.type === undefined ? {} : {type: credential.type}),
        ...(credential.description === undefined ? {} : {description: credential.description}),
        ...(credential.tags === undefined ? {} : {tags: credential.tags}),
        ...(credential.created_at === undefined ? {} : {created: credential.created_at}),
        ...(credential.updated_at === undefined ? {} : {updated: credential.updated_at}),
      }))
  }

  /**
   * `agentvault login sanctum`: flags win over the profile and env; the key is generated first
   * when asked; the handshake must succeed before the profile is saved.
   */
  async login(options: LoginOptions): Promise<LoginResult> {
    const passphrase = Buffer.isBuffer(options.keyPassphrase) ? options.keyPassphrase : undefined
    const overrides: SanctumOverrides = {
      agent: stringOption(options, 'agent'),
      dialect: stringOption(options, 'dialect'),
      host: stringOption(options, 'host'),
      keyPath: stringOption(options, 'keyPath'),
      port: stringOption(options, 'port'),
      socket: stringOption(options, 'socket'),
    }
    const settings = this.settings(overrides)
    if (!settings.agent)
      throw new UsageError('SANCTUM_AGENT_REQUIRED', 'Which agent? `login sanctum` needs an agent name', {
        suggestion: 'agentvault login sanctum --agent NAME (or set SANCTUM_AGENT).',
      })
    const {agent} = settings
    const {login} = await import('./login.js')
    let proved: (RememberedSeed & {keyFile: string}) | undefined
    try {
      return await login({
        agent,
        context: this.context,
        connect: async () => {
          await this.close()
          const client = await this.newClient(
            {...settings, agent},
            passphrase,
            (seed, fingerprint, keyFile) => {
              wipeProved(proved)
              proved = {fingerprint, keyFile, seed: Buffer.from(seed)}
            },
          )
          this.client = client
          await client.connect()
          return client
        },
        generateKey: options.generateKey === true,
        // What the handshake proved: a key decrypted from a .key.enc is kept for later commands;
        // signing in with a plain key drops one kept before.
        keepKey: async () => {
          const {openSeedStore, saveSeed, seedAccount} = await import('./seed-store.js')
          const store = await openSeedStore(this.context)
          await (proved
            ? saveSeed(store, this.context.profile.name, proved)
            : store.delete(seedAccount(this.context.profile.name)))
          return proved !== undefined
        },
        overrides,
        settings: {...settings, agent},
      })
    } finally {
      wipeProved(proved)
    }
  }

  /** Forget the agent key `login` kept from a `.key.enc` (the key files themselves stay). */
  async logout(): Promise<boolean> {
    const {openSeedStore, seedAccount} = await import('./seed-store.js')
    return (await openSeedStore(this.context)).delete(seedAccount(this.context.profile.name))
  }

  /** All references over the one connection, pipelined. */
  async resolveMany(references: SecretReference[]): Promise<Map<string, Buffer>> {
    const paths = references.map((reference) => sanctumPath(reference))
    const resolved = new Map<string, Buffer>()
    if (references.length === 0) return resolved
    const client = await this.connected()
    const values = await Promise.all(paths.map((path) => client.retrieve(path)))
    for (const [index, reference] of references.entries())
      resolved.set(reference.canonical, values[index] as Buffer)
    return resolved
  }

  /** Reachable and signed in: connect and authenticate, nothing more. */
  async status(): Promise<ProfileStatus> {
    let settings: SanctumSettings
    try {
      settings = this.settings()
    } catch (error) {
      if (!(error instanceof AgentVaultError)) throw error
      return {
        message: error.message,
        problem: statusProblem(error.category),
        reachable: false,
        signedIn: false,
      }
    }

    const {describeEndpoint} = await import('./connection.js')
    const endpoint = describeEndpoint(settings.endpoint)
    if (!settings.agent)
      return {
        details: {endpoint},
        message: 'No agent configured: run `agentvault login sanctum --agent NAME`.',
        problem: 'auth',
        reachable: false,
        signedIn: false,
      }
    const details = {agent: settings.agent, endpoint}
    try {
      const client = await this.connected()
      return {
        details: {...details, dialect: client.dialect},
        identity: settings.agent,
        reachable: true,
        signedIn: true,
      }
    } catch (error) {
      if (!(error instanceof AgentVaultError)) throw error
      return {
        details: {...details, code: error.code},
        message: error.message,
        reachable: this.client?.reached === true || (await this.probe(settings)),
        signedIn: false,
      }
    }
  }

  async use(reference: SecretReference, request: UseRequest): Promise<UseResult> {
    const path = sanctumPath(reference)
    if (!(SANCTUM_USE_OPERATIONS as readonly string[]).includes(request.operation))
      throw new NotSupportedError(
        'sanctum',
        `The use operation "${request.operation.slice(0, 40)}"`,
        `Sanctum performs ${SANCTUM_USE_OPERATIONS.join(', ')}.`,
      )
    const params = request.http ? daemonHttpParams(request.http) : request.params
    const started = Date.now()
    const result = await (await this.connected()).use(path, request.operation, params)
    if (!request.http) return result
    // `call`: the daemon's {status, headers, body} in call --json's shape.
    return {
      body: typeof result.body === 'string' ? result.body : JSON.stringify(result.body ?? ''),
      duration_ms: Date.now() - started,
      headers: typeof result.headers === 'object' && result.headers !== null ? result.headers : {},
      redacted: false,
      status: typeof result.status === 'number' ? result.status : 0,
    }
  }

  /**
   * The one authenticated client of this command, connected on first use. Concurrent first callers
   * (`proxy` requests) share the client being made instead of each opening a connection.
   */
  private async connected(): Promise<SanctumClient> {
    if (!this.client) {
      const settings = this.settings()
      if (!settings.agent)
        throw new ConfigError('SANCTUM_AGENT_REQUIRED', 'No Sanctum agent is configured', {
          suggestion:
            'Run `agentvault login sanctum --agent NAME`, or set SANCTUM_AGENT (and SANCTUM_KEY_PATH).',
        })
      this.making ??= this.newClient({...settings, agent: settings.agent}).finally(() => {
        this.making = undefined
      })
      const made = await this.making
      this.client ??= made
    }

    await this.client.connect()
    return this.client
  }

  private async logger(): Promise<Debugger> {
    this.log ??= (await import('debug')).default('agentvault:sanctum')
    return this.log
  }

  /**
   * A client whose key comes from the key file: with the passphrase given (login's stdin, else
   * SANCTUM_KEY_PASSPHRASE), else the key `login` kept for that `.key.enc`, else the command
   * layer's hidden prompt. `proved` hears of every `.key.enc` decrypted.
   */
  private async newClient(
    settings: SanctumSettings & {agent: string},
    passphrase?: Buffer,
    proved?: (seed: Buffer, fingerprint: string, keyFile: string) => void,
  ): Promise<SanctumClient> {
    const [{SanctumClient}, {defaultKeyPath, loadAgentKey}, log] = await Promise.all([
      import('./client.js'),
      import('./key-file.js'),
      this.logger(),
    ])
    const {context} = this
    const encrypted = `${defaultKeyPath({agent: settings.agent, keyDir: settings.keyDir})}.enc`
    return new SanctumClient({
      async loadKey() {
        const fromEnv = context.env.SANCTUM_KEY_PASSPHRASE
        const {key, path} = await loadAgentKey(
          {agent: settings.agent, keyDir: settings.keyDir, keyPath: settings.keyPath},
          {
            given: passphrase ? Buffer.from(passphrase) : fromEnv ? Buffer.from(fromEnv, 'utf8') : undefined,
            onDecrypted: (seed, fingerprint) => proved?.(seed, fingerprint, encrypted),
            prompt: context.promptHidden,
            async remembered() {
              const {openSeedStore, readSeed} = await import('./seed-store.js')
              return readSeed(await openSeedStore(context), context.profile.name, encrypted)
            },
          },
        )
        log('key loaded from %s', path)
        return key
      },
      log,
      settings,
    })
  }

  /** Is anything listening? (For `status` when signing in failed before connecting.) */
  private async probe(settings: SanctumSettings): Promise<boolean> {
    const {SanctumConnection} = await import('./connection.js')
    try {
      const connection = await SanctumConnection.open(settings.endpoint, {
        log: await this.logger(),
        maxFrameBytes: settings.maxFrameBytes,
        timeoutMs: settings.timeoutMs,
      })
      await connection.close()
      return true
    } catch {
      return false
    }
  }

  private settings(overrides?: SanctumOverrides): SanctumSettings {
    return resolveSanctumSettings(
      this.context.profile,
      this.context.env,
      join(this.context.home, CONFIG_FILE),
      overrides,
    )
  }
}

/**
 * `call URL --bearer|--basic|--secret-header 'Name: sanctum://…'` as the daemon's `http_request`: the
 * daemon injects one credential as a header; it has no query, body or form injection.
 */
function daemonHttpParams(http: UseHttpRequest): Record<string, unknown> {
  const [injection, ...more] = http.injections
  if (!injection || more.length > 0)
    throw new NotSupportedError(
      'sanctum',
      'More than one secret in one call',
      'Sanctum injects one credential per request.',
    )
  const headerType =
    injection.style === 'bearer'
      ? {header_type: 'bearer'}
      : injection.style === 'basic'
        ? {header_type: 'basic'}
        : injection.style === 'header'
          ? {header_name: injection.target, header_type: 'custom'}
          : undefined
  if (!headerType)
    throw new NotSupportedError(
      'sanctum',
      `Injecting a secret as --${injection.style === 'body' ? 'body-field' : injection.style === 'form' ? 'form-field' : 'query'}`,
      'Sanctum injects credentials as headers: use --bearer, --basic or --secret-header.',
    )
  const body = http.body?.toString('utf8')
  return {
    ...headerType,
    ...(body === undefined ? {} : {body}),
    headers: Object.fromEntries(http.headers),
    method: http.method,
    url: http.url,
  }
}
