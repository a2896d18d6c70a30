/**
 * The local audit trail (product.md §8): an append-only JSON-lines log whose records form a
 * SHA-256 hash chain, plus reading, filtering, following and verification.
 *
 * On-disk format, all in `$AGENTVAULT_HOME` (0700; files 0600):
 * - `audit.log`: one record per line, each line the canonical JSON (keys sorted, no whitespace) of an
 *   {@link AuditRecord} without `source`. `seq` counts from 1, `prev` is the previous record's `hash`
 *   (64 zeros for the first), `hash` is the SHA-256 hex of the canonical JSON of the record without
 *   `hash`. Because lines are canonical, verification compares bytes: any byte change is caught.
 * - `audit.head`: `{"hash":…,"seq":…}` of the last record, replaced atomically after each append, so
 *   that removing the last line(s) — which leaves a perfectly valid shorter chain — is detected.
 * - `audit.lock`: held (via withFileLock) while appending, so concurrent processes keep one chain.
 * - `audit.salt`: the per-installation salt for `resource_ref` (protocols/openbao.md §2).
 *
 * The chain is tamper-evident, not tamper-proof: whoever can write the directory can rewrite the
 * whole log and head consistently. It catches edits, deletions, reordering and truncation.
 */
import {hash as oneShotHash, randomBytes} from 'node:crypto'
import {
  closeSync,
  createReadStream,
  existsSync,
  fchmodSync,
  fdatasync,
  constants as fsConstants,
  fstatSync,
  type FSWatcher,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  watch,
  writeSync,
} from 'node:fs'
import {join} from 'node:path'

import {ConfigError, InternalError, UsageError} from './errors.js'
import {
  assertLocksHeld,
  commitTemporary,
  discardTemporary,
  ensureHome,
  type HeldFileLock,
  isLockCompromised,
  readFileIfExists,
  refuseSymlinkSync,
  syncTemporary,
  type Temporary,
  withFileLock,
  writeFileAtomic,
  writeTemporarySync,
} from './file-lock.js'

/** One audited command, as the command layer reports it. Never carries a secret value. */
export interface AuditEvent {
  /** When the command started, ISO 8601. */
  time: string
  /** The command id as typed, space separated: `secrets get`, `run`, `call`. */
  command: string
  outcome: 'denied' | 'error' | 'ok'
  exit_code: number
  duration_ms: number
  profile?: string
  backend?: string
  /** Reference names (`local://NAME`, `openbao+kv2://…`), never values. */
  references?: string[]
  /** HMAC refs used instead of `references` when the profile sets `auditPaths: "ref"`. */
  resource_refs?: string[]
  /** Use-not-retrieve operation (`http_request`, `sign`, …). */
  operation?: string
  target_host?: string
  /** AgentVaultError code when the outcome is not ok. */
  error_code?: string
  /** HTTP status of a `call`/`use` request. */
  status?: number
  /** `mcp`: the tool the client called (`http_request`, `use_secret`, …). */
  tool?: string
  /** `mcp`: the client's name/version from its `initialize` request. */
  client?: string
  /** The calling agent's own name for itself (`proxy`: the `X-AS-Agent-ID` header); not verified. */
  agent_id?: string
}

/** An {@link AuditEvent} as stored in the chain. */
export interface AuditRecord extends AuditEvent {
  /** 1 for the first record, then +1. */
  seq: number
  /** The previous record's `hash`; 64 zeros for the first. */
  prev: string
  /** SHA-256 hex of the canonical JSON of this record without `hash`. */
  hash: string
  /** Where the record came from; set when reading (`local` for this log), never stored. */
  source?: string
}

/** Criteria for `agentvault audit`; every given criterion must match. */
export interface AuditFilter {
  /** Inclusive lower bound on `time`. */
  since?: Date
  /** Inclusive upper bound on `time`. */
  until?: Date
  /** Case-sensitive substring of a reference (so a bare name matches its reference) or of a resource_ref. */
  secret?: string
  status?: 'denied' | 'error' | 'ok'
  /** A command id, or its leading words: `secrets` matches `secrets get`. */
  command?: string
  backend?: string
  profile?: string
  /** Keep only the most recent N records (readAudit only). */
  limit?: number
}

/** Result of {@link verifyAudit}. */
export interface AuditVerification {
  ok: boolean
  /** Records verified good: all of them when ok, those before the first bad entry otherwise. */
  count: number
  /**
   * The first bad entry: its 1-based line in audit.log and its seq (the one written on the line when
   * readable; for entries missing at the end, the first missing seq).
   */
  firstBad?: {line: number; reason: string; seq?: number}
  /**
   * The log ends with the start of a line and no record: an append was cut short (the process was
   * killed in its write, or the disk filled). Not a break: no record is missing, the next append
   * removes it.
   */
  interrupted?: {line: number; reason: string}
}

export const AUDIT_LOG_FILE = 'audit.log'
export const AUDIT_HEAD_FILE = 'audit.head'
export const AUDIT_LOCK_FILE = 'audit.lock'
export const AUDIT_SALT_FILE = 'audit.salt'

/** `prev` of the first record. */
export const GENESIS_HASH = '0'.repeat(64)

