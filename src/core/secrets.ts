/**
 * The secrets service behind `secrets list|set|get|delete`: picks the backend, checks its
 * capabilities, and records what the audit log needs.
 */
import type {
  Backend,
  BackendKind,
  DeleteOptions,
  GetOptions,
  ListOptions,
  MetadataChanges,
  RenameOptions,
  SecretMetadata,
  SecretVersions,
  SetSecretOptions,
  WrapResult,
} from './backend.js'
import type {Session} from './session.js'

import {AgentVaultError, NotSupportedError, UsageError} from './errors.js'
import {
  checkMountAllowed,
  looksLikeReference,
  parseFolderReference,
  type SecretReference,
} from './references.js'

function require<K extends 'delete' | 'get' | 'list' | 'set'>(
  backend: Backend,
  capability: K,
  what: string,
  reference?: SecretReference,
): NonNullable<Backend[K]> {
  const method = backend[capability]
  if (!backend.capabilities[capability] || !method) {
    const explained =
      (capability === 'set' || capability === 'delete' || capability === 'get') &&
      backend.explainUnsupported?.(capability, reference)
    throw explained || new NotSupportedError(backend.kind, what)
  }

  return (method as (...args: unknown[]) => unknown).bind(backend) as NonNullable<Backend[K]>
}

export interface SecretList {
  backend: string
  profile: string
  secrets: SecretMetadata[]
}

/**
 * List a profile's secrets. A PREFIX given as a reference picks its kind's profile (and
 * `?profile=`); for versioned backends it names a folder (openbao: `openbao://secret/myapp`, or a
 * mount root), checked against the profile's mount guard.
 */
export async function listSecrets(
  session: Session,
  prefix?: string,
  options: ListOptions = {},
): Promise<SecretList> {
  session.audit.operation = 'list'
  if (prefix !== undefined && looksLikeReference(prefix)) {
    const folder = parseFolderReference(prefix)
    const profile = await session.profileFor(folder.kind, folder.profile)
    const mounts = profile.settings.allowedMounts
    checkMountAllowed(folder, Array.isArray(mounts) ? (mounts as string[]) : undefined)
    session.noteProfile(profile)
    const backend = await session.backendFor(profile)
    const list = require(backend, 'list', 'Listing secrets')
    const scope = backend.capabilities.versioned ? folder.canonical : folder.path
    return {backend: profile.kind, profile: profile.name, secrets: await list(scope, options)}
  }

  const profile = await session.profileFor()
  session.noteProfile(profile)
  const backend = await session.backendFor(profile)
  const list = require(backend, 'list', 'Listing secrets')
  return {backend: profile.kind, profile: profile.name, secrets: await list(prefix, options)}
}

/** Flags only versioned backends (openbao KV v2) understand. */
function requireVersioned(backend: Backend, what: string): void {
  if (!backend.capabilities.versioned)
    throw new NotSupportedError(
      backend.kind,
      what,
      'Versions, check-and-set and wrapping exist on openbao (KV v2) profiles.',
    )
}

/** Limits the secrets service enforces for every backend. */
export interface SetLimits {
  /** The largest value accepted, in bytes (default DEFAULT_MAX_VALUE_BYTES, 1 MiB). */
  maxValueBytes?: number
}

/**
 * Check that `target` can be stored — reference, profile, mount guard, capability — before the
 * value is read, so a backend that cannot store never receives (or prompts for) it. Resolves to
 * the function that stores the value; it refuses a value over `limits.maxValueBytes` whatever the
 * backend (the command reads no further than that in the first place).
 */
export async function prepareSet(
  session: Session,
  target: string,
  options: SetSecretOptions,
  limits: SetLimits = {},
): Promise<(value: Buffer) => Promise<SecretMetadata & {reference: string}>> {
  const ref = await session.parseTarget(target)
  session.audit.operation = 'set'
  const {backend} = await session.open(ref)
  const set = require(backend, 'set', 'Storing secrets', ref)
  if (options.cas !== undefined || options.json) requireVersioned(backend, '--cas and --json-stdin')
  const {checkValueSize, DEFAULT_MAX_VALUE_BYTES} = await import('./value-size.js')
  const maxBytes = limits.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES
  return async (value) => {
    checkValueSize(value.length, maxBytes)
    return {reference: ref.canonical, ...(await set(ref, value, options))}
  }
}

export async function getSecret(
  session: Session,
  target: string,
  options: GetOptions = {},
): Promise<{reference: string; value: Buffer}> {
  const ref = await session.parseTarget(target)
  session.audit.operation = 'get'
  const {backend} = await session.open(ref)
  const get = require(backend, 'get', 'Revealing secret values', ref)
  return {reference: ref.canonical, value: await get(ref, {...options, whole: true})}
}

/** `secrets get REF` without --reveal on a backend that never reveals values (agentsecrets). */
export interface SecretPresence {
  /** What the backend says about it (never the value), e.g. the environment it is in. */
  description?: string
  present: true
  reference: string
}

