/**
 * The running proxy's record in the home: `proxy.pid` (0600) holds its pid, port, profile, start
 * time and session token, so `proxy status --show-token` and `proxy stop` find it. One proxy per
 * home; a record whose process is gone is stale and ignored.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {ConfigError} from '../errors.js'

export const PID_FILE = 'proxy.pid'
/** Where a detached proxy writes its request lines and errors. */
export const LOG_FILE = 'proxy.log'

export interface ProxyRecord {
  /** Random hex, answered by this proxy's `/health` (absent in records of older versions). */
  instance?: string
  pid: number
  port: number
  profile: string
  started: string
  /** `as_sess_` + 32 hex; null with `--no-session-token`. */
  token: null | string
}

export function pidFile(home: string): string {
  return join(home, PID_FILE)
}

/** A fresh session token: `as_sess_` + 32 hex characters. */
export async function newSessionToken(): Promise<string> {
  const {randomBytes} = await import('node:crypto')
  return `as_sess_${randomBytes(16).toString('hex')}`
}

/** This proxy process's identity in its pid file and on `/health`: 32 hex characters. */
export async function newInstanceId(): Promise<string> {
  const {randomBytes} = await import('node:crypto')
  return randomBytes(16).toString('hex')
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Whether the live process `record.pid` is, as far as the system can tell, the proxy that wrote
 * `record` — so that it may be signalled even though it does not answer (stopped with SIGSTOP or
 * Ctrl-Z, or hung). On Linux: its start time (from /proc) is not after the record's `started`, which
 * the proxy wrote once it listened; a pid the system gave to another process since started later.
 * False where /proc cannot tell (another system): such a proxy is then not signalled.
 */
export function isProcessOf(record: ProxyRecord): boolean {
  try {
    const stat = readFileSync(`/proc/${record.pid}/stat`, 'utf8')
    // "pid (comm) state ppid …": comm may hold spaces and parentheses; starttime is field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[19])
    const boot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1])
    const started = Date.parse(record.started)
    if (!Number.isFinite(ticks) || !Number.isFinite(boot) || Number.isNaN(started)) return false
    // Clock ticks are USER_HZ, 100 on Linux; a second of slack for the rounding of btime.
    return (boot + ticks / 100) * 1000 <= started + 1000
  } catch {
    return false
  }
}

function isRecord(data: unknown): data is ProxyRecord {
  const value = data as ProxyRecord
  return (
    typeof data === 'object' &&
    data !== null &&
    Number.isInteger(value.pid) &&
    value.pid > 0 &&
    Number.isInteger(value.port) &&
    typeof value.profile === 'string' &&
    typeof value.started === 'string' &&
    (value.token === null || typeof value.token === 'string') &&
    (value.instance === undefined || typeof value.instance === 'string')
  )
}

/** The record of a live proxy, or undefined (none, unreadable, or its process is gone). */
export async function readProxyRecord(home: string): Promise<ProxyRecord | undefined> {
  const {readFileIfExists} = await import('../file-lock.js')
  const text = await readFileIfExists(pidFile(home))
  if (text === undefined) return undefined
  let data: unknown
  try {
    data = JSON.parse(text.toString('utf8'))
  } catch {
    return undefined
  }

  return isRecord(data) && isAlive(data.pid) ? data : undefined
}

export async function writeProxyRecord(home: string, record: ProxyRecord): Promise<void> {
  const {ensureHome, writeFileAtomic} = await import('../file-lock.js')
  await ensureHome(home)
  await writeFileAtomic(pidFile(home), `${JSON.stringify(record)}\n`, 0o600)
}

/** Remove the record whatever it says (a stale one whose pid now belongs to another process). */
export async function removeStaleProxyRecord(home: string): Promise<void> {
  const {rm} = await import('node:fs/promises')
  await rm(pidFile(home), {force: true})
}

/** Remove the record if it is still this process's (a newer proxy's record is left alone). */
export async function removeProxyRecord(home: string, pid = process.pid): Promise<void> {
  const {readFile, unlink} = await import('node:fs/promises')
  try {
    const data: unknown = JSON.parse(await readFile(pidFile(home), 'utf8'))
    if (isRecord(data) && data.pid !== pid && isAlive(data.pid)) return
    await unlink(pidFile(home))
  } catch {
    // Gone already, or unreadable: nothing of ours to remove.
  }
}

export function alreadyRunning(record: ProxyRecord): ConfigError {
  return new ConfigError(
    'PROXY_RUNNING',
    `A proxy already runs for this home (pid ${record.pid}, http://127.0.0.1:${record.port})`,
    {suggestion: 'Stop it with `agentvault proxy stop`, or use another AGENTVAULT_HOME.'},
  )
}
