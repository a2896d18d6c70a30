/**
 * Cross-process exclusive locks and atomic file replacement, shared by the local vault, the audit
 * log and the credential file. A lock is a file created with O_EXCL holding the owner's pid; a lock
 * whose owner is gone is taken over, so a crashed writer never blocks the vault for good.
 */
import {randomBytes} from 'node:crypto'
import {closeSync, fsyncSync, openSync, readFileSync} from 'node:fs'
import {chmod, mkdir, open, readFile, rename, unlink} from 'node:fs/promises'
import {dirname} from 'node:path'
import {setTimeout as delay} from 'node:timers/promises'

import {BackendUnavailableError} from './errors.js'

export interface LockOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number
}

function ownerIsAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function removeIfStale(lockPath: string): Promise<void> {
  let owner: number
  try {
    owner = Number.parseInt(await readFile(lockPath, 'utf8'), 10)
  } catch {
    return // vanished meanwhile, or being written: try again
  }

  if (Number.isNaN(owner)) return // the owner has created but not yet written it
  if (!ownerIsAlive(owner)) await unlink(lockPath).catch(() => {})
}

/** Run `fn` while holding an exclusive lock on `lockPath`; the lock is released whatever happens. */
export async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  let wait = 2
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', 0o600)
      try {
        await handle.writeFile(String(process.pid))
      } finally {
        await handle.close()
      }

      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      await removeIfStale(lockPath)
      if (Date.now() > deadline)
        throw new BackendUnavailableError('LOCK_TIMEOUT', `Timed out waiting for the lock ${lockPath}`, {
          suggestion: `Another agentvault process is writing; if none is running, remove ${lockPath}.`,
        })
      // Back off with jitter so concurrent writers do not retry in lock step.
      await delay(wait + Math.floor(Math.random() * wait))
      wait = Math.min(wait * 2, 50)
    }
  }

  try {
    return await fn()
  } finally {
    await unlink(lockPath).catch(() => {})
  }
}

/** Replace `path` with `data` atomically: temp file in the same directory, fsync, rename, fsync dir. */
export async function writeFileAtomic(path: string, data: Buffer | string, mode = 0o600): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const handle = await open(temporary, 'wx', mode)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } catch (error) {
    await handle.close()
    await unlink(temporary).catch(() => {})
    throw error
  }

  await handle.close()
  try {
    await rename(temporary, path)
  } catch (error) {
    await unlink(temporary).catch(() => {})
    throw error
  }

  syncDirectory(dirname(path))
}

function syncDirectory(directory: string): void {
  try {
    const fd = openSync(directory, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

/** Read a file, or undefined when it does not exist. */
export function readFileIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Create agentvault's home directory (0700) when it is missing. Only writers call this. */
export async function ensureHome(home: string): Promise<void> {
  const created = await mkdir(home, {mode: 0o700, recursive: true})
  // mkdir's mode passes through the umask; say exactly what we mean on the directory we made.
  if (created !== undefined) await chmod(home, 0o700)
}
