/**
 * Typed errors. Each error is thrown where the problem is known, carries a stable code, a category
 * and a suggestion ("Try this"), and never a secret value. Only the command layer maps categories to
 * process exit codes (product.md §9).
 */

import {dirname} from 'node:path'

export type ErrorCategory =
  | 'auth'
  | 'cancelled'
  | 'config'
  | 'denied'
  | 'internal'
  | 'not_found'
  | 'rate_limited'
  | 'unavailable'
  | 'usage'

/** Exit codes of agentvault's own failures (product.md §9). */
export const EXIT_CODES: Readonly<Record<ErrorCategory, number>> = {
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

/**
 * The "Try this" shown for an error thrown without one (product.md §9: every failure has one, in
 * both the text and the `--json` form). A usage error of a command gets that command's `--help`
 * instead (see {@link withCommandHelp}).
 */
export const DEFAULT_SUGGESTIONS: Readonly<Record<ErrorCategory, string>> = {
  auth: 'Sign in again (`agentvault login`), or check the credentials the command used.',
  cancelled: 'Run the command again when you are ready.',
  config: 'Check the profile and its settings: `agentvault profiles list`, `agentvault status`.',
  denied: "Check the secret's allowed domains and the profile's policy.",
  internal: 'This is a bug in agentvault: please report it with the command you ran (never a secret).',
  not_found: 'See what exists: `agentvault secrets list`.',
  rate_limited: 'Wait a little, then run the command again.',
  unavailable: 'Check that the backend is running and reachable, then run the command again.',
  usage: 'Run the command with --help to see its flags and arguments.',
}

/**
 * `error` with the suggestion to read `agentvault COMMAND --help` when it is a usage error that
 * came without a suggestion of its own; otherwise `error` itself.
 */
export function withCommandHelp(error: AgentVaultError, commandId: string | undefined): AgentVaultError {
  if (error.category !== 'usage' || error.suggestion || !commandId) return error
  return new AgentVaultError(error.category, error.code, error.message, {
    cause: error.cause,
    ...(error.details && {details: error.details}),
    suggestion: `See \`agentvault ${commandId.replaceAll(':', ' ')} --help\`.`,
  })
}

export interface ErrorOptions {
  cause?: unknown
  /** Extra, value-free facts for `--json` and debug output. */
  details?: Record<string, unknown>
  suggestion?: string
}

export class AgentVaultError extends Error {
  readonly category: ErrorCategory
  readonly code: string
  readonly details?: Record<string, unknown>
  readonly suggestion?: string

  constructor(category: ErrorCategory, code: string, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = new.target.name
    this.category = category
    this.code = code
    this.suggestion = options.suggestion
    this.details = options.details
  }

  get exitCode(): number {
    return EXIT_CODES[this.category]
  }

  /** The `--json` error shape: `{"error": {code, category, message, suggestion}}`. */
  toJSON(): {
    error: {
      category: ErrorCategory
      code: string
      details?: Record<string, unknown>
      message: string
      suggestion: string
    }
  } {
    return {
      error: {
        code: this.code,
        category: this.category,
        message: this.message,
        suggestion: this.suggestion || DEFAULT_SUGGESTIONS[this.category],
        ...(this.details ? {details: this.details} : {}),
      },
    }
  }
}

export class UsageError extends AgentVaultError {
  constructor(code: string, message: string, options?: ErrorOptions) {
    super('usage', code, message, options)
  }
}

export class ConfigError extends AgentVaultError {
  constructor(code: string, message: string, options?: ErrorOptions) {
    super('config', code, message, options)
  }
}

export class AuthError extends AgentVaultError {
  constructor(code: string, message: string, options?: ErrorOptions) {
    super('auth', code, message, options)
  }
}

export class BackendUnavailableError extends AgentVaultError {
  constructor(code: string, message: string, options?: ErrorOptions) {
    super('unavailable', code, message, options)
  }
}

export class SecretNotFoundError extends AgentVaultError {
  constructor(reference: string, options: ErrorOptions & {code?: string} = {}) {
    super('not_found', options.code ?? 'SECRET_NOT_FOUND', `Secret not found: ${reference}`, {
      suggestion: 'Run `agentvault secrets list` to see the names you can use.',
      ...options,
    })
  }
}

export class DeniedError extends AgentVaultError {
  constructor(code: string, message: string, options?: ErrorOptions) {
    super('denied', code, message, options)
  }
}

export class RateLimitedError extends AgentVaultError {
  constructor(code: string, message: string, options?: ErrorOptions) {
    super('rate_limited', code, message, options)
  }
}

/** A backend was asked for a capability it does not have (product.md §2). */
export class NotSupportedError extends AgentVaultError {
  constructor(kind: string, what: string, suggestion?: string) {
    super('usage', 'NOT_SUPPORTED', `${what} is not supported by ${kind}`, {
      suggestion: suggestion ?? `Use a backend that supports it; \`agentvault status\` lists your profiles.`,
    })
  }
}

/** The user pressed Ctrl-C at a prompt (exit 130, product.md §9). Not a failure to explain. */
export class CancelledError extends AgentVaultError {
  constructor(options?: ErrorOptions) {
    super('cancelled', 'CANCELLED', 'Cancelled.', {
      suggestion: 'Nothing was changed; run the command again when ready.',
      ...options,
    })
  }
}

export class InternalError extends AgentVaultError {
  constructor(message: string, options?: ErrorOptions) {
    super('internal', 'INTERNAL', message, {
      suggestion: 'This is a bug in agentvault: please report it with the command you ran (never a secret).',
      ...options,
    })
  }
}

/**
 * A failed file-system call (a write to a full disk, a read-only or foreign home) is the machine's
 * state, not a bug: say which, with the exit code of §9, rather than "Unexpected error … report it".
 * The message names the call and path Node names (never a value: our files' contents never reach an
 * errno message). Every write of agentvault's files is atomic, so what was there is still there.
 */
function fileSystemError(error: unknown): AgentVaultError | undefined {
  if (!(error instanceof Error)) return undefined
  const {code, errno, path, syscall} = error as NodeJS.ErrnoException
  if (typeof code !== 'string' || typeof syscall !== 'string') return undefined
  const failure: FileSystemFailure = {
    code,
    fileCall: FILE_SYSTEM_CALLS.has(syscall),
    options: {cause: error, details: {errno: code, syscall, ...(typeof path === 'string' && {path})}},
    path: typeof path === 'string' ? path : undefined,
    where: typeof path === 'string' ? ` (${syscall} ${path})` : ` (${syscall})`,
  }
  const named = FILE_SYSTEM_FAILURES[code]?.(failure)
  if (named) return named
  // Any other errno of a file-system call (a system error, not one of Node's ERR_ codes).
  return typeof errno === 'number' && FILE_SYSTEM_CALLS.has(syscall)
    ? otherFileSystemFailure(failure)
    : undefined
}

interface FileSystemFailure {
  code: string
  /** A call on a file or directory (not spawn, connect, getaddrinfo, …). */
  fileCall: boolean
  options: ErrorOptions
  path: string | undefined
  /** " (syscall path)" */
  where: string
}

const FILE_SYSTEM_CALLS = new Set([
  'access',
  'chmod',
  'close',
  'copyfile',
  'fchmod',
  'fdatasync',
  'fstat',
  'fsync',
  'ftruncate',
  'futime',
  'link',
  'lstat',
  'mkdir',
  'mkdtemp',
  'open',
  'opendir',
  'read',
  'readlink',
  'realpath',
  'rename',
  'rmdir',
  'scandir',
  'stat',
  'symlink',
  'unlink',
  'utime',
  'write',
])

function diskFull({code, options, where}: FileSystemFailure): AgentVaultError {
  const what =
    code === 'EFBIG'
      ? 'a file would grow past the size limit (ulimit -f) or the filesystem’s maximum'
      : code === 'EDQUOT'
        ? 'the disk quota is exhausted'
        : 'no space left on the device'
  return new BackendUnavailableError('DISK_FULL', `Could not write: ${what}${where}; nothing was changed`, {
    ...options,
    suggestion:
      'Free some space on the filesystem of the agentvault home (or point AGENTVAULT_HOME at another one), then run the command again.',
  })
}

function notWritable({code, options, path, where}: FileSystemFailure): AgentVaultError {
  // A read-only filesystem: the directory says more than the temp file that could not be made.
  // Without a path (a write to a file already open, on a filesystem remounted read-only after an
  // error, or refused by FUSE/NFS), the home is what is named.
  const reason = code === 'EROFS' ? 'is on a read-only filesystem' : 'is not writable by this user'
  const message =
    path === undefined
      ? `A file of the agentvault home could not be written: the filesystem refused it (${code})${where}`
      : code === 'EROFS'
        ? `${dirname(path)} ${reason}${where}`
        : `${path} is not accessible to this user${where}`
  return new ConfigError('HOME_NOT_WRITABLE', message, {
    ...options,
    suggestion:
      'Point AGENTVAULT_HOME at a directory this user can write, or fix its owner and permissions (the home is 0700, its files 0600).',
  })
}

/** A file-system failure with no more specific story: exit 5, the call and the errno named. */
function otherFileSystemFailure({code, options, where}: FileSystemFailure): AgentVaultError {
  return new BackendUnavailableError(
    'FILE_SYSTEM_ERROR',
    `The file system refused a call (${code})${where}`,
    {
      ...options,
      suggestion: 'Check the disk and the agentvault home (AGENTVAULT_HOME), then run the command again.',
    },
  )
}

/** errno → what it means for agentvault (product.md §9); undefined: the generic failure. */
const FILE_SYSTEM_FAILURES: Readonly<
  Record<string, (failure: FileSystemFailure) => AgentVaultError | undefined>
> = {
  EACCES: notWritable,
  // A file of the home that is itself a mount point (`docker run -v ./vault.json:…`): a new copy
  // cannot be renamed over it.
  EBUSY: ({fileCall, options, path, where}) =>
    path === undefined || !fileCall
      ? undefined
      : new ConfigError(
          'FILE_NOT_REPLACEABLE',
          `${path} cannot be replaced${where}: it is in use or a mount point`,
          {
            ...options,
            suggestion:
              'agentvault replaces its files by renaming a new copy over them: mount the whole agentvault home (a directory), not single files of it.',
          },
        ),
  EDQUOT: diskFull,
  EFBIG: diskFull,
  EIO: ({options, where}) =>
    new BackendUnavailableError('IO_ERROR', `An input/output error from the disk${where}`, {
      ...options,
      suggestion: 'Check the disk holding the agentvault home (dmesg, fsck), then run the command again.',
    }),
  ELOOP: unusablePathError,
  EMFILE: tooManyOpenFiles,
  ENAMETOOLONG: unusablePathError,
  ENFILE: tooManyOpenFiles,
  ENOENT: ({fileCall, options, path, where}) =>
    path === undefined || !fileCall
      ? undefined
      : new ConfigError(
          'FILE_VANISHED',
          `${path} does not exist${where}: it was removed while agentvault used it`,
          {
            ...options,
            suggestion:
              'Check that the agentvault home (AGENTVAULT_HOME) still exists and that nothing else removes its files, then run the command again.',
          },
        ),
  ENOSPC: diskFull,
  ENOTDIR: unusablePathError,
  EPERM: notWritable,
  EROFS: notWritable,
  EXDEV: ({fileCall, options, path, where}) =>
    path === undefined || !fileCall
      ? undefined
      : new ConfigError(
          'FILE_NOT_REPLACEABLE',
          `${path} cannot be replaced${where}: it is on another filesystem`,
          {
            ...options,
            suggestion:
              'agentvault replaces its files by renaming a new copy over them: mount the whole agentvault home (a directory), not single files of it.',
          },
        ),
}

function tooManyOpenFiles({options, where}: FileSystemFailure): AgentVaultError {
  return new BackendUnavailableError('TOO_MANY_OPEN_FILES', `Too many open files${where}`, {
    ...options,
    suggestion:
      'Raise the limit of open files (ulimit -n) or close other programs, then run the command again.',
  })
}

/** The home's path cannot hold our files: a part of it is a file, it is too long, or it loops. */
function unusablePathError({code, options, path, where}: FileSystemFailure): AgentVaultError | undefined {
  if (path === undefined) return undefined
  const why =
    code === 'ENOTDIR'
      ? 'a part of that path is a file, not a directory'
      : code === 'ENAMETOOLONG'
        ? 'the path is too long for this system'
        : 'the path has too many symbolic links (a loop)'
  return new ConfigError('HOME_UNUSABLE', `Cannot use ${path}: ${why}${where}`, {
    ...options,
    suggestion: 'Point AGENTVAULT_HOME at a directory (or create the directory it names).',
  })
}

/** Wrap anything thrown into an AgentVaultError without leaking its message when it is not ours. */
export function toAgentVaultError(error: unknown): AgentVaultError {
  if (error instanceof AgentVaultError) return error
  const fromFileSystem = fileSystemError(error)
  if (fromFileSystem) return fromFileSystem
  // @inquirer/prompts rejects with ExitPromptError when Ctrl-C closes a prompt.
  if (error instanceof Error && error.name === 'ExitPromptError') return new CancelledError({cause: error})
  const message = error instanceof Error ? error.message : String(error)
  return new InternalError(`Unexpected error: ${message}`, {cause: error})
}
