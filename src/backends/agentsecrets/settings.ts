/**
 * An agentsecrets profile's effective settings (protocols/agentsecrets.md §3): login flags win,
 * then the profile, then AGENTSECRETS_PORT, then defaults. Tokens are not settings: they come from
 * the credential store or the environment (see tokens.ts).
 */
import type {Profile} from '../../core/config.js'

import {ConfigError, UsageError} from '../../core/errors.js'

export const TRANSPORTS = ['auto', 'cli', 'proxy'] as const
export type Transport = (typeof TRANSPORTS)[number]
export const DEFAULT_PORT = 8765
/** `X-AS-Agent-ID`: printable, no separators that could split a header. */
const AGENT_ID = /^[A-Za-z0-9._:@-]{1,128}$/

export interface AgentSecretsSettings {
  agentId?: string
  /** An explicit executable; undefined means a PATH lookup. */
  cliPath?: string
  port: number
  /** Where the port came from, for diagnostics. */
  portSource: 'default' | 'env' | 'flag' | 'profile'
  transport: Transport
}

/** Values given on the command line (`login agentsecrets --transport … --cli-path … --port …`). */
export interface AgentSecretsOverrides {
  agentId?: string
  cliPath?: string
  port?: string
  transport?: string
}

function invalid(profile: Profile, configFile: string, key: string, what: string): ConfigError {
  const name = `profiles.${profile.name}.${key}`
  return new ConfigError('CONFIG_INVALID', `Invalid configuration in ${configFile}: ${name} ${what}`, {
    details: {key: name},
    suggestion: `Fix it with \`agentvault login agentsecrets --profile ${profile.name}\`, or edit ${configFile}.`,
  })
}

function flagError(flag: string, what: string): UsageError {
  return new UsageError('AGENTSECRETS_BAD_FLAG', `--${flag} ${what}`, {
    suggestion: 'agentvault login agentsecrets --transport cli|proxy|auto [--cli-path PATH] [--port N]',
  })
}

function parsePort(value: unknown): number | undefined {
  const number = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : value
  return typeof number === 'number' && Number.isInteger(number) && number >= 1 && number <= 65_535
    ? number
    : undefined
}

interface Layers {
  configFile: string
  env: NodeJS.ProcessEnv
  overrides: AgentSecretsOverrides
  profile: Profile
}

function resolveTransport({configFile, overrides, profile}: Layers): Transport {
  if (overrides.transport !== undefined) {
    if (!(TRANSPORTS as readonly string[]).includes(overrides.transport))
      throw flagError('transport', 'must be cli, proxy or auto')
    return overrides.transport as Transport
  }

  const stored = profile.settings.transport
  if (stored === undefined) return 'auto'
  if (!(TRANSPORTS as readonly unknown[]).includes(stored))
    throw invalid(profile, configFile, 'transport', 'must be "cli", "proxy" or "auto"')
  return stored as Transport
}

function resolveCliPath({configFile, overrides, profile}: Layers): string | undefined {
  if (overrides.cliPath !== undefined && overrides.cliPath !== '') return overrides.cliPath
  const stored = profile.settings.cliPath
  if (stored === undefined) return undefined
  if (typeof stored !== 'string' || stored === '')
    throw invalid(profile, configFile, 'cliPath', 'must be the path of the agentsecrets executable')
  return stored
}

function resolvePort({
  configFile,
  env,
  overrides,
  profile,
}: Layers): Pick<AgentSecretsSettings, 'port' | 'portSource'> {
  if (overrides.port !== undefined) {
    const port = parsePort(overrides.port)
    if (port === undefined) throw flagError('port', 'must be a whole number from 1 to 65535')
    return {port, portSource: 'flag'}
  }

  const stored = profile.settings.port
  if (stored !== undefined) {
    const port = parsePort(stored)
    if (port === undefined)
      throw invalid(profile, configFile, 'port', 'must be a whole number from 1 to 65535')
    return {port, portSource: 'profile'}
  }

  const fromEnv = env.AGENTSECRETS_PORT
  if (fromEnv === undefined || fromEnv === '') return {port: DEFAULT_PORT, portSource: 'default'}
  const port = parsePort(fromEnv)
  if (port === undefined)
    throw new ConfigError(
      'CONFIG_INVALID',
      'Invalid configuration in the environment: AGENTSECRETS_PORT must be a whole number from 1 to 65535',
      {details: {key: 'AGENTSECRETS_PORT'}, suggestion: 'Fix or unset AGENTSECRETS_PORT.'},
    )
  return {port, portSource: 'env'}
}

function resolveAgentId({configFile, overrides, profile}: Layers): string | undefined {
  const agentId = overrides.agentId ?? profile.settings.agentId
  if (agentId === undefined || (typeof agentId === 'string' && AGENT_ID.test(agentId))) return agentId
  if (overrides.agentId !== undefined) throw flagError('agent-id', 'must be 1–128 of A-Z a-z 0-9 . _ : @ -')
  throw invalid(profile, configFile, 'agentId', 'must be 1–128 of A-Z a-z 0-9 . _ : @ -')
}

/** The effective settings; an invalid value fails with an error naming the flag, key or env var. */
export function resolveSettings(
  profile: Profile,
  env: NodeJS.ProcessEnv,
  configFile: string,
  overrides: AgentSecretsOverrides = {},
): AgentSecretsSettings {
  const layers = {configFile, env, overrides, profile}
  const agentId = resolveAgentId(layers)
  const cliPath = resolveCliPath(layers)
  return {
    ...(agentId === undefined ? {} : {agentId}),
    ...(cliPath === undefined ? {} : {cliPath}),
    ...resolvePort(layers),
    transport: resolveTransport(layers),
  }
}
