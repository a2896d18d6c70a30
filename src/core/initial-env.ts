/**
 * Blank withheld values in this process's initial environment region (Linux).
 *
 * The kernel shows the environment a process was started with — the bytes between `env_start`
 * and `env_end` (fields 50 and 51 of /proc/self/stat) — in /proc/PID/environ, to any process of
 * the same user, `run`'s child included. Deleting a variable from process.env (unsetenv) only
 * drops C's `environ` pointer to it; the bytes stay. So a child read agentvault's credentials and
 * the launcher's AGENTVAULT_ARGV_* (every argument, `secrets set NAME=VALUE` too) from
 * /proc/$PPID/environ. This overwrites the values of those entries with NUL bytes, in place
 * through /proc/self/mem (a process may write its own memory); the region keeps its size.
 *
 * process.env reads C's `environ` (getenv), whose strings for the initial variables ARE these
 * bytes: a value agentvault still needs is first copied out with `process.env[NAME] = value`
 * (setenv allocates a new `NAME=value` string), then its original is blanked.
 *
 * Best effort and cheap (a few system calls of microseconds each, made synchronously: through the
 * thread pool each would wait for the main thread to be free, several milliseconds in all on a
 * busy start): any failure is ignored, and reported under DEBUG.
 */

import {closeSync, openSync, readFileSync, readSync, writeSync} from 'node:fs'

/** The launcher's argument variables (bin/run.js): gone from process.env, still in the region. */
const LAUNCHER_VARIABLE = /^AGENTVAULT_(ARGV_\d+|ARGC)$/

const NUL = 0
const EQUALS = 0x3d

/**
 * Blank, in the initial environment region, the value of every variable named in `credentials`
 * and of the launcher's argument variables; credentials stay readable through process.env.
 * Returns the number of entries blanked (0 off Linux or when nothing could be done); never
 * throws. Done when it returns: call it before starting any child.
 */
export function scrubInitialEnvironment(credentials: Iterable<string>): number {
  if (process.platform !== 'linux') return 0
  const names = new Set(credentials)
  // Copy every credential out of the region first (setenv makes a new string).
  for (const name of names) {
    const value = process.env[name]
    if (value !== undefined) process.env[name] = value
  }

  try {
    const stat = readFileSync('/proc/self/stat', 'latin1')
    // After "pid (comm) ", field 3 (state) comes first: field N is at index N - 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const start = Number(fields[50 - 3])
    const end = Number(fields[51 - 3])
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start <= 0 || end <= start) return 0
    const fd = openSync('/proc/self/mem', 'r+')
    try {
      const region = Buffer.alloc(end - start)
      const bytesRead = readSync(fd, region, 0, region.length, start)
      const blanked = blankEntries(region.subarray(0, bytesRead), names)
      if (blanked > 0) writeSync(fd, region, 0, bytesRead, start)
      return blanked
    } finally {
      closeSync(fd)
    }
  } catch (error) {
    if (process.env.DEBUG)
      process.stderr.write(`agentvault: initial environment not scrubbed: ${String(error)}\n`)
    return 0
  }
}

/** Overwrite with NULs, in `region` (NUL-separated NAME=value entries), the values to withhold. */
function blankEntries(region: Buffer, credentials: ReadonlySet<string>): number {
  let blanked = 0
  for (let entry = 0; entry < region.length;) {
    let stop = region.indexOf(NUL, entry)
    if (stop === -1) stop = region.length
    const equals = region.indexOf(EQUALS, entry)
    if (equals !== -1 && equals < stop - 1) {
      const name = region.toString('latin1', entry, equals)
      if (credentials.has(name) || LAUNCHER_VARIABLE.test(name)) {
        region.fill(NUL, equals + 1, stop)
        blanked++
      }
    }

    entry = stop + 1
  }

  return blanked
}