const HEX64 = /^[\da-f]{64}$/
const NEWLINE = 0x0a
/** How much of the log's end an append reads at a time to find the previous record. */
const TAIL_CHUNK = 64 * 1024

interface ChainPoint {
  hash: string
  seq: number
}

/**
 * Append one event to `$home/audit.log` and return the stored record. Safe against concurrent
 * appends from other processes; this process's own concurrent appends go in batches (see
 * waitingAppends). Only the fields of {@link AuditEvent} are stored: anything else on
 * the object (a careless spread of a resolved secret, say) never reaches the disk.
 */
export function appendAudit(home: string, event: AuditEvent): Promise<AuditRecord> {
  return new Promise((resolve, reject) => {
    let queue = waitingAppends.get(home)
    if (!queue) {
      queue = []
      waitingAppends.set(home, queue)
    }

    queue.push({event, reject, resolve})
    if (queue.length === 1 && !appending.has(home)) appendWaiting(home).catch(() => {})
  })
}

interface WaitingAppend {
  event: AuditEvent
  reject(error: unknown): void
  resolve(record: AuditRecord): void
}

/**
 * Appends of this process, per home, waiting for the one under way. One process's appends never
 * contend for the file lock among themselves (a long-lived `mcp` finishing hundreds of tool calls
 * at once had them poll the lock until they gave up, losing their events): they go one batch at a
 * time, each batch taking every event that arrived meanwhile, in order, under one lock.
 */
const waitingAppends = new Map<string, WaitingAppend[]>()
const appending = new Set<string>()

async function appendWaiting(home: string): Promise<void> {
  appending.add(home)
  try {
    for (;;) {
      const batch = waitingAppends.get(home)?.splice(0) ?? []
      if (batch.length === 0) break
      await appendWaitingBatch(home, batch)
    }
  } finally {
    appending.delete(home)
    waitingAppends.delete(home)
  }
}

async function appendWaitingBatch(home: string, batch: readonly WaitingAppend[]): Promise<void> {
  try {
    const records = await appendAuditBatch(
      home,
      batch.map((item) => item.event),
    )
    for (const [index, item] of batch.entries()) item.resolve(records[index] as AuditRecord)
  } catch (error) {
    if (batch.length === 1) {
      batch[0]!.reject(error)
      return
    }

    // A failed batch wrote nothing: each event is then tried alone, failing (or not) as its own.
    for (const item of batch) await appendWaitingBatch(home, [item])
  }
}

/**
 * Append several events in order under one lock, with one write, one fsync and one head update
 * (a long-lived `proxy` under load): the same chain as appending them one by one. Returns the
 * stored records; an empty list writes nothing.
 */
export async function appendAuditBatch(home: string, events: readonly AuditEvent[]): Promise<AuditRecord[]> {
  if (events.length === 0) return []
  // Checked before the lock is taken; each attempt gets fresh copies (appendLocked completes them).
  let fields = events.map((event) => pickEventFields(event))
  await ensureHome(home)
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) fields = events.map((event) => pickEventFields(event))
    const progress: AppendProgress = {}
    try {
      // Untracked: a busy `proxy` appends batch after batch, and a tracked lock would keep Node 20's
      // promise hooks on for all of its requests; the lock goes to writeFileAtomic explicitly.
      return await withFileLock(
        join(home, AUDIT_LOCK_FILE),
        (lock) => appendLocked(home, fields, lock, progress),
        {
          untracked: true,
        },
      )
    } catch (error) {
      // The lock was taken over while this process held it: it stalled (suspended, stopped, a
      // debugger) for longer than the lock's stale limit, and another process appended meanwhile.
      if (!isLockCompromised(error)) throw error
      // Its lines were durable before it found out: the append happened. The head it did not
      // replace is the one before them or a later one, which verify accepts and the next append
      // repairs. Reporting a failure here would make a caller (`proxy`) write the events twice.
      if (progress.durable) return progress.durable
      // It found out before it wrote its lines (see appendLocked): nothing of its own is there, so the
      // append is simply made again under a fresh lock, on the chain as it is now.
      if (!progress.written && attempt < APPEND_ATTEMPTS) continue
      throw error
    }
  }
}

/** How often an append that found its lock taken over before it wrote anything is made again. */
const APPEND_ATTEMPTS = 3

/** How far an append under the lock got, for the caller when the lock turns out to be taken over. */
interface AppendProgress {
  /** Our lines went to the log (an unfinished line removed before them is nobody's record). */
  written?: boolean
  /** The records, once their lines are durable. */
  durable?: AuditRecord[]
}

/**
 * The append itself, under the audit lock. The file operations are synchronous (microseconds each
 * on a local file, cheaper than trips through the thread pool); only the fsyncs, which take
 * milliseconds, run off the event loop.
 */
