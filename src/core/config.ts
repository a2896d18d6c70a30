/**
 * config.json: profiles and defaults, validated when loaded; env overrides (product.md §7).
 * Tokens never live here: the validator refuses credential-looking keys.
 */
import {statSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {profileSettings} from './backend-declarations.js'
import {BACKEND_KINDS, type BackendKind, isBackendKind} from './backend.js'
import {recordProfileNames} from './completion/names-cache.js'
import {nearest} from './did-you-mean.js'
import {ConfigError, UsageError} from './errors.js'
import {ensureHome, readFileIfExists, withWriteLock, writeFileAtomic} from './file-lock.js'
import {normaliseHostPattern} from './use/hosts.js'

/** A named, configured instance of a backend. Settings are backend-specific and never hold tokens. */
export interface Profile {
  /** True when the profile is built from env vars / defaults rather than config.json. */
  implicit: boolean
  kind: BackendKind
  name: string
  settings: ProfileSettings
}

export interface ProfileSettings {
  [key: string]: unknown
  /** Use-not-retrieve: hosts every secret of this profile may be used against. */
  allowedDomains?: string[]
  allowPrivateNetworks?: boolean
  /** Use-not-retrieve: secrets may go over plain http:// to hosts off this machine (never by default). */
  allowPlainHttp?: boolean
  /** Use-not-retrieve: PEM file of extra CAs trusted for `use`/`call` (relative to the home). */
  caCert?: string
  /** Audit records carry `resource_ref` instead of reference names when "ref". */
  auditPaths?: 'name' | 'ref'
}

export interface StoredProfile extends ProfileSettings {
  kind: BackendKind
}

export interface AgentVaultConfig {
  /** The profile used by commands that take no reference (e.g. `secrets list`). */
  active?: string
  /** The default profile of each kind, used by references without `?profile=`. */
  defaults: Partial<Record<BackendKind, string>>
  profiles: Record<string, StoredProfile>
  version: 1
}

export const CONFIG_FILE = 'config.json'
const PROFILE_NAME = /^[A-Za-z0-9._-]{1,64}$/
const FORBIDDEN_KEYS = /^(token|password|secret|secretid|secret_id|apikey|api_key|passphrase|privatekey)$/i

/** `$AGENTVAULT_HOME`, else `~/.agentvault`. */
export function agentvaultHome(env: NodeJS.ProcessEnv): string {
  const fromEnv = env.AGENTVAULT_HOME
  return fromEnv && fromEnv.length > 0 ? fromEnv : join(homedir(), '.agentvault')
}

/**
 * Maps without a prototype: a profile named `constructor`, `toString` or `__proto__` is looked up
 * as any other name, never found as what every object inherits.
 */
export function emptyConfig(): AgentVaultConfig {
  return {
    version: 1,
    defaults: Object.create(null) as AgentVaultConfig['defaults'],
    profiles: Object.create(null) as AgentVaultConfig['profiles'],
  }
}

export function isValidProfileName(name: string): boolean {
  return PROFILE_NAME.test(name)
}

function invalid(file: string, key: string, what: string): ConfigError {
  return new ConfigError('CONFIG_INVALID', `Invalid configuration in ${file}: ${key} ${what}`, {
    suggestion: `Fix or remove "${key}" in ${file}, or manage profiles with \`agentvault profiles\`.`,
    details: {file, key},
  })
}

/** A profile key the kind does not declare (`details.unknownSetting`: `profiles add/set` word it themselves). */
function unknownSetting(
  file: string,
  profileKey: string,
  kind: BackendKind,
  setting: string,
  known: readonly string[],
): ConfigError {
  const key = `${profileKey}.${setting}`
  const meant = nearest(setting, known)
  return new ConfigError(
    'CONFIG_INVALID',
    `Invalid configuration in ${file}: ${key} is not a setting of ${kind} profiles`,
    {
      suggestion: `${meant === undefined ? `Remove "${key}"` : `Did you mean ${meant}? Rename "${key}"`} in ${file} (every command reads it). Settings of ${kind} profiles: ${known.join(', ')}.`,
      details: {file, key, unknownSetting: true},
    },
  )
}

function isHostPattern(text: string): boolean {
  try {
    normaliseHostPattern(text)
    return true
  } catch {
    return false
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function validateSetting(file: string, key: string, name: string, value: unknown): void {
  if (FORBIDDEN_KEYS.test(name))
    throw invalid(
      file,
      key,
      'looks like a credential; credentials belong in the credential store, never in config',
    )
  switch (name) {
    case 'allowedDomains':
    case 'allowedMounts':
    case 'addresses': {
      if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item.length > 0))
        throw invalid(file, key, 'must be a list of non-empty strings')
      if (name === 'allowedDomains' && !value.every((item) => isHostPattern(item as string)))
        throw invalid(
          file,
          key,
          'must list hosts or *.suffix patterns, optionally with :port (no scheme or path)',
        )
      return
    }

    case 'caCert': {
      if (typeof value !== 'string' || value === '')
        throw invalid(file, key, 'must be the path of a PEM file')
      return
    }

    case 'allowPlainHttp':
    case 'allowPrivateNetworks':
    case 'tlsSkipVerify': {
      if (typeof value !== 'boolean') throw invalid(file, key, 'must be true or false')
      return
    }

    case 'auditPaths': {
      if (value !== 'name' && value !== 'ref') throw invalid(file, key, 'must be "name" or "ref"')
      return
    }

    case 'dialect': {
      if (value !== 'a' && value !== 'b' && value !== 'auto')
        throw invalid(file, key, 'must be "a", "b" or "auto"')
      return
    }

    case 'keepVersions': {
      // local: how many previous values of each secret the vault keeps.
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 1000)
        throw invalid(file, key, 'must be a whole number from 0 to 1000')
      return
    }

    case 'maxFrameBytes':
    case 'timeoutMs': {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
        throw invalid(file, key, 'must be a positive whole number')
      return
    }
  }

  const ok =
    typeof value === 'string' ||
    typeof value === 'number' ||
    typeof value === 'boolean' ||
    (Array.isArray(value) && value.every((item) => typeof item === 'string'))
  if (!ok) throw invalid(file, key, 'must be a string, number, boolean or list of strings')
}