/**
 * For backends that never hand out values (capabilities `get: false`) and can say whether a secret
 * exists (`describe`): that answer, or a not-found error. Undefined for every other backend — the
 * caller then insists on --reveal, and nothing was opened or sent.
 */
export async function secretPresence(session: Session, target: string): Promise<SecretPresence | undefined> {
  const ref = await session.parseTarget(target)
  const profile = await session.profileFor(ref.kind, ref.profile)
  const backend = await session.backendFor(profile)
  if (backend.capabilities.get || !backend.describe) return undefined
  session.audit.operation = 'describe'
  await session.noteReference(ref, profile)
  const metadata = await backend.describe(ref)
  return {
    ...(metadata.description === undefined ? {} : {description: metadata.description}),
    present: true,
    reference: ref.canonical,
  }
}

/** What `secrets delete` did: versioned backends say which versions and whether it can be undone. */
export interface DeleteOutcome {
  deleted: string
  /** Versioned backends: current (soft), versions (soft), destroy, all-versions. */
  mode?: 'all-versions' | 'current' | 'destroy' | 'versions'
  /** Versioned backends: a soft delete can be undone (`bao kv undelete`). */
  reversible?: boolean
  versions?: number[]
}

function hasDeleteOptions(options: DeleteOptions): boolean {
  return options.allVersions === true || options.destroy === true || options.versions !== undefined
}

/**
 * Whether deleting `target` with `options` can be undone — only a versioned backend's soft delete
 * can — so the command knows whether to ask for confirmation. Nothing is sent anywhere.
 */
export async function deletionIsReversible(
  session: Session,
  target: string,
  options: DeleteOptions,
): Promise<boolean> {
  const ref = await session.parseTarget(target)
  const profile = await session.profileFor(ref.kind, ref.profile)
  const backend = await session.backendFor(profile)
  return backend.capabilities.versioned === true && !options.destroy && !options.allVersions
}

export async function deleteSecret(
  session: Session,
  target: string,
  options: DeleteOptions = {},
): Promise<DeleteOutcome> {
  const ref = await session.parseTarget(target)
  session.audit.operation = 'delete'
  const {backend} = await session.open(ref)
  const remove = require(backend, 'delete', 'Deleting secrets', ref)
  if (hasDeleteOptions(options)) requireVersioned(backend, '--versions, --destroy and --all-versions')
  await remove(ref, options)
  if (!backend.capabilities.versioned) return {deleted: ref.canonical}
  const versions = options.versions ?? (ref.version === undefined ? undefined : [ref.version])
  const mode = options.allVersions
    ? 'all-versions'
    : options.destroy
      ? 'destroy'
      : versions
        ? 'versions'
        : 'current'
  return {
    deleted: ref.canonical,
    mode,
    reversible: mode === 'current' || mode === 'versions',
    ...(versions ? {versions} : {}),
  }
}

/** `secrets versions REF`: the version history of a versioned secret (metadata only). */
export async function secretVersions(session: Session, target: string): Promise<SecretVersions> {
  const ref = await session.parseTarget(target)
  session.audit.operation = 'versions'
  const {backend} = await session.open(ref)
  if (!backend.capabilities.versionHistory) requireVersioned(backend, 'Version history')
  return (backend.versions as NonNullable<Backend['versions']>).call(backend, ref)
}

/** `secrets rollback REF --version N`: version N's value becomes the current value (a new version). */
export async function rollbackSecret(
  session: Session,
  target: string,
  version: number,
): Promise<SecretMetadata & {reference: string; rolledBackTo: number}> {
  const ref = await session.parseTarget(target)
  session.audit.operation = 'rollback'
  const {backend} = await session.open(ref)
  if (!backend.capabilities.versionHistory || !backend.rollback)
    throw new NotSupportedError(
      backend.kind,
      'Rollback',
      backend.capabilities.versioned
        ? 'On openbao, read the old version with ?version=N and set it again.'
        : 'The local backend keeps previous values; other backends do not.',
    )
  if (ref.version !== undefined)
    throw new UsageError(
      'ROLLBACK_VERSION',
      'Give the version with --version, not as ?version= in the reference',
      {
        suggestion: `agentvault secrets rollback ${ref.canonical.replace(/[?&]version=\d+/, '')} --version ${ref.version}`,
      },
    )
  const metadata = await backend.rollback(ref, version)
  return {reference: ref.canonical, rolledBackTo: version, ...metadata}
}

/** `secrets get REF --wrap-ttl D`: a single-use wrapping token instead of the value. */
export async function wrapSecret(
  session: Session,
  target: string,
  ttl: string,
): Promise<WrapResult & {reference: string}> {
  const ref = await session.parseTarget(target)
  session.audit.operation = 'wrap'
  const {backend} = await session.open(ref)
  requireVersioned(backend, 'Response wrapping')
  const wrap = backend.wrap as NonNullable<Backend['wrap']>
  return {reference: ref.canonical, ...(await wrap.call(backend, ref, ttl))}
}

