/**
 * `agentvault login openbao` (protocols/openbao.md §8): sign in with a token, userpass or approle,
 * then save the profile's non-secret settings (addresses, namespace, CA, method) in config.json and
 * the token with its metadata in the credential store. Secrets come from a hidden prompt, stdin or
 * env — never argv — and passwords and secret IDs are never stored.
 */
import type {BackendContext, LoginOptions, LoginResult} from '../../core/backend.js'
import type {CredentialStore} from '../../core/credentials.js'
import type {KvV2Client, TokenLookup} from './kv-client.js'

import {type StoredProfile, updateConfig} from '../../core/config.js'
import {AuthError, UsageError} from '../../core/errors.js'
import {isAgentVaultError} from './errors.js'
import {type OpenBaoOverrides, type OpenBaoSettings, resolveOpenBaoSettings} from './settings.js'
import {saveStoredToken, type StoredToken} from './token-store.js'

export interface OpenBaoLoginInput {
  /** A client for `settings`, without a token. */
  client(settings: OpenBaoSettings): Promise<KvV2Client>
  context: BackendContext
  options: LoginOptions
  store(): Promise<CredentialStore>
}

function text(options: LoginOptions, name: string): string | undefined {
  const value = options[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

function list(options: LoginOptions, name: string): string[] | undefined {
  const value = options[name]
  if (typeof value === 'string') return [value]
  return Array.isArray(value) && value.length > 0 ? value : undefined
}

/**
 * A secret input, already read by the command layer (stdin, variable or hidden prompt); its absence
 * here is a caller's mistake reported as the usage error the command layer would give.
 */
function secret(options: LoginOptions, name: string, what: string, flag: string): string {
  const value = options[name]
  if (Buffer.isBuffer(value) && value.length > 0) return value.toString('utf8')
  throw new UsageError('VALUE_REQUIRED', `No ${what} given and prompting is off`, {
    suggestion: `Pipe it with --${flag}; never put it in argv.`,
  })
}

/** A non-secret input the method needs, already read by the command layer. */
function required(options: LoginOptions, name: string, what: string, flag: string): string {
  const value = text(options, name)
  if (value !== undefined) return value
  throw new UsageError('VALUE_REQUIRED', `No ${what} given`, {suggestion: `Pass --${flag}.`})
}

/** Sign in and save; see the module comment. */
export async function loginOpenBao(input: OpenBaoLoginInput): Promise<LoginResult> {
  const {context, options} = input
  const overrides: OpenBaoOverrides = {
    ...(list(options, 'address') ? {addresses: list(options, 'address')} : {}),
    ...(text(options, 'method') ? {authMethod: text(options, 'method')} : {}),
    ...(text(options, 'authMount') ? {authMount: text(options, 'authMount')} : {}),
    ...(text(options, 'caCert') ? {caCert: text(options, 'caCert')} : {}),
    ...(text(options, 'namespace') ? {namespace: text(options, 'namespace')} : {}),
  }
  const settings = resolveOpenBaoSettings(context.profile, context.env, context.home, overrides)
  if (settings.caCertFile !== undefined) {
    const {caFileProblem, readCaFile} = await import('../../core/tls.js')
    const file = settings.caCertFile
    await readCaFile(file).catch((error: unknown) => {
      throw new UsageError(
        'CA_CERT_UNREADABLE',
        `Cannot read the CA certificate file ${caFileProblem(file, error)}`,
        {
          suggestion: 'Give a readable PEM file with --cacert.',
        },
      )
    })
  }

  const client = await input.client(settings)
  const method = settings.authMethod
  let token: string
  let username: string | undefined
  if (method === 'token') {
    token = secret(options, 'token', 'OpenBao token', 'token-stdin')
  } else if (method === 'userpass') {
    username = required(options, 'username', 'OpenBao username', 'username')
    const password = secret(options, 'password', 'OpenBao password', 'password-stdin')
    token = (await client.loginUserpass(settings.authMount, username, password)).client_token
  } else {
    const roleId = required(options, 'roleId', 'OpenBao role ID', 'role-id')
    const secretId = secret(options, 'secretId', 'OpenBao secret ID', 'secret-id-stdin')
    token = (await client.loginAppRole(settings.authMount, roleId, secretId)).client_token
  }

  let lookup: TokenLookup
  try {
    lookup = await client.lookupSelf(token)
  } catch (error) {
    if (isAgentVaultError(error) && error.code === 'AUTH_REQUIRED')
      throw new AuthError('AUTH_FAILED', 'OpenBao does not accept this token (invalid, expired or revoked)', {
        suggestion: 'Check the token, the address and the namespace (--namespace).',
      })
    throw error
  }

  const entry: StoredToken = {
    accessor: lookup.accessor,
    addresses: settings.addresses,
    creation_ttl: lookup.creation_ttl,
    ...(lookup.display_name ? {display_name: lookup.display_name} : {}),
    expire_time: lookup.expire_time,
    method,
    ...(settings.namespace ? {namespace: settings.namespace} : {}),
    policies: lookup.policies,
    renewable: lookup.renewable,
    token,
  }
  const profile = context.profile.name
  await updateConfig(context.home, (config) => {
    const next: StoredProfile = {...config.profiles[profile], kind: 'openbao'}
    delete next.address
    delete next.addresses
    if (settings.addresses.length === 1) next.address = settings.addresses[0]
    else next.addresses = settings.addresses
    if (overrides.namespace !== undefined) next.namespace = settings.namespace
    if (overrides.caCert !== undefined && settings.caCertFile) next.caCert = settings.caCertFile
    if (method !== 'token' || next.authMethod !== undefined) next.authMethod = method
    if (overrides.authMount !== undefined) next.authMount = settings.authMount
    config.profiles[profile] = next
    config.defaults.openbao ??= profile
  })
  await saveStoredToken(await input.store(), profile, entry)

  const identity = lookup.display_name || username || 'token'
  const expiry =
    lookup.expire_time === null ? 'never expires' : `expires ${lookup.expire_time} (ttl ${lookup.ttl}s)`
  return {
    details: {
      addresses: settings.addresses,
      expire_time: lookup.expire_time,
      method,
      ...(settings.namespace ? {namespace: settings.namespace} : {}),
      policies: lookup.policies,
      profile,
      renewable: lookup.renewable,
      ttl: lookup.ttl,
    },
    identity,
    message: `Signed in to OpenBao at ${settings.addresses.join(', ')} as ${identity} (${method}; policies ${lookup.policies.join(', ') || 'none'}; token ${expiry}); saved profile ${profile}.`,
  }
}
