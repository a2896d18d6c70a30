/**
 * Reading secret input: piped stdin, a hidden prompt, a file or an env var. Values stay Buffers.
 */
import {fstatSync, readSync, type Stats} from 'node:fs'

import {UsageError} from '../core/errors.js'
import {checkValueSize, describeBytes, valueTooLarge} from '../core/value-size.js'
import {isTerminal} from './terminal.js'

/** The error for input over its cap: it names the limit, never the bytes. */
export type TooLarge = (maxBytes: number) => UsageError

/**
 * INPUT_TOO_LARGE for input that is not a secret's value (a request body, JSON parameters, a
 * credential for login): `what` names where it came from.
 */
export function inputTooLarge(what: string, suggestion: string): TooLarge {
  return (maxBytes) =>
    new UsageError('INPUT_TOO_LARGE', `${what} is larger than the limit of ${describeBytes(maxBytes)}`, {
      details: {maxBytes},
      suggestion,
    })
}

/**
 * Read all of stdin as bytes, never more than `maxBytes + slack`: past that, stop reading and fail
 * with `tooLarge` (VALUE_TOO_LARGE by default), whatever the writer still has to send — endless
 * input (`< /dev/zero`, `yes |`) ends in a clear error, not a hang or an out-of-memory crash.
 * `slack`: bytes the caller strips before checking the cap itself (a final newline).
 */
export async function readStdin(
  maxBytes: number,
  slack = 0,
  tooLarge: TooLarge = valueTooLarge,
): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  const take = (chunk: Buffer): void => {
    chunks.push(chunk)
    total += chunk.length
    if (total > maxBytes + slack) {
      for (const read of chunks) read.fill(0)
      // Leaving early (the stream's loop too) stops reading: the writer gets EPIPE.
      throw tooLarge(maxBytes)
    }
  }

  // At most one byte past the cap: that byte tells "exactly the cap" from "over it".
  if (!readStdinSync(take, () => maxBytes + slack + 1 - total))
    for await (const chunk of process.stdin) take(chunk as Buffer)
  const all = Buffer.concat(chunks)
  for (const read of chunks) read.fill(0)
  return all
}

/**
 * Read stdin to its end with read(2) when it is a pipe, socket or file that blocks (as a shell or
 * a parent process hands it over), without creating `process.stdin` (a socket, the stream and net
 * modules: milliseconds). False, having taken what it read, when the rest needs the stream: a
 * terminal or device, or a descriptor set non-blocking by whoever shares it (EAGAIN).
 */
function readStdinSync(take: (chunk: Buffer) => void, room: () => number): boolean {
  let info: Stats
  try {
    info = fstatSync(0)
  } catch {
    return false
  }

  if (!info.isFIFO() && !info.isFile() && !info.isSocket()) return false
  for (;;) {
    const chunk = Buffer.alloc(Math.min(64 * 1024, room()))
    let bytesRead: number
    try {
      bytesRead = readSync(0, chunk, 0, chunk.length, null)
    } catch {
      // EAGAIN, EINTR or anything odd: the stream goes on from here, and fails as it always did.
      return false
    }

    if (bytesRead === 0) return true
    take(chunk.subarray(0, bytesRead)) // throws past the cap
  }
}

/**
 * Read a file (or a FIFO, or a device) up to `maxBytes + slack` bytes; more than that fails with
 * `tooLarge` (VALUE_TOO_LARGE naming `maxBytes` by default).
 * Memory grows with what the file holds, never with the cap (which a user may raise a lot).
 */
export async function readFileCapped(
  path: string,
  maxBytes: number,
  slack = 0,
  tooLarge: TooLarge = valueTooLarge,
): Promise<Buffer> {
  const {open} = await import('node:fs/promises')
  const handle = await open(path, 'r')
  const chunks: Buffer[] = []
  try {
    let total = 0
    for (;;) {
      // At most one byte past the cap: that byte tells "exactly the cap" from "over it".
      const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes + slack + 1 - total))
      const {bytesRead} = await handle.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      chunks.push(chunk.subarray(0, bytesRead))
      total += bytesRead
      if (total > maxBytes + slack) throw tooLarge(maxBytes)
    }

    return Buffer.concat(chunks)
  } finally {
    for (const chunk of chunks) chunk.fill(0)
    await handle.close()
  }
}

/** Drop one trailing newline, as `echo value | …` adds one. */
export function stripOneNewline(value: Buffer): Buffer {
  if (value.at(-1) !== 0x0a) return value
  return value.subarray(0, value.at(-2) === 0x0d ? -2 : -1)
}

/**
 * A hidden prompt; only call when interactive. An empty answer is refused at the prompt (it asks
 * again; Ctrl-C cancels), as is one longer than `maxBytes`.
 */
export async function promptHidden(message: string, options: {maxBytes?: number} = {}): Promise<Buffer> {
  const {password} = await import('@inquirer/prompts')
  const answer = await password(
    {
      mask: true,
      message,
      validate(value: string): string | true {
        if (value.trim() === '') return 'A value is required (Ctrl-C cancels).'
        if (options.maxBytes !== undefined && Buffer.byteLength(value, 'utf8') > options.maxBytes)
          return valueTooLarge(options.maxBytes).message
        return true
      },
    },
    {output: process.stderr},
  )
  return Buffer.from(answer, 'utf8')
}

