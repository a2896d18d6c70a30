/**
 * The service behind `status`, `login` and `logout`: per-profile state, never secret values.
 */
import type {Session} from './session.js'

import {isBackendKind, type LoginOptions, type LoginResult, type ProfileStatus} from './backend.js'
import {listProfiles, type Profile} from './config.js'
import {AgentVaultError, NotSupportedError, UsageError} from './errors.js'

export interface ProfileStatusRow extends ProfileStatus {
  active: boolean
  kind: string
  name: string
}

/** Status of every profile, checked concurrently; a failing backend is reported, not thrown. */
export async function profileStatuses(session: Session): Promise<ProfileStatusRow[]> {
  const profiles = listProfiles(await session.config())
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

export async function login(
  session: Session,
  kind: string | undefined,
  options: LoginOptions,
): Promise<LoginResult & {kind: string; profile: string}> {
  const profile = await profileForKind(session, kind)
  const backend = await session.backendFor(profile)
  if (!backend.login) throw new NotSupportedError(profile.kind, 'login')
  return {kind: profile.kind, profile: profile.name, ...(await backend.login(options))}
}

export async function logout(
  session: Session,
  kind: string | undefined,
): Promise<{cleared: boolean; kind: string; profile: string}> {
  const profile = await profileForKind(session, kind)
  const backend = await session.backendFor(profile)
  const cleared = backend.logout ? await backend.logout() : false
  return {cleared, kind: profile.kind, profile: profile.name}
}
