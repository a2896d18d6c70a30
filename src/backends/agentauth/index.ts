/**
 * The `agentauth` backend (protocols/agentauth.md): agent identity against an AgentAuth server.
 * Its one secret is `agentauth://access-token` — a currently valid access token, refreshed as
 * needed — for `run` (masked like any value) and `call --bearer`. It signs in (`login`), signs out
 * (`logout`), reports who it is from the token's claims (`status`), offers the agent's verify
 * activity as an audit source, and carries the agent and webhook management behind `agents …`.
 * One instance serves one profile for one command; nothing is read or sent until the first call.
 */
import type {AuditFilter} from '../../core/audit.js'
import type {
  Backend,
  BackendContext,
  Capabilities,
  ExternalAuditEvent,
  LoginOptions,
  LoginResult,
  ProfileStatus,
} from '../../core/backend.js'
import type {SecretReference} from '../../core/references.js'
import type {StoredSession} from './token-store.js'

import {AgentVaultError, UsageError} from '../../core/errors.js'
import {AgentAuthApi} from './agents-api.js'
import {AgentAuthConnection, type AgentAuthOptions} from './connection.js'

export type {AgentAuthOptions} from './connection.js'

/** `call` and `use` send the token through agentvault's own engine; signing with a JWT makes no sense. */
export const AGENTAUTH_USE_OPERATIONS = Object.freeze(['http_request', 'http_header'] as const)

/** What agentauth offers (product.md §2): one readable token, login, an audit source; no list/set/delete. */
export const AGENTAUTH_CAPABILITIES: Readonly<Capabilities> = Object.freeze({
  auditSource: true,
  delete: false,
  get: true,
  list: false,
  login: true,
  runInjection: true,
  set: false,
  useOperations: AGENTAUTH_USE_OPERATIONS,
})

/** The backend plus agent and webhook management (`agents …`). */
export interface AgentAuthBackend extends Backend {
  readonly api: AgentAuthApi
  auditEvents(filter: AuditFilter): Promise<ExternalAuditEvent[]>
  readonly connection: AgentAuthConnection
  get(reference: SecretReference): Promise<Buffer>
  readonly kind: 'agentauth'
  login(options: LoginOptions): Promise<LoginResult>
  logout(): Promise<boolean>
  resolveMany(references: SecretReference[]): Promise<Map<string, Buffer>>
}

/** Whether `backend` is an agentauth backend (for the `agents` commands). */
export function isAgentAuthBackend(backend: Backend): backend is AgentAuthBackend {
  return backend.kind === 'agentauth' && 'api' in backend
}

/** Create the agentauth backend for a profile. Nothing is read until the first call. */
export function createBackend(context: BackendContext, options: AgentAuthOptions = {}): AgentAuthBackend {
  return new AgentAuthBackendImpl(context, options)
}

function checkReference(reference: SecretReference): void {
  if (reference.kind !== 'agentauth' || reference.path !== 'access-token')
    throw new UsageError('WRONG_BACKEND', `${reference.canonical} is not an agentauth reference`, {
      suggestion: 'The only agentauth reference is agentauth://access-token (optionally ?profile=NAME).',
    })
}

