/**
 * One profile's connection to AgentAuth for one command: settings (resolved once, warnings printed
 * once), the HTTP client with its recorded generation (persisted to config.json when it changes),
 * the token manager, and the two ways to call — public routes and JWT routes with the
 * refresh-and-repeat of §10.2. Nothing is read or sent until the first call.
 */
import type {Debugger} from 'debug'

import type {BackendContext} from '../../core/backend.js'
import type {CredentialStore} from '../../core/credentials.js'

import {AgentAuthHttp, type Clock, type HttpAnswer, type Operation, systemClock} from './http-client.js'
import {errorFromAnswer, type RouteKind} from './http-errors.js'
import {
  type AgentAuthOverrides,
  type AgentAuthSettings,
  type Generation,
  requireBaseUrl,
  resolveAgentAuthSettings,
  settingsWarnings,
} from './settings.js'
import {TokenManager} from './tokens.js'

/** Test seams; production uses the defaults. */
export interface AgentAuthOptions {
  /** Time for token freshness and retry spacing. */
  clock?: Clock
}

const ok = (answer: HttpAnswer): boolean => answer.status >= 200 && answer.status < 300 && !answer.routeMiss

/** See the module comment. */
export class AgentAuthConnection {
  readonly clock: Clock
  private httpPromise?: Promise<AgentAuthHttp>
  private logValue?: Debugger
  private settingsValue?: AgentAuthSettings
  private storePromise?: Promise<CredentialStore>
  private tokensPromise?: Promise<TokenManager>

  constructor(
    readonly context: BackendContext,
    options: AgentAuthOptions = {},
    private readonly overrides: AgentAuthOverrides = {},
  ) {
    this.clock = options.clock ?? systemClock
  }

  get profile(): string {
    return this.context.profile.name
  }

  /** The profile's base URL, or a configuration error (no built-in default). */
  baseUrl(): string {
    return requireBaseUrl(this.settings(), this.profile)
  }

  /** The HTTP client for this command (one per connection). */
  http(generation?: Generation): Promise<AgentAuthHttp> {
    // Memoised as a promise: concurrent callers (run resolving, a JWT call) share one client.
    this.httpPromise ??= this.createHttp(generation)
    return this.httpPromise
  }

  /**
   * A JWT route (§10.2): a fresh access token, the call, and on a 401 one refresh and one repeat.
   * Resolves to a 2xx answer; anything else is a typed error.
   */
  async jwtCall(operation: Operation): Promise<HttpAnswer> {
    const [http, tokens] = await Promise.all([this.http(), this.tokens()])
    let token = await tokens.accessToken()
    let answer = await http.call({...operation, token})
    if (answer.status === 401 && !answer.routeMiss) {
      token = await tokens.afterRejection(token)
      answer = await http.call({...operation, token})
    }

    return this.check(answer, operation.name, 'jwt')
  }

  async logger(): Promise<Debugger> {
    this.logValue ??= (await import('debug')).default('agentvault:agentauth')
    return this.logValue
  }

  /** A route without a token (register, verify, catalogue, events, health). */
  async publicCall(operation: Operation, route: RouteKind = 'public'): Promise<HttpAnswer> {
    const http = await this.http()
    return this.check(await http.call(operation), operation.name, route)
  }

  settings(): AgentAuthSettings {
    this.settingsValue ??= resolveAgentAuthSettings(this.context.profile, this.context.env, this.overrides)
    return this.settingsValue
  }

  store(): Promise<CredentialStore> {
    this.storePromise ??= import('./token-store.js').then(({openTokenStore}) => openTokenStore(this.context))
    return this.storePromise
  }

  /** The profile's token manager (stored session, else env credentials). */
  tokens(): Promise<TokenManager> {
    this.tokensPromise ??= Promise.all([this.http(), this.logger()]).then(
      ([http, log]) =>
        new TokenManager({
          baseUrl: http.baseUrl,
          clock: this.clock,
          env: this.context.env,
          home: this.context.home,
          http,
          log,
          profile: this.profile,
          store: () => this.store(),
          warn: (message) => this.context.warn(message),
        }),
    )
    return this.tokensPromise
  }

  /** The answer when it is a 2xx; otherwise the typed error of §9. */
  check(answer: HttpAnswer, operation: string, route: RouteKind = 'public'): HttpAnswer {
    if (ok(answer)) return answer
    throw errorFromAnswer(answer, {operation, profile: this.profile, route}, this.clock.now())
  }

  private async createHttp(generation?: Generation): Promise<AgentAuthHttp> {
    const settings = this.settings()
    const baseUrl = this.baseUrl()
    for (const message of settingsWarnings(settings, this.context.env, this.profile))
      this.context.warn(message)
    return new AgentAuthHttp({
      baseUrl,
      clock: this.clock,
      generation: generation ?? settings.generation,
      log: await this.logger(),
      onGeneration: (next) => this.persistGeneration(next),
      timeoutMs: settings.timeoutMs,
    })
  }

  /** Record a generation change in config.json (configured profiles only; a failure only warns). */
  private async persistGeneration(generation: Generation): Promise<void> {
    const {home, profile} = this.context
    if (profile.implicit) return
    try {
      const {updateConfig} = await import('../../core/config.js')
      await updateConfig(home, (config) => {
        const stored = config.profiles[profile.name]
        if (stored?.kind === 'agentauth') stored.generation = generation
      })
    } catch (error) {
      this.context.warn(
        `Could not record the AgentAuth API generation of profile ${profile.name}: ${error instanceof Error ? error.message : String(error)}`,
      )
    }
  }
}
