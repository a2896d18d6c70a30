/**
 * Where an openbao profile's token comes from (protocols/openbao.md §4, §8): the credential-store
 * entry `openbao:<profile>` saved by `agentvault login openbao`, else `BAO_TOKEN`, else
 * `VAULT_TOKEN`, else `~/.vault-token`. A stored entry remembers the addresses and namespace it was
 * issued for and is only ever sent there.
 */
import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

import type {BackendContext} from '../../core/backend.js'
import type {CredentialStore} from '../../core/credentials.js'
import type {AuthMethod, OpenBaoSettings} from './settings.js'

import {envName, envValue} from './settings.js'

/** The credential-store entry of one profile (JSON). Passwords and secret IDs are never stored. */
export interface StoredToken {
  accessor: string
  /** The cluster the token was issued by: it is sent nowhere else. */
  addresses: string[]
  creation_ttl: number
  display_name?: string
  /** RFC 3339, or null when the token never expires (root). */
  expire_time: null | string
  method: AuthMethod
  namespace?: string
  policies: string[]
  renewable: boolean
  token: string
}

/** Where a token came from (shown by `status`). */
export type TokenSource = '~/.vault-token' | 'BAO_TOKEN' | 'credential store' | 'VAULT_TOKEN'

/** The token a profile uses, with its stored metadata when it came from the store. */
export interface ResolvedToken {
  source: TokenSource
  /** Present when the token came from the credential store. */
  stored?: StoredToken
  token: string
}

/** The credential-store account of a profile's token. */
export const accountFor = (profile: string): string => `openbao:${profile}`

/** The credential store (keychain or encrypted file), opened lazily. */
export async function openTokenStore(context: BackendContext): Promise<CredentialStore> {
  const {openCredentialStore} = await import('../../core/credentials.js')
  return openCredentialStore({env: context.env, home: context.home, warn: (message) => context.warn(message)})
}

function parseStored(text: string): StoredToken | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }

  if (typeof value !== 'object' || value === null) return undefined
  const entry = value as Partial<StoredToken>
  if (typeof entry.token !== 'string' || entry.token === '' || !Array.isArray(entry.addresses))
    return undefined
  return {
    accessor: typeof entry.accessor === 'string' ? entry.accessor : '',
    addresses: entry.addresses.filter((a): a is string => typeof a === 'string'),
    creation_ttl: typeof entry.creation_ttl === 'number' ? entry.creation_ttl : 0,
    ...(typeof entry.display_name === 'string' ? {display_name: entry.display_name} : {}),
    expire_time: typeof entry.expire_time === 'string' ? entry.expire_time : null,
    method: entry.method === 'userpass' || entry.method === 'approle' ? entry.method : 'token',
    ...(typeof entry.namespace === 'string' ? {namespace: entry.namespace} : {}),
    policies: Array.isArray(entry.policies)
      ? entry.policies.filter((p): p is string => typeof p === 'string')
      : [],
    renewable: entry.renewable === true,
    token: entry.token,
  }
}

/** The stored entry of `profile`, or undefined when there is none (or it is unreadable). */
export async function readStoredToken(
  store: CredentialStore,
  profile: string,
): Promise<StoredToken | undefined> {
  const text = await store.get(accountFor(profile))
  return text === undefined ? undefined : parseStored(text)
}

/** Store (replace) the entry of `profile`. */
export async function saveStoredToken(
  store: CredentialStore,
  profile: string,
  entry: StoredToken,
): Promise<void> {
  await store.set(accountFor(profile), JSON.stringify(entry))
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((item) => b.includes(item))

/**
 * The token to use with `settings`, or undefined when there is none. A stored token issued for
 * other addresses or another namespace is skipped with a warning, never sent.
 */
export async function resolveToken(
  context: BackendContext,
  settings: OpenBaoSettings,
  store: () => Promise<CredentialStore>,
): Promise<ResolvedToken | undefined> {
  const stored = await readStoredToken(await store(), context.profile.name)
  if (stored) {
    if (
      sameSet(stored.addresses, settings.addresses) &&
      (stored.namespace ?? '') === (settings.namespace ?? '')
    )
      return {source: 'credential store', stored, token: stored.token}
    context.warn(
      `The token stored for openbao profile ${context.profile.name} was issued for ${stored.addresses.join(', ')}${stored.namespace ? ` (namespace ${stored.namespace})` : ''}, not ${settings.addresses.join(', ')}${settings.namespace ? ` (namespace ${settings.namespace})` : ''}; it is not sent. Sign in again with \`agentvault login openbao --profile ${context.profile.name}\`.`,
    )
  }

  const fromEnv = envValue(context.env, 'TOKEN')
  if (fromEnv !== undefined) return {source: envName(context.env, 'TOKEN') as TokenSource, token: fromEnv}
  const home = context.env.HOME && context.env.HOME !== '' ? context.env.HOME : homedir()
  try {
    const text = (await readFile(join(home, '.vault-token'), 'utf8')).trim()
    if (text !== '') return {source: '~/.vault-token', token: text}
  } catch {
    // No token file: not signed in.
  }

  return undefined
}