async function appendLocked(
  home: string,
  /** Fresh copies (pickEventFields): they become the records. */
  fields: readonly AuditEvent[],
  lock: HeldFileLock,
  progress: AppendProgress,
): Promise<AuditRecord[]> {
  const logPath = join(home, AUDIT_LOG_FILE)
  const fd = openLogForAppend(logPath)
  const records: AuditRecord[] = []
  let headTemporary: Temporary | undefined
  /** Where the log ended before our lines (-1 until known): a failure takes them back to it. */
  let before = -1
  let bytes = Buffer.alloc(0)
  try {
    const info = fstatSync(fd)
    if (!info.isFile()) throw notRegular(logPath)

    if ((info.mode & 0o777) !== 0o600) fchmodSync(fd, 0o600)
    const tail = readTail(fd, info.size)
    const head = readHead(home)
    // A head ahead of the log means lines were cut from the end: chain on from the head so the
    // gap stays visible to verify instead of being papered over by a fresh head.
    const headAhead = head !== undefined && (!tail.last || head.seq > tail.last.seq)
    let previous: ChainPoint = headAhead ? head : (tail.last ?? {hash: GENESIS_HASH, seq: 0})
    // The end of the log without the start of a line that no head covers and that is no record:
    // what an append cut short left (killed in its write). Nothing acknowledged it, so it goes —
    // kept, it would break the chain for good (verify stops at the first bad line, so every
    // later edit would hide behind it). With the head ahead, records were cut: leave every byte.
    const end = tail.endsWithNewline || headAhead ? info.size : incompleteLineStart(fd, info.size)
    const lines: string[] = []
    for (const one of fields) {
      // The fresh copy pickEventFields made, completed in place: copying events of varying fields
      // again was the costliest step of a proxy's per-request append.
      const record = one as AuditRecord
      record.prev = previous.hash
      record.seq = previous.seq + 1
      // The line is canonicalJson(record): the members hashed (before `hash` is set), then the
      // same with `hash` in its sorted place (each member is serialised once).
      const {keys, members} = canonicalMembers(record)
      const hash = sha256Hex(`{${members.join(',')}}`)
      record.hash = hash
      records.push(record)
      lines.push(`${withHashMember(keys, members, hash)}\n`)
      previous = record
    }

    // After an interrupted write the log may end mid-line; never glue our record onto it.
    const prefix = tail.endsWithNewline || end < info.size ? '' : '\n'
    bytes = Buffer.from(`${prefix}${lines.join('')}`)
    // Everything above was read under the lock; a holder that stalled since then past the stale
    // limit was taken over, and the log may have grown: chaining on what it read would fork the
    // chain (a second record with the same seq), and cutting an unfinished line would cut the
    // new owner's records. So the lock is checked right before the log is changed, with nothing
    // in between that yields.
    assertLocksHeld([lock])
    if (end < info.size) {
      ftruncateSync(fd, end)
      assertLocksHeld([lock]) // each change right after a check
    }

    before = end
    progress.written = true
    for (let offset = 0; offset < bytes.length;) offset += writeSync(fd, bytes, offset)

    // The next head goes to its temp file now so that both fsyncs run at once; it is renamed
    // into place only after the lines are durable (below).
    const last = records.at(-1) as AuditRecord
    headTemporary = writeTemporarySync(
      join(home, AUDIT_HEAD_FILE),
      `${JSON.stringify({seq: last.seq, hash: last.hash})}\n`,
      0o600,
    )
    // An append to an existing file: fdatasync makes the lines and the new size durable.
    const logSynced = new Promise<void>((resolve, reject) => {
      fdatasync(fd, (error) => (error ? reject(error) : resolve()))
    })
    // Both settle before anything is closed or removed (a failure of one must not close the other's fd under it).
    for (const outcome of await Promise.allSettled([logSynced, syncTemporary(headTemporary)]))
      if (outcome.status === 'rejected') throw outcome.reason
    progress.durable = records
    const temporary = headTemporary
    headTemporary = undefined // commitHead closes it and, if it fails, removes it
    await commitHead(home, temporary, lock, progress)
  } catch (error) {
    if (headTemporary) discardTemporary(headTemporary)
    // A full disk (ENOSPC, EDQUOT, EFBIG) in the middle of the lines, or for the head after
    // them, or a failed fsync: take the lines back, so that a failed append is one that wrote
    // nothing (the log does not end in half a record, and a caller may append the same events
    // again without doubling them) — only while the lock is still ours and nothing follows our
    // lines: a new owner's records after them are never cut.
    if (before !== -1) takeBack(fd, lock, before, bytes.length)
    throw error
  } finally {
    closeSync(fd)
  }

  return records
}

/**
 * Rename the new head into place, after the lines are durable: a crash in between leaves the head
 * behind, which verify accepts and the next append repairs; the reverse order would fake a
 * truncation. If the rename fails (EIO, a filesystem turned read-only) the caller takes the lines
 * back, so that the failure reported is one that wrote nothing, as for any other step — left in
 * place, each such failure would put the head one more entry behind. Taken over meanwhile, the
 * lines stand (appendAuditBatch reports them as appended).
 */
async function commitHead(
  home: string,
  temporary: Temporary,
  lock: HeldFileLock,
  progress: AppendProgress,
): Promise<void> {
  try {
    await commitTemporary(temporary, join(home, AUDIT_HEAD_FILE), [lock])
  } catch (error) {
    if (!isLockCompromised(error)) progress.durable = undefined
    throw error
  }
}

