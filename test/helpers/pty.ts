/**
 * Drive the built binary under a real pseudo-terminal, as a person at a terminal does: python3's
 * `pty` module (test/helpers/pty-run.py) owns the terminal; the test types bytes (Ctrl-C is
 * "\x03") and waits for output as events, never for time.
 */
import {spawn} from 'node:child_process'
import {join} from 'node:path'

import {baseEnv, BIN, type CliResult, collect, ROOT} from './cli.js'
import {type OutputWatch, watchOutput} from './e2e.js'

const PTY_RUN = join(ROOT, 'test', 'helpers', 'pty-run.py')

export interface PtySession {
  /** Everything the terminal showed (stdout and stderr share it), as it arrives. */
  output: OutputWatch
  /** Resolves when the command has exited and the terminal is closed. */
  result: Promise<CliResult>
  /** Type into the terminal. */
  type(text: string): void
}

/** Start `agentvault ARGS…` on a terminal of its own (stdin, stdout and stderr are TTYs). */
export function startInPty(args: string[], env: NodeJS.ProcessEnv = {}): PtySession {
  const child = spawn('python3', [PTY_RUN, process.execPath, BIN, ...args], {
    cwd: ROOT,
    env: baseEnv({COLUMNS: '200', LINES: '50', TERM: 'xterm-256color', ...env}),
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const output = watchOutput(child)
  const result = collect(child)
  return {
    output,
    result,
    type(text: string): void {
      child.stdin?.write(text)
    },
  }
}

/** Ctrl-C as the terminal sends it. */
export const CTRL_C = '\u0003'
