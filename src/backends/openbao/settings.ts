/**
 * An openbao profile's effective settings (protocols/openbao.md §4): login flags win, then the
 * profile's own settings, then `BAO_*` (else `VAULT_*`) env vars, then defaults. The profile's
 * address always wins over env, so a stray `BAO_ADDR` never receives a token stored for another
 * server. Invalid values fail with an error naming where they came from.
 */
import {isAbsolute, resolve} from 'node:path'

import type {Profile} from '../../core/config.js'

import {ConfigError, UsageError} from '../../core/errors.js'

/** Login methods (§8). */
export const AUTH_METHODS = ['token', 'userpass', 'approle'] as const
export type AuthMethod = (typeof AUTH_METHODS)[number]

/** Where OpenBao listens when nothing says otherwise (§4). */
export const DEFAULT_ADDRESS = 'http://127.0.0.1:8200'
/** Per-request timeout (§9; node-vault has none). */
export const DEFAULT_TIMEOUT_MS = 10_000

/** Namespaces are `/`-separated segments; one trailing `/` is allowed (and dropped). */
const NAMESPACE = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*\/?$/
const SEGMENT = /^[A-Za-z0-9._-]+$/

/** What one openbao profile resolves to for one command. */
export interface OpenBaoSettings {
  /** Origins (`https://bao.example.com:8200`) of one cluster, tried in order. */
  addresses: string[]
  /** Where the addresses came from. */
  addressSource: 'default' | 'env' | 'flag' | 'profile'
  allowedMounts?: string[]
  authMethod: AuthMethod
  authMount: string
  /** Absolute path of a PEM bundle replacing the default roots. */
  caCertFile?: string
  namespace?: string
  timeoutMs: number
  /** TLS verification off (profile `tlsSkipVerify: true`, or env SKIP_VERIFY exactly "true"/"1"). */
  tlsSkipVerify: boolean
}

/** Values given on the command line (`login openbao --address … --namespace …`). */
export interface OpenBaoOverrides {
  addresses?: string[]
  authMethod?: string
  authMount?: string
  caCert?: string
  namespace?: string
}

/**
 * `env X` of §4: `BAO_X` when defined (even empty: OpenBao's rule), else `VAULT_X`; an empty
 * result counts as not given.
 */
export function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = `BAO_${name}` in env ? env[`BAO_${name}`] : env[`VAULT_${name}`]
  return value === undefined || value === '' ? undefined : value
}

/** The name of the env var `envValue` read (for messages). */
export function envName(env: NodeJS.ProcessEnv, name: string): string {
  return `BAO_${name}` in env ? `BAO_${name}` : `VAULT_${name}`
}

function invalid(where: string, what: string, fix: string): ConfigError {
  return new ConfigError('CONFIG_INVALID', `Invalid openbao setting ${where}: ${what}`, {suggestion: fix})
}

/**
 * One server address as an origin. Only scheme, host and port are allowed: the API lives under
 * `/v1/` of the origin, and credentials in a URL would end up in logs.
 */
export function normaliseAddress(text: string, where: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw invalid(
      where,
      'is not a URL',
      'Give the server as http(s)://HOST:PORT, e.g. https://bao.example.com:8200.',
    )
  }

  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid(where, 'must be an http:// or https:// URL', 'Give the server as https://HOST:PORT.')
  if (
    url.username !== '' ||
    url.password !== '' ||
    url.search !== '' ||
    url.hash !== '' ||
    url.pathname !== '/'
  )
    throw invalid(
      where,
      'must be only scheme, host and port (no path, query or user)',
      'Give the server as https://HOST:PORT; agentvault adds /v1/ itself.',
    )
  return url.origin
}

/** `localhost`, 127/8 and ::1: plain HTTP there never crosses a network. */
export function isLoopbackAddress(origin: string): boolean {
  const {hostname} = new URL(origin)
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

function stringList(value: unknown): string[] | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string') return [value]
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value as string[]
  return undefined
}

function resolveAddresses(
  profile: Profile,
  env: NodeJS.ProcessEnv,
  overrides: OpenBaoOverrides,
): Pick<OpenBaoSettings, 'addressSource' | 'addresses'> {
  const key = `profiles.${profile.name}`
  if (overrides.addresses && overrides.addresses.length > 0) {
    return {
      addressSource: 'flag',
      addresses: [...new Set(overrides.addresses.map((a) => normaliseAddress(a, '--address')))],
    }
  }

  const {address, addresses} = profile.settings
  if (address !== undefined && addresses !== undefined)
    throw invalid(key, 'sets both "address" and "addresses"', `Keep one of them in profile ${profile.name}.`)
  const stored = stringList(addresses ?? address)
  if (stored) {
    if (stored.length === 0)
      throw invalid(`${key}.addresses`, 'is empty', 'List at least one server URL, or remove the key.')
    return {
      addressSource: 'profile',
      addresses: [...new Set(stored.map((a) => normaliseAddress(a, `${key}.address`)))],
    }
  }

  if (address !== undefined || addresses !== undefined)
    throw invalid(
      `${key}.address`,
      'must be a URL or a list of URLs',
      'Give the server as https://HOST:PORT.',
    )
  const fromEnv = envValue(env, 'ADDR')
  if (fromEnv) return {addressSource: 'env', addresses: [normaliseAddress(fromEnv, envName(env, 'ADDR'))]}
  return {addressSource: 'default', addresses: [DEFAULT_ADDRESS]}
}

