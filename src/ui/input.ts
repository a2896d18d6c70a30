/**
 * Reading secret input: piped stdin, a hidden prompt, a file or an env var. Values stay Buffers.
 */
import {UsageError} from '../core/errors.js'

/** Read all of stdin as bytes. */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Drop one trailing newline, as `echo value | …` adds one. */
export function stripOneNewline(value: Buffer): Buffer {
  if (value.at(-1) !== 0x0a) return value
  return value.subarray(0, value.at(-2) === 0x0d ? -2 : -1)
}

/** A hidden prompt; only call when interactive. */
export async function promptHidden(message: string): Promise<Buffer> {
  const {password} = await import('@inquirer/prompts')
  const answer = await password({mask: true, message}, {output: process.stderr})
  return Buffer.from(answer, 'utf8')
}

export async function confirm(message: string): Promise<boolean> {
  const {confirm: ask} = await import('@inquirer/prompts')
  return ask({default: false, message}, {output: process.stderr})
}

export interface SecretInputOptions {
  fromEnv?: string
  fromFile?: string
  /** A value given in argv (`NAME=VALUE`): accepted with a warning. */
  inline?: string
  interactive: boolean
  promptLabel: string
  warn(message: string): void
}

/** The value to store, from the first source given; a clear error when there is none. */
export async function readSecretInput(options: SecretInputOptions): Promise<Buffer> {
  if (options.inline !== undefined) {
    options.warn('A value in argv leaks to shell history and `ps`; prefer stdin, --from-file or --from-env.')
    return Buffer.from(options.inline, 'utf8')
  }

  if (options.fromFile !== undefined) {
    const {readFile} = await import('node:fs/promises')
    try {
      return await readFile(options.fromFile)
    } catch (error) {
      throw new UsageError(
        'FILE_UNREADABLE',
        `Cannot read ${options.fromFile} (${(error as NodeJS.ErrnoException).code})`,
        {
          suggestion: 'Check the path given to --from-file.',
        },
      )
    }
  }

  if (options.fromEnv !== undefined) {
    const value = process.env[options.fromEnv]
    if (value === undefined)
      throw new UsageError('ENV_VAR_UNSET', `Environment variable ${options.fromEnv} is not set`, {
        suggestion: `Export ${options.fromEnv} first, or pipe the value on stdin.`,
      })
    return Buffer.from(value, 'utf8')
  }

  if (!process.stdin.isTTY) {
    const piped = stripOneNewline(await readStdin())
    if (piped.length > 0) return piped
    throw new UsageError('VALUE_REQUIRED', 'stdin was empty: no value to store', {
      suggestion:
        'Pipe the value on stdin (printf %s "$VALUE" | …), or use --from-file FILE or --from-env VAR.',
    })
  }

  if (options.interactive) return promptHidden(options.promptLabel)
  throw new UsageError('VALUE_REQUIRED', 'No value given and prompting is off', {
    suggestion: 'Pipe the value on stdin, or use --from-file FILE or --from-env VAR.',
  })
}