export interface UnwrapRequest {
  /** Refuse a token not made for this reference (its profile is used). */
  expect?: string
  field?: string
  /** The kind whose default profile unwraps when neither --expect nor --profile says. */
  kind: BackendKind
}

/** `secrets unwrap`: the value a wrapping token stands for, once. */
export async function unwrapSecret(
  session: Session,
  wrappingToken: string,
  request: UnwrapRequest,
): Promise<{reference?: string; value: Buffer}> {
  session.audit.operation = 'unwrap'
  let backend: Backend
  let expect: SecretReference | undefined
  if (request.expect === undefined) {
    const profile = await session.profileFor(request.kind)
    session.noteProfile(profile)
    backend = await session.backendFor(profile)
  } else {
    expect = await session.parseTarget(request.expect)
    backend = (await session.open(expect)).backend
  }

  requireVersioned(backend, 'Unwrapping')
  const unwrap = backend.unwrap as NonNullable<Backend['unwrap']>
  const value = await unwrap.call(backend, wrappingToken, {
    ...(expect ? {expect} : {}),
    ...(request.field === undefined ? {} : {field: request.field}),
  })
  return {...(expect ? {reference: expect.canonical} : {}), value}
}

/**
 * The current version of `target`, when it exists and the backend numbers versions (local,
 * openbao): `secrets set` on a terminal says which version it replaces. Undefined otherwise; never
 * fails for a secret that does not exist yet.
 */
export async function existingVersion(session: Session, target: string): Promise<number | undefined> {
  const ref = await session.parseTarget(target)
  const profile = await session.profileFor(ref.kind, ref.profile)
  const backend = await session.backendFor(profile)
  if (!backend.describe || !backend.capabilities.get) return undefined
  try {
    return (await backend.describe(ref)).version
  } catch (error) {
    if (error instanceof AgentVaultError && error.category === 'not_found') return undefined
    throw error
  }
}

/** `secrets edit`: change metadata without re-entering (or reading) the value. */
export async function editSecret(
  session: Session,
  target: string,
  changes: MetadataChanges,
): Promise<SecretMetadata & {reference: string}> {
  if (changes.description === undefined && changes.tags === undefined && changes.allowedDomains === undefined)
    throw new UsageError('NOTHING_TO_EDIT', 'Nothing to change', {
      suggestion: 'Give --description, --tag or --allow-domain.',
    })
  const ref = await session.parseTarget(target)
  session.audit.operation = 'edit'
  const {backend} = await session.open(ref)
  if (!backend.updateMetadata)
    throw new NotSupportedError(
      backend.kind,
      'Editing metadata',
      'Store the value again with the new metadata: agentvault secrets set NAME --description …',
    )
  return {reference: ref.canonical, ...(await backend.updateMetadata(ref, changes))}
}

/** `secrets rename OLD NEW`: same profile, value, version and metadata; a new name. */
export async function renameSecret(
  session: Session,
  from: string,
  to: string,
  options: RenameOptions,
): Promise<SecretMetadata & {from: string; reference: string}> {
  const source = await session.parseTarget(from)
  const target = await session.parseTarget(
    to.includes('://') ? to : `${source.scheme}://${to}${source.profile ? `?profile=${source.profile}` : ''}`,
  )
  session.audit.operation = 'rename'
  const {backend, profile} = await session.open(source)
  const targetProfile = await session.profileFor(target.kind, target.profile)
  if (targetProfile.name !== profile.name)
    throw new UsageError(
      'RENAME_ACROSS_PROFILES',
      `${source.canonical} and ${target.canonical} are in different profiles`,
      {
        suggestion: `Rename within one profile, or copy it across and delete the old one: \`agentvault secrets get ${shellWord(source.canonical)} --reveal | agentvault secrets set ${shellWord(target.canonical)}\`, then \`agentvault secrets delete ${shellWord(source.canonical)}\`.`,
      },
    )
  if (target.kind === source.kind && target.path === source.path)
    throw new UsageError('RENAME_SAME_NAME', `${source.canonical} is already named so: nothing to rename`, {
      suggestion: 'Give the new name as the second argument: `agentvault secrets rename OLD NEW`.',
    })
  await session.noteReference(target, profile)
  if (!backend.rename)
    throw new NotSupportedError(
      backend.kind,
      'Renaming secrets',
      'Store it under the new name with `secrets set`, then delete the old one.',
    )
  return {
    from: source.canonical,
    reference: target.canonical,
    ...(await backend.rename(source, target, options)),
  }
}

/** A reference as one shell word: quoted when it holds `?`, `&` or other characters a shell expands. */
function shellWord(text: string): string {
  return /^[\w:/.@#+=,-]+$/.test(text) ? text : `'${text.replaceAll("'", String.raw`'\''`)}'`
}
