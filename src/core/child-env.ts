/**
 * What `run` lets into its child's environment, and what the OS will accept there.
 *
 * Withheld by default: agentvault's own credentials and every credential variable any backend
 * declares (BACKEND_CREDENTIAL_ENV) — all known ones, not only those of the backends this run
 * happens to use: a child has no business holding the keys agentvault signs in with, and a
 * credential left in the environment for a backend this run did not touch is just as readable by
 * `env`. `--pass-env NAME` keeps one on purpose; its value is then masked like any secret.
 *
 * Checked before spawning (Node would otherwise quote a value in its error, or fail with E2BIG as
 * an unexpected error): no NUL byte in a name, value or argument; on Linux no `NAME=value` or
 * argument longer than MAX_ARG_STRLEN. Errors name the variable and the limit, never a value.
 */
import {UsageError} from './errors.js'
import {BACKEND_CREDENTIAL_ENV} from './registry.js'

/** agentvault's own credentials, read by core for every backend (the vault's and credential store's key). */
export const CORE_CREDENTIAL_ENV: readonly string[] = ['AGENTVAULT_PASSPHRASE']

/** Linux's MAX_ARG_STRLEN (32 pages): the longest one argument or `NAME=value` may be, its NUL included. */
export const MAX_ARG_STRLEN = 128 * 1024

/** Every credential variable `run` withholds unless `--pass-env` keeps it, sorted. */
export function credentialVariables(): string[] {
  return [...new Set([...CORE_CREDENTIAL_ENV, ...Object.values(BACKEND_CREDENTIAL_ENV).flat()])].sort()
}

const kib = (bytes: number): string => `${Math.floor(bytes / 1024)} KiB`

/**
 * Throw a UsageError (exit 2) naming the first variable or argument the OS would refuse: a NUL byte
 * anywhere, or (Linux) one string longer than MAX_ARG_STRLEN.
 */
export function checkSpawnable(
  command: readonly string[],
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform = process.platform,
): void {
  const perStringLimit = platform === 'linux' ? MAX_ARG_STRLEN : Number.POSITIVE_INFINITY
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue
    if (name.includes('\0') || value.includes('\0'))
      throw new UsageError(
        'VALUE_NOT_ENV_SAFE',
        `The value of ${name.replaceAll('\0', '\\0')} contains a NUL byte`,
        {
          suggestion: `Environment variables cannot hold NUL bytes: remove it from ${name}, or store the value base64-encoded.`,
        },
      )
    const size = Buffer.byteLength(name) + 1 + Buffer.byteLength(value) + 1
    if (size > perStringLimit)
      throw new UsageError(
        'VALUE_TOO_BIG_FOR_ENV',
        `${name} is too big for the environment: ${kib(size)}, the OS allows ${kib(perStringLimit)} for one NAME=value`,
        {
          suggestion: `Pass ${name}'s content through a file instead (write it to a 0600 file and give the program its path).`,
        },
      )
  }

  for (const [index, word] of command.entries()) {
    const what = index === 0 ? 'The command name' : `Argument ${index} of the command`
    if (word.includes('\0'))
      throw new UsageError('ARGUMENT_NOT_SAFE', `${what} contains a NUL byte`, {
        suggestion: 'Arguments cannot hold NUL bytes; pass such data through a file or stdin.',
      })
    if (Buffer.byteLength(word) + 1 > perStringLimit)
      throw new UsageError(
        'ARGUMENT_TOO_BIG',
        `${what} is too big: ${kib(Buffer.byteLength(word) + 1)}, the OS allows ${kib(perStringLimit)} for one argument`,
        {suggestion: 'Pass such data through a file or stdin.'},
      )
  }
}

/**
 * The error for a spawn that failed with E2BIG although each string fits: the total of the
 * arguments and the environment exceeds the OS's ARG_MAX. Names the biggest variables, not values.
 */
export function argumentListTooLong(command: readonly string[], env: NodeJS.ProcessEnv): UsageError {
  const sizes = Object.entries(env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => [name, Buffer.byteLength(name) + Buffer.byteLength(value) + 2] as const)
    .sort((a, b) => b[1] - a[1])
  const total =
    sizes.reduce((sum, [, size]) => sum + size, 0) +
    command.reduce((sum, word) => sum + Buffer.byteLength(word) + 1, 0)
  const biggest = sizes
    .slice(0, 3)
    .map(([name, size]) => `${name} (${kib(size)})`)
    .join(', ')
  return new UsageError(
    'ENVIRONMENT_TOO_BIG',
    `The command's arguments and environment (${kib(total)}) exceed what the OS allows (ARG_MAX); the biggest variables: ${biggest || 'none'}`,
    {suggestion: 'Start it with --clean-env, or pass big values through files instead of variables.'},
  )
}