function isServerUrl(text: unknown): boolean {
  if (typeof text !== 'string') return false
  try {
    const url = new URL(text)
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      url.username === '' &&
      url.password === '' &&
      url.pathname === '/' &&
      url.search === '' &&
      url.hash === ''
    )
  } catch {
    return false
  }
}

/** Keys of openbao profiles (protocols/openbao.md §4). */
function validateOpenBaoSetting(file: string, key: string, name: string, value: unknown): void {
  switch (name) {
    case 'address': {
      if (!isServerUrl(value))
        throw invalid(file, key, 'must be an http(s)://HOST:PORT URL (no path, query or user)')
      return
    }

    case 'addresses': {
      if (!Array.isArray(value) || value.length === 0 || !value.every((item) => isServerUrl(item)))
        throw invalid(file, key, 'must be a non-empty list of http(s)://HOST:PORT URLs')
      return
    }

    case 'allowedMounts': {
      if (
        !Array.isArray(value) ||
        !value.every((item) => typeof item === 'string' && /^[A-Za-z0-9._-]+$/.test(item))
      )
        throw invalid(file, key, 'must be a list of mount names (A-Z a-z 0-9 . _ -)')
      return
    }

    case 'authMethod': {
      if (value !== 'token' && value !== 'userpass' && value !== 'approle')
        throw invalid(file, key, 'must be "token", "userpass" or "approle"')
      return
    }

    case 'authMount': {
      if (typeof value !== 'string' || !/^[A-Za-z0-9._-]+$/.test(value))
        throw invalid(file, key, 'must be one path segment (A-Z a-z 0-9 . _ -)')
      return
    }

    case 'namespace': {
      if (typeof value !== 'string' || !/^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*\/?$/.test(value))
        throw invalid(file, key, 'must be namespace names (A-Z a-z 0-9 . _ -) separated by "/"')
    }
  }
}