/**
 * Cut the log back to `before`, where our `length` bytes of lines (all or part of them) start —
 * unless the lock is no longer ours or something follows them: another's records are never cut.
 */
function takeBack(fd: number, lock: HeldFileLock, before: number, length: number): void {
  try {
    assertLocksHeld([lock])
    if (fstatSync(fd).size <= before + length) ftruncateSync(fd, before)
  } catch {
    // The next append removes an incomplete line (see appendLocked).
  }
}

/** 'a+' without following a link and without blocking on a FIFO (product: odd files fail fast). */
function openLogForAppend(path: string): number {
  const {O_APPEND, O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_RDWR} = fsConstants
  try {
    return openSync(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o600)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') refuseSymlinkSync(path)
    throw error
  }
}

function notRegular(path: string): ConfigError {
  return new ConfigError('FILE_NOT_REGULAR', `${path} is not a regular file`, {
    details: {path},
    suggestion: `Move ${path} aside; agentvault starts a new audit log.`,
  })
}

/**
 * Check the chain of `$home/audit.log` and its head. Reports the first bad entry: an edited line
 * (hash or canonical form), a garbage or incomplete line, a gap, a reordering, or lines removed from
 * the end. An empty or missing log (with no head) is ok with count 0.
 */
export async function verifyAudit(home: string): Promise<AuditVerification> {
  const logPath = join(home, AUDIT_LOG_FILE)
  const headPath = join(home, AUDIT_HEAD_FILE)
  if (!existsSync(logPath) && !existsSync(headPath)) return {count: 0, ok: true}

  // Take the lock only for a consistent snapshot (size + head) so a long verify never blocks
  // appends; the log is append-only, so the first `size` bytes do not change afterwards.
  const read = async () => ({headBytes: readFileIfExists(headPath), size: await fileSize(logPath)})
  const snapshot = await withFileLock(join(home, AUDIT_LOCK_FILE), read).catch((error: unknown) => {
    // A read-only filesystem (a mounted copy kept as evidence) holds no lock, and needs none:
    // nothing can append to it.
    if ((error as NodeJS.ErrnoException).code === 'EROFS') return read()
    throw error
  })

  let count = 0
  let previous: ChainPoint = {hash: GENESIS_HASH, seq: 0}
  let beforePrevious: ChainPoint | undefined
  const bad = (line: number, reason: string, seq?: number): AuditVerification => ({
    count,
    firstBad: seq === undefined ? {line, reason} : {line, reason, seq},
    ok: false,
  })

  let interrupted: AuditVerification['interrupted']
  // Whether the head names an entry of the chain (same seq and hash) that is not the last one.
  const headSaid = snapshot.headBytes === undefined ? undefined : parseHead(snapshot.headBytes)
  let headOnChain = false
  for await (const {bytes, line, terminated} of readLines(logPath, snapshot.size)) {
    // The start of a line and no record, last in the log: an append cut short (see appendAudit),
    // provided the head agrees that no record is missing (checked below).
    if (!terminated && parseJson(bytes) === undefined) {
      interrupted = {
        line,
        reason: 'incomplete last line: an append was interrupted (killed, or the disk was full)',
      }
      break
    }

    const checked = checkLine(bytes, terminated, previous)
    if ('reason' in checked) return bad(line, checked.reason, checked.seq)
    if (headSaid && checked.seq === headSaid.seq) headOnChain = checked.hash === headSaid.hash
    beforePrevious = previous
    previous = checked
    count++
  }

  let head: ChainPoint = {hash: GENESIS_HASH, seq: 0}
  if (snapshot.headBytes !== undefined) {
    const parsedHead = parseHead(snapshot.headBytes)
    if (!parsedHead) return bad(count + 1, `${AUDIT_HEAD_FILE} is unreadable`)
    head = parsedHead
  }

  if (head.seq > previous.seq) {
    const reason = `entries removed from the end: the log ends at seq ${previous.seq} but ${AUDIT_HEAD_FILE} records seq ${head.seq}`
    return bad(count + 1, reason, previous.seq + 1)
  }

  const matchesLast = head.seq === previous.seq && head.hash === previous.hash
  // One behind is the trace of a crash between writing the line and the head (see appendAudit);
  // further behind, of several such crashes in a row before an append got through. Either way the
  // head names an entry of the chain: nothing was cut (a cut shows as a head ahead of the log).
  const matchesCrashWindow = samePoint(head, beforePrevious) || (head.seq < previous.seq && headOnChain)
  if (!matchesLast && !matchesCrashWindow) {
    count = Math.max(0, count - 1)
    return bad(count + 1, `${AUDIT_HEAD_FILE} (seq ${head.seq}) does not match the last entry`, previous.seq)
  }

  return interrupted ? {count, interrupted, ok: true} : {count, ok: true}
}

function samePoint(a: ChainPoint, b: ChainPoint | undefined): boolean {
  return b !== undefined && a.seq === b.seq && a.hash === b.hash
}

/**
 * Records of `$home/audit.log` that match `filter`, in time order (ties keep log order); with
 * `limit`, the most recent N. Lines that are not records are skipped here — `verifyAudit` reports them.
 */
