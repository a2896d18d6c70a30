/**
 * Cross-process exclusive locks and atomic file replacement, shared by the local vault, the audit
 * log, config.json and the credential file.
 *
 * Why not a library: proper-lockfile (the usual choice) takes a stale lock over with
 * stat → rmdir → mkdir, and its lock directory is empty, so two waiters that both judged the lock
 * stale can each remove what the other just created and both "hold" it; its release is an
 * unconditional rmdir. Those are exactly the defects we are replacing, so the lock below is built
 * so that every removal is conditional on identity, using only atomic file-system operations:
 *
 * - The lock `NAME.lock` is a DIRECTORY holding exactly one file, the owner's token
 *   `<pid>.<host>.<random>` (unique per acquisition). It appears complete in one step: the owner
 *   makes `NAME.lock.<pid>.<random>.tmp/<token>` and renames that directory onto `NAME.lock`
 *   (rename fails while `NAME.lock` is a non-empty directory, i.e. held).
 * - Release and takeover remove the owner's token with unlink (only one caller can succeed, and only
 *   while that very owner's token is there), then rmdir the directory, which the kernel does only
 *   when it is empty. A directory with no token is never a live lock (a live one always holds its
 *   token), so removing an empty one is always safe — and that is also how a crash between the two
 *   steps heals. Nobody ever removes a lock they merely looked at earlier.
 * - An owner is dead when its token names this host (hostname + boot id) and its pid no longer
 *   exists — reclaimed at once, e.g. after SIGKILL — or when the token's mtime is older than
 *   {@link STALE_MS}: the owner touches it every {@link UPDATE_MS}, so only an owner that is gone
 *   (another host, or a recycled pid) or frozen for 10 s goes stale. An owner whose token vanished
 *   (it was judged stale) has a compromised lock: its next atomic write and its release fail with
 *   LOCK_COMPROMISED instead of carrying on as if nothing happened.
 * - A `NAME.lock` that is a regular file was left by an older agentvault (O_EXCL pid file): it is
 *   removed when empty (a crash before the pid was written) and older than 2 s, or when its pid is
 *   gone or it is older than STALE_MS. unlink never removes a directory, so this can never delete a
 *   current lock.
 */
import {AsyncLocalStorage} from 'node:async_hooks'
import {createHash, randomBytes} from 'node:crypto'
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import {hostname} from 'node:os'
import {basename, dirname, join} from 'node:path'

import {BackendUnavailableError, ConfigError} from './errors.js'

export interface LockOptions {
  /** Give up after this long (default {@link LOCK_TIMEOUT_MS}). */
  timeoutMs?: number
  /**
   * Do not make the lock part of the async context (no AsyncLocalStorage: on Node 20 an enabled
   * one runs a hook on every promise of the process while the lock is held). `fn` then passes the
   * lock it is given to {@link writeFileAtomic} itself. For a hot caller: the `proxy`'s audit.
   */
  untracked?: boolean
}

/** A lock `withFileLock` holds, as `fn` gets it (for {@link writeFileAtomic}'s `locks`). */
export interface HeldFileLock {
  readonly lockPath: string
}

/** A holder refreshes its token's mtime this often. */
export const UPDATE_MS = 1000
/** A token not refreshed for this long belongs to an owner that is gone (or frozen): reclaim it. */
export const STALE_MS = 10_000
/** Waiters give up after this long by default: longer than STALE_MS, so a dead owner on another host is outwaited. */
export const LOCK_TIMEOUT_MS = 15_000
/** A waiter at a terminal says what it waits for after this long (see tellWaiting). */
const WAIT_NOTICE_MS = 2000
/** An empty lock file of the old format this old was left by a crash, not by an owner about to write its pid. */
const LEGACY_EMPTY_GRACE_MS = 2000

const TOKEN = /^(\d+)\.([\da-f]{8})\.[\da-f]+$/
const TEMP = /^(.+)\.(\d+)\.[\da-f]+\.tmp$/

interface HeldLock {
  compromised: boolean
  readonly lockPath: string
  readonly tokenPath: string
}

