/**
 * A sanctum profile's effective settings (protocols/sanctum.md §1): login flags win, then the
 * profile's own settings, then SANCTUM_* env vars, then defaults. Invalid values fail with an
 * error naming where they came from.
 */
import {homedir} from 'node:os'
import {join} from 'node:path'

import type {Profile} from '../../core/config.js'
import type {SanctumEndpoint} from './connection.js'

import {ConfigError, UsageError} from '../../core/errors.js'
import {DEFAULT_MAX_FRAME_BYTES} from './framing.js'

export type SanctumDialect = 'a' | 'auto' | 'b'

export interface SanctumSettings {
  /** The agent name registered on the daemon; undefined until configured. */
  agent?: string
  dialect: SanctumDialect
  endpoint: SanctumEndpoint
  /** `~/.sanctum/keys`, expanded. */
  keyDir: string
  /** An explicit key file (plain seed), expanded. */
  keyPath?: string
  maxFrameBytes: number
  timeoutMs: number
}

/** Values given on the command line (`login sanctum --agent … --socket …`). */
export interface SanctumOverrides {
  agent?: string
  dialect?: string
  host?: string
  keyPath?: string
  port?: string
  socket?: string
}

export const DEFAULT_PORT = 7600
export const DEFAULT_TIMEOUT_MS = 10_000
const AGENT_NAME = /^[A-Za-z0-9_.-]{1,128}$/

/** The user's home: `$HOME` when set (so tests and sandboxes can move it), else the OS's. */
export function userHome(env: NodeJS.ProcessEnv): string {
  return env.HOME && env.HOME !== '' ? env.HOME : homedir()
}

/** Expand a leading `~` to the user's home. */
export function expandHome(path: string, env: NodeJS.ProcessEnv): string {
  if (path === '~') return userHome(env)
  return path.startsWith('~/') ? join(userHome(env), path.slice(2)) : path
}

type Source = 'env' | 'flag' | 'profile'
type Key = 'agent' | 'dialect' | 'host' | 'keyPath' | 'maxFrameBytes' | 'port' | 'socket' | 'timeoutMs'
interface Found {
  source: Source
  value: unknown
}

/** §1: the env var that fills each key a profile leaves unset (dialect and limits have none). */
const ENV_NAMES: Partial<Record<Key, string>> = {
  agent: 'SANCTUM_AGENT',
  host: 'SANCTUM_HOST',
  keyPath: 'SANCTUM_KEY_PATH',
  port: 'SANCTUM_PORT',
  socket: 'SANCTUM_SOCKET',
}

/** Reads one key through the layers (flag, profile, env) and names its source in errors. */
class SettingsReader {
  constructor(
    private readonly profile: Profile,
    private readonly env: NodeJS.ProcessEnv,
    private readonly configFile: string,
    private readonly overrides: SanctumOverrides,
  ) {}

  integer(key: 'maxFrameBytes' | 'port' | 'timeoutMs', min: number, max: number): number | undefined {
    const found = this.lookup(key)
    if (!found) return undefined
    const {value} = found
    const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
    if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max)
      throw this.invalid(key, found, `must be a whole number from ${min} to ${max}`)
    return number
  }

  invalid(key: Key, found: Found, what: string): Error {
    if (found.source === 'flag')
      return new UsageError('SANCTUM_BAD_FLAG', `--${key === 'keyPath' ? 'key-path' : key} ${what}`)
    const name = found.source === 'env' ? (ENV_NAMES[key] ?? key) : `profiles.${this.profile.name}.${key}`
    const where = found.source === 'env' ? 'in the environment' : `in ${this.configFile}`
    return new ConfigError('CONFIG_INVALID', `Invalid configuration ${where}: ${name} ${what}`, {
      suggestion:
        found.source === 'env'
          ? `Fix or unset ${name}.`
          : `Fix it with \`agentvault login sanctum\`, or edit ${this.configFile}.`,
      details: {key: name},
    })
  }

  /** The first layer that sets `key`: flag, then profile, then env. */
  lookup(key: Key): Found | undefined {
    const flag = key in this.overrides ? this.overrides[key as keyof SanctumOverrides] : undefined
    if (flag !== undefined && flag !== '') return {source: 'flag', value: flag}
    const stored = this.profile.settings[key]
    if (stored !== undefined && stored !== '') return {source: 'profile', value: stored}
    const envName = ENV_NAMES[key]
    const fromEnv = envName === undefined ? undefined : this.env[envName]
    return fromEnv === undefined || fromEnv === '' ? undefined : {source: 'env', value: fromEnv}
  }

  text(key: Key, check?: {pattern: RegExp; what: string}): string | undefined {
    const found = this.lookup(key)
    if (!found) return undefined
    if (typeof found.value !== 'string') throw this.invalid(key, found, 'must be a string')
    if (check && !check.pattern.test(found.value)) throw this.invalid(key, found, check.what)
    return found.value
  }
}

/**
 * The transport is one choice, made by the first of flags, profile and env that names a socket or
 * a host; a port fills in from any layer. A port with no host to go with it is an error.
 */
function resolveEndpoint(reader: SettingsReader, env: NodeJS.ProcessEnv): SanctumEndpoint {
  const hostLayer = reader.lookup('host')?.source
  const socketLayer = reader.lookup('socket')?.source
  const deciding = (['flag', 'profile', 'env'] as const).find(
    (layer) => hostLayer === layer || socketLayer === layer,
  )
  if (deciding !== undefined && hostLayer === deciding)
    return {host: reader.text('host') as string, port: reader.integer('port', 1, 65_535) ?? DEFAULT_PORT}
  const port = reader.lookup('port')
  if (port && (deciding === undefined || port.source === deciding || port.source === 'flag'))
    throw reader.invalid(
      'port',
      port,
      'is set without a host (set host too, or drop the port to use the Unix socket)',
    )
  const socket = deciding === undefined ? undefined : reader.text('socket')
  return {path: expandHome(socket ?? '~/.sanctum/vault.sock', env)}
}

export function resolveSanctumSettings(
  profile: Profile,
  env: NodeJS.ProcessEnv,
  configFile: string,
  overrides: SanctumOverrides = {},
): SanctumSettings {
  const reader = new SettingsReader(profile, env, configFile, overrides)
  const agent = reader.text('agent', {
    pattern: AGENT_NAME,
    what: 'must be an agent name (letters, digits, "-", "_", ".")',
  })
  const dialect =
    reader.text('dialect', {pattern: /^(a|b|auto)$/, what: 'must be "a", "b" or "auto"'}) ?? 'auto'
  const keyPath = reader.text('keyPath')
  return {
    ...(agent === undefined ? {} : {agent}),
    dialect: dialect as SanctumDialect,
    endpoint: resolveEndpoint(reader, env),
    keyDir: join(userHome(env), '.sanctum', 'keys'),
    ...(keyPath === undefined ? {} : {keyPath: expandHome(keyPath, env)}),
    maxFrameBytes: reader.integer('maxFrameBytes', 1024, 2 ** 31 - 1) ?? DEFAULT_MAX_FRAME_BYTES,
    timeoutMs: reader.integer('timeoutMs', 1, 600_000) ?? DEFAULT_TIMEOUT_MS,
  }
}