function textSetting(profile: Profile, name: string): string | undefined {
  const value = profile.settings[name]
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string')
    throw invalid(
      `profiles.${profile.name}.${name}`,
      'must be a string',
      `Fix "${name}" in profile ${profile.name}.`,
    )
  return value
}

function checkNamespace(value: string, where: string, flag: boolean): string {
  if (!NAMESPACE.test(value)) {
    const what = 'must be namespace names of A-Z a-z 0-9 . _ - separated by "/"'
    if (flag)
      throw new UsageError('BAD_NAMESPACE', `${where} ${what}`, {suggestion: 'e.g. --namespace team-a'})
    throw invalid(where, what, 'e.g. "namespace": "team-a" or "team-a/dev".')
  }

  return value.replace(/\/$/, '')
}

/** Effective settings of `profile` with `overrides` (login flags) applied. */
export function resolveOpenBaoSettings(
  profile: Profile,
  env: NodeJS.ProcessEnv,
  home: string,
  overrides: OpenBaoOverrides = {},
): OpenBaoSettings {
  const key = `profiles.${profile.name}`
  const {addressSource, addresses} = resolveAddresses(profile, env, overrides)

  let namespace: string | undefined
  if (overrides.namespace !== undefined && overrides.namespace !== '')
    namespace = checkNamespace(overrides.namespace, '--namespace', true)
  else {
    const stored = textSetting(profile, 'namespace')
    const fromEnv = envValue(env, 'NAMESPACE')
    if (stored !== undefined) namespace = checkNamespace(stored, `${key}.namespace`, false)
    else if (fromEnv !== undefined) namespace = checkNamespace(fromEnv, envName(env, 'NAMESPACE'), false)
  }

  const method = overrides.authMethod ?? textSetting(profile, 'authMethod') ?? 'token'
  if (!(AUTH_METHODS as readonly string[]).includes(method)) {
    if (overrides.authMethod !== undefined)
      throw new UsageError('BAD_AUTH_METHOD', '--method must be token, userpass or approle')
    throw invalid(
      `${key}.authMethod`,
      'must be "token", "userpass" or "approle"',
      'Fix authMethod in the profile.',
    )
  }

  const mount = overrides.authMount ?? textSetting(profile, 'authMount') ?? method
  if (!SEGMENT.test(mount)) {
    if (overrides.authMount !== undefined)
      throw new UsageError('BAD_AUTH_MOUNT', '--auth-mount must be one path segment (A-Z a-z 0-9 . _ -)')
    throw invalid(
      `${key}.authMount`,
      'must be one path segment (A-Z a-z 0-9 . _ -)',
      'Fix authMount in the profile.',
    )
  }

  // A flag, then the profile (relative to the agentvault home, like every profile path), then env.
  const caCert = overrides.caCert ?? textSetting(profile, 'caCert') ?? envValue(env, 'CACERT')
  let caCertFile: string | undefined
  if (caCert !== undefined) {
    if (overrides.caCert !== undefined || textSetting(profile, 'caCert') === undefined)
      caCertFile = resolve(caCert)
    else caCertFile = isAbsolute(caCert) ? caCert : resolve(home, caCert)
  }

  const skip = profile.settings.tlsSkipVerify
  const skipFromEnv = envValue(env, 'SKIP_VERIFY')
  const tlsSkipVerify = typeof skip === 'boolean' ? skip : skipFromEnv === 'true' || skipFromEnv === '1'

  const timeout = profile.settings.timeoutMs
  const timeoutMs =
    typeof timeout === 'number' && Number.isInteger(timeout) && timeout > 0 ? timeout : DEFAULT_TIMEOUT_MS

  const allowed = profile.settings.allowedMounts
  return {
    addresses,
    addressSource,
    ...(Array.isArray(allowed)
      ? {allowedMounts: allowed.filter((m): m is string => typeof m === 'string')}
      : {}),
    authMethod: method as AuthMethod,
    authMount: mount,
    ...(caCertFile === undefined ? {} : {caCertFile}),
    ...(namespace === undefined ? {} : {namespace}),
    timeoutMs,
    tlsSkipVerify,
  }
}

/** Warnings a command prints once: plain HTTP off loopback, TLS verification off, an ignored BAO_ADDR. */
export function settingsWarnings(
  settings: OpenBaoSettings,
  env: NodeJS.ProcessEnv,
  profileName: string,
): string[] {
  const warnings: string[] = []
  const plain = settings.addresses.filter((a) => a.startsWith('http:') && !isLoopbackAddress(a))
  if (plain.length > 0)
    warnings.push(
      `openbao profile ${profileName} uses plain HTTP to ${plain.join(', ')}: tokens and secrets cross the network unencrypted. Use https://.`,
    )
  if (settings.tlsSkipVerify && settings.addresses.some((a) => a.startsWith('https:')))
    warnings.push(
      `TLS certificate verification is OFF for openbao profile ${profileName}: anyone on the path can read its token and secrets. Prefer caCert (or BAO_CACERT).`,
    )
  const fromEnv = envValue(env, 'ADDR')
  if (settings.addressSource === 'profile' && fromEnv !== undefined) {
    let differs = true
    try {
      differs = !settings.addresses.includes(normaliseAddress(fromEnv, envName(env, 'ADDR')))
    } catch {
      // An unparsable env address is simply not used.
    }

    if (differs)
      warnings.push(
        `${envName(env, 'ADDR')} is ignored: openbao profile ${profileName} has its own address (${settings.addresses.join(', ')}).`,
      )
  }

  return warnings
}
