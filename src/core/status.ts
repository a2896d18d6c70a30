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

/**
 * One row of `status`: every key always present (`null` when unknown), so scripts can read
 * `--json` without guarding for missing keys.
 */
export interface ProfileStatusRow {
  active: boolean
  details: null | Record<string, unknown>
  identity: null | string
  kind: string
  message: null | string
  name: string
  /** The §9 category of what makes the profile unusable, or null when it is usable. */
  problem: 'auth' | 'config' | 'unavailable' | null
  reachable: boolean
  signedIn: boolean
  tokenExpiry: null | string
}

function toRow(
  profile: {active: boolean; kind: string; name: string},
  status: ProfileStatus,
): ProfileStatusRow {
  const problem =
    status.problem === undefined
      ? status.reachable
        ? status.signedIn
          ? null
          : 'auth'
        : 'unavailable'
      : status.problem
  return {
    active: profile.active,
    details: status.details ?? null,
    identity: status.identity ?? null,
    kind: profile.kind,
    message: status.message ?? null,
    name: profile.name,
    problem,
    reachable: status.reachable,
    signedIn: status.signedIn,
    tokenExpiry: status.tokenExpiry ?? null,
  }
}

/** Status of every profile, checked concurrently; a failing backend is reported, not thrown. */
export async function profileStatuses(session: Session): Promise<ProfileStatusRow[]> {
  const profiles = listProfiles(await session.config(), session.options.env)
  return Promise.all(
    profiles.map(async (profile): Promise<ProfileStatusRow> => {
      try {
        const backend = await session.backendFor(profile)
        return toRow(profile, await backend.status())
      } catch (error) {
        if (!(error instanceof AgentVaultError)) throw error
        const problem =
          error.category === 'auth' || error.category === 'config' ? error.category : 'unavailable'
        return toRow(profile, {message: error.message, problem, reachable: false, signedIn: false})
      }
    }),
  )
}

const PROBLEM_RANK = {auth: 4, config: 3, unavailable: 5} as const

/**
 * The failure `status` exits with when a profile it shows is unusable: the §9 category of the worst
 * problem (unavailable 5 > auth 4 > config 3), naming every unusable profile; undefined when all
 * are usable.
 */
export function unusableProfiles(rows: readonly ProfileStatusRow[]): AgentVaultError | undefined {
  const bad = rows.filter((row) => row.problem !== null)
  if (bad.length === 0) return undefined
  const worst = bad.reduce((a, b) => (PROBLEM_RANK[b.problem!] > PROBLEM_RANK[a.problem!] ? b : a))
  const label = {
    auth: 'not signed in or key unavailable',
    config: 'misconfigured',
    unavailable: 'unreachable',
  } as const
  const list = bad.map((row) => `${row.name} (${label[row.problem!]})`).join(', ')
  const suggestion =
    worst.problem === 'auth' && worst.kind === 'local'
      ? // `login local` only creates a vault; an existing one needs its key (file, passphrase, keychain).
        `Run \`agentvault secrets list --profile ${worst.name}\`: its error says how to open the vault.`
      : worst.problem === 'auth'
        ? `Sign in: agentvault login ${worst.kind} --profile ${worst.name}`
        : worst.problem === 'config'
          ? `Fix the profile's settings: agentvault profiles list (or remove it: agentvault profiles remove ${worst.name})`
          : `Check that the ${worst.kind} backend of profile ${worst.name} is running and its address is right (agentvault profiles list)`
  return new AgentVaultError(
    worst.problem!,
    'PROFILE_UNUSABLE',
    `${bad.length === 1 ? 'Profile' : 'Profiles'} not usable: ${list}`,
    {suggestion},
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

/**
 * `login [KIND]`: the profile to sign in to, then its inputs — read by the command layer from the
 * kind's declaration (`readInputs`), given the profile so that its stored settings count — then
 * the backend's login. Secrets read for it are wiped once it returns.
 */
export async function login(
  session: Session,
  kind: string | undefined,
  readInputs: (profile: Profile) => Promise<LoginOptions>,
): Promise<LoginResult & {kind: string; profile: string}> {
  const profile = await loginProfile(session, kind)
  const backend = await session.backendFor(profile)
  if (!backend.login) throw new NotSupportedError(profile.kind, 'login')
  const options = await readInputs(profile)
  try {
    return {kind: profile.kind, profile: profile.name, ...(await backend.login(options))}
  } finally {
    for (const value of Object.values(options)) if (Buffer.isBuffer(value)) value.fill(0)
  }
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
