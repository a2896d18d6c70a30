/**
 * `agentvault login sanctum` (protocols/sanctum.md §9, §12): optionally generate a key, sign in
 * once to prove the settings work, and only then save them in the profile. The key stays a file
 * the user owns; a key decrypted from a `.key.enc` is kept in the credential store (seed-store.ts).
 */
import type {BackendContext, LoginResult} from '../../core/backend.js'
import type {SanctumClient} from './client.js'
import type {SanctumOverrides, SanctumSettings} from './settings.js'

import {type StoredProfile, updateConfig} from '../../core/config.js'
import {AgentVaultError} from '../../core/errors.js'
import {describeEndpoint} from './connection.js'
import {defaultKeyPath, generateKeyFile} from './key-file.js'

export interface SanctumLoginInput {
  agent: string
  /** Connect and authenticate with these settings (and the passphrase login was given). */
  connect(): Promise<SanctumClient>
  context: BackendContext
  generateKey: boolean
  /**
   * Once the profile is saved: keep the key decrypted from a `.key.enc` in the credential store
   * (or drop a stale one); resolves to whether one was kept.
   */
  keepKey(): Promise<boolean>
  overrides: SanctumOverrides
  settings: SanctumSettings & {agent: string}
}

export async function login(input: SanctumLoginInput): Promise<LoginResult> {
  const {agent, context, settings} = input
  const endpoint = describeEndpoint(settings.endpoint)
  const lines: string[] = []
  let generated: undefined | {path: string; publicKey: Buffer}
  if (input.generateKey) {
    const path = settings.keyPath ?? defaultKeyPath({agent, keyDir: settings.keyDir})
    generated = {path, publicKey: await generateKeyFile(path)}
    lines.push(
      `Wrote a new Ed25519 key for agent ${agent} to ${path} (mode 0600).`,
      `Public key (hex):    ${generated.publicKey.toString('hex')}`,
      `Public key (base64): ${generated.publicKey.toString('base64')}`,
      `Register this public key for the agent on the vault host (\`sanctum agent register ${agent}\`), then run \`agentvault login sanctum --agent ${agent}\` again.`,
    )
  }

  const keyDetails = generated
    ? {
        generatedKey: generated.path,
        publicKey: generated.publicKey.toString('hex'),
        publicKeyBase64: generated.publicKey.toString('base64'),
      }
    : {}
  let client: SanctumClient
  try {
    client = await input.connect()
  } catch (error) {
    // A brand-new key is not registered yet: report it and its next step, save nothing.
    if (!generated || !(error instanceof AgentVaultError)) throw error
    lines.push(`Not signed in yet (${error.message}); the profile was not saved.`)
    return {
      details: {agent, endpoint, saved: false, ...keyDetails},
      identity: agent,
      message: lines.join('\n'),
    }
  }

  const profile = context.profile.name
  await updateConfig(context.home, (config) => {
    const next: StoredProfile = {...config.profiles[profile], kind: 'sanctum', agent}
    if ('path' in settings.endpoint) {
      delete next.host
      delete next.port
      if (input.overrides.socket || next.socket !== undefined || context.env.SANCTUM_SOCKET)
        next.socket = settings.endpoint.path
    } else {
      delete next.socket
      next.host = settings.endpoint.host
      next.port = settings.endpoint.port
    }

    const keyPath = settings.keyPath ?? (generated ? generated.path : undefined)
    if (keyPath !== undefined && keyPath !== defaultKeyPath({agent, keyDir: settings.keyDir}))
      next.keyPath = keyPath
    if (input.overrides.dialect) next.dialect = settings.dialect
    config.profiles[profile] = next
    config.defaults.sanctum ??= profile
  })
  const keptKey = await input.keepKey()
  lines.push(
    `Signed in to Sanctum at ${endpoint} as agent ${agent} (dialect ${client.dialect}); saved profile ${profile}.`,
  )
  if (keptKey)
    lines.push(
      'Kept the decrypted agent key in the credential store: later commands need no passphrase (`agentvault logout` removes it).',
    )
  return {
    details: {
      agent,
      dialect: client.dialect,
      endpoint,
      profile,
      saved: true,
      ...(keptKey && {keptKey: true}),
      ...keyDetails,
    },
    identity: agent,
    message: lines.join('\n'),
  }
}