export async function readAudit(home: string, filter: AuditFilter = {}): Promise<AuditRecord[]> {
  if (filter.limit !== undefined && filter.limit <= 0) return []
  const matched: AuditRecord[] = []
  for await (const {bytes, terminated} of readLines(join(home, AUDIT_LOG_FILE))) {
    // An unterminated last line is an append in progress (or a broken one): not a record yet.
    if (!terminated) continue
    const record = toLocalRecord(bytes)
    if (record && matchesAuditFilter(record, filter)) matched.push(record)
  }

  // Processes append in completion order, so start times may be slightly out of order.
  const ordered = matched
    .map((record, index) => ({index, record, time: Date.parse(record.time)}))
    .sort((a, b) => a.time - b.time || a.index - b.index)
    .map(({record}) => record)
  return filter.limit === undefined ? ordered : ordered.slice(-filter.limit)
}

/**
 * Whether `record` (a local record or a backend source's event) meets every criterion of `filter`
 * (`limit` is not a per-record criterion).
 */
export function matchesAuditFilter(record: AuditEvent, filter: AuditFilter): boolean {
  const time = Date.parse(record.time)
  if (filter.since && !(time >= filter.since.getTime())) return false
  if (filter.until && !(time <= filter.until.getTime())) return false
  if (filter.status !== undefined && record.outcome !== filter.status) return false
  if (filter.backend !== undefined && record.backend !== filter.backend) return false
  if (filter.profile !== undefined && record.profile !== filter.profile) return false
  if (
    filter.command !== undefined &&
    record.command !== filter.command &&
    !record.command.startsWith(`${filter.command} `)
  )
    return false
  if (filter.secret !== undefined) {
    const needle = filter.secret
    const names = [...(record.references ?? []), ...(record.resource_refs ?? [])]
    if (!names.some((name) => name.includes(needle))) return false
  }

  return true
}

/**
 * Yield records appended to `$home/audit.log` after the first `next()` call (the starting point is
 * fixed synchronously then), filtered by `filter` (`limit` is ignored). Wakes on file-system change
 * events, not a timer. Ends when `signal` aborts.
 * @yields Each matching record, with `source: 'local'`, as it is appended.
 */
export async function* followAudit(
  home: string,
  filter: AuditFilter,
  signal: AbortSignal,
): AsyncGenerator<AuditRecord, void, undefined> {
  if (signal.aborted) return
  const logPath = join(home, AUDIT_LOG_FILE)
  // Watch the directory, not the file: the log may not exist yet, and a directory watch sees it
  // being created as well as appended to.
  mkdirSync(home, {mode: 0o700, recursive: true})
  let changed = false
  let failure: unknown
  let wake: (() => void) | undefined
  const notify = (): void => {
    changed = true
    wake?.()
  }

  const watcher: FSWatcher = watch(home, {persistent: true}, (_event, filename) => {
    if (filename === null || filename === AUDIT_LOG_FILE) notify()
  })
  watcher.on('error', (error) => {
    failure = error
    notify()
  })
  signal.addEventListener('abort', notify, {once: true})

  const appended = new AppendedLines(logPath, endOfLastLine(logPath))
  try {
    while (!signal.aborted) {
      if (failure !== undefined) throw failure
      changed = false
      for (const bytes of await appended.read()) {
        const record = toLocalRecord(bytes)
        if (record && matchesAuditFilter(record, filter)) yield record
        if (signal.aborted) return
      }

      if (!changed && !signal.aborted) {
        await new Promise<void>((resolve) => {
          wake = resolve
        })
        wake = undefined
      }
    }
  } finally {
    signal.removeEventListener('abort', notify)
    watcher.close()
  }
}

/** What has been appended to a file since the last read, in whole lines (a partial last line waits). */
class AppendedLines {
  constructor(
    private readonly path: string,
    private offset: number,
  ) {}

  async read(): Promise<Buffer[]> {
    const size = await fileSize(this.path)
    // The log was replaced or truncated: follow the new file from its start.
    if (size < this.offset) this.offset = 0
    if (size === this.offset) return []
    const data = await readRange(this.path, this.offset, size)
    // Stay at the start of an unfinished line and read it again next time, rather than keep its
    // bytes: an append cut short leaves a line that the next append cuts off and writes over.
    const lastNewline = data.lastIndexOf(NEWLINE)
    this.offset += lastNewline + 1
    return [...splitLines(data.subarray(0, lastNewline + 1))]
  }
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}
const DURATION = /^(?:\d+(?:ms|s|m|h|d|w))+$/
const DURATION_PART = /(\d+)(ms|s|m|h|d|w)/g
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[ t](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(z|[+-]\d{2}:?\d{2})?)?$/i

/**
 * Read a `--since`/`--until` value: `now`, a duration before `now` (`30s`, `15m`, `2h`, `7d`, `1w`,
 * combined as `1h30m`), or an ISO 8601 date or date-time. A date or date-time without an offset is
 * local time (as `journalctl` and `date` read it). Anything else is a UsageError `BAD_TIME`.
 */
