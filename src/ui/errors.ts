/**
 * How agentvault's own failures look: `Error: …` then `Try this: …` on stderr, or the JSON error
 * object on stdout with `--json` (product.md §9). Used by the oclif base command and the fast path.
 */
import {createRequire} from 'node:module'

import {type AgentVaultError, DEFAULT_SUGGESTIONS, toAgentVaultError} from '../core/errors.js'

/**
 * Text for the terminal: control characters other than line breaks and tabs become `?`. Error
 * messages can carry what a server said or a name a backend returned; an escape sequence there
 * would reach the terminal (OSC 52 writes the clipboard, others retitle the window or hide lines).
 * `--json` keeps the exact text.
 */
export function terminalText(text: string): string {
  return text.replaceAll(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g, '?')
}

export function formatError(error: AgentVaultError, color: boolean): string {
  const red = (text: string): string => (color ? `\u001B[31m${text}\u001B[39m` : text)
  const lines = [`${red('Error:')} ${terminalText(error.message)}`]
  lines.push(`Try this: ${terminalText(error.suggestion || DEFAULT_SUGGESTIONS[error.category])}`)
  return lines.join('\n') + '\n'
}

/** Print an error the house way and return the exit code to use. */
export function reportError(thrown: unknown, options: {json: boolean}): number {
  const error = toAgentVaultError(thrown)
  if (options.json) {
    process.stdout.write(JSON.stringify(error.toJSON(), null, 2) + '\n')
  } else if (error.category === 'cancelled') {
    // Ctrl-C at a prompt: the user knows what happened and how to go on.
    process.stderr.write(`${terminalText(error.message)}\n`)
  } else {
    const color = Boolean(process.stderr.isTTY) && !process.env.NO_COLOR
    process.stderr.write(formatError(error, color))
  }

  if (
    error.category === 'internal' &&
    process.env.DEBUG &&
    error.cause instanceof Error &&
    error.cause.stack
  ) {
    // Through debug's log, which main.ts routes through the redaction of argv's values.
    const {log} = createRequire(import.meta.url)('debug') as {log(...args: unknown[]): void}
    log(error.cause.stack)
  }

  return error.exitCode
}

export function warn(message: string): void {
  process.stderr.write(`Warning: ${terminalText(message)}\n`)
}