/** Keys of agentsecrets profiles (protocols/agentsecrets.md §3); its tokens never live here. */
function validateAgentSecretsSetting(file: string, key: string, name: string, value: unknown): void {
  switch (name) {
    case 'agentId': {
      if (typeof value !== 'string' || !/^[A-Za-z0-9._:@-]{1,128}$/.test(value))
        throw invalid(file, key, 'must be 1–128 of A-Z a-z 0-9 . _ : @ -')
      return
    }

    case 'agentToken':
    case 'sessionToken': {
      throw invalid(
        file,
        key,
        'looks like a credential; credentials belong in the credential store, never in config (agentvault login agentsecrets --session-token-stdin / --agent-token-stdin)',
      )
    }

    case 'cliPath': {
      if (typeof value !== 'string' || value === '')
        throw invalid(file, key, 'must be the path of the agentsecrets executable')
      return
    }

    case 'port': {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65_535)
        throw invalid(file, key, 'must be a whole number from 1 to 65535')
      return
    }

    case 'transport': {
      if (value !== 'cli' && value !== 'proxy' && value !== 'auto')
        throw invalid(file, key, 'must be "cli", "proxy" or "auto"')
    }
  }
}

/** An AgentAuth server root: http(s), no credentials, query or fragment (a path prefix is allowed). */
function isBaseUrl(text: unknown): boolean {
  if (typeof text !== 'string' || text.includes('?') || text.includes('#')) return false
  try {
    const url = new URL(text)
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === ''
    )
  } catch {
    return false
  }
}

/** Keys of agentauth profiles (protocols/agentauth.md §10.1); tokens and the API key never live here. */
function validateAgentAuthSetting(file: string, key: string, name: string, value: unknown): void {
  if (/token$/i.test(name))
    throw invalid(
      file,
      key,
      'looks like a credential; AgentAuth tokens belong in the credential store, never in config (agentvault login agentauth)',
    )
  switch (name) {
    case 'agentId': {
      if (typeof value !== 'string' || value.trim() === '' || value.length > 256)
        throw invalid(file, key, 'must be a non-empty agent id (agt_…)')
      return
    }

    case 'baseUrl': {
      if (!isBaseUrl(value))
        throw invalid(file, key, 'must be an http(s):// server URL without user, query or fragment')
      return
    }

    case 'generation': {
      if (value !== 'unknown' && value !== 'v1' && value !== 'legacy')
        throw invalid(file, key, 'must be "unknown", "v1" or "legacy"')
    }
  }
}