let hostTagCache: string | undefined
const held = new Set<HeldLock>()
let exitHookInstalled = false
/** The locks the current async context holds (made on first use: no state at import). */
let contextLocks: AsyncLocalStorage<readonly HeldLock[]> | undefined
function currentLocks(): AsyncLocalStorage<readonly HeldLock[]> {
  contextLocks ??= new AsyncLocalStorage()
  return contextLocks
}

/** This machine's identity in tokens: a pid means something only on the host (and boot) that issued it. */
function hostTag(): string {
  if (hostTagCache === undefined) {
    let bootId = ''
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    } catch {
      // Not Linux: the hostname alone (a reboot then looks like the same host; staleness still applies).
    }

    hostTagCache = createHash('sha256').update(`${hostname()}\n${bootId}`).digest('hex').slice(0, 8)
  }

  return hostTagCache
}

function pidIsAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code
}

/** A lock left by a crashed process (or a crash between release's two steps) is removed; live ones never. */
async function reclaimIfDead(lockPath: string): Promise<void> {
  const {readdir, rmdir, stat, unlink} = await import('node:fs/promises')
  let entries: string[]
  try {
    entries = await readdir(lockPath)
  } catch (error) {
    if (code(error) === 'ENOTDIR') await reclaimLegacy(lockPath)
    return // ENOENT: released meanwhile
  }

  for (const entry of entries) {
    const tokenPath = join(lockPath, entry)
    let info: Stats
    try {
      info = await stat(tokenPath)
    } catch {
      continue // released meanwhile
    }

    if (!ownerIsGone(entry, info)) return
    // Only the token we judged is removed: if it is already gone, someone else reclaimed it.
    await unlink(tokenPath).catch(() => {})
    // An owner died: it may have left temporaries too, so the next write looks at the directory again.
    listings.delete(dirname(lockPath))
  }

  // Empty now (or replaced by a new owner's complete lock, in which case rmdir fails: fine).
  await rmdir(lockPath).catch(() => {})
}

function ownerIsGone(token: string, info: Stats): boolean {
  if (Date.now() - info.mtimeMs > STALE_MS) return true
  const match = TOKEN.exec(token)
  return match !== null && match[2] === hostTag() && !pidIsAlive(Number(match[1]))
}

/** An old-format lock (a regular file holding a pid). */
async function reclaimLegacy(lockPath: string): Promise<void> {
  const {lstat, readFile, unlink} = await import('node:fs/promises')
  let text: string
  let info: Stats
  try {
    info = await lstat(lockPath)
    if (!info.isFile()) return
    text = await readFile(lockPath, 'utf8')
  } catch {
    return
  }

  const age = Date.now() - info.mtimeMs
  const pid = Number.parseInt(text, 10)
  const gone = text.trim() === '' ? age > LEGACY_EMPTY_GRACE_MS : age > STALE_MS || !pidIsAlive(pid)
  if (gone) {
    await unlink(lockPath).catch(() => {})
    listings.delete(dirname(lockPath))
  }
}

/**
 * What each directory held when this process first looked (the names only), so that a process's
 * many locks and writes in one directory (a `secrets set`: the vault lock and write, the audit lock
 * and head) read it once. A dead writer's temporaries do not appear after it died, so a listing
 * goes stale only by what this process removed itself or by a writer that died later: that writer
 * held a lock, which the next acquirer reclaims — and a reclaim forgets the listing (see
 * reclaimIfDead), so the next write looks again. Any later process looks afresh.
 */
const listings = new Map<string, string[]>()

/** Remove `NAME.<pid>.<hex>.tmp` files and lock staging directories whose writer is dead. */
function removeDeadTemporaries(directory: string, prefix: string): void {
  let entries = listings.get(directory)
  if (entries === undefined) {
    try {
      entries = readdirSync(directory)
    } catch {
      return
    }

    listings.set(directory, entries)
  }

  for (const entry of entries) {
    const match = TEMP.exec(entry)
    if (!match || match[1] !== prefix) continue
    const pid = Number(match[2])
    if (pid === process.pid || pidIsAlive(pid)) continue
    const path = join(directory, entry)
    try {
      for (const inner of readdirSync(path)) ignoreError(() => unlinkSync(join(path, inner)))
      ignoreError(() => rmdirSync(path))
    } catch {
      ignoreError(() => unlinkSync(path))
    }
  }
}