/** A visible one-line prompt (a name, an id); only call when interactive. */
export async function promptText(message: string): Promise<string> {
  const {input} = await import('@inquirer/prompts')
  return input({message}, {output: process.stderr})
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
  /** The largest value accepted, in bytes: no source is read further than this. */
  maxBytes: number
  promptLabel: string
  warn(message: string): void
}

function emptyValue(source: string): UsageError {
  return new UsageError('VALUE_REQUIRED', `${source} was empty: no value to store`, {
    suggestion: 'Give a non-empty value: printf %s "$VALUE" | …, --from-file FILE or --from-env VAR.',
  })
}

/**
 * The value to store, from the first source given; a clear error when there is none, when it is
 * empty, or when it is larger than `maxBytes`. Piped stdin and `--from-file` drop one trailing
 * newline (`\n` or `\r\n`): `echo` and editors add one that the user does not mean.
 */
export async function readSecretInput(options: SecretInputOptions): Promise<Buffer> {
  const {maxBytes} = options
  if (options.inline !== undefined) {
    options.warn('A value in argv leaks to shell history and `ps`; prefer stdin, --from-file or --from-env.')
    checkValueSize(Buffer.byteLength(options.inline, 'utf8'), maxBytes)
    if (options.inline === '') throw emptyValue('The value after "="')
    return Buffer.from(options.inline, 'utf8')
  }

  // `--from-file -` is stdin, as `-` is for curl, kubectl and gh (a file named - is ./-).
  if (options.fromFile !== undefined && options.fromFile !== '-') {
    let bytes: Buffer
    try {
      // The newline may be the byte past the cap: read one more, strip, then check.
      bytes = stripOneNewline(await readFileCapped(options.fromFile, maxBytes, 2))
    } catch (error) {
      if (!(error as NodeJS.ErrnoException).code || error instanceof UsageError) throw error
      throw new UsageError(
        'FILE_UNREADABLE',
        `Cannot read ${options.fromFile} (${(error as NodeJS.ErrnoException).code})`,
        {
          suggestion: 'Check the path given to --from-file.',
        },
      )
    }

    return capped(bytes, maxBytes, `${options.fromFile}`)
  }

  if (options.fromEnv !== undefined) {
    const value = process.env[options.fromEnv]
    if (value === undefined)
      throw new UsageError('ENV_VAR_UNSET', `Environment variable ${options.fromEnv} is not set`, {
        suggestion: `Export ${options.fromEnv} first, or pipe the value on stdin.`,
      })
    checkValueSize(Buffer.byteLength(value, 'utf8'), maxBytes)
    if (value === '') throw emptyValue(`Environment variable ${options.fromEnv}`)
    return Buffer.from(value, 'utf8')
  }

  if (!isTerminal(0)) {
    const piped = stripOneNewline(await readStdin(maxBytes, 2))
    if (piped.length > 0) return capped(piped, maxBytes, 'stdin')
    throw new UsageError('VALUE_REQUIRED', 'stdin was empty: no value to store', {
      suggestion:
        'Pipe the value on stdin (printf %s "$VALUE" | …), or use --from-file FILE or --from-env VAR.',
    })
  }

  if (options.interactive) return promptHidden(options.promptLabel, {maxBytes})
  throw new UsageError('VALUE_REQUIRED', 'No value given and prompting is off', {
    suggestion: 'Pipe the value on stdin, or use --from-file FILE or --from-env VAR.',
  })
}

/** `bytes` once it is known to be non-empty and within the cap (else it is wiped and refused). */
function capped(bytes: Buffer, maxBytes: number, source: string): Buffer {
  if (bytes.length > maxBytes || bytes.length === 0) bytes.fill(0)
  checkValueSize(bytes.length, maxBytes)
  if (bytes.length === 0) throw emptyValue(source)
  return bytes
}

/**
 * A whole input file for `secrets import` / `inject`: `-` is stdin. More than `maxBytes` fails with
 * FILE_TOO_LARGE (nothing is read past it); an unreadable path with FILE_UNREADABLE naming `flag`.
 */
export async function readInputFile(path: string, maxBytes: number, flag: string): Promise<Buffer> {
  try {
    return path === '-' ? await readStdin(maxBytes) : await readFileCapped(path, maxBytes)
  } catch (error) {
    if (error instanceof UsageError && error.code === 'VALUE_TOO_LARGE')
      throw new UsageError(
        'FILE_TOO_LARGE',
        `${path === '-' ? 'stdin' : path} is larger than ${maxBytes} bytes`,
        {
          suggestion: 'Split the file into smaller ones.',
        },
      )
    if (!(error as NodeJS.ErrnoException).code || error instanceof UsageError) throw error
    throw new UsageError(
      'FILE_UNREADABLE',
      `Cannot read ${path} (${(error as NodeJS.ErrnoException).code})`,
      {
        suggestion: `Check the path given to ${flag}.`,
      },
    )
  }
}