export function parseTimeBound(value: string, now: Date): Date {
  const text = value.trim()
  if (text === 'now') return new Date(now.getTime())
  let time = Number.NaN
  if (DURATION.test(text)) {
    let total = 0
    for (const [, amount, unit] of text.matchAll(DURATION_PART))
      total += Number(amount) * (DURATION_UNITS[unit ?? ''] ?? Number.NaN)
    time = now.getTime() - total
  } else {
    const match = ISO_TIME.exec(text)
    if (match) time = isoToEpoch(match)
  }

  const date = new Date(time)
  if (Number.isNaN(date.getTime()))
    throw new UsageError('BAD_TIME', `Cannot read ${JSON.stringify(text.slice(0, 40))} as a time`, {
      suggestion:
        'Give an ISO date or time (2024-05-01, 2024-05-01T14:30:00Z) or a duration before now (30s, 15m, 2h, 7d).',
    })
  return date
}

function isoToEpoch(match: RegExpExecArray): number {
  const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', zone] = match
  const y = Number(year)
  const mo = Number(month)
  const d = Number(day)
  // Date.parse rolls 2024-02-30 over into March; refuse impossible fields instead.
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return Number.NaN
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) return Number.NaN
  let offset = ''
  if (zone !== undefined) {
    if (zone.toUpperCase() === 'Z') offset = 'Z'
    else {
      const digits = zone.slice(1).replace(':', '')
      if (Number(digits.slice(0, 2)) > 23 || Number(digits.slice(2)) > 59) return Number.NaN
      offset = `${zone[0]}${digits.slice(0, 2)}:${digits.slice(2)}`
    }
  }

  // The full date-time form with no offset is local time for Date.parse, which is what we want.
  const millis = fraction.padEnd(3, '0').slice(0, 3)
  return Date.parse(`${year}-${month}-${day}T${hour}:${minute}:${second}.${millis}${offset}`)
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return [4, 6, 9, 11].includes(month) ? 30 : 31
}

/**
 * The per-installation salt for `resource_ref` (protocols/openbao.md §2): 64 hex characters in
 * `$home/audit.salt` (0600), created on first use. Concurrent first uses agree on one salt. A salt
 * file with other content is an error, never replaced: a new salt would change every resource_ref.
 */
export async function auditSalt(home: string): Promise<string> {
  const path = join(home, AUDIT_SALT_FILE)
  const existing = readSalt(path)
  if (existing !== undefined) return existing
  await ensureHome(home)
  // Under the lock (itself an O_EXCL file) concurrent first uses serialise; the atomic rename means
  // no reader outside the lock ever sees a half-written salt.
  return withFileLock(join(home, `${AUDIT_SALT_FILE}.lock`), async () => {
    const current = readSalt(path)
    if (current !== undefined) return current
    const salt = randomBytes(32).toString('hex')
    await writeFileAtomic(path, `${salt}\n`, 0o600)
    return salt
  })
}

function readSalt(path: string): string | undefined {
  const bytes = readFileIfExists(path)
  if (bytes === undefined) return undefined
  const salt = bytes.toString('utf8').trim()
  // Empty: left by a crash before anything was written, so no resource_ref used it; refill it.
  if (salt === '') return undefined
  if (!HEX64.test(salt))
    throw new ConfigError('AUDIT_SALT_INVALID', `${path} does not hold a 64-hex-character salt`, {
      suggestion: `Restore ${path} from a backup; removing it creates a new salt and changes every resource_ref.`,
    })
  return salt
}

// ---------------------------------------------------------------------------------------------

const OPTIONAL_STRINGS = [
  'profile',
  'backend',
  'operation',
  'target_host',
  'error_code',
  'tool',
  'client',
  'agent_id',
] as const
const OPTIONAL_LISTS = ['references', 'resource_refs'] as const
const OUTCOMES: ReadonlySet<string> = new Set(['denied', 'error', 'ok'])

function problem(field: string): InternalError {
  return new InternalError(`Invalid audit event: bad ${field}`)
}

/** Copy only the known fields, checked, so nothing else on the object can reach the log. */
function pickEventFields(event: AuditEvent): AuditEvent {
  if (typeof event.time !== 'string' || Number.isNaN(Date.parse(event.time))) throw problem('time')
  if (typeof event.command !== 'string') throw problem('command')
  if (!OUTCOMES.has(event.outcome)) throw problem('outcome')
  if (!Number.isInteger(event.exit_code)) throw problem('exit_code')
  if (!Number.isFinite(event.duration_ms)) throw problem('duration_ms')
  const fields: AuditEvent = {
    command: event.command,

    duration_ms: event.duration_ms,

    exit_code: event.exit_code,
    outcome: event.outcome,
    time: event.time,
  }
  for (const key of OPTIONAL_STRINGS) {
    const value = event[key]
    if (value === undefined) continue
    if (typeof value !== 'string') throw problem(key)
    fields[key] = value
  }

  for (const key of OPTIONAL_LISTS) {
    const value = event[key]
    if (value === undefined) continue
    if (!isStringList(value)) throw problem(key)
    fields[key] = [...value]
  }

  if (event.status !== undefined) {
    if (!Number.isInteger(event.status)) throw problem('status')
    fields.status = event.status
  }

  return fields
}

