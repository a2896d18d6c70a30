/**
 * `run_command` of `agentvault mcp`: start an argv (no shell) with secrets in its environment and
 * hand back its exit code and its output, masked and bounded. Unlike `agentvault run`, the child
 * never gets the server's stdin or stdout (they carry the protocol) nor its environment: only a
 * minimal one (`--clean-env`'s) plus the secrets.
 */
import type {Session} from '../session.js'

import {UsageError} from '../errors.js'
import {DEFAULT_RUN_TIMEOUT_SECONDS, MAX_OUTPUT_BYTES, type RunCommandInput} from './tools.js'

/** Values shorter than this cannot be masked; run_command refuses them rather than leak them. */
const MIN_MASK_LENGTH = 4
/** After SIGTERM at the timeout (or a cancellation), SIGKILL follows this much later. */
const KILL_GRACE_MS = 2000
const ENV_NAME = /^[A-Za-z_]\w*$/

export interface RunCommandResult {
  duration_ms: number
  /** The command's exit code; null when it died of a signal. */
  exit_code: null | number
  signal?: string
  stderr: string
  /** Bytes dropped from the start of stderr to keep its last MAX_OUTPUT_BYTES. */
  stderr_truncated_bytes?: number
  stdout: string
  stdout_truncated_bytes?: number
  timed_out: boolean
}

/** The last `limit` bytes of a stream, counting what was dropped. */
class Tail {
  dropped = 0
  private chunks: Buffer[] = []
  private size = 0

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.size > this.limit) {
      const first = this.chunks[0] as Buffer
      const excess = this.size - this.limit
      if (first.length <= excess) {
        this.chunks.shift()
        this.size -= first.length
        this.dropped += first.length
      } else {
        this.chunks[0] = first.subarray(excess)
        this.size -= excess
        this.dropped += excess
      }
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8')
  }
}

/**
 * Resolve `input.env` (each reference already admitted by the server's policy), start the command
 * and collect its masked output. `signal` aborts it (the client cancelled the request).
 */
export async function runCommand(
  session: Session,
  input: RunCommandInput,
  references: ReadonlyMap<string, string>,
  signal: AbortSignal,
): Promise<RunCommandResult> {
  session.audit.operation = 'run'
  for (const name of Object.keys(input.env ?? {}))
    if (!ENV_NAME.test(name))
      throw new UsageError('BAD_ENV_MAPPING', 'An env name is not a valid environment variable name', {
        suggestion: 'Use names of letters, digits and _ that do not start with a digit, e.g. API_KEY.',
      })
  const {prepareRun} = await import('../runner.js')
  // The server's own environment never reaches the child (it may hold agentvault's credentials);
  // nor are its reference-valued variables resolved: only `env`, which the policy admitted.
  const baseEnv: NodeJS.ProcessEnv = {}
  for (const name of ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR', 'TZ', 'LANG'])
    if (process.env[name] !== undefined) baseEnv[name] = process.env[name]
  for (const [name, value] of Object.entries(process.env))
    if (name.startsWith('LC_') && value !== undefined) baseEnv[name] = value
  const prepared = await prepareRun(
    session,
    {
      cleanEnv: true,
      passEnv: [],
      allowHosts: [],
      isolate: false,
      placeholders: false,
      command: input.command,
      env: [...references].map(([name, ref]) => `${name}=${ref}`),
      envFiles: [],
      mask: 'always',
    },
    baseEnv,
  )
  try {
    if (prepared.secrets.some((value) => value.length > 0 && value.length < MIN_MASK_LENGTH))
      throw new UsageError(
        'VALUE_TOO_SHORT_TO_MASK',
        `A secret given in env is shorter than ${MIN_MASK_LENGTH} bytes and could not be concealed in the output`,
        {suggestion: 'Use the secret with http_request or use_secret instead, or store a longer value.'},
      )
    return await spawnMasked(prepared, input, signal)
  } finally {
    for (const value of prepared.secrets) value.fill(0)
  }
}

async function spawnMasked(
  prepared: {command: string[]; env: NodeJS.ProcessEnv; secrets: Buffer[]},
  input: RunCommandInput,
  signal: AbortSignal,
): Promise<RunCommandResult> {
  const [{spawn}, {maskPatterns, Masker}] = await Promise.all([
    import('node:child_process'),
    import('../mask.js'),
  ])
  const patterns = maskPatterns(prepared.secrets, {minLength: MIN_MASK_LENGTH})
  const started = Date.now()
  const [file, ...args] = prepared.command as [string, ...string[]]
  // Its own process group: a timeout or a cancelled call stops everything the command started,
  // also what it left running in the background holding the output open (and the secrets).
  const child = spawn(file, args, {
    ...(input.cwd !== undefined && {cwd: input.cwd}),
    detached: true,
    env: prepared.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const outputs = [child.stdout, child.stderr].map((stream) => {
    const masker = patterns.length > 0 ? new Masker(patterns) : undefined
    const tail = new Tail(MAX_OUTPUT_BYTES)
    const done = new Promise<Tail>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        for (const piece of masker ? masker.push(chunk) : [chunk]) tail.push(piece)
      })
      stream.once('close', () => {
        for (const piece of masker ? masker.end() : []) tail.push(piece)
        resolve(tail)
      })
    })
    return done
  })

  let timedOut = false
  let killer: NodeJS.Timeout | undefined
  const signalGroup = (name: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, name)
    } catch {
      // The group is gone (or was never made): the child alone, if it is still there.
      if (child.exitCode === null && child.signalCode === null) child.kill(name)
    }
  }

  const stop = (): void => {
    if (killer) return
    signalGroup('SIGTERM')
    killer = setTimeout(() => {
      signalGroup('SIGKILL')
      // Whatever still holds the output open left the group (setsid): stop reading, answer.
      killer = setTimeout(() => {
        child.stdout.destroy()
        child.stderr.destroy()
      }, KILL_GRACE_MS)
    }, KILL_GRACE_MS)
  }

  const timer = setTimeout(
    () => {
      timedOut = true
      stop()
    },
    (input.timeout_seconds ?? DEFAULT_RUN_TIMEOUT_SECONDS) * 1000,
  )
  signal.addEventListener('abort', stop, {once: true})
  try {
    const started_ = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null))
      child.once('error', (error) => resolve(error))
    })
    if (started_) {
      const {code} = started_ as NodeJS.ErrnoException
      throw new UsageError(
        'COMMAND_FAILED_TO_START',
        `Cannot start ${file.slice(0, 200)}: ${code === 'ENOENT' ? 'command not found' : code}`,
        {
          suggestion:
            code === 'ENOENT'
              ? 'Check the program name (give a full path if it is not on the PATH) and cwd.'
              : 'Check that the program is executable and that cwd exists.',
        },
      )
    }

    const [code, exitSignal] = await new Promise<[null | number, NodeJS.Signals | null]>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve([child.exitCode, child.signalCode])
      else child.once('exit', (exitCode, killedBy) => resolve([exitCode, killedBy]))
    })
    const [stdout, stderr] = (await Promise.all(outputs)) as [Tail, Tail]
    return {
      exit_code: code,
      ...(exitSignal && {signal: exitSignal}),
      timed_out: timedOut,
      stdout: stdout.text(),
      ...(stdout.dropped > 0 && {stdout_truncated_bytes: stdout.dropped}),
      stderr: stderr.text(),
      ...(stderr.dropped > 0 && {stderr_truncated_bytes: stderr.dropped}),
      duration_ms: Date.now() - started,
    }
  } finally {
    clearTimeout(timer)
    if (killer) clearTimeout(killer)
    signal.removeEventListener('abort', stop)
  }
}
