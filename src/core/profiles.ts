/**
 * The profiles service behind `profiles add|remove|use` (config.json, product.md §7).
 */
import {isBackendKind} from './backend.js'
import {isValidProfileName, type StoredProfile, updateConfig, validateConfig} from './config.js'
import {ConfigError, UsageError} from './errors.js'

/** Parse `key=value` settings; JSON values (lists, booleans, numbers) are accepted as JSON. */
export function parseSettings(pairs: string[]): Record<string, unknown> {
  const settings: Record<string, unknown> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0)
      throw new UsageError('BAD_SETTING', `--set expects key=value, got "${pair}"`, {
        suggestion: '--set address=https://bao.example.com:8200 --set allowedDomains=\'["api.example.com"]\'',
      })
    const raw = pair.slice(eq + 1)
    let value: unknown = raw
    if (/^[[{]|^(true|false)$|^-?\d+(\.\d+)?$/.test(raw)) {
      try {
        value = JSON.parse(raw)
      } catch {
        throw new UsageError('BAD_SETTING', `--set ${pair.slice(0, eq)}: value is not valid JSON`, {
          suggestion: `Quote JSON for the shell: --set ${pair.slice(0, eq)}='["a.example.com"]', or give a plain string.`,
        })
      }
    }

    settings[pair.slice(0, eq)] = value
  }

  return settings
}

export async function addProfile(
  home: string,
  name: string,
  kind: string,
  settings: Record<string, unknown>,
  makeDefault: boolean,
): Promise<StoredProfile & {name: string}> {
  if (!isBackendKind(kind)) throw new UsageError('BAD_KIND', `Unknown backend kind ${kind}`)
  if (!isValidProfileName(name))
    throw new UsageError('BAD_PROFILE_NAME', `Invalid profile name ${name}`, {
      suggestion: 'Use letters, digits, ".", "_" and "-".',
    })
  const stored: StoredProfile = {...settings, kind}
  checkSettings(name, stored)
  await updateConfig(home, (config) => {
    if (config.profiles[name])
      throw new UsageError('PROFILE_EXISTS', `Profile ${name} already exists`, {
        suggestion: `Remove it first: agentvault profiles remove ${name}`,
      })
    config.profiles[name] = stored
    if (makeDefault || !config.defaults[kind]) config.defaults[kind] = name
  })
  return {name, ...stored}
}

/**
 * Check `--set` settings against the config schema before anything is written, so a bad one (a
 * credential above all) is a usage error about the flag, not a complaint about config.json.
 */
function checkSettings(name: string, stored: StoredProfile): void {
  try {
    validateConfig({version: 1, profiles: {[name]: stored}}, '--set')
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    const key = typeof error.details?.key === 'string' ? error.details.key : ''
    const at = key === '' ? -1 : error.message.indexOf(key)
    const what = at === -1 ? error.message : error.message.slice(at + key.length).trim()
    const setting = key.replace(`profiles.${name}.`, '')
    throw new UsageError('BAD_SETTING', `--set ${setting}: ${what}`, {
      suggestion: what.includes('credential')
        ? `Leave credentials out of profiles; sign in with \`agentvault login ${stored.kind} --profile ${name}\` instead.`
        : `Fix the --set ${setting} value; \`agentvault profiles add --help\` shows examples.`,
    })
  }
}

export async function removeProfile(home: string, name: string): Promise<{removed: string}> {
  await updateConfig(home, (config) => {
    const stored = config.profiles[name]
    if (!stored)
      throw new ConfigError('PROFILE_NOT_FOUND', `No profile named ${name}`, {
        suggestion: 'Run `agentvault profiles list`.',
      })
    delete config.profiles[name]
    if (config.defaults[stored.kind] === name) delete config.defaults[stored.kind]
    if (config.active === name) delete config.active
  })
  return {removed: name}
}

export async function useProfile(home: string, name: string): Promise<{active: string}> {
  await updateConfig(home, (config) => {
    const stored = config.profiles[name]
    if (stored) config.defaults[stored.kind] = name
    else if (!isBackendKind(name))
      throw new ConfigError('PROFILE_NOT_FOUND', `No profile named ${name}`, {
        suggestion: 'Run `agentvault profiles list`.',
      })
    config.active = name
  })
  return {active: name}
}