/** Validate parsed JSON against the config schema; errors name the file and the key. */
export function validateConfig(data: unknown, file: string): AgentVaultConfig {
  if (!isPlainObject(data)) throw invalid(file, '(root)', 'must be a JSON object')
  const config = emptyConfig()
  for (const key of Object.keys(data)) {
    if (!['active', 'defaults', 'profiles', 'version'].includes(key))
      throw invalid(file, key, 'is not a known key')
  }

  if (data.version !== undefined && data.version !== 1) throw invalid(file, 'version', 'must be 1')
  const {profiles = {}, defaults = {}, active} = data
  if (!isPlainObject(profiles)) throw invalid(file, 'profiles', 'must be an object')
  for (const [name, raw] of Object.entries(profiles)) {
    const key = `profiles.${name}`
    if (!isValidProfileName(name)) throw invalid(file, key, 'is not a valid profile name ([A-Za-z0-9._-])')
    if (!isPlainObject(raw)) throw invalid(file, key, 'must be an object')
    if (typeof raw.kind !== 'string' || !isBackendKind(raw.kind))
      throw invalid(file, `${key}.kind`, `must be one of ${BACKEND_KINDS.join(', ')}`)
    const known = profileSettings(raw.kind).map((declared) => declared.name)
    for (const [setting, value] of Object.entries(raw)) {
      if (setting !== 'kind') validateSetting(file, `${key}.${setting}`, setting, value)
      if (raw.kind === 'openbao') validateOpenBaoSetting(file, `${key}.${setting}`, setting, value)
      if (raw.kind === 'agentsecrets') validateAgentSecretsSetting(file, `${key}.${setting}`, setting, value)
      if (raw.kind === 'agentauth') validateAgentAuthSetting(file, `${key}.${setting}`, setting, value)
      // A misspelt setting would otherwise be ignored: `alowedDomains` silently no allowlist.
      if (setting !== 'kind' && !known.includes(setting))
        throw unknownSetting(file, key, raw.kind, setting, known)
    }

    config.profiles[name] = raw as StoredProfile
  }

  if (!isPlainObject(defaults)) throw invalid(file, 'defaults', 'must be an object')
  for (const [kind, name] of Object.entries(defaults)) {
    if (!isBackendKind(kind)) throw invalid(file, `defaults.${kind}`, 'is not a backend kind')
    if (typeof name !== 'string' || config.profiles[name]?.kind !== kind)
      throw invalid(file, `defaults.${kind}`, `must name a configured ${kind} profile`)
    config.defaults[kind] = name
  }

  if (active !== undefined) {
    if (typeof active !== 'string' || (!config.profiles[active] && !isBackendKind(active)))
      throw invalid(file, 'active', 'must name a configured profile or a backend kind')
    config.active = active
  }

  return config
}

/** Load `$home/config.json`; a missing file is an empty config, an invalid one an error. */
export async function loadConfig(home: string): Promise<AgentVaultConfig> {
  const file = join(home, CONFIG_FILE)
  let text: string
  try {
    const bytes = readFileIfExists(file)
    if (bytes === undefined) return emptyConfig()
    text = bytes.toString('utf8')
  } catch (error) {
    if (error instanceof ConfigError) throw error // a FIFO, device, directory or link: already named
    throw new ConfigError(
      'CONFIG_UNREADABLE',
      `Cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`,
      {
        suggestion: `Check the permissions of ${file}.`,
      },
    )
  }

  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    throw new ConfigError('CONFIG_INVALID', `Invalid configuration in ${file}: not valid JSON`, {
      suggestion: `Fix the JSON syntax of ${file} (or move it away to start afresh).`,
      details: {file},
    })
  }

  return validateConfig(data, file)
}

/**
 * Throw ConfigError HOME_NOT_DIRECTORY when `home` exists but is not a directory (a file where the
 * home should be): every file of agentvault would otherwise fail with a puzzling ENOTDIR. A home
 * that does not exist yet is fine (it is made on the first write).
 */
export function assertHomeIsDirectory(home: string): void {
  let info
  try {
    info = statSync(home)
  } catch (error) {
    // A part of the path is a file, the path is too long or loops: no file of the home can work
    // (toAgentVaultError names it). Anything else (not there yet, not reachable): the first access
    // names the problem.
    if (['ELOOP', 'ENAMETOOLONG', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? ''))
      throw error
    return
  }

  if (info.isDirectory()) return
  throw new ConfigError('HOME_NOT_DIRECTORY', `The agentvault home ${home} is not a directory`, {
    details: {path: home},
    suggestion: `Point AGENTVAULT_HOME at a directory, or move ${home} aside so agentvault can create it.`,
  })
}

/**
 * A warning when `home` is open to others (group/other may write it, or list and read it), or
 * undefined. agentvault makes its home 0700; a wider mode lets others see or swap its files.
 */
export function homePermissionWarning(home: string): string | undefined {
  if (process.platform === 'win32') return undefined
  let mode: number
  try {
    mode = statSync(home).mode & 0o777
  } catch {
    return undefined // not there yet: it will be made 0700
  }

  if ((mode & 0o066) === 0) return undefined
  return `The agentvault home ${home} is open to other users (mode ${mode.toString(8).padStart(3, '0')}); run: chmod 700 ${home}`
}