/**
 * Remove the temporaries `PATH.<pid>.<hex>.tmp` of writers of `path` that are dead, for a file written
 * by other means than {@link writeFileAtomic} (which does this itself): the key file, made with
 * link() so that it is never replaced.
 */
export function removeDeadTemporariesOf(path: string): void {
  removeDeadTemporaries(dirname(path), basename(path))
}

function ignoreError(step: () => void): void {
  try {
    step()
  } catch {
    // gone already, or not ours to remove
  }
}

/** fsync off the event loop (milliseconds on a real disk; a long-lived `proxy` keeps serving meanwhile). */
function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fsync(fd, (error) => (error ? reject(error) : resolve()))
  })
}

/**
 * Synchronous: three metadata calls on a local directory cost microseconds, far less than three
 * trips through the thread pool and the event loop (and nothing here waits on another process).
 */
function tryAcquire(lockPath: string): HeldLock | undefined {
  const random = randomBytes(12).toString('hex')
  const token = `${process.pid}.${hostTag()}.${random.slice(8)}`
  const staging = `${lockPath}.${process.pid}.${random.slice(0, 8)}.tmp`
  mkdirSync(staging, {mode: 0o700})
  try {
    closeSync(openSync(join(staging, token), 'wx', 0o600))
    renameSync(staging, lockPath)
    return {compromised: false, lockPath, tokenPath: join(lockPath, token)}
  } catch (error) {
    ignoreError(() => unlinkSync(join(staging, token)))
    ignoreError(() => rmdirSync(staging))
    // Held (a non-empty directory), or an old-format lock file in the way.
    if (['EEXIST', 'EISDIR', 'ENOTDIR', 'ENOTEMPTY', 'EPERM'].includes(code(error) ?? '')) return undefined
    throw error
  }
}

