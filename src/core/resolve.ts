/**
 * Resolve many references at once: grouped by profile, every profile concurrently, one backend
 * session per profile (product.md §4).
 */
import type {Backend} from './backend.js'
import type {SecretReference} from './references.js'
import type {Session} from './session.js'

import {NotSupportedError} from './errors.js'

async function readAll(backend: Backend, refs: SecretReference[]): Promise<Array<[string, Buffer]>> {
  if (backend.resolveMany) return [...(await backend.resolveMany(refs))]
  const {get} = backend
  if (!get) throw new NotSupportedError(backend.kind, 'Reading secret values')
  return Promise.all(
    refs.map(async (ref): Promise<[string, Buffer]> => [ref.canonical, await get.call(backend, ref)]),
  )
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

  const results = await Promise.all(
    [...groups.values()].map(({backend, refs}) => readAll(backend, [...refs.values()])),
  )
  return new Map(results.flat())
}