/** Read-modify-write config.json atomically under a lock. */
export async function updateConfig(
  home: string,
  change: (config: AgentVaultConfig) => void,
): Promise<AgentVaultConfig> {
  await ensureHome(home)
  // A change reported as made is one that was made (see withWriteLock).
  return withWriteLock(join(home, 'config.lock'), async () => {
    const config = await loadConfig(home)
    change(config)
    const file = join(home, CONFIG_FILE)
    const checked = validateConfig(structuredClone(config), file)
    await writeFileAtomic(file, JSON.stringify(checked, null, 2) + '\n')
    await recordProfileNames(home, Object.keys(checked.profiles))
    return checked
  })
}

export interface ProfileSelector {
  kind?: BackendKind
  /** An explicit name: `?profile=`, `--profile` or `AGENTVAULT_PROFILE`. */
  name?: string
}

function implicitProfile(kind: BackendKind): Profile {
  return {name: kind, kind, implicit: true, settings: {}}
}

function configuredProfile(name: string, stored: StoredProfile): Profile {
  const {kind, ...settings} = stored
  return {name, kind, implicit: false, settings}
}

/**
 * Pick the profile for a reference of `kind` or for a kind-less command. An explicit name must
 * exist (or be a kind's name, meaning its implicit env-built profile).
 */
export function resolveProfile(config: AgentVaultConfig, selector: ProfileSelector): Profile {
  const {name, kind} = selector
  if (name !== undefined) {
    const stored = config.profiles[name]
    if (stored) {
      if (kind && stored.kind !== kind)
        throw new UsageError(
          'PROFILE_KIND_MISMATCH',
          `Profile ${name} is a ${stored.kind} profile, not ${kind}`,
          {
            suggestion: `Use a ${kind} profile; \`agentvault profiles list\` shows them.`,
          },
        )
      return configuredProfile(name, stored)
    }

    if (isBackendKind(name) && (!kind || kind === name)) return implicitProfile(name)
    throw new ConfigError('PROFILE_NOT_FOUND', `No profile named ${name}`, {
      suggestion: 'Run `agentvault profiles list`, or add one with `agentvault profiles add`.',
    })
  }

  if (kind) {
    const defaultName = config.defaults[kind]
    const stored = defaultName === undefined ? undefined : config.profiles[defaultName]
    return stored && defaultName ? configuredProfile(defaultName, stored) : implicitProfile(kind)
  }

  return resolveProfile(config, {name: config.active ?? 'local'})
}

/**
 * The native variables that make a kind usable from the environment alone (product.md §7); each
 * backend's settings module reads the full set.
 */
const NATIVE_ENV: Record<Exclude<BackendKind, 'local'>, readonly string[]> = {
  agentauth: ['AGENTAUTH_BASE_URL'],
  agentsecrets: ['AGENTSECRETS_PORT'],
  openbao: ['BAO_ADDR', 'VAULT_ADDR'],
  sanctum: ['SANCTUM_SOCKET', 'SANCTUM_HOST'],
}

/**
 * Every configured profile, plus the implicit default of each kind that has none configured: always
 * for `local`, and for another kind when its native env vars are set (as `vault status` would see).
 */
export function listProfiles(
  config: AgentVaultConfig,
  env: NodeJS.ProcessEnv = {},
): Array<Profile & {active: boolean; default: boolean}> {
  const active = resolveProfile(config, {}).name
  const result = Object.entries(config.profiles).map(([name, stored]) => {
    const profile = configuredProfile(name, stored)
    return {...profile, active: name === active, default: config.defaults[profile.kind] === name}
  })
  if (!config.profiles.local && !result.some((p) => p.kind === 'local' && p.default)) {
    result.unshift({...implicitProfile('local'), active: active === 'local', default: true})
  }

  for (const kind of BACKEND_KINDS) {
    if (kind === 'local' || result.some((p) => p.kind === kind) || config.profiles[kind]) continue
    if (NATIVE_ENV[kind].some((name) => env[name]))
      result.push({...implicitProfile(kind), active: active === kind, default: true})
  }

  return result
}
