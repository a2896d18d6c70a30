/**
 * Token freshness (protocols/agentauth.md §10.2, §10.4): a currently valid access token for a
 * profile, refreshed when under 60 s of it is left (read locally from `exp`) and after a 401.
 *
 * Tokens come from the credential store (`login agentauth`), else — with none stored — from an
 * in-process verify with `AGENTAUTH_AGENT_ID` + `AGENTAUTH_API_KEY`, kept in memory only. Stored
 * refreshes are serialised per profile with a file lock; after taking it the store is read again and
 * the refresh skipped when another process already did it (legacy rotation would otherwise kill the
 * loser's refresh token).
 */
import {join} from 'node:path'

import type {CredentialStore} from '../../core/credentials.js'
import type {AgentAuthHttp, Clock} from './http-client.js'

import {AgentVaultError, AuthError} from '../../core/errors.js'
import {errorFromAnswer} from './http-errors.js'
import {decodeJwtClaims, tryDecodeJwtClaims} from './jwt.js'
import {refreshOperation, verifyOperation} from './operations.js'
import {parseRefresh, parseVerify, type TokenPair} from './responses.js'
import {ENV_AGENT_ID, ENV_API_KEY} from './settings.js'
import {readSession, saveSession, type StoredSession} from './token-store.js'

/** Refresh when less than this is left of the access token (§10.2). */
export const REFRESH_WINDOW_MS = 60_000

/** What a token manager needs: the server, time, the store and where to report. */
export interface TokenManagerOptions {
  /** The server the profile talks to: a stored session from another is never sent. */
  baseUrl: string
  clock: Clock
  env: NodeJS.ProcessEnv
  home: string
  http: AgentAuthHttp
  log: (format: string, ...args: unknown[]) => void
  profile: string
  store(): Promise<CredentialStore>
  warn(message: string): void
}

/**
 * Whether `accessToken` is inside the last `margin` ms of its life (or cannot be read): a 62 s token
 * enters the 60 s window after 2 s (§11.4).
 */
export function needsRefresh(accessToken: string, now: number, margin = REFRESH_WINDOW_MS): boolean {
  const claims = tryDecodeJwtClaims(accessToken)
  return !claims || claims.exp * 1000 - now <= margin
}

/** The error for a profile with no usable tokens. */
export function notSignedIn(profile: string, why = 'no tokens are stored'): AuthError {
  return new AuthError('AUTH_REQUIRED', `Not signed in to AgentAuth with profile ${profile}: ${why}`, {
    suggestion: `Run \`agentvault login agentauth --profile ${profile}\`, or set ${ENV_AGENT_ID} and ${ENV_API_KEY} to sign in per process.`,
  })
}

/** A stored session from a token pair: v0.7 refresh JWTs carry their expiry, legacy gives it apart. */
export function sessionFromPair(
  pair: TokenPair,
  base: {agent_id: string; base_url: string; refresh_token?: string},
  now: number,
): StoredSession {
  decodeJwtClaims(pair.access_token, 'an access token')
  const refresh = pair.refresh_token ?? base.refresh_token
  return {
    access_token: pair.access_token,
    agent_id: base.agent_id,
    base_url: base.base_url,
    ...(pair.refresh_token_expires_in === undefined
      ? {}
      : {refresh_expires_at: new Date(now + pair.refresh_token_expires_in * 1000).toISOString()}),
    ...(refresh === undefined ? {} : {refresh_token: refresh}),
  }
}

/** One profile's tokens for one command: see the module comment. */
export class TokenManager {
  /** The current session; memory-only when it came from env credentials. */
  private current?: Promise<StoredSession>
  private fromEnv = false
  private refreshing?: Promise<StoredSession>

  constructor(private readonly options: TokenManagerOptions) {}

  /** A currently valid access token (§10.2): refreshed first when under 60 s are left. */
  async accessToken(): Promise<string> {
    const session = await this.session()
    if (!needsRefresh(session.access_token, this.options.clock.now())) return session.access_token
    return (await this.refresh(session, false)).access_token
  }

  /** After a 401 on a JWT route: one refresh (or adopt another process's), then the caller repeats. */
  async afterRejection(rejected: string): Promise<string> {
    const session = await this.session()
    return (await this.refresh({...session, access_token: rejected}, true)).access_token
  }

  /** The session in use: stored for this base URL, else an in-memory one from env credentials. */
  session(): Promise<StoredSession> {
    if (!this.current) {
      const pending = this.load()
      // A failed load is not remembered: the next call tries again.
      pending.catch(() => {
        if (this.current === pending) this.current = undefined
      })
      this.current = pending
    }

    return this.current
  }