function releaseSync(lock: HeldLock): void {
  held.delete(lock)
  try {
    unlinkSync(lock.tokenPath)
  } catch {
    return // not ours any more: leave whatever is there alone
  }

  try {
    rmdirSync(lock.lockPath)
  } catch {
    // Already replaced by the next owner (not empty): fine.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // A process that exits (process.exit, a fatal signal handled by us) while holding a lock frees it
  // at once; one that is SIGKILLed is reclaimed by the next waiter through its dead pid.
  process.once('exit', () => {
    for (const lock of held) releaseSync(lock)
  })
}

/** Whether `error` says a lock was taken over while this process held it (see {@link withFileLock}). */
export function isLockCompromised(error: unknown): boolean {
  return error instanceof BackendUnavailableError && error.code === 'LOCK_COMPROMISED'
}

function compromisedError(lockPath: string): BackendUnavailableError {
  return new BackendUnavailableError(
    'LOCK_COMPROMISED',
    `The lock ${lockPath} was taken over by another process while this one held it (this process stalled for more than ${STALE_MS / 1000} s)`,
    {
      details: {lock: lockPath},
      suggestion: 'Run the command again; check that nothing else removes files in the agentvault home.',
    },
  )
}

/**
 * Run `fn` while holding an exclusive lock on `lockPath` (a directory is made at that path). The
 * lock is released whatever happens, and only if it is still ours; a lock that was taken over while
 * `fn` ran makes this reject with LOCK_COMPROMISED (exit 5).
 */
export async function withFileLock<T>(
  lockPath: string,
  fn: (lock: HeldFileLock) => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const started = Date.now()
  const deadline = started + (options.timeoutMs ?? LOCK_TIMEOUT_MS)
  let wait = 2
  let lock: HeldLock | undefined
  let told = false
  for (;;) {
    lock = tryAcquire(lockPath)
    if (lock) break
    await reclaimIfDead(lockPath)
    lock = tryAcquire(lockPath)
    if (lock) break
    if (Date.now() > deadline) throw await lockTimeout(lockPath)
    if (!told && Date.now() - started > WAIT_NOTICE_MS) {
      told = true
      await tellWaiting(lockPath)
    }

    // Back off with jitter so concurrent writers do not retry in lock step.
    await (await import('node:timers/promises')).setTimeout(wait + Math.floor(Math.random() * wait))
    wait = Math.min(wait * 2, 50)
  }

  installExitHook()
  held.add(lock)
  const owned = lock
  const refresh = setInterval(() => {
    const now = new Date()
    import('node:fs/promises')
      .then(({utimes}) => utimes(owned.tokenPath, now, now))
      .catch((error: unknown) => {
        if (code(error) === 'ENOENT') owned.compromised = true
      })
  }, UPDATE_MS)
  refresh.unref()

  removeDeadTemporaries(dirname(lockPath), basename(lockPath))
  let result: T
  try {
    result = options.untracked
      ? await fn(owned)
      : await currentLocks().run([...(currentLocks().getStore() ?? []), owned], () => fn(owned))
  } finally {
    clearInterval(refresh)
    held.delete(owned)
    // With no lock held anywhere in the process, no context needs its store: disabling it turns
    // Node's promise hooks off again (on Node 20 an enabled AsyncLocalStorage taxes every promise
    // of a long-lived `proxy` after its first audit append). The next lock enables it again.
    if (held.size === 0) contextLocks?.disable()
    let stillOurs = true
    try {
      unlinkSync(owned.tokenPath)
    } catch {
      stillOurs = false
    }

    if (stillOurs) ignoreError(() => rmdirSync(lockPath))
    else owned.compromised = true
  }

  if (owned.compromised) throw compromisedError(lockPath)
  return result
}

/**
 * {@link withFileLock} for a read-change-write whose writes all go through {@link writeFileAtomic},
 * which checks right before each rename that the lock is still ours. So once `fn` has returned, its
 * writes were made while the lock was held: a takeover noticed only at release (this process
 * stalled past {@link STALE_MS} after its last rename, and the next owner already built on its
 * file) does not undo them, and reporting a failure would be untrue — the user would make the
 * change again, or look for one that is there. A takeover noticed before a rename still rejects
 * with LOCK_COMPROMISED, with that write not made.
 */
export async function withWriteLock<T>(
  lockPath: string,
  fn: (lock: HeldFileLock) => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  let done: undefined | {result: T}
  try {
    return await withFileLock(
      lockPath,
      async (lock) => {
        const result = await fn(lock)
        done = {result}
        return result
      },
      options,
    )
  } catch (error) {
    if (done && isLockCompromised(error)) return done.result
    throw error
  }
}

/** The pid in the lock's token, when there is one to read. */
async function lockHolder(lockPath: string): Promise<string | undefined> {
  const {readdir} = await import('node:fs/promises')
  const entries = await readdir(lockPath).catch(() => [] as string[])
  return entries.map((entry) => TOKEN.exec(entry)).find((match) => match !== null)?.[1]
}

/**
 * A person at a terminal whose command sits behind another process's lock (a long write, or a
 * holder stopped with Ctrl-Z, taken over only after STALE_MS) is told what it waits for, once.
 * Only on a terminal: scripts and CI logs get no extra lines.
 */
async function tellWaiting(lockPath: string): Promise<void> {
  if (!process.stderr.isTTY) return
  const pid = await lockHolder(lockPath)
  const holder = pid === undefined ? 'another process' : `process ${pid}`
  // The path comes from AGENTVAULT_HOME: no control character of it reaches the terminal.
  const {terminalText} = await import('../ui/errors.js')
  process.stderr.write(
    `${terminalText(`Waiting for ${lockPath}, held by ${holder} (a holder that stays stopped is taken over after ${STALE_MS / 1000} s)…`)}\n`,
  )
}

async function lockTimeout(lockPath: string): Promise<BackendUnavailableError> {
  const pid = await lockHolder(lockPath)
  const holder = pid === undefined ? '' : ` (held by process ${pid})`
  return new BackendUnavailableError('LOCK_TIMEOUT', `Timed out waiting for the lock ${lockPath}${holder}`, {
    details: {lock: lockPath},
    suggestion: `Another agentvault process is writing; wait for it to finish and run the command again.`,
  })
}

/**
 * Throw LOCK_COMPROMISED (exit 5) when a lock this async context holds (or one of `given`) is no
 * longer ours. For a caller that changes a file in place under the lock (the audit log's append):
 * call it right before the change, so that a holder that stalled past {@link STALE_MS} and was
 * taken over changes nothing.
 */
export function assertLocksHeld(given: readonly HeldFileLock[] = []): void {
  for (const lock of [...(contextLocks?.getStore() ?? []), ...(given as readonly HeldLock[])]) {
    if (lock.compromised) throw compromisedError(lock.lockPath)
    if (statSync(lock.tokenPath, {throwIfNoEntry: false}) === undefined) {
      lock.compromised = true
      throw compromisedError(lock.lockPath)
    }
  }
}

/**
 * Replace `path` with `data` atomically: temp file in the same directory, fsync, rename, fsync dir.
 * `path` must not be a symbolic link (see {@link refuseSymlink}). Temp files left by writers that
 * crashed (their pid is gone) are removed first; never one of a live writer.
 */
export async function writeFileAtomic(
  path: string,
  data: Buffer | string,
  mode = 0o600,
  options: {
    /** Locks held outside the async context (`untracked`) that must still be ours at the rename. */
    locks?: readonly HeldFileLock[]
  } = {},
): Promise<void> {
  const temporary = writeTemporarySync(path, data, mode)
  await commitTemporary(temporary, path, options.locks ?? [])
}

/**
 * The first half of {@link writeFileAtomic}, split so a caller can overlap the slow fsync with its
 * own: refuse a link at `path`, clear dead writers' temporaries, write `data` to a fresh temp file
 * beside it (not yet synced). Pass the result to {@link commitTemporary}.
 */
export function writeTemporarySync(path: string, data: Buffer | string, mode = 0o600): Temporary {
  refuseSymlinkSync(path)
  removeDeadTemporaries(dirname(path), basename(path))
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fd = openSync(temporary, 'wx', mode)
  try {
    // open's mode passes through the umask: say exactly what we mean (the rename carries it over).
    fchmodSync(fd, mode)
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    for (let offset = 0; offset < bytes.length;) offset += writeSync(fd, bytes, offset)
  } catch (error) {
    closeSync(fd)
    ignoreError(() => unlinkSync(temporary))
    throw error
  }

  return {fd, path: temporary, synced: false}
}

/** A temp file of {@link writeTemporarySync}: open, written, and synced once {@link syncTemporary} resolved. */
export interface Temporary {
  readonly fd: number
  readonly path: string
  synced: boolean
}

/** fsync a temp file ahead of {@link commitTemporary} (e.g. alongside another file's fsync). */
export async function syncTemporary(temporary: Temporary): Promise<void> {
  await fsyncAsync(temporary.fd)
  temporary.synced = true
}

/** Close and remove a temp file of {@link writeTemporarySync} that will not be committed. */
export function discardTemporary(temporary: Temporary): void {
  ignoreError(() => closeSync(temporary.fd))
  ignoreError(() => unlinkSync(temporary.path))
}

/**
 * The second half of {@link writeFileAtomic}: fsync the temp file, check the locks are still ours,
 * rename it onto `path` and fsync the directory (the rename is then durable). On failure the temp
 * file is removed.
 */
export async function commitTemporary(
  temporary: Temporary,
  path: string,
  locks: readonly HeldFileLock[] = [],
): Promise<void> {
  try {
    try {
      if (!temporary.synced) await syncTemporary(temporary)
    } finally {
      closeSync(temporary.fd)
    }

    assertLocksHeld(locks)
    renameSync(temporary.path, path)
  } catch (error) {
    ignoreError(() => unlinkSync(temporary.path))
    throw error
  }

  await syncDirectory(dirname(path))
}

/**
 * Make the rename durable. Off the event loop: a directory fsync takes milliseconds, which a
 * long-lived process (`proxy`, writing the audit head per batch) would otherwise stall every
 * request for.
 */
async function syncDirectory(directory: string): Promise<void> {
  let fd: number
  try {
    fd = openSync(directory, 'r')
  } catch {
    return
  }

  try {
    await fsyncAsync(fd)
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  } finally {
    closeSync(fd)
  }
}

/**
 * agentvault refuses symbolic links for the files it writes in its home (vault.json, config.json,
 * credentials.enc, vault.key, the audit files): an atomic replace would turn the link into a regular
 * file and leave its target silently stale, and following it would put secrets wherever the link
 * points. The home directory itself may be a link. Throws ConfigError (exit 3) naming both ends.
 */
export async function refuseSymlink(path: string): Promise<void> {
  refuseSymlinkSync(path)
}

/** {@link refuseSymlink}, synchronously (one readlink). */
export function refuseSymlinkSync(path: string): void {
  let target: string
  try {
    target = readlinkSync(path)
  } catch {
    return // missing, or not a link
  }

  throw symlinkError(path, target)
}

function symlinkError(path: string, target: string): ConfigError {
  return new ConfigError(
    'FILE_IS_SYMLINK',
    `${path} is a symbolic link (to ${target}); agentvault does not follow links for the files it writes`,
    {
      details: {path, target},
      suggestion: `Replace the link with the file itself (e.g. \`mv ${target} ${path}\`), or point AGENTVAULT_HOME at the directory that holds it.`,
    },
  )
}

function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a directory'
  if (info.isFIFO()) return 'a FIFO (named pipe)'
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device'
  if (info.isSocket()) return 'a socket'
  return 'not a regular file'
}

