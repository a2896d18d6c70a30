/**
 * Ready-made OpenBao test clusters for unit and e2e tests: a seeded state (root, read-only and
 * read-write tokens, a userpass user, an approle, canary secrets), single nodes over HTTP or
 * HTTPS (a throwaway test CA made at test time, test/helpers/test-ca.ts), and HA clusters of several nodes.
 */
import {readFileSync} from 'node:fs'

import {sharedTestCertificates} from '../../helpers/test-ca.js'
import {type NodeMode, type OpenBaoServerOptions, OpenBaoTestServer, ServerState} from './server.js'

/** The CA that signed the HTTPS nodes' certificate, and one that signed nothing (PEM files). */
export function caFiles(): {ca: string; otherCa: string} {
  const {ca, otherCa} = sharedTestCertificates()
  return {ca, otherCa}
}

/** Values that must never show up outside the server and a revealed stdout. */
export const CANARY = 'canary-openbao-3d9e71c0b5'
export const PASSWORD = 'canary-password-8c21f7'
export const SECRET_ID = 'canary-secret-id-4b0e6a'
export const ROLE_ID = 'role-id-ci-1'
export const USERNAME = 'alice'
export const BULK_PATHS = 10
export const BULK_FIELDS = 5
export const bulkPath = (i: number): string => `bulk/key-${String(i).padStart(2, '0')}`
export const bulkValue = (i: number, f: number): string => `${CANARY}-bulk-${i}-${f}`

export interface SeededTokens {
  /** Read and list on `secret/`; no writes. */
  reader: string
  root: string
  /** Everything on `secret/`. */
  writer: string
}

/** Seed `state` with the standard policies, tokens, logins and secrets; returns the tokens. */
export function seedStandard(state: ServerState): SeededTokens {
  state.setPolicy('reader', [
    {path: 'secret/data/*', capabilities: ['read']},
    {path: 'secret/metadata/*', capabilities: ['read', 'list']},
  ])
  state.setPolicy('writer', [
    {path: 'secret/*', capabilities: ['create', 'read', 'update', 'delete', 'list']},
  ])
  state.addUser(USERNAME, {password: PASSWORD, policies: ['writer'], ttl: 1800})
  state.addAppRole({name: 'ci', policies: ['reader'], roleId: ROLE_ID, secretIds: [SECRET_ID], ttl: 1200})
  state.putSecret('secret', 'myapp/api', {token: CANARY, user: 'svc', port: 8443})
  state.putSecret('secret', 'myapp/db', {password: `${CANARY}-db`})
  for (let i = 0; i < BULK_PATHS; i++) {
    const data: Record<string, string> = {}
    for (let f = 0; f < BULK_FIELDS; f++) data[`f${f}`] = bulkValue(i, f)
    state.putSecret('secret', bulkPath(i), data)
  }

  return {
    reader: state.createToken({displayName: 'token-reader', policies: ['reader']}).id,
    root: state.createToken({root: true}).id,
    writer: state.createToken({displayName: 'token-writer', policies: ['writer']}).id,
  }
}

export function tlsOptions(): NonNullable<OpenBaoServerOptions['tls']> {
  const {cert, key} = sharedTestCertificates()
  return {cert: readFileSync(cert), key: readFileSync(key)}
}

/** One active node with the standard seed. */
export async function startSeededServer(
  options: {name?: string; tls?: boolean} = {},
): Promise<{server: OpenBaoTestServer; tokens: SeededTokens}> {
  const state = new ServerState()
  const tokens = seedStandard(state)
  const server = await new OpenBaoTestServer({
    name: options.name ?? 'active',
    state,
    ...(options.tls ? {tls: tlsOptions()} : {}),
  }).listen()
  return {server, tokens}
}

/** Start a further node sharing `state` (a sealed node, a standby, a redirector…). */
export async function startNode(
  state: ServerState,
  name: string,
  mode: NodeMode,
  tls = false,
): Promise<OpenBaoTestServer> {
  return new OpenBaoTestServer({mode, name, state, ...(tls ? {tls: tlsOptions()} : {})}).listen()
}
