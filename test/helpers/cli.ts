/**
 * Run the built binary (bin/run.js) as users and CI do: executed as a program (its launcher execs
 * the `node` first on PATH, here the Node running the tests), a real subprocess with its own
 * AGENTVAULT_HOME in a temp dir, stdin from a buffer, stdout/stderr captured as bytes.
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = join(ROOT, 'bin', 'run.js')

const nodeDirs = new Map<string, string>()

/**
 * A directory (under the git-ignored tmp/) whose only entry is `node`, a link to `nodeBinary`.
 * First on PATH, it picks the Node that the launcher's `exec node` starts, as PATH picked the one
 * of `#!/usr/bin/env node`, without shadowing any other program.
 */
export function nodeDir(nodeBinary: string = process.execPath): string {
  const known = nodeDirs.get(nodeBinary)
  if (known !== undefined) return known
  const dir = join(
    ROOT,
    'tmp',
    'node-on-path',
    createHash('sha256').update(nodeBinary).digest('hex').slice(0, 16),
  )
  const link = join(dir, 'node')
  let current: string | undefined
  try {
    current = readlinkSync(link)
  } catch {} // not made yet

  if (current !== nodeBinary) {
    mkdirSync(dir, {recursive: true})
    // Parallel test workers may do this at once: each makes its own link, then renames it over.
    const staged = `${link}.${process.pid}`
    rmSync(staged, {force: true})
    symlinkSync(nodeBinary, staged)
    renameSync(staged, link)
  }

  nodeDirs.set(nodeBinary, dir)
  return dir
}

/** `env` with `nodeBinary` (default: the Node running the tests) first on its PATH. */
export function withNodeOnPath(
  env: NodeJS.ProcessEnv,
  nodeBinary: string = process.execPath,
): NodeJS.ProcessEnv {
  const path = env.PATH ?? process.env.PATH ?? ''
  return {...env, PATH: path === '' ? nodeDir(nodeBinary) : `${nodeDir(nodeBinary)}${delimiter}${path}`}
}

export interface CliResult {
  code: null | number
  signal: NodeJS.Signals | null
  stderr: string
  stdout: string
  stdoutBytes: Buffer
}

export interface CliOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  input?: Buffer | string
  /** Leave stdin open for the test to write to (default: end it after `input`). */
  openStdin?: boolean
}

/** A fresh home for one test; `dispose()` removes it. */
export async function tempHome(): Promise<{dispose(): Promise<void>; env: NodeJS.ProcessEnv; home: string}> {
  const home = await mkdtemp(join(tmpdir(), 'agentvault-test-'))
  return {
    dispose: () => rm(home, {force: true, recursive: true}),
    // No keychain probing in tests: deterministic key file / passphrase sources.
    env: {AGENTVAULT_HOME: join(home, 'vault-home'), AGENTVAULT_NO_KEYCHAIN: '1', NO_COLOR: '1'},
    home,
  }
}

/** Environment for a child CLI: ours minus anything that changes agentvault's behaviour. */
export function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(AGENTVAULT_|BAO_|VAULT_|SANCTUM_|AGENTSECRETS_|AGENTAUTH_|DEBUG$|CI$)/.test(key)) env[key] = value
  }

  return {...env, ...extra}
}

export function startCli(args: string[], options: CliOptions = {}): ChildProcess {
  const child = spawn(BIN, args, {
    cwd: options.cwd ?? ROOT,
    env: withNodeOnPath(baseEnv(options.env)),
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  if (options.openStdin) return child
  if (options.input === undefined) child.stdin?.end()
  else child.stdin?.end(options.input)
  return child
}

export function collect(child: ChildProcess): Promise<CliResult> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk))
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => {
      const stdoutBytes = Buffer.concat(out)
      resolve({
        code,
        signal,
        stderr: Buffer.concat(err).toString('utf8'),
        stdout: stdoutBytes.toString('utf8'),
        stdoutBytes,
      })
    })
  })
}

/**
 * {@link collect}, with a deadline for a command that must never hang: past `hangMs` it is killed
 * (SIGKILL) and `hung` is true — the assertion, not a sleep.
 */
export async function collectUnlessHung(
  child: ChildProcess,
  hangMs: number,
): Promise<CliResult & {hung: boolean}> {
  let hung = false
  const timer = setTimeout(() => {
    hung = true
    child.kill('SIGKILL')
  }, hangMs)
  try {
    return {...(await collect(child)), hung}
  } finally {
    clearTimeout(timer)
  }
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return collect(startCli(args, options))
}

/** Resolve once `child` has printed `text` on stdout (an event, not a sleep). */
export function waitForOutput(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8')
      if (seen.includes(text)) {
        child.stdout?.off('data', onData)
        resolve()
      }
    }

    child.stdout?.on('data', onData)
    child.once('close', () =>
      reject(
        new Error(`process closed before printing ${JSON.stringify(text)}; saw ${JSON.stringify(seen)}`),
      ),
    )
  })
}
