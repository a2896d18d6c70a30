/**
 * The two tokens the proxy may want (protocols/agentsecrets.md §3, §11.7): the session token
 * (`X-AS-Session-Token`) and the agent token (`X-AS-Agent-Token`, or the CLI's `AS_AGENT_TOKEN`).
 * Saved ones live in the credential store entry `agentsecrets:<profile>` (written by
 * `agentvault login agentsecrets`), else they come from AGENTSECRETS_SESSION_TOKEN / AS_AGENT_TOKEN.
 * A saved session token is sent only to the port it was saved for. Never in config, argv or logs.
 */
import type {BackendContext} from '../../core/backend.js'
import type {CredentialStore} from '../../core/credentials.js'

import {ConfigError} from '../../core/errors.js'

/** What `login` saves for one profile. */
export interface StoredTokens {
  agentToken?: string
  /** The proxy port the session token belongs to. */
  port?: number
  sessionToken?: string
}

export interface Tokens {
  agentToken?: string
  sessionToken?: string
  sessionTokenSource?: 'AGENTSECRETS_SESSION_TOKEN' | 'credential store'
}

/** Header-safe: visible ASCII only (a token with CR/LF would split the request). */
const HEADER_SAFE = /^[\u0021-\u007E]{1,512}$/
export const SESSION_TOKEN = /^as_sess_[0-9a-f]{32}$/

export const accountFor = (profile: string): string => `agentsecrets:${profile}`

export async function openTokenStore(context: BackendContext): Promise<CredentialStore> {
  const {openCredentialStore} = await import('../../core/credentials.js')
  return openCredentialStore({env: context.env, home: context.home, warn: (message) => context.warn(message)})
}

function parseStored(text: string | undefined): StoredTokens {
  if (text === undefined) return {}
  try {
    const data = JSON.parse(text) as unknown
    if (data === null || typeof data !== 'object') return {}
    const entry = data as Record<string, unknown>
    return {
      ...(typeof entry.agentToken === 'string' && HEADER_SAFE.test(entry.agentToken)
        ? {agentToken: entry.agentToken}
        : {}),
      ...(typeof entry.port === 'number' ? {port: entry.port} : {}),
      ...(typeof entry.sessionToken === 'string' && HEADER_SAFE.test(entry.sessionToken)
        ? {sessionToken: entry.sessionToken}
        : {}),
    }
  } catch {
    return {}
  }
}

export async function readStoredTokens(store: CredentialStore, profile: string): Promise<StoredTokens> {
  return parseStored(await store.get(accountFor(profile)))
}

export async function saveStoredTokens(
  store: CredentialStore,
  profile: string,
  tokens: StoredTokens,
): Promise<void> {
  await store.set(accountFor(profile), JSON.stringify(tokens))
}

function fromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]
  if (value === undefined || value === '') return undefined
  if (!HEADER_SAFE.test(value))
    throw new ConfigError(
      'AGENTSECRETS_BAD_TOKEN',
      `${name} is not a valid token (visible ASCII characters only)`,
      {
        suggestion: `Fix or unset ${name}.`,
      },
    )
  return value
}

/**
 * The tokens for a proxy on `port`: saved ones first (the session token only when saved for this
 * port), then the environment. The credential store is opened only when the environment does not
 * already give both.
 */
export async function resolveTokens(
  context: BackendContext,
  port: number,
  needStore = true,
): Promise<Tokens> {
  let stored: StoredTokens = {}
  if (needStore) {
    try {
      stored = await readStoredTokens(await openTokenStore(context), context.profile.name)
    } catch (error) {
      context.warn(
        `Could not read the saved AgentSecrets tokens: ${error instanceof Error ? error.message : String(error)}`,
      )
    }
  }

  const tokens: Tokens = {}
  if (stored.sessionToken !== undefined && stored.port !== undefined && stored.port !== port)
    context.warn(
      `The saved AgentSecrets session token is for port ${stored.port}, not ${port}: it is not sent. Run \`agentvault login agentsecrets\` again for this port.`,
    )
  else if (stored.sessionToken !== undefined) {
    tokens.sessionToken = stored.sessionToken
    tokens.sessionTokenSource = 'credential store'
  }

  if (tokens.sessionToken === undefined) {
    const session = fromEnv(context.env, 'AGENTSECRETS_SESSION_TOKEN')
    if (session !== undefined) {
      tokens.sessionToken = session
      tokens.sessionTokenSource = 'AGENTSECRETS_SESSION_TOKEN'
    }
  }

  const agent = stored.agentToken ?? fromEnv(context.env, 'AS_AGENT_TOKEN')
  if (agent !== undefined) tokens.agentToken = agent
  return tokens
}
