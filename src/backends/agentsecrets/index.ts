/**
 * The `agentsecrets` backend (protocols/agentsecrets.md): zero-knowledge use of an AgentSecrets
 * install through its CLI (`call`, `env --only`, `secrets`, `log(s) --json`) or its local HTTP
 * proxy (`/proxy`, `/health`). agentvault never asks AgentSecrets for a value: HTTP use is
 * performed by AgentSecrets, `run` goes through `agentsecrets env`, and `secrets get --reveal` is
 * refused without any backend call.
 */
import type {Debugger} from 'debug'

import {join} from 'node:path'

import type {AuditFilter} from '../../core/audit.js'
import type {
  Backend,
  BackendContext,
  Capabilities,
  DeleteOptions,
  ExternalAuditEvent,
  LoginOptions,
  LoginResult,
  ProfileStatus,
  RunInjection,
  SecretMetadata,
  SetSecretOptions,
  UseHttpRequest,
  UseRequest,
  UseResult,
  WrappedCommand,
} from '../../core/backend.js'
import type {SecretReference} from '../../core/references.js'
import type {AgentSecretsCli, CliCache} from './cli.js'
import type {AgentSecretsCall, KeyInjection} from './request.js'
import type {AgentSecretsOverrides, AgentSecretsSettings} from './settings.js'

import {statusProblem} from '../../core/backend.js'
import {CONFIG_FILE} from '../../core/config.js'
import {AgentVaultError, BackendUnavailableError, NotSupportedError, UsageError} from '../../core/errors.js'
import {keyNotFound} from './errors.js'
import {resolveSettings} from './settings.js'

export const AGENTSECRETS_USE_OPERATIONS = Object.freeze(['http_request'] as const)

export const AGENTSECRETS_CAPABILITIES: Readonly<Capabilities> = Object.freeze({
  auditSource: true,
  delete: true,
  get: false,
  list: true,
  login: true,
  runInjection: true,
  set: true,
  useOperations: AGENTSECRETS_USE_OPERATIONS,
})

/** Create the agentsecrets backend for a profile. Nothing is run or sent until the first call. */
export function createBackend(context: BackendContext): Backend {
  return new AgentSecretsBackend(context)
}

type Chosen = {cli: AgentSecretsCli; kind: 'cli'} | {kind: 'proxy'; port: number}

function keyOf(reference: SecretReference): string {
  if (reference.kind !== 'agentsecrets')
    throw new UsageError('WRONG_BACKEND', `${reference.canonical} is not an agentsecrets:// reference`, {
      suggestion: 'Use an agentsecrets://KEY reference with an agentsecrets profile.',
    })
  return reference.path
}

