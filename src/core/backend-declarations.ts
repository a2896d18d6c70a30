/**
 * Every backend's declaration (its `declaration.ts`: data only, so it is imported here directly
 * rather than loading the backend), by kind: the login inputs `login KIND` is built from, and the
 * settings `profiles add/set` accept.
 */
import type {BackendKind} from './backend.js'

import {LOGIN as AGENTAUTH_LOGIN, SETTINGS as AGENTAUTH_SETTINGS} from '../backends/agentauth/declaration.js'
import {
  LOGIN as AGENTSECRETS_LOGIN,
  SETTINGS as AGENTSECRETS_SETTINGS,
} from '../backends/agentsecrets/declaration.js'
import {LOGIN as LOCAL_LOGIN, SETTINGS as LOCAL_SETTINGS} from '../backends/local/declaration.js'
import {LOGIN as OPENBAO_LOGIN, SETTINGS as OPENBAO_SETTINGS} from '../backends/openbao/declaration.js'
import {LOGIN as SANCTUM_LOGIN, SETTINGS as SANCTUM_SETTINGS} from '../backends/sanctum/declaration.js'
import {COMMON_SETTINGS, type LoginDeclaration, type SettingDeclaration} from './declarations.js'

export const LOGIN_DECLARATIONS: Readonly<Record<BackendKind, LoginDeclaration>> = {
  local: LOCAL_LOGIN,
  sanctum: SANCTUM_LOGIN,
  openbao: OPENBAO_LOGIN,
  agentsecrets: AGENTSECRETS_LOGIN,
  agentauth: AGENTAUTH_LOGIN,
}

const OWN_SETTINGS: Readonly<Record<BackendKind, readonly SettingDeclaration[]>> = {
  local: LOCAL_SETTINGS,
  sanctum: SANCTUM_SETTINGS,
  openbao: OPENBAO_SETTINGS,
  agentsecrets: AGENTSECRETS_SETTINGS,
  agentauth: AGENTAUTH_SETTINGS,
}

/** The settings a profile of `kind` may hold: the kind's own, then those every kind takes. */
export function profileSettings(kind: BackendKind): readonly SettingDeclaration[] {
  return [...OWN_SETTINGS[kind], ...COMMON_SETTINGS]
}
