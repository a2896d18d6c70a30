import type {ChildProcess} from 'node:child_process'

/**
 * Assertions shared by the e2e suites: the house error format (product.md §9) in both its plain and
 * `--json` forms, and small file-system probes of an AGENTVAULT_HOME.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {readdir, readFile, stat} from 'node:fs/promises'
import {connect as connectTcp} from 'node:net'
import {join} from 'node:path'

import {type CliOptions, type CliResult, runCli} from './cli.js'

/** product.md §9: the category of every error and the exit code it must produce. */
export const EXIT_BY_CATEGORY: Readonly<Record<string, number>> = {
  internal: 1,
  usage: 2,
  config: 3,
  auth: 4,
  unavailable: 5,
  not_found: 6,
  denied: 7,
  rate_limited: 8,
  cancelled: 130,
}

export interface JsonErrorBody {
  category: string
  code: string
  details?: Record<string, unknown>
  message: string
  suggestion: string
}

/** Check that `result` is a `--json` failure: `{"error": {code, category, message, suggestion}}` on stdout. */
export function parseJsonError(result: CliResult): JsonErrorBody {
  let parsed: unknown
  try {
    parsed = JSON.parse(result.stdout)
  } catch {
    assert.fail(`--json failure did not print JSON on stdout: ${JSON.stringify(result.stdout)}`)
  }

  assert.deepEqual(Object.keys(parsed as object), ['error'], result.stdout)
  const {error} = parsed as {error: JsonErrorBody}
  for (const key of Object.keys(error))
    assert.ok(['category', 'code', 'details', 'message', 'suggestion'].includes(key), `unexpected key ${key}`)
  assert.equal(typeof error.code, 'string')
  assert.match(error.code, /^[A-Z][A-Z0-9_]+$/)
  assert.equal(typeof error.message, 'string')
  assert.ok(error.message.length > 0)
  assert.equal(typeof error.suggestion, 'string', `no suggestion in ${result.stdout}`)
  assert.ok(error.suggestion.length > 0)
  assert.equal(
    result.code,
    EXIT_BY_CATEGORY[error.category],
    `category ${error.category} vs exit ${result.code}`,
  )
  return error
}

export interface ExpectedFailure {
  /** The exit code (product.md §9). */
  code: number
  /** The stable error code of the `--json` form. */
  errorCode?: string
  /** Must match the message (both forms). */
  message?: RegExp
}

export interface Failure {
  error: JsonErrorBody
  json: CliResult
  plain: CliResult
}

/**
 * Run `args` as typed, then with `--json`, and check both report the same failure the house way:
 * `Error: …` and `Try this: …` on stderr with nothing on stdout; then the JSON error on stdout.
 */
export async function expectFailure(
  args: string[],
  options: CliOptions,
  expected: ExpectedFailure,
): Promise<Failure> {
  const plain = await runCli(args, options)
  assert.equal(plain.code, expected.code, `exit code of ${args.join(' ')}; stderr: ${plain.stderr}`)
  assert.equal(plain.stdout, '', `stdout of a failing ${args.join(' ')}`)
  assert.match(plain.stderr, /^Error: .+\nTry this: .+$/m, plain.stderr)
  if (expected.message) assert.match(plain.stderr, expected.message)

  const json = await runCli([...args, '--json'], options)
  assert.equal(json.code, expected.code, `exit code of ${args.join(' ')} --json; stdout: ${json.stdout}`)
  const error = parseJsonError(json)
  assert.doesNotMatch(json.stderr, /^Error:/m, 'the --json error goes to stdout only')
  if (expected.errorCode) assert.equal(error.code, expected.errorCode)
  if (expected.message) assert.match(error.message, expected.message)
  return {error, json, plain}
}

/** Parse a successful `--json` result. */
export function parseJson<T>(result: CliResult): T {
  assert.equal(result.code, 0, `expected success; stderr: ${result.stderr}; stdout: ${result.stdout}`)
  return JSON.parse(result.stdout) as T
}

/** Permission bits of a path (e.g. 0o600). */
export async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777
}

/** Every regular file under `dir`, recursively. */
export async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...(await filesUnder(path)))
    else if (entry.isFile()) found.push(path)
  }

  return found
}

/** SHA-256 of a file's bytes, to prove a command left it untouched. */
/** Whether something listens on 127.0.0.1:port. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Resolve once `check` holds, checking again on each turn of the event loop (an event, not a sleep). */
export async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check()))
    await new Promise((resolve) => {
      setImmediate(resolve)
    })
}

export async function digestOf(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex')
}

export interface OutputWatch {
  /** Everything printed on stdout so far. */
  text(): string
  /** Resolve once stdout (from the start, not only from now) satisfies `done` — an event, not a sleep. */
  until(done: (text: string) => boolean, what: string): Promise<void>
}

/**
 * Accumulate a child's stdout from the moment it starts, so waiting for output that already
 * arrived (e.g. while the test awaited another command) resolves at once instead of hanging.
 */
export function watchOutput(child: ChildProcess): OutputWatch {
  let seen = ''
  let closed = false
  const waiters = new Set<() => void>()
  child.stdout?.on('data', (chunk: Buffer) => {
    seen += chunk.toString('utf8')
    for (const wake of waiters) wake()
  })
  child.once('close', () => {
    closed = true
    for (const wake of waiters) wake()
  })
  return {
    text: () => seen,
    until: (done, what) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (done(seen)) {
            waiters.delete(check)
            resolve()
          } else if (closed) {
            waiters.delete(check)
            reject(new Error(`process closed before printing ${what}; saw ${JSON.stringify(seen)}`))
          }
        }

        waiters.add(check)
        check()
      }),
  }
}

/** `profiles add` of a default local profile that may call the loopback test servers (`call`, `use`). */
export const LOOPBACK_PROFILE = [
  'profiles',
  'add',
  'lp',
  '--kind',
  'local',
  '--default',
  '--set',
  'allowPrivateNetworks=true',
]

/**
 * The cases of an exhaustive e2e sweep (a crash at every write step, each errno at each step, a
 * file cut at many lengths) to run here: all of them, or every Nth with SWEEP_STRIDE=N, which
 * scripts/test-on-nodes.js sets for the passes on other Nodes (they prove `engines`; what the
 * sweeps test does not change with the Node version, and CI must stay within its time).
 */
export function sweepSample<T>(cases: readonly T[]): T[] {
  const stride = Math.max(1, Number(process.env.SWEEP_STRIDE ?? 1) || 1)
  return cases.filter((_, index) => index % stride === 0)
}
