import {profileSettings} from '../core/backend-declarations.js'
/**
 * The settings each kind of profile takes, for `profiles add/set --help`: generated from the
 * backends' declarations, so help and validation never disagree.
 */
import {BACKEND_KINDS} from '../core/backend.js'
import {COMMON_SETTINGS} from '../core/declarations.js'

export function settingsHelp(): string {
  const common = new Set(COMMON_SETTINGS.map((setting) => setting.name))
  const lines = ['Settings by kind:']
  for (const kind of BACKEND_KINDS) {
    const own = profileSettings(kind).filter((setting) => !common.has(setting.name))
    lines.push(`  ${kind}: ${own.map((setting) => setting.name).join(', ')}`)
  }

  lines.push(`  every kind: ${COMMON_SETTINGS.map((setting) => setting.name).join(', ')}`)
  return lines.join('\n')
}
