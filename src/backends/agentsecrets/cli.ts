/**
 * Running the AgentSecrets CLI (protocols/agentsecrets.md §4.1, §2): find the executable, run it
 * with an argv array (never a shell), `NO_COLOR=1` and stdin from /dev/null unless told otherwise,
 * under a timeout; and probe what this binary supports from its `--help` texts, once per binary
 * (cache key: resolved path + mtime) per command.
 *
 * Nothing here decides success from an exit code alone: callers read the output markers.
 */
import type {Debugger} from 'debug'

import {BackendUnavailableError} from '../../core/errors.js'
import {AgentSecretsProtocolError, cliNotFound} from './errors.js'

export const EXECUTABLE = 'agentsecrets'
/** §4.1: the CLI's own client gives up after 60 s. */
export const CALL_TIMEOUT_MS = 90_000
export const MANAGEMENT_TIMEOUT_MS = 30_000
/** Output we are willing to hold from one run (a call's response body travels in it). */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024

export interface CliRunOptions {
  /** Extra environment for the CLI (e.g. AS_AGENT_TOKEN); merged over the inherited one. */
  env?: NodeJS.ProcessEnv
  /** Bytes for stdin (then stdin is a pipe); default /dev/null so prompts read EOF and decline. */
  input?: Buffer
  /** Give the CLI our terminal (production prompts, open point 8); output is then not captured. */
  inheritStdio?: boolean
  timeoutMs: number
}

export interface CliOutput {
  code: null | number
  signal: NodeJS.Signals | null
  stderr: string
  stdout: string
}

/** What this binary supports (§2), probed lazily: each field is filled the first time it is needed. */
export interface CliFeatures {
  /** `log` (2.1.0) or `logs` (3.x) has `--json`; undefined: neither. */
  auditCommand?: 'log' | 'logs' | null
  /** `call --output json` (3.x). */
  callJson?: boolean
  /** `env --only` (3.x). */
  envOnly?: boolean
  /** A stdin option of `secrets set`, when a future CLI advertises one (null: none). */
  setStdinFlag?: null | string
  /** `agentsecrets --version`, for diagnostics only. */
  version?: null | string
}

