/**
 * The names shell completion offers at TAB time without running agentvault: the profiles of
 * config.json and the secret names of the local vault, one a line, in `$AGENTVAULT_HOME/completion/`.
 *
 * Names only, never a value: the files are written from lists of names and nothing else. The local
 * vault seals its names (a reader of vault.json sees none), so this cache exists only where the user
 * asked for completion: `agentvault autocomplete` creates the folder, and agentvault keeps the files
 * up to date only while it exists (remove it to stop). Failing to write it never fails a command.
 */
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

export const COMPLETION_DIR = 'completion'
export const PROFILES_FILE = 'profiles'
export const SECRETS_FILE = 'local-secrets'

function completionDir(home: string): string {
  return join(home, COMPLETION_DIR)
}

/** Whether this home keeps the names cache (`agentvault autocomplete` asked for it). */
export function namesCacheEnabled(home: string): boolean {
  return existsSync(completionDir(home))
}

/** Start keeping the names cache in `home` (0700 folder, 0600 files). */
export async function enableNamesCache(home: string): Promise<string> {
  const dir = completionDir(home)
  const {mkdir} = await import('node:fs/promises')
  await mkdir(home, {mode: 0o700, recursive: true})
  await mkdir(dir, {mode: 0o700, recursive: true})
  return dir
}

/** A name that fits on one line of the cache (names with control characters are never offered). */
function storable(name: string): boolean {
  return name !== '' && !/[\u0000-\u001F\u007F]/.test(name)
}

async function readNames(file: string): Promise<string[] | undefined> {
  try {
    const {readFile} = await import('node:fs/promises')
    return (await readFile(file, 'utf8')).split('\n').filter((name) => name !== '')
  } catch {
    return undefined
  }
}

async function writeNames(home: string, fileName: string, names: Iterable<string>): Promise<void> {
  if (!namesCacheEnabled(home)) return
  const file = join(completionDir(home), fileName)
  const sorted = [...new Set([...names].filter((name) => storable(name)))].sort()
  const text = sorted.map((name) => `${name}\n`).join('')
  try {
    if ((await readNames(file))?.join('\n') === sorted.join('\n')) return
    const {rename, unlink, writeFile} = await import('node:fs/promises')
    // Replaced whole (rename): a TAB at the same moment reads the old list or the new one.
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    await writeFile(temporary, text, {mode: 0o600})
    try {
      await rename(temporary, file)
    } catch (error) {
      await unlink(temporary).catch(() => {})
      throw error
    }
  } catch {
    // A cache: completion offers fewer names, the command itself goes on.
  }
}

/** The secret names of the local vault, all of them (after a read of its names). */
export async function recordSecretNames(home: string, names: Iterable<string>): Promise<void> {
  await writeNames(home, SECRETS_FILE, names)
}

/** One name added to or removed from the local vault (a write that opened only that entry). */
export async function changeSecretNames(
  home: string,
  change: {added?: readonly string[]; removed?: readonly string[]},
): Promise<void> {
  if (!namesCacheEnabled(home)) return
  const removed = new Set(change.removed ?? [])
  const current = (await readNames(join(completionDir(home), SECRETS_FILE))) ?? []
  await writeNames(home, SECRETS_FILE, [
    ...current.filter((name) => !removed.has(name)),
    ...(change.added ?? []),
  ])
}

/** The configured profile names (after config.json changed). */
export async function recordProfileNames(home: string, names: Iterable<string>): Promise<void> {
  await writeNames(home, PROFILES_FILE, names)
}
