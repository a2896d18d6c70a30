/**
 * `agentvault login sanctum` (protocols/sanctum.md §9, §12): optionally generate a key, sign in
 * once to prove the settings work, and only then save them in the profile. Nothing secret is
 * stored: the key stays a file the user owns.
 */
import type {BackendContext, LoginResult} from '../../core/backend.js'
import type {SanctumClient} from './client.js'
import type {SanctumOverrides, SanctumSettings} from './settings.js'

import {type StoredProfile, updateConfig} from '../../core/config.js'
import {AgentVaultError, UsageError} from '../../core/errors.js'
import {wipe} from '../../core/sealing.js'
import {describeEndpoint} from './connection.js'
import {defaultKeyPath, generateKeyFile} from './key-file.js'

export interface SanctumLoginInput {
  agent: string
  /** Connect and authenticate with these settings (the passphrase, when read from stdin). */
  connect(passphrase?: Buffer): Promise<SanctumClient>
  context: BackendContext
  generateKey: boolean
  overrides: SanctumOverrides
  /** `--key-passphrase-stdin`: read the `.key.enc` passphrase from stdin. */
  readPassphrase: boolean
  settings: SanctumSettings & {agent: string}
}

async function passphraseFromStdin(): Promise<Buffer> {
  const {readStdin, stripOneNewline} = await import('../../ui/input.js')
  const passphrase = stripOneNewline(await readStdin())
  if (passphrase.length === 0)
    throw new UsageError('SANCTUM_PASSPHRASE_EMPTY', '--key-passphrase-stdin read an empty passphrase', {
      suggestion:
        'Pipe the passphrase: printf %s "$PASSPHRASE" | agentvault login sanctum --key-passphrase-stdin …',
    })
  return passphrase
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
  const passphrase = input.readPassphrase ? await passphraseFromStdin() : undefined
  let client: SanctumClient
  try {
    client = await input.connect(passphrase)
  } catch (error) {
    // A brand-new key is not registered yet: report it and its next step, save nothing.
    if (!generated || !(error instanceof AgentVaultError)) throw error
    lines.push(`Not signed in yet (${error.message}); the profile was not saved.`)
    return {
      details: {agent, endpoint, saved: false, ...keyDetails},
      identity: agent,
      message: lines.join('\n'),
    }
  } finally {
    wipe(passphrase)
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
  lines.push(
    `Signed in to Sanctum at ${endpoint} as agent ${agent} (dialect ${client.dialect}); saved profile ${profile}.`,
  )
  return {
    details: {agent, dialect: client.dialect, endpoint, profile, saved: true, ...keyDetails},
    identity: agent,
    message: lines.join('\n'),
  }
}
