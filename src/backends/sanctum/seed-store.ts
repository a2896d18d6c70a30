/**
 * The agent key `login sanctum` decrypted from a `.key.enc`, kept in the credential store (the OS
 * keychain, else the encrypted credentials file) as the other backends keep their tokens: later
 * commands sign in without the passphrase. The entry names the file and its fingerprint, so it is
 * used for that exact file only; `logout` removes it. Never the passphrase.
 */
import type {BackendContext} from '../../core/backend.js'
import type {CredentialStore} from '../../core/credentials.js'
import type {RememberedSeed} from './key-file.js'

/** The credential-store account of a profile's kept key. */
export const seedAccount = (profile: string): string => `sanctum:${profile}`

export async function openSeedStore(context: BackendContext): Promise<CredentialStore> {
  const {openCredentialStore} = await import('../../core/credentials.js')
  return openCredentialStore({env: context.env, home: context.home, warn: (message) => context.warn(message)})
}

/** Keep `seed` (hex, in the store's sealed entry) for `keyFile` with that file's fingerprint. */
export async function saveSeed(
  store: CredentialStore,
  profile: string,
  entry: RememberedSeed & {keyFile: string},
): Promise<void> {
  const hex = entry.seed.toString('hex')
  await store.set(
    seedAccount(profile),
    JSON.stringify({fingerprint: entry.fingerprint, keyFile: entry.keyFile, seed: hex}),
  )
}

/** The kept key of `profile` when it was kept for `keyFile`; a damaged entry counts as none. */
export async function readSeed(
  store: CredentialStore,
  profile: string,
  keyFile: string,
): Promise<RememberedSeed | undefined> {
  const text = await store.get(seedAccount(profile))
  if (text === undefined) return undefined
  let entry: unknown
  try {
    entry = JSON.parse(text)
  } catch {
    return undefined
  }

  if (typeof entry !== 'object' || entry === null) return undefined
  const {fingerprint, keyFile: file, seed} = entry as Record<string, unknown>
  if (file !== keyFile || typeof fingerprint !== 'string' || typeof seed !== 'string') return undefined
  if (!/^[0-9a-f]{64}$/.test(seed)) return undefined
  return {fingerprint, seed: Buffer.from(seed, 'hex')}
}