/** `59m 58s`, `2h 3m`, `4d 1h`. */
function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`
  return `${Math.floor(seconds / 86_400)}d ${Math.floor((seconds % 86_400) / 3600)}h`
}

class AgentAuthBackendImpl implements AgentAuthBackend {
  readonly api: AgentAuthApi
  readonly capabilities = AGENTAUTH_CAPABILITIES
  readonly connection: AgentAuthConnection
  readonly kind = 'agentauth' as const

  constructor(
    private readonly context: BackendContext,
    private readonly options: AgentAuthOptions,
  ) {
    this.connection = new AgentAuthConnection(context, options)
    this.api = new AgentAuthApi(this.connection)
  }

  /** The agent's verify activity (§10.6), newest first; core merges and filters. */
  async auditEvents(filter: AuditFilter): Promise<ExternalAuditEvent[]> {
    const {activityEvent, readActivity} = await import('./activity.js')
    const agentId = await this.api.selfId()
    const entries = await readActivity(this.connection, agentId, filter.since ? {since: filter.since} : {})
    return entries.map((entry) => activityEvent(entry, this.context.profile.name))
  }

  async close(): Promise<void> {}

  explainUnsupported(capability: 'delete' | 'set'): AgentVaultError {
    return new UsageError(
      'NOT_SUPPORTED',
      `agentauth cannot ${capability} secrets: its only secret is the access token the server issues`,
      {
        suggestion: 'Sign in with `agentvault login agentauth`; use the token as agentauth://access-token.',
      },
    )
  }

  /** `agentauth://access-token`: a currently valid access token, the raw JWT (§10.4). */
  async get(reference: SecretReference): Promise<Buffer> {
    checkReference(reference)
    const tokens = await this.connection.tokens()
    return Buffer.from(await tokens.accessToken(), 'utf8')
  }

  login(options: LoginOptions): Promise<LoginResult> {
    return import('./login.js').then(({loginAgentAuth}) =>
      loginAgentAuth(this.context, options, this.options),
    )
  }

  /**
   * Forget the stored tokens. A legacy server first gets a best-effort `revoke-tokens`; v0.7 cannot
   * revoke, so the user is told how long the refresh token stays valid (§10.3).
   */
  async logout(): Promise<boolean> {
    const {expiryIso, tryDecodeJwtClaims} = await import('./jwt.js')
    const {deleteSession, readSession} = await import('./token-store.js')
    const store = await this.connection.store()
    const {profile} = this.connection
    const stored = await readSession(store, profile)
    if (!stored) return false
    const settings = this.connection.settings()
    if (settings.generation === 'legacy' && settings.baseUrl === stored.base_url) {
      try {
        const {revokeTokensOperation} = await import('./operations.js')
        await this.connection.jwtCall(revokeTokensOperation())
      } catch (error) {
        if (!(error instanceof AgentVaultError)) throw error
        this.context.warn(
          `Could not revoke the refresh token on the server (${error.message}); it is deleted locally.`,
        )
      }
    } else {
      // v0.7 refresh tokens are JWTs that say when they expire.
      const claims = stored.refresh_token === undefined ? undefined : tryDecodeJwtClaims(stored.refresh_token)
      const until = (claims && expiryIso(claims)) ?? 'its expiry'
      this.context.warn(
        `AgentAuth v0.7 cannot revoke tokens: the refresh token stays valid on the server until ${until} (deleted here).`,
      )
    }

    return deleteSession(store, profile)
  }

  /** One token serves every reference (they all name the same one). */
  async resolveMany(references: SecretReference[]): Promise<Map<string, Buffer>> {
    for (const reference of references) checkReference(reference)
    const resolved = new Map<string, Buffer>()
    if (references.length === 0) return resolved
    const token = await (await this.connection.tokens()).accessToken()
    for (const reference of references) resolved.set(reference.canonical, Buffer.from(token, 'utf8'))
    return resolved
  }

  /**
   * §10.3: the access token's claims read locally (no refresh, no verify), the refresh expiry, and
   * `GET /health` (one attempt: a status probe should not wait out the retry budget).
   */
  async status(): Promise<ProfileStatus> {
    const settings = this.connection.settings()
    const {profile} = this.connection
    if (settings.baseUrl === undefined)
      return {
        message: `no base URL: run \`agentvault login agentauth --profile ${profile} --base-url URL\` or set AGENTAUTH_BASE_URL`,
        reachable: false,
        signedIn: false,
      }
    const {readSession} = await import('./token-store.js')
    const [health, stored] = await Promise.all([
      this.probeHealth(),
      this.connection.store().then((store) => readSession(store, profile)),
    ])
    const {generation} = await this.connection.http()
    const usable = stored?.base_url === settings.baseUrl ? stored : undefined
    const tokens = usable ? await tokenView(usable, this.connection.clock.now()) : undefined
    const details = {
      agent_id: tokens?.agentId ?? settings.agentId ?? null,
      tier: tokens?.tier ?? null,
      expires_at: tokens?.expiresAt ?? null,
      expires_in_s: tokens?.expiresIn ?? null,
      refresh_expires_at: tokens?.refreshExpiresAt ?? null,
      base_url: settings.baseUrl,
      generation,
      reachable: health.reachable,
      server_version: health.version,
    }
    const api =
      generation === 'unknown' ? 'API generation unknown' : generation === 'v1' ? 'API v1' : 'legacy API'
    const where = `${settings.baseUrl} ${health.summary} (${api})`
    if (!tokens) {
      const hint =
        stored && !usable
          ? `the stored tokens belong to ${stored.base_url}`
          : this.context.env.AGENTAUTH_API_KEY
            ? 'AGENTAUTH_API_KEY is set: each process signs in by itself'
            : `run \`agentvault login agentauth --profile ${profile}\``
      return {
        details,
        message: `${where}; not signed in: ${hint}`,
        reachable: health.reachable,
        signedIn: false,
      }
    }

    const left =
      tokens.expiresIn !== null && tokens.expiresIn > 0
        ? `expires in ${duration(tokens.expiresIn)}`
        : 'expired (refreshed on next use)'
    return {
      details,
      identity: tokens.agentId,
      message: `${where}; tier ${tokens.tier ?? 'unknown'}; access token ${left}; refresh token valid until ${tokens.refreshExpiresAt ?? 'unknown'}`,
      reachable: health.reachable,
      signedIn: true,
      ...(tokens.expiresAt === null ? {} : {tokenExpiry: tokens.expiresAt}),
    }
  }

  /** One `GET /health`: reachable, the server's version, and a word on its state. */
  private async probeHealth(): Promise<{reachable: boolean; summary: string; version: null | string}> {
    const [{HEALTH}, {parseHealth}] = await Promise.all([import('./operations.js'), import('./responses.js')])
    const http = await this.connection.http()
    try {
      const answer = await http.send(HEALTH, 'v1', undefined, {retry: false})
      if (answer.status < 200 || answer.status >= 300)
        return {reachable: true, summary: `HTTP ${answer.status}`, version: null}
      const health = parseHealth(answer.body)
      return {
        reachable: true,
        summary: `${health.status}${health.version ? ` v${health.version}` : ''}`,
        version: health.version ?? null,
      }
    } catch (error) {
      if (!(error instanceof AgentVaultError)) throw error
      return error.code === 'UNEXPECTED_RESPONSE'
        ? {reachable: true, summary: 'not an AgentAuth health answer', version: null}
        : {
            reachable: false,
            summary:
              typeof error.details?.reason === 'string'
                ? `unreachable (${error.details.reason})`
                : 'unreachable',
            version: null,
          }
    }
  }
}

interface TokenView {
  agentId: string
  expiresAt: null | string
  expiresIn: null | number
  refreshExpiresAt: null | string
  tier: null | string
}

/** What the stored tokens say, read locally (§10.3); undefined when the access token is unreadable. */
async function tokenView(session: StoredSession, now: number): Promise<TokenView | undefined> {
  const {expiryIso, tryDecodeJwtClaims} = await import('./jwt.js')
  const claims = tryDecodeJwtClaims(session.access_token)
  if (!claims) return undefined
  // v0.7 refresh tokens are JWTs with their own exp; legacy ones are opaque with a stored expiry.
  const refreshClaims =
    session.refresh_token === undefined ? undefined : tryDecodeJwtClaims(session.refresh_token)
  return {
    agentId: claims.agent_id ?? session.agent_id,
    expiresAt: expiryIso(claims) ?? null,
    expiresIn: Math.floor((claims.exp * 1000 - now) / 1000),
    refreshExpiresAt: refreshClaims
      ? (expiryIso(refreshClaims) ?? null)
      : (session.refresh_expires_at ?? null),
    tier: claims.tier ?? null,
  }
}
