/**
 * An agentauth profile's effective settings (protocols/agentauth.md §3, §10.1): the base URL and
 * agent id, the recorded API generation and the per-call timeout. config.json holds `baseUrl`,
 * `agentId`, `generation` and `timeoutMs`; tokens and the API key never live there.
 *
 * Precedence: login flags, then the profile's own settings, then `AGENTAUTH_*` env vars (product.md
 * §7: a configured address always wins, so a stray env var never receives a token stored for
 * another server). The agent id is the exception the spec names: on login, `AGENTAUTH_AGENT_ID`
 * beats the profile's.
 */
import type {Profile} from '../../core/config.js'

import {ConfigError, UsageError} from '../../core/errors.js'

/** Which API generation a profile talks to (§2): `unknown` until a call tells. */
export const GENERATIONS = ['unknown', 'v1', 'legacy'] as const
export type Generation = (typeof GENERATIONS)[number]

/** Per-call timeout unless the profile sets `timeoutMs` (§8). */
export const DEFAULT_TIMEOUT_MS = 10_000

/** The native env vars of the implicit profile (product.md §7). */
export const ENV_BASE_URL = 'AGENTAUTH_BASE_URL'
export const ENV_AGENT_ID = 'AGENTAUTH_AGENT_ID'
export const ENV_API_KEY = 'AGENTAUTH_API_KEY'

/** A profile's effective, non-secret settings. */
export interface AgentAuthSettings {
  /** The agent id from the profile, else AGENTAUTH_AGENT_ID (tokens carry their own). */
  agentId?: string
  /** The server root without a trailing `/` or `/v1`; undefined when nothing names one. */
  baseUrl?: string
  baseUrlSource?: 'env' | 'flag' | 'profile'
  generation: Generation
  timeoutMs: number
}

/** Values given on the command line (`login agentauth --base-url … --agent-id …`). */
export interface AgentAuthOverrides {
  agentId?: string
  baseUrl?: string
}

function invalid(where: string, what: string, fix: string, flag: boolean): ConfigError | UsageError {
  const message = `Invalid agentauth ${flag ? 'flag' : 'setting'} ${where}: ${what}`
  return flag
    ? new UsageError('BAD_BASE_URL', message, {suggestion: fix})
    : new ConfigError('CONFIG_INVALID', message, {suggestion: fix})
}

/**
 * The server root of a base URL: http(s), no user, query or fragment; one trailing `/` or `/v1`
 * (or `/v1/`) is stripped because the client adds the prefixes itself (§3). A path prefix (a
 * reverse proxy's mount) is kept.
 *
 * @throws ConfigError (or UsageError for a flag) naming `where`, never echoing the text.
 */
export function normaliseBaseUrl(text: string, where: string, flag = false): string {
  const fix = 'Give the server root, e.g. https://agentauth.example.com (agentvault adds /v1 itself).'
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw invalid(where, 'is not a URL', fix, flag)
  }

  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid(where, 'must be an http:// or https:// URL', fix, flag)
  if (url.username !== '' || url.password !== '')
    throw invalid(
      where,
      'must not carry credentials',
      'Remove user:password@ from the URL; agentvault signs in with `login agentauth`.',
      flag,
    )
  if (url.search !== '' || url.hash !== '' || text.includes('?') || text.includes('#'))
    throw invalid(where, 'must not have a query or fragment', fix, flag)
  const path = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '').replace(/\/+$/, '')
  return `${url.origin}${path}`
}

/** `localhost`, 127/8 and ::1: plain HTTP there never crosses a network. */
export function isLoopbackUrl(baseUrl: string): boolean {
  const {hostname} = new URL(baseUrl)
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

function envText(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value === '' ? undefined : value
}

function textSetting(profile: Profile, name: string): string | undefined {
  const value = profile.settings[name]
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string')
    throw new ConfigError(
      'CONFIG_INVALID',
      `Invalid agentauth setting profiles.${profile.name}.${name}: must be a string`,
      {
        suggestion: `Fix "${name}" in profile ${profile.name}.`,
      },
    )
  return value
}

/** Effective settings of `profile` with `overrides` (login flags) applied. */
export function resolveAgentAuthSettings(
  profile: Profile,
  env: NodeJS.ProcessEnv,
  overrides: AgentAuthOverrides = {},
): AgentAuthSettings {
  const key = `profiles.${profile.name}`
  let baseUrl: string | undefined
  let baseUrlSource: AgentAuthSettings['baseUrlSource']
  const stored = textSetting(profile, 'baseUrl')
  const fromEnv = envText(env, ENV_BASE_URL)
  if (overrides.baseUrl !== undefined && overrides.baseUrl !== '') {
    baseUrl = normaliseBaseUrl(overrides.baseUrl, '--base-url', true)
    baseUrlSource = 'flag'
  } else if (stored !== undefined) {
    baseUrl = normaliseBaseUrl(stored, `${key}.baseUrl`)
    baseUrlSource = 'profile'
  } else if (fromEnv !== undefined) {
    baseUrl = normaliseBaseUrl(fromEnv, ENV_BASE_URL)
    baseUrlSource = 'env'
  }

  const generationSetting = profile.settings.generation
  const generation: Generation =
    typeof generationSetting === 'string' && (GENERATIONS as readonly string[]).includes(generationSetting)
      ? (generationSetting as Generation)
      : 'unknown'
  const timeout = profile.settings.timeoutMs
  const timeoutMs =
    typeof timeout === 'number' && Number.isInteger(timeout) && timeout > 0 ? timeout : DEFAULT_TIMEOUT_MS
  const agentId = overrides.agentId ?? textSetting(profile, 'agentId') ?? envText(env, ENV_AGENT_ID)
  return {
    ...(agentId === undefined ? {} : {agentId}),
    ...(baseUrl === undefined ? {} : {baseUrl, baseUrlSource}),
    generation,
    timeoutMs,
  }
}

/** The base URL, or a configuration error naming the ways to give one (no built-in default, §10.1). */
export function requireBaseUrl(settings: AgentAuthSettings, profileName: string): string {
  if (settings.baseUrl !== undefined) return settings.baseUrl
  throw new ConfigError(
    'AGENTAUTH_BASE_URL_MISSING',
    `No AgentAuth server configured for profile ${profileName}`,
    {
      suggestion: `Set ${ENV_BASE_URL}, or run \`agentvault login agentauth --base-url https://agentauth.example.com\`.`,
    },
  )
}

/** Warnings a command prints once: plain HTTP off loopback, an env base URL the profile overrides. */
export function settingsWarnings(
  settings: AgentAuthSettings,
  env: NodeJS.ProcessEnv,
  profileName: string,
): string[] {
  const warnings: string[] = []
  const {baseUrl} = settings
  if (baseUrl?.startsWith('http:') && !isLoopbackUrl(baseUrl))
    warnings.push(
      `agentauth profile ${profileName} uses plain HTTP to ${baseUrl}: API keys and tokens cross the network unencrypted. Use https://.`,
    )
  const fromEnv = envText(env, ENV_BASE_URL)
  if (settings.baseUrlSource === 'profile' && fromEnv !== undefined) {
    let differs = true
    try {
      differs = normaliseBaseUrl(fromEnv, ENV_BASE_URL) !== baseUrl
    } catch {
      // An unparsable env value is simply not used.
    }

    if (differs)
      warnings.push(
        `${ENV_BASE_URL} is ignored: agentauth profile ${profileName} has its own base URL (${baseUrl}).`,
      )
  }

  return warnings
}
