/**
 * Resolve many references at once: grouped by profile, every profile concurrently, one backend
 * session per profile (product.md §4). When secrets are missing, the error names all of them, not
 * only the first one a backend stumbled on.
 */
import type {Backend} from './backend.js'
import type {SecretReference} from './references.js'
import type {Session} from './session.js'

import {AgentVaultError, NotSupportedError} from './errors.js'

async function readAll(backend: Backend, refs: SecretReference[]): Promise<Array<[string, Buffer]>> {
  if (backend.resolveMany) return [...(await backend.resolveMany(refs))]
  const {get} = backend
  if (!get) throw new NotSupportedError(backend.kind, 'Reading secret values')
  return Promise.all(
    refs.map(async (ref): Promise<[string, Buffer]> => [ref.canonical, await get.call(backend, ref)]),
  )
}

function isNotFound(error: unknown): error is AgentVaultError {
  return error instanceof AgentVaultError && error.category === 'not_found'
}

interface GroupOutcome {
  missing: Array<{error: AgentVaultError; ref: SecretReference}>
  values: Array<[string, Buffer]>
}

/**
 * One profile's references. A backend stops at the first missing secret; only then are the
 * references read one by one, to learn which others are missing too.
 */
async function readGroup(backend: Backend, refs: SecretReference[]): Promise<GroupOutcome> {
  try {
    return {missing: [], values: await readAll(backend, refs)}
  } catch (error) {
    if (!isNotFound(error)) throw error
    if (refs.length === 1) return {missing: [{error, ref: refs[0] as SecretReference}], values: []}
  }

  const settled = await Promise.allSettled(refs.map((ref) => readAll(backend, [ref])))
  const outcome: GroupOutcome = {missing: [], values: []}
  for (const [index, result] of settled.entries()) {
    if (result.status === 'fulfilled') outcome.values.push(...result.value)
    else if (isNotFound(result.reason))
      outcome.missing.push({error: result.reason, ref: refs[index] as SecretReference})
  }

  const failed = settled.find((result) => result.status === 'rejected' && !isNotFound(result.reason))
  if (failed) {
    for (const [, value] of outcome.values) value.fill(0)
    throw (failed as PromiseRejectedResult).reason
  }

  return outcome
}

/** Values keyed by `reference.canonical`. The caller owns the Buffers. */
export async function resolveReferences(
  session: Session,
  references: SecretReference[],
): Promise<Map<string, Buffer>> {
  const opened = await Promise.all(references.map(async (ref) => ({ref, ...(await session.open(ref))})))
  const groups = new Map<string, {backend: Backend; refs: Map<string, SecretReference>}>()
  for (const {backend, profile, ref} of opened) {
    const group = groups.get(profile.name) ?? {backend, refs: new Map()}
    group.refs.set(ref.canonical, ref)
    groups.set(profile.name, group)
  }

  const settled = await Promise.allSettled(
    [...groups.values()].map(({backend, refs}) => readGroup(backend, [...refs.values()])),
  )
  const wipe = (): void => {
    for (const result of settled)
      if (result.status === 'fulfilled') for (const [, value] of result.value.values) value.fill(0)
  }

  const failed = settled.find((result) => result.status === 'rejected')
  if (failed) {
    wipe()
    throw (failed as PromiseRejectedResult).reason
  }

  const outcomes = settled.map((result) => (result as PromiseFulfilledResult<GroupOutcome>).value)
  const missing = outcomes.flatMap((outcome) => outcome.missing)
  if (missing.length === 1) {
    wipe()
    throw (missing[0] as GroupOutcome['missing'][number]).error
  }

  if (missing.length > 1) {
    wipe()
    const names = missing.map(({ref}) => ref.canonical)
    throw new AgentVaultError(
      'not_found',
      'SECRETS_NOT_FOUND',
      `${names.length} secrets not found: ${names.join(', ')}`,
      {
        details: {references: names},
        suggestion: (missing[0] as GroupOutcome['missing'][number]).error.suggestion,
      },
    )
  }

  return new Map(outcomes.flatMap((outcome) => outcome.values))
}