/** Check one log line against the chain so far: the record's chain point, or why the line is bad. */
function checkLine(
  bytes: Buffer,
  terminated: boolean,
  previous: ChainPoint,
): ChainPoint | {reason: string; seq?: number} {
  if (bytes.length === 0) return {reason: 'empty line'}
  const parsed = parseJson(bytes)
  const seq = isRecordLike(parsed) && Number.isInteger(parsed.seq) ? (parsed.seq as number) : undefined
  const fail = (reason: string) => (seq === undefined ? {reason} : {reason, seq})
  if (!terminated) return fail('incomplete last line (truncated or interrupted write)')
  if (parsed === undefined) return fail('not valid JSON')
  if (!isAuditRecord(parsed)) return fail('not an audit record (fields missing or of the wrong type)')
  const {hash, ...unhashed} = parsed
  if (!bytes.equals(Buffer.from(canonicalJson(parsed)))) return fail('line was edited (not canonical JSON)')
  if (sha256Hex(canonicalJson(unhashed)) !== hash) return fail('hash mismatch: the entry was edited')
  if (parsed.seq !== previous.seq + 1)
    return fail(`expected seq ${previous.seq + 1}, found ${parsed.seq}: entries missing or reordered`)
  if (parsed.prev !== previous.hash) return fail("prev does not match the previous entry's hash")
  return {hash, seq: parsed.seq}
}