function stringOption(options: LoginOptions, name: string): string | undefined {
  const value = options[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** The zero-knowledge refusal (§1 rule 1): thrown before any backend call. */
function neverReveals(reference?: SecretReference): UsageError {
  const ref = reference?.kind === 'agentsecrets' ? reference.canonical : 'agentsecrets://KEY'
  return new UsageError('ZERO_KNOWLEDGE', `AgentSecrets never reveals values: ${ref} cannot be printed`, {
    suggestion: `Use it without seeing it: agentvault run --env ${reference?.path ?? 'KEY'}=${ref} -- CMD, or agentvault call URL --bearer ${ref}. \`agentvault secrets get ${ref}\` (without --reveal) tells whether it exists.`,
  })
}

class AgentSecretsBackend implements Backend {
  readonly capabilities = AGENTSECRETS_CAPABILITIES
  readonly kind = 'agentsecrets' as const
  private cliCache?: CliCache
  private chosen?: Promise<Chosen>
  private log?: Debugger

  constructor(private readonly context: BackendContext) {}

  async auditEvents(filter: AuditFilter): Promise<ExternalAuditEvent[]> {
    const {filterEvents, parseJsonLines, parseProxyLogsTable} = await import('./audit-log.js')
    const normalise = {profile: this.context.profile.name}
    const limit = String(Math.min(Math.max(filter.limit ?? 10_000, 1), 100_000))
    const chosen = await this.choose()
    if (chosen.kind === 'proxy')
      return filterEvents(parseJsonLines(await this.legacyLog(), normalise), filter)
    const {cli} = chosen
    const {MANAGEMENT_TIMEOUT_MS} = await import('./cli.js')
    const {cliFailure} = await import('./manage.js')
    const {errorLines} = await import('./text.js')
    const command = await cli.auditCommand()
    if (command) {
      // Never `log` without `--json`: it is an interactive pager.
      const args = [command, '--json', '--limit', limit, ...(filter.status === 'denied' ? ['--blocked'] : [])]
      const output = await cli.run(args, {timeoutMs: MANAGEMENT_TIMEOUT_MS})
      const events = parseJsonLines(output.stdout, normalise)
      if (events.length === 0 && errorLines(output.stdout + '\n' + output.stderr).length > 0)
        throw cliFailure(output, `${command} --json`)
      return filterEvents(events, filter)
    }

    const output = await cli.run(['proxy', 'logs', '--last', limit], {timeoutMs: MANAGEMENT_TIMEOUT_MS})
    if (errorLines(output.stdout + '\n' + output.stderr).length > 0) throw cliFailure(output, 'proxy logs')
    return filterEvents(parseProxyLogsTable(output.stdout, normalise), filter)
  }

  async close(): Promise<void> {
    // Nothing stays open: every CLI run and proxy request ends with its call.
  }

  async delete(reference: SecretReference, _options?: DeleteOptions): Promise<void> {
    const key = keyOf(reference)
    const cli = await this.requireCli('Deleting secrets')
    const {deleteKey} = await import('./manage.js')
    await deleteKey(cli, key, this.manageOptions())
  }

  /** Whether the key exists in the active environment (never its value). */
  async describe(reference: SecretReference): Promise<SecretMetadata> {
    const key = keyOf(reference)
    const cli = await this.requireCli('Checking a secret')
    const {listKeys} = await import('./manage.js')
    const listing = await listKeys(cli, this.context.env)
    if (!listing.keys.includes(key))
      throw keyNotFound(key, this.context.profile.implicit ? undefined : this.context.profile.name)
    return {description: `${listing.environment} environment`, name: key}
  }

  explainUnsupported(capability: 'delete' | 'get' | 'set', reference?: SecretReference): AgentVaultError {
    if (capability === 'get') return neverReveals(reference)
    return new NotSupportedError(
      'agentsecrets',
      capability === 'set' ? 'Storing secrets' : 'Deleting secrets',
    )
  }

  async list(prefix?: string): Promise<SecretMetadata[]> {
    const cli = await this.requireCli('Listing secrets')
    const {listKeys} = await import('./manage.js')
    const listing = await listKeys(cli, this.context.env)
    return listing.keys
      .filter((key) => prefix === undefined || key.startsWith(prefix))
      .map((name) => ({name, description: `${listing.environment} environment`}))
  }

  /** `agentvault login agentsecrets`: check the CLI or the proxy, then save the profile (and tokens). */
  async login(options: LoginOptions): Promise<LoginResult> {
    const overrides: AgentSecretsOverrides = {
      agentId: stringOption(options, 'agentId'),
      cliPath: stringOption(options, 'cliPath'),
      port: stringOption(options, 'port'),
      transport: stringOption(options, 'transport'),
    }
    const settings = this.settings(overrides)
    const {login} = await import('./login.js')
    return login({
      ...(Buffer.isBuffer(options.agentToken) && {agentToken: options.agentToken}),
      context: this.context,
      log: await this.debug(),
      overrides,
      ...(Buffer.isBuffer(options.sessionToken) && {sessionToken: options.sessionToken}),
      settings,
    })
  }

  async logout(): Promise<boolean> {
    const {accountFor, openTokenStore} = await import('./tokens.js')
    return (await openTokenStore(this.context)).delete(accountFor(this.context.profile.name))
  }

  async set(reference: SecretReference, value: Buffer, options: SetSecretOptions): Promise<SecretMetadata> {
    const key = keyOf(reference)
    if ((options.allowedDomains?.length ?? 0) > 0)
      throw new UsageError(
        'AGENTSECRETS_NO_DOMAINS',
        '--allow-domain is not supported by agentsecrets: AgentSecrets keeps one allowlist per workspace',
        {
          suggestion: 'Allow the host in AgentSecrets: agentsecrets workspace allowlist add HOST',
        },
      )
    if (options.description !== undefined || (options.tags?.length ?? 0) > 0)
      throw new NotSupportedError(
        'agentsecrets',
        'Descriptions and tags',
        'Store the secret without --description and --tag.',
      )
    const cli = await this.requireCli('Storing secrets')
    const {setKey} = await import('./manage.js')
    await setKey(cli, key, value, {...this.manageOptions(), allowArgv: options.allowArgv === true})
    return {name: key}
  }

  async status(): Promise<ProfileStatus> {
    let settings: AgentSecretsSettings
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

    const {profileStatus} = await import('./login.js')
    return profileStatus(this.context, settings, await this.debug())
  }

  async use(reference: SecretReference, request: UseRequest): Promise<UseResult> {
    if (request.operation !== 'http_request')
      throw new NotSupportedError(
        'agentsecrets',
        `The use operation "${request.operation.slice(0, 40)}"`,
        'AgentSecrets performs HTTP requests only: agentvault call URL --bearer agentsecrets://KEY, or agentvault use agentsecrets://KEY http_request --param url=URL.',
      )
    const call = request.http ? this.fromHttp(request.http) : await this.fromParams(reference, request.params)
    const chosen = await this.choose()
    const {performCall} = await import('./perform.js')
    return performCall(chosen, call, {
      context: this.context,
      log: await this.debug(),
      settings: this.settings(),
    })
  }

  async wrapRun(injections: RunInjection[], command: string[]): Promise<WrappedCommand> {
    const cli = await this.requireCli('Injecting secrets into `run`')
    const {wrapWithEnv} = await import('./run.js')
    return wrapWithEnv(cli, injections, command, {
      env: this.context.env,
      warn: (message) => this.context.warn(message),
    })
  }

  /** §3: `auto` picks the CLI when one is found, else the proxy; decided once per command. */
  private choose(): Promise<Chosen> {
    this.chosen ??= (async (): Promise<Chosen> => {
      const settings = this.settings()
      const {findExecutable, requireExecutable} = await import('./cli.js')
      if (settings.transport === 'proxy') return {kind: 'proxy', port: settings.port}
      const executable =
        settings.transport === 'cli'
          ? await requireExecutable(settings.cliPath, this.context.env)
          : await findExecutable(settings.cliPath, this.context.env)
      if (executable === undefined) return {kind: 'proxy', port: settings.port}
      return {cli: await this.cliFor(executable), kind: 'cli'}
    })()
    return this.chosen
  }

  private async cliFor(executable: string): Promise<AgentSecretsCli> {
    const {CliCache} = await import('./cli.js')
    this.cliCache ??= new CliCache()
    return this.cliCache.get(executable, this.context.env, await this.debug())
  }

  private async debug(): Promise<Debugger> {
    this.log ??= (await import('debug')).default('agentvault:agentsecrets')
    return this.log
  }

  private fromHttp(http: UseHttpRequest): AgentSecretsCall {
    let url: URL
    try {
      url = new URL(http.url)
    } catch {
      throw new UsageError('BAD_URL', 'The URL is not valid', {
        suggestion: 'Give an absolute http:// or https:// URL.',
      })
    }

    const injections: KeyInjection[] = http.injections.map((injection) => ({
      key: keyOf(injection.reference),
      style: injection.style,
      ...(injection.target === undefined ? {} : {target: injection.target}),
    }))
    return {
      ...(http.body ? {body: http.body} : {}),
      headers: http.headers.map(([name, value]): [string, string] => [name, value]),
      injections,
      method: http.method.toUpperCase(),
      url,
    }
  }

  /** `use agentsecrets://KEY http_request` without a prepared request: the engine's parameters. */
  private async fromParams(
    reference: SecretReference,
    params: Record<string, unknown>,
  ): Promise<AgentSecretsCall> {
    const {validateUseRequest} = await import('../../core/use-engine.js')
    const validated = validateUseRequest({operation: 'http_request', params}, reference.canonical)
    if (validated.operation !== 'http_request') throw new NotSupportedError('agentsecrets', 'This operation')
    const {plan} = validated
    return this.fromHttp({
      ...(plan.body ? {body: plan.body} : {}),
      headers: plan.headers,
      injections: plan.injections.map((injection) => ({
        reference,
        style: injection.style,
        ...(injection.target === undefined ? {} : {target: injection.target}),
      })),
      method: plan.method,
      url: plan.url.href,
    })
  }

  private manageOptions(): {env: NodeJS.ProcessEnv; interactive: boolean; warn(message: string): void} {
    return {
      env: this.context.env,
      interactive: this.context.interactive,
      warn: (message) => this.context.warn(message),
    }
  }

  /** The legacy JSONL audit file of 1.x proxies (§9 priority 3). */
  private async legacyLog(): Promise<string> {
    const [{readFile}, {homedir}] = await Promise.all([import('node:fs/promises'), import('node:os')])
    const home = this.context.env.HOME && this.context.env.HOME !== '' ? this.context.env.HOME : homedir()
    const file = join(home, '.agentsecrets', 'proxy.log')
    try {
      return await readFile(file, 'utf8')
    } catch (error) {
      throw new BackendUnavailableError(
        'AGENTSECRETS_AUDIT_UNAVAILABLE',
        `No readable AgentSecrets audit log (${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`,
        {
          suggestion:
            'Newer proxies keep their log in audit.db, which agentvault never opens: install the AgentSecrets CLI so agentvault can use `agentsecrets logs --json`.',
        },
      )
    }
  }

  /** The CLI, for operations the proxy cannot do (§3 table): run, secrets, describe. */
  private async requireCli(what: string): Promise<AgentSecretsCli> {
    const settings = this.settings()
    if (settings.transport === 'proxy')
      throw new UsageError(
        'AGENTSECRETS_NEEDS_CLI',
        `${what} needs the AgentSecrets CLI, and this profile uses the proxy transport`,
        {
          suggestion:
            'Install the AgentSecrets CLI and set "transport" to "cli" or "auto" (agentvault login agentsecrets --transport auto).',
        },
      )
    const {requireExecutable} = await import('./cli.js')
    return this.cliFor(await requireExecutable(settings.cliPath, this.context.env))
  }

  private settings(overrides?: AgentSecretsOverrides): AgentSecretsSettings {
    return resolveSettings(
      this.context.profile,
      this.context.env,
      join(this.context.home, CONFIG_FILE),
      overrides,
    )
  }
}
