/**
 * The profiles service behind `profiles add|set|remove|use` (config.json, product.md §7). Settings
 * are checked against what the profile's kind declares (backends/<kind>/declaration.ts).
 */
import type {SettingDeclaration} from './declarations.js'

import {profileSettings} from './backend-declarations.js'
import {type BackendKind, isBackendKind} from './backend.js'
import {isValidProfileName, type StoredProfile, updateConfig, validateConfig} from './config.js'
import {nearest} from './did-you-mean.js'
import {ConfigError, UsageError} from './errors.js'

/** How one setting's text is read: the type its kind declares, or undefined for an unknown key. */
export type SettingType = SettingDeclaration['type'] | undefined

function badSetting(key: string, what: string, example: string): UsageError {
  return new UsageError('BAD_SETTING', `--set ${key}: ${what}`, {suggestion: example})
}

/** One value read as its declared type (text, a whole number, true/false, or a list). */
function settingValue(key: string, raw: string, type: SettingType): unknown {
  switch (type) {
    case 'string': {
      return raw
    }

    case 'integer': {
      if (!/^-?\d+$/.test(raw)) throw badSetting(key, 'must be a whole number', `--set ${key}=10`)
      return Number(raw)
    }

    case 'boolean': {
      if (raw !== 'true' && raw !== 'false')
        throw badSetting(key, 'must be true or false', `--set ${key}=true`)
      return raw === 'true'
    }

    case 'strings': {
      if (!raw.trimStart().startsWith('['))
        return raw
          .split(',')
          .map((item) => item.trim())
          .filter((item) => item !== '')
      break
    }
  }

  if (/^[[{]|^(true|false)$|^-?\d+(\.\d+)?$/.test(raw)) {
    try {
      return JSON.parse(raw)
    } catch {
      throw badSetting(
        key,
        'value is not valid JSON',
        `Quote JSON for the shell: --set ${key}='["a.example.com"]', give a comma-separated list, or a plain string.`,
      )
    }
  }

  return raw
}

/**
 * Parse `key=value` settings, each value read as the type `typeOf(key)` declares: text as is, a
 * whole number, true/false, or a list (JSON, or comma-separated). Unknown keys keep the old reading
 * (JSON for lists, booleans and numbers) so that the check that follows can name them.
 */
export function parseSettings(
  pairs: string[],
  typeOf?: (key: string) => SettingType,
): Record<string, unknown> {
  const settings: Record<string, unknown> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0)
      throw new UsageError('BAD_SETTING', `--set expects key=value, got "${pair}"`, {
        suggestion:
          '--set address=https://bao.example.com:8200 --set allowedDomains=api.example.com,*.example.org',
      })
    const key = pair.slice(0, eq)
    settings[key] = settingValue(key, pair.slice(eq + 1), typeOf?.(key))
  }

  return settings
}

/** The declared type of a setting of `kind` (undefined when the kind declares no such key). */
export function settingType(kind: string): (key: string) => SettingType {
  const declared = isBackendKind(kind) ? profileSettings(kind) : []
  return (key) => declared.find((setting) => setting.name === key)?.type
}

/**
 * Every key must be one the kind declares (backends/<kind>/declaration.ts, plus the settings every
 * kind takes): a typo is a usage error with the nearest real key. A credential-looking key keeps
 * its own, more useful error (credentials belong in the credential store).
 */
function checkKnownSettings(name: string, kind: BackendKind, settings: Record<string, unknown>): void {
  const names = profileSettings(kind).map((setting) => setting.name)
  for (const [key, value] of Object.entries(settings)) {
    if (names.includes(key)) continue
    checkSettings(name, {kind, [key]: value})
    const meant = nearest(key, names)
    throw new UsageError('UNKNOWN_SETTING', `--set ${key}: not a setting of ${kind} profiles`, {
      suggestion: `${meant === undefined ? '' : `Did you mean ${meant}? `}Settings of ${kind} profiles: ${names.join(', ')}.`,
    })
  }
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
  checkKnownSettings(name, kind, settings)
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
    // Unknown names are checkKnownSettings' to report (with the flag's wording).
    if (error.details?.unknownSetting === true) return
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

/**
 * `profiles set NAME key=value… [--unset key]…`: change a configured profile's settings in place,
 * under the config lock, after the same checks as `add`.
 */
export async function setProfile(
  home: string,
  name: string,
  changes: {set: string[]; unset: string[]},
): Promise<StoredProfile & {name: string}> {
  if (changes.set.length === 0 && changes.unset.length === 0)
    throw new UsageError('NOTHING_TO_SET', 'Nothing to change', {
      suggestion: `agentvault profiles set ${name} key=value … (or --unset key)`,
    })
  let result: StoredProfile | undefined
  await updateConfig(home, (config) => {
    // A kind's name with no profile of that name is its implicit profile (`profiles list` shows
    // `local` on a fresh home): setting one of its settings configures it, as the same kind.
    const implicit = !config.profiles[name] && isBackendKind(name)
    const stored: StoredProfile | undefined = implicit ? {kind: name} : config.profiles[name]
    if (!stored)
      throw new ConfigError('PROFILE_NOT_FOUND', `No profile named ${name}`, {
        suggestion: `Add it first: agentvault profiles add ${name} --kind KIND --set key=value`,
      })
    const {kind} = stored
    const settings = parseSettings(changes.set, settingType(kind))
    checkKnownSettings(name, kind, settings)
    const names = profileSettings(kind).map((setting) => setting.name)
    for (const key of changes.unset) {
      if (names.includes(key) || key in stored) continue
      const meant = nearest(key, names)
      throw new UsageError('UNKNOWN_SETTING', `--unset ${key}: not a setting of ${kind} profiles`, {
        suggestion: `${meant === undefined ? '' : `Did you mean ${meant}? `}Settings of ${kind} profiles: ${names.join(', ')}.`,
      })
    }

    const next: StoredProfile = {...stored, ...settings, kind}
    for (const key of changes.unset) delete next[key]
    checkSettings(name, next)
    config.profiles[name] = next
    // It stays what it was: the kind's default when no other profile of the kind is.
    if (implicit && !config.defaults[kind]) config.defaults[kind] = name
    result = next
  })
  return {name, ...(result as StoredProfile)}
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
