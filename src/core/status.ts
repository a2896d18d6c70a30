/**
 * The service behind `status`, `login` and `logout`: per-profile state, never secret values.
 */
import type {Session} from './session.js'

import {
  isBackendKind,
  type LoginOptions,
  type LoginResult,
  type LogoutOptions,
  type ProfileStatus,
} from './backend.js'
import {isValidProfileName, listProfiles, type Profile} from './config.js'
import {AgentVaultError, NotSupportedError, UsageError} from './errors.js'

export interface ProfileStatusRow extends ProfileStatus {
  active: boolean
  kind: string
  name: string
}

/** Status of every profile, checked concurrently; a failing backend is reported, not thrown. */
export async function profileStatuses(session: Session): Promise<ProfileStatusRow[]> {
  const profiles = listProfiles(await session.config(), session.options.env)
  return Promise.all(
    profiles.map(async (profile): Promise<ProfileStatusRow> => {
      const row = {active: profile.active, kind: profile.kind, name: profile.name}
      try {
        const backend = await session.backendFor(profile)
        return {...row, ...(await backend.status())}
      } catch (error) {
        if (!(error instanceof AgentVaultError)) throw error
        return {...row, message: error.message, reachable: false, signedIn: false}
      }
    }),
  )
}

async function profileForKind(session: Session, kind: string | undefined): Promise<Profile> {
  if (!kind) return session.profileFor()
  if (!isBackendKind(kind)) {
    throw new UsageError('BAD_KIND', `Unknown backend kind ${kind}`, {
      suggestion: 'Kinds: local, sanctum, agentsecrets, openbao, agentauth.',
    })
  }

  return session.profileFor(kind)
}

/**
 * The profile `login KIND --profile NAME` signs in to: an existing one, or — when NAME is new — a
 * fresh profile of KIND that the backend's login saves once signing in worked.
 */
async function loginProfile(session: Session, kind: string | undefined): Promise<Profile> {
  try {
    return await profileForKind(session, kind)
  } catch (error) {
    const name = session.options.profileName
    if (
      kind !== undefined &&
      isBackendKind(kind) &&
      name !== undefined &&
      isValidProfileName(name) &&
      error instanceof AgentVaultError &&
      error.code === 'PROFILE_NOT_FOUND'
    )
      return {implicit: false, kind, name, settings: {}}
    throw error
  }
}

export async function login(
  session: Session,
  kind: string | undefined,
  options: LoginOptions,
): Promise<LoginResult & {kind: string; profile: string}> {
  const profile = await loginProfile(session, kind)
  const backend = await session.backendFor(profile)
  if (!backend.login) throw new NotSupportedError(profile.kind, 'login')
  return {kind: profile.kind, profile: profile.name, ...(await backend.login(options))}
}

export async function logout(
  session: Session,
  kind: string | undefined,
  options: LogoutOptions = {},
): Promise<{cleared: boolean; kind: string; profile: string}> {
  const profile = await profileForKind(session, kind)
  const backend = await session.backendFor(profile)
  const cleared = backend.logout ? await backend.logout(options) : false
  return {cleared, kind: profile.kind, profile: profile.name}
}