/** JSON with object keys sorted (by UTF-16 code unit) at every level and no whitespace. */
function canonicalJson(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`
  if (value !== null && typeof value === 'object') return `{${canonicalMembers(value).members.join(',')}}`
  return JSON.stringify(value) ?? 'null'
}

/** `"key":` as JSON writes it, per key seen (records repeat the same few keys); bounded. */
const keyTexts = new Map<string, string>()

/**
 * An object's members as canonicalJson writes them (`"key":value`), sorted by key, with their keys.
 * Built once per record and line (a busy proxy writes one per request): no entry pairs, no
 * comparator calls, each key's JSON made once.
 */
function canonicalMembers(value: object): {keys: string[]; members: string[]} {
  const record = value as Record<string, unknown>
  // The default sort compares UTF-16 code units, as canonical JSON orders keys.
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort()
  const members: string[] = []
  for (const key of keys) {
    let text = keyTexts.get(key)
    if (text === undefined) {
      text = `${JSON.stringify(key)}:`
      if (keyTexts.size < 256) keyTexts.set(key, text)
    }

    members.push(text + canonicalJson(record[key]))
  }

  return {keys, members}
}

/** The canonical JSON of a record from its members (see canonicalMembers) and its `hash`. */
function withHashMember(keys: readonly string[], members: string[], hash: string): string {
  let at = 0
  while (at < keys.length && (keys[at] as string) < 'hash') at++
  members.splice(at, 0, `"hash":${JSON.stringify(hash)}`)
  return `{${members.join(',')}}`
}

function sha256Hex(text: string): string {
  // One call, no Hash object (Node 20.12+): cheaper for the short texts hashed here.
  return oneShotHash('sha256', text, 'hex')
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown
  } catch {
    return undefined
  }
}

function isRecordLike(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function isAuditRecord(value: unknown): value is AuditRecord {
  if (!isRecordLike(value)) return false
  const v = value
  if (typeof v.time !== 'string' || typeof v.command !== 'string') return false
  if (typeof v.outcome !== 'string' || !OUTCOMES.has(v.outcome)) return false
  if (!Number.isInteger(v.exit_code) || typeof v.duration_ms !== 'number') return false
  if (!Number.isInteger(v.seq) || (v.seq as number) < 1) return false
  if (typeof v.prev !== 'string' || !HEX64.test(v.prev) || typeof v.hash !== 'string' || !HEX64.test(v.hash))
    return false
  return hasValidOptionalFields(v)
}

function isStringList(list: unknown): list is string[] {
  return Array.isArray(list) && list.every((item) => typeof item === 'string')
}

function hasValidOptionalFields(v: Record<string, unknown>): boolean {
  return (
    OPTIONAL_STRINGS.every((key) => v[key] === undefined || typeof v[key] === 'string') &&
    OPTIONAL_LISTS.every((key) => v[key] === undefined || isStringList(v[key])) &&
    (v.status === undefined || Number.isInteger(v.status))
  )
}

function toLocalRecord(bytes: Buffer): AuditRecord | undefined {
  const parsed = parseJson(bytes)
  return isAuditRecord(parsed) ? {...parsed, source: 'local'} : undefined
}

function parseHead(bytes: Buffer): ChainPoint | undefined {
  const parsed = parseJson(bytes)
  if (!isRecordLike(parsed)) return undefined
  const {hash, seq} = parsed
  if (typeof hash !== 'string' || !HEX64.test(hash) || !Number.isInteger(seq) || (seq as number) < 0)
    return undefined
  return {hash, seq: seq as number}
}

function readHead(home: string): ChainPoint | undefined {
  const bytes = readFileIfExists(join(home, AUDIT_HEAD_FILE))
  return bytes === undefined ? undefined : parseHead(bytes)
}

/**
 * The last record of the log and whether the log ends with a newline, reading backwards from the
 * end in chunks so an append costs the same however long the log is.
 */
function readTail(fd: number, size: number): {endsWithNewline: boolean; last?: ChainPoint} {
  if (size === 0) return {endsWithNewline: true}
  let end = size
  let carry: Buffer = Buffer.alloc(0)
  let endsWithNewline: boolean | undefined
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK)
    const chunk = Buffer.alloc(end - start)
    for (let filled = 0; filled < chunk.length;) {
      const read = readSync(fd, chunk, filled, chunk.length - filled, start + filled)
      if (read === 0) break
      filled += read
    }

    endsWithNewline ??= chunk.at(-1) === NEWLINE
    const data = carry.length > 0 ? Buffer.concat([chunk, carry]) : chunk
    let lineEnd = data.length
    while (lineEnd > 0) {
      const newline = data.lastIndexOf(NEWLINE, lineEnd - 1)
      // Before the first newline of a chunk lies a partial line, unless the chunk starts the file.
      if (newline === -1 && start > 0) break
      const parsed = parseJson(data.subarray(newline + 1, lineEnd))
      if (
        isRecordLike(parsed) &&
        Number.isInteger(parsed.seq) &&
        typeof parsed.hash === 'string' &&
        HEX64.test(parsed.hash)
      )
        return {endsWithNewline, last: {hash: parsed.hash, seq: parsed.seq as number}}
      lineEnd = newline === -1 ? 0 : newline
    }

    carry = data.subarray(0, lineEnd)
    end = start
  }

  return {endsWithNewline: endsWithNewline ?? true}
}

/**
 * Where the log's unterminated last line starts, or `size` when that line is a record (a complete
 * one whose newline did not make it: it stays, and the next append puts a newline after it).
 */
function incompleteLineStart(fd: number, size: number): number {
  let start = size
  const chunk = Buffer.alloc(Math.min(size, TAIL_CHUNK))
  while (start > 0) {
    const from = Math.max(0, start - chunk.length)
    const length = start - from
    let filled = 0
    while (filled < length) {
      const read = readSync(fd, chunk, filled, length - filled, from + filled)
      if (read === 0) break
      filled += read
    }

    const newline = chunk.subarray(0, filled).lastIndexOf(NEWLINE)
    if (newline !== -1) {
      start = from + newline + 1
      break
    }

    start = from
  }

  const line = Buffer.alloc(size - start)
  for (let filled = 0; filled < line.length;) {
    const read = readSync(fd, line, filled, line.length - filled, start + filled)
    if (read === 0) break
    filled += read
  }

  return parseJson(line) === undefined ? start : size
}

/**
 * The lines of a file as raw bytes (split on `\n` only, so a stray `\r` cannot shift line numbers),
 * up to `limit` bytes. The last line has `terminated: false` when the file does not end with `\n`.
 * A missing file has no lines.
 * @yields Each line with its 1-based number.
 */
async function* readLines(
  path: string,
  limit?: number,
): AsyncGenerator<{bytes: Buffer; line: number; terminated: boolean}, void, undefined> {
  if (limit === 0) return
  const stream = createReadStream(path, limit === undefined ? {} : {end: limit - 1})
  let pending: Buffer[] = []
  let line = 0
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0
      for (let newline = chunk.indexOf(NEWLINE); newline !== -1; newline = chunk.indexOf(NEWLINE, start)) {
        const bytes = Buffer.concat([...pending, chunk.subarray(start, newline)])
        pending = []
        line++
        yield {bytes, line, terminated: true}
        start = newline + 1
      }

      if (start < chunk.length) pending.push(chunk.subarray(start))
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw error
  } finally {
    stream.destroy()
  }

  if (pending.length > 0) yield {bytes: Buffer.concat(pending), line: line + 1, terminated: false}
}

function* splitLines(data: Buffer): Generator<Buffer> {
  let start = 0
  for (let newline = data.indexOf(NEWLINE); newline !== -1; newline = data.indexOf(NEWLINE, start)) {
    yield data.subarray(start, newline)
    start = newline + 1
  }
}

// node:fs/promises only where the log is read: it brings readline with it, which an append (every
// command) has no use for.
async function fileSize(path: string): Promise<number> {
  const {stat} = await import('node:fs/promises')
  try {
    return (await stat(path)).size
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw error
  }
}

/** The log's size, less an unfinished last line (which the next append replaces: see appendAudit). */
function endOfLastLine(path: string): number {
  let fd: number
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOFOLLOW)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw error
  }

  try {
    const {size} = fstatSync(fd)
    return size === 0 ? 0 : incompleteLineStart(fd, size)
  } finally {
    closeSync(fd)
  }
}

async function readRange(path: string, start: number, end: number): Promise<Buffer> {
  const {open} = await import('node:fs/promises')
  const handle = await open(path, 'r')
  try {
    const buffer = Buffer.alloc(end - start)
    const {bytesRead} = await handle.read(buffer, 0, buffer.length, start)
    return buffer.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}
