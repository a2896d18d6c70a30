/**
 * An agentauth profile's tokens in the credential store (protocols/agentauth.md §10.1): one JSON
 * entry `agentauth:<profile>` holding the access and refresh tokens, the base URL they were issued
 * by (they are sent nowhere else) and, on legacy servers, the refresh token's expiry. The API key is
 * never stored.
 */
import type {BackendContext} from '../../core/backend.js'
import type {CredentialStore} from '../../core/credentials.js'

/** What a sign-in leaves behind. */
export interface StoredSession {
  access_token: string
  agent_id: string
  /** The server that issued the tokens: they are only ever sent there. */
  base_url: string
  /** Legacy: now + `refresh_token_expires_in`, ISO; v0.7 refresh tokens carry their own `exp`. */
  refresh_expires_at?: string
  refresh_token?: string
}

/** The credential-store account of a profile. */
export const accountFor = (profile: string): string => `agentauth:${profile}`

/** The credential store (keychain, else the encrypted file) of the context's home. */
export async function openTokenStore(context: BackendContext): Promise<CredentialStore> {
  const {openCredentialStore} = await import('../../core/credentials.js')
  return openCredentialStore({env: context.env, home: context.home, warn: (message) => context.warn(message)})
}

/** A stored entry, or undefined when there is none or it is not one of ours. */
export function parseStoredSession(text: string): StoredSession | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }

  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const entry = value as Record<string, unknown>
  const {access_token: access, agent_id: agentId, base_url: baseUrl} = entry
  if (
    typeof access !== 'string' ||
    access === '' ||
    typeof baseUrl !== 'string' ||
    typeof agentId !== 'string'
  )
    return undefined
  return {
    access_token: access,
    agent_id: agentId,
    base_url: baseUrl,
    ...(typeof entry.refresh_expires_at === 'string' ? {refresh_expires_at: entry.refresh_expires_at} : {}),
    ...(typeof entry.refresh_token === 'string' && entry.refresh_token !== ''
      ? {refresh_token: entry.refresh_token}
      : {}),
  }
}

/** The profile's stored session, if any. */
export async function readSession(
  store: CredentialStore,
  profile: string,
): Promise<StoredSession | undefined> {
  const text = await store.get(accountFor(profile))
  return text === undefined ? undefined : parseStoredSession(text)
}

/** Store (replace) the profile's session. */
export async function saveSession(
  store: CredentialStore,
  profile: string,
  session: StoredSession,
): Promise<void> {
  await store.set(accountFor(profile), JSON.stringify(session))
}

/** Forget the profile's session; resolves to whether there was one. */
export async function deleteSession(store: CredentialStore, profile: string): Promise<boolean> {
  return store.delete(accountFor(profile))
}