  private async load(): Promise<StoredSession> {
    const {baseUrl, env, profile} = this.options
    const stored = await readSession(await this.options.store(), profile)
    if (stored) {
      if (stored.base_url === baseUrl) return stored
      this.options.warn(
        `The AgentAuth tokens stored for profile ${profile} were issued by ${stored.base_url}, not ${baseUrl}; they are not sent. Sign in again with \`agentvault login agentauth --profile ${profile}\`.`,
      )
    }

    const agentId = env[ENV_AGENT_ID]
    const apiKey = env[ENV_API_KEY]
    if (agentId && apiKey) return this.verifyFromEnv(agentId, apiKey)
    throw notSignedIn(profile, stored ? 'the stored tokens belong to another server' : 'no tokens are stored')
  }

  /**
   * Refresh, or adopt a newer pair: under the profile's lock, a stored pair that differs from
   * `stale` (another process refreshed) and is not expired is used as it is. After a 401
   * (`rejected`), only a different access token counts: the rejected one would fail again.
   */
  private refresh(stale: StoredSession, rejected: boolean): Promise<StoredSession> {
    this.refreshing ??= (this.fromEnv ? this.refreshInMemory() : this.refreshStored(stale, rejected)).finally(
      () => {
        this.refreshing = undefined
      },
    )
    return this.refreshing
  }

  private async refreshInMemory(): Promise<StoredSession> {
    const session = await this.session()
    try {
      const renewed = await this.refreshCall(session)
      this.current = Promise.resolve(renewed)
      return renewed
    } catch (error) {
      // Env credentials can simply sign in again.
      if (!(error instanceof AgentVaultError) || error.category !== 'auth') throw error
      const {env} = this.options
      const again = this.verifyFromEnv(env[ENV_AGENT_ID] as string, env[ENV_API_KEY] as string)
      this.current = again
      return again
    }
  }

  private async refreshStored(stale: StoredSession, rejected: boolean): Promise<StoredSession> {
    const {clock, home, log, profile} = this.options
    const store = await this.options.store()
    const {ensureHome, withFileLock} = await import('../../core/file-lock.js')
    await ensureHome(home)
    const renewed = await withFileLock(join(home, `agentauth-${profile}.lock`), async () => {
      const latest = await readSession(store, profile)
      if (!latest || latest.base_url !== this.options.baseUrl)
        throw notSignedIn(profile, 'the stored tokens are gone')
      const changed =
        latest.access_token !== stale.access_token ||
        (!rejected && latest.refresh_token !== stale.refresh_token)
      if (changed && !needsRefresh(latest.access_token, clock.now(), 0)) {
        log('another process refreshed profile %s; using its token', profile)
        return latest
      }

      const next = await this.refreshCall(latest)
      await saveSession(store, profile, next)
      return next
    })
    this.current = Promise.resolve(renewed)
    return renewed
  }

  /** POST refresh (§5.4); 400/401 end the session, 403 is denied (http-errors.ts). */
  private async refreshCall(session: StoredSession): Promise<StoredSession> {
    const {clock, http, log, profile} = this.options
    if (session.refresh_token === undefined) throw notSignedIn(profile, 'there is no refresh token')
    log('refreshing the access token of profile %s', profile)
    const answer = await http.call(refreshOperation(session.refresh_token))
    if (answer.status < 200 || answer.status >= 300)
      throw errorFromAnswer(
        answer,
        {operation: 'refresh the access token', profile, route: 'refresh'},
        clock.now(),
      )

    return sessionFromPair(parseRefresh(answer.body), session, clock.now())
  }

  private async verifyFromEnv(agentId: string, apiKey: string): Promise<StoredSession> {
    const {baseUrl, clock, http, log, profile} = this.options
    log('verifying agent %s from %s/%s (tokens kept in memory)', agentId, ENV_AGENT_ID, ENV_API_KEY)
    const answer = await http.call(verifyOperation(agentId, apiKey))
    if (answer.status < 200 || answer.status >= 300)
      throw errorFromAnswer(answer, {operation: 'verify the agent', profile, route: 'verify'}, clock.now())
    const {agent, token} = parseVerify(answer.body)
    this.fromEnv = true
    return sessionFromPair(token, {agent_id: agent.agent_id, base_url: baseUrl}, clock.now())
  }
}