async function isExecutableFile(path: string): Promise<boolean> {
  const [{access, stat}, {constants}] = await Promise.all([import('node:fs/promises'), import('node:fs')])
  try {
    const info = await stat(path)
    if (!info.isFile()) return false
    await access(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The executable to run: `cliPath` when set (it must exist), else the first `agentsecrets` on PATH.
 * Returns undefined when there is none (the caller decides between E6 and the proxy).
 */
export async function findExecutable(
  cliPath: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  const {delimiter, isAbsolute, join, resolve} = await import('node:path')
  if (cliPath !== undefined) {
    const home = env.HOME && env.HOME !== '' ? env.HOME : (await import('node:os')).homedir()
    const expanded =
      cliPath === '~' ? home : cliPath.startsWith('~/') ? join(home, cliPath.slice(2)) : cliPath
    const absolute = isAbsolute(expanded) ? expanded : resolve(expanded)
    return (await isExecutableFile(absolute)) ? absolute : undefined
  }

  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '' || !isAbsolute(dir)) continue
    const candidate = join(dir, EXECUTABLE)
    if (await isExecutableFile(candidate)) return candidate
  }

  return undefined
}

/** Like {@link findExecutable}, but a missing executable is E6. */
export async function requireExecutable(
  cliPath: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const found = await findExecutable(cliPath, env)
  if (found === undefined)
    throw cliNotFound(
      cliPath === undefined
        ? '`agentsecrets` is not on PATH'
        : `cliPath ${cliPath} is not an executable file`,
    )
  return found
}

/** Runs one AgentSecrets command. Only argv arrays; values never appear in `args` (but see secrets set --allow-argv). */
export class AgentSecretsCli {
  private readonly features: CliFeatures = {}

  constructor(
    readonly executable: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly log?: Debugger,
  ) {}

  /** §2: `call --help` mentions `--output`. */
  async callJson(): Promise<boolean> {
    this.features.callJson ??= await this.helpMentions(['call'], /--output\b/)
    return this.features.callJson
  }

  /** §2: `env --help` mentions `--only`. */
  async envOnly(): Promise<boolean> {
    this.features.envOnly ??= await this.helpMentions(['env'], /--only\b/)
    return this.features.envOnly
  }

  /** §2: `log --help`, else `logs --help`, mentions `--json`. */
  async auditCommand(): Promise<'log' | 'logs' | null> {
    if (this.features.auditCommand === undefined) {
      this.features.auditCommand = (await this.helpMentions(['log'], /--json\b/))
        ? 'log'
        : (await this.helpMentions(['logs'], /--json\b/))
          ? 'logs'
          : null
    }

    return this.features.auditCommand
  }

  /** §4.4: a stdin option of `secrets set` (e.g. `--value-stdin`), if this CLI has one. */
  async setStdinFlag(): Promise<null | string> {
    if (this.features.setStdinFlag === undefined) {
      const help = await this.help(['secrets', 'set'])
      const match = /(?:^|\s)(--[a-z][a-z-]*stdin)\b/.exec(help)
      this.features.setStdinFlag = match?.[1] ?? null
    }

    return this.features.setStdinFlag
  }

  /** `agentsecrets --version` → `X.Y.Z` or `dev`; null when it prints something else. */
  async version(): Promise<null | string> {
    if (this.features.version === undefined) {
      const output = await this.run(['--version'], {timeoutMs: MANAGEMENT_TIMEOUT_MS})
      const match = /agentsecrets version (\S+)/.exec(output.stdout + '\n' + output.stderr)
      this.features.version = match?.[1] && /^[\w.+-]{1,40}$/.test(match[1]) ? match[1] : null
    }

    return this.features.version
  }

  /**
   * Run `agentsecrets ARGS…`. Resolves with the output whatever the exit code; rejects only when
   * the CLI cannot be started, times out, or prints more than we hold.
   */
  async run(args: string[], options: CliRunOptions): Promise<CliOutput> {
    const {spawn} = await import('node:child_process')
    this.log?.(
      'run agentsecrets %s',
      args[0] === 'secrets' && args[1] === 'set' ? 'secrets set …' : args.join(' '),
    )
    const child = spawn(this.executable, args, {
      env: {...this.env, ...options.env, NO_COLOR: '1'},
      shell: false,
      stdio: options.inheritStdio ? 'inherit' : [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let size = 0
    let overflow = false
    const take = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_OUTPUT_BYTES) {
        overflow = true
        child.kill('SIGKILL')
        return
      }

      into.push(chunk)
    }

    child.stdout?.on('data', take(out))
    child.stderr?.on('data', take(err))
    if (options.input && child.stdin) {
      child.stdin.on('error', () => {})
      child.stdin.end(options.input)
    }

    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, options.timeoutMs)
    try {
      const [code, signal] = await new Promise<[null | number, NodeJS.Signals | null]>((resolve, reject) => {
        child.once('error', reject)
        child.once('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal]))
      })
      if (timedOut)
        throw new BackendUnavailableError(
          'AGENTSECRETS_TIMEOUT',
          `agentsecrets ${args[0] ?? ''} did not finish within ${options.timeoutMs / 1000} s`,
          {
            suggestion:
              'Check that AgentSecrets works on its own (a prompt waiting for input, a hung proxy), then retry.',
          },
        )
      if (overflow)
        throw new AgentSecretsProtocolError(
          `agentsecrets ${args[0] ?? ''} printed more than ${MAX_OUTPUT_BYTES} bytes`,
        )
      return {
        code,
        signal,
        stderr: Buffer.concat(err).toString('utf8'),
        stdout: Buffer.concat(out).toString('utf8'),
      }
    } catch (error) {
      const {code} = error as NodeJS.ErrnoException
      if (code === 'ENOENT' || code === 'EACCES')
        throw cliNotFound(`${this.executable} cannot be started: ${code}`)
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  private async help(command: string[]): Promise<string> {
    const output = await this.run([...command, '--help'], {timeoutMs: MANAGEMENT_TIMEOUT_MS})
    return output.stdout + '\n' + output.stderr
  }

  private async helpMentions(command: string[], flag: RegExp): Promise<boolean> {
    const help = await this.help(command)
    // An unknown command prints `x unknown …` (and exits 1): it mentions nothing.
    if (/^\s*(?:x|✗|Error:)\s+unknown/im.test(help)) return false
    return flag.test(help)
  }
}

/** One CLI per executable and mtime (§2), kept by the backend instance for the command's lifetime. */
export class CliCache {
  private readonly clis = new Map<string, AgentSecretsCli>()

  async get(executable: string, env: NodeJS.ProcessEnv, log?: Debugger): Promise<AgentSecretsCli> {
    const {stat} = await import('node:fs/promises')
    let key = executable
    try {
      key += `:${(await stat(executable)).mtimeMs}`
    } catch {
      // Vanished since it was found: the run will report ENOENT.
    }

    let cli = this.clis.get(key)
    if (!cli) {
      cli = new AgentSecretsCli(executable, env, log)
      this.clis.set(key, cli)
    }

    return cli
  }
}