/**
 * Read a file of the home with its stats, or undefined when it does not exist. Never hangs and never
 * reads a stream: a FIFO is opened non-blocking and anything but a regular file (FIFO, device,
 * directory, socket) is refused, as is a symbolic link — ConfigError (exit 3) naming the path.
 */
export function readRegularFile(path: string): undefined | {bytes: Buffer; info: Stats} {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW)
  } catch (error) {
    if (code(error) === 'ENOENT') return undefined
    if (code(error) === 'ELOOP') {
      let target = '?'
      try {
        target = readlinkSync(path)
      } catch {
        // keep '?'
      }

      throw symlinkError(path, target)
    }

    throw error
  }

  try {
    const info = fstatSync(fd)
    if (!info.isFile())
      throw new ConfigError('FILE_NOT_REGULAR', `${path} is ${kindOf(info)}, not a regular file`, {
        details: {path},
        suggestion: `Move ${path} aside (agentvault keeps its data in regular files), or point AGENTVAULT_HOME at another directory.`,
      })
    return {bytes: readFileSync(fd), info}
  } finally {
    closeSync(fd)
  }
}

/** {@link readRegularFile}'s bytes: a file of the home, or undefined when it does not exist. */
export function readFileIfExists(path: string): Buffer | undefined {
  return readRegularFile(path)?.bytes
}

/** Create agentvault's home directory (0700) when it is missing. Only writers call this. */
export async function ensureHome(home: string): Promise<void> {
  let created: string | undefined
  try {
    created = mkdirSync(home, {mode: 0o700, recursive: true})
  } catch (error) {
    // EEXIST from a recursive mkdir: something that is not a directory is where the home should be.
    if (code(error) !== 'EEXIST') throw error
    throw new ConfigError('HOME_NOT_DIRECTORY', `The agentvault home ${home} is not a directory`, {
      cause: error,
      details: {path: home},
      suggestion: `Point AGENTVAULT_HOME at a directory, or move ${home} aside so agentvault can create it.`,
    })
  }

  // mkdir's mode passes through the umask; say exactly what we mean on the directory we made.
  if (created !== undefined) chmodSync(home, 0o700)
}
