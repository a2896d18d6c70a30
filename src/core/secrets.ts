/**
 * The secrets service behind `secrets list|set|get|delete`: picks the backend, checks its
 * capabilities, and records what the audit log needs.
 */
import type {Backend, SecretMetadata, SetSecretOptions} from './backend.js'
import type {Session} from './session.js'

import {NotSupportedError} from './errors.js'

function require<K extends 'delete' | 'get' | 'list' | 'set'>(
  backend: Backend,
  capability: K,
  what: string,
): NonNullable<Backend[K]> {
  const method = backend[capability]
  if (!backend.capabilities[capability] || !method) throw new NotSupportedError(backend.kind, what)
  return (method as (...args: unknown[]) => unknown).bind(backend) as NonNullable<Backend[K]>
}

export interface SecretList {
  backend: string
  profile: string
  secrets: SecretMetadata[]
}

export async function listSecrets(session: Session, prefix?: string): Promise<SecretList> {
  const profile = await session.profileFor()
  session.noteProfile(profile)
  session.audit.operation = 'list'
  const backend = await session.backendFor(profile)
  const list = require(backend, 'list', 'Listing secrets')
  return {backend: profile.kind, profile: profile.name, secrets: await list(prefix)}
}

export async function setSecret(
  session: Session,
  target: string,
  value: Buffer,
  options: SetSecretOptions,
): Promise<SecretMetadata & {reference: string}> {
  const ref = await session.parseTarget(target)
  session.audit.operation = 'set'
  const {backend} = await session.open(ref)
  const set = require(backend, 'set', 'Storing secrets')
  return {reference: ref.canonical, ...(await set(ref, value, options))}
}

export async function getSecret(
  session: Session,
  target: string,
): Promise<{reference: string; value: Buffer}> {
  const ref = await session.parseTarget(target)
  session.audit.operation = 'get'
  const {backend} = await session.open(ref)
  const get = require(backend, 'get', 'Revealing secret values')
  return {reference: ref.canonical, value: await get(ref)}
}

export async function deleteSecret(session: Session, target: string): Promise<{deleted: string}> {
  const ref = await session.parseTarget(target)
  session.audit.operation = 'delete'
  const {backend} = await session.open(ref)
  await require(backend, 'delete', 'Deleting secrets')(ref)
  return {deleted: ref.canonical}
}
