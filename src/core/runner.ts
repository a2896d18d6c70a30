/**
 * `agentvault run`: collect references (flags, env files, the environment), resolve them
 * concurrently, start the command with them in its environment, mask its piped output, forward
 * signals once, and report the child's exit code (product.md §4).
 */
import type {ChildProcess} from 'node:child_process'

import {isUtf8} from 'node:buffer'

import type {Backend, RunInjection} from './backend.js'
import type {Masker} from './mask.js'
import type {MaskedOutputs, OutputFilter} from './output-pump.js'
import type {RunOptions} from './run-options.js'
import type {Session} from './session.js'

import {argumentListTooLong, checkSpawnable, credentialVariables} from './child-env.js'
import {BackendUnavailableError, UsageError} from './errors.js'
import {looksLikeReference, parseReference, type SecretReference, SUPPORTED_SCHEMES} from './references.js'
import {misspeltSchemeHint} from './scheme-typos.js'

/** Variables kept by `--clean-env`, besides the secrets. */
const CLEAN_ENV_KEEP =
  /^(PATH|HOME|USER|LOGNAME|SHELL|TERM|TMPDIR|TZ|LANG|LC_[A-Z_]+|COLORTERM|NO_COLOR|FORCE_COLOR)$/

const FORWARDED_SIGNALS = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
] as const
/** Signals a terminal sends to its whole foreground process group, the child included. */
const TERMINAL_SIGNALS = new Set<NodeJS.Signals>(['SIGINT', 'SIGQUIT', 'SIGWINCH'])

/** Secret values shorter than this are not masked (they would shred all output); we warn instead. */
const MIN_MASK_LENGTH = 4

export interface PreparedRun {
  /** The command to start: the user's, or a backend's wrapper around it (see Backend.wrapRun). */
  command: string[]
  /** Environment for the child: inherited (unless clean), plain env-file values, secrets. */
  env: NodeJS.ProcessEnv
  /** Each variable agentvault resolved itself, for `--placeholders` (which swaps them for stand-ins). */
  resolved: Array<{name: string; ref: SecretReference; value: Buffer}>
  /** Resolved values to conceal in output. */
  secrets: Buffer[]
  /**
   * Values the command never holds (`--placeholders`' stood-in ones), concealed only where one lies
   * whole inside a piece of output and never held back: holding back the start of one would tell a
   * command that reads agentvault's output which guess begins a value, byte by byte.
   */
  unheld?: Buffer[]
}

interface Mapping {
  name: string
  ref?: SecretReference
  value?: string
}

/** A plain env-file value that is probably a reference with a misspelt scheme: say so (never the value). */
function warnMisspeltScheme(value: string, where: string, warn: (message: string) => void): void {
  if (!value.includes('://')) return
  const hint = misspeltSchemeHint(value)
  if (hint)
    warn(
      `${where} looks like a secret reference, but "${hint.scheme}://" is not a known scheme (did you mean ${hint.suggestion}://?); it is passed to the command as plain text.`,
    )
}

async function collectMappings(
  options: RunOptions,
  baseEnv: NodeJS.ProcessEnv,
  warn: (message: string) => void,
): Promise<Map<string, Mapping>> {
  const mappings = new Map<string, Mapping>()
  for (const [name, value] of Object.entries(baseEnv)) {
    if (value === undefined || !looksLikeReference(value)) continue
    try {
      mappings.set(name, {name, ref: parseReference(value)})
    } catch (error) {
      if (!(error instanceof UsageError)) throw error
      // Not ours to refuse (a connection string such as vault://user:pw@db:5432/app): the
      // command gets it as it is. Never quoted: it may well hold a password.
      warn(
        `${name} in the environment looks like a secret reference but is not a valid one; it is passed to the command unchanged.`,
      )
    }
  }

  if (options.envFiles.length > 0) {
    const {parseEnvFile, readEnvFile} = await import('./env-file.js')
    for (const file of options.envFiles) {
      const text = await readEnvFile(file)
      for (const entry of parseEnvFile(text, file)) {
        const where = `${file}:${entry.line}: ${entry.name}`
        const isReference = looksLikeReference(entry.value)
        if (!isReference) warnMisspeltScheme(entry.value, where, warn)
        mappings.set(
          entry.name,
          isReference
            ? {name: entry.name, ref: parseNamedReference(entry.value, where)}
            : {name: entry.name, value: entry.value},
        )
      }
    }
  }

  for (const pair of options.env) {
    const eq = pair.indexOf('=')
    const name = eq === -1 ? '' : pair.slice(0, eq)
    if (!/^[A-Za-z_]\w*$/.test(name))
      throw new UsageError(
        'BAD_ENV_MAPPING',
        // Never the word itself: `--env "$TOKEN"` puts a value there.
        eq === -1
          ? '--env expects NAME=REF, got a word without "=" (not shown: it may be a value)'
          : `--env expects NAME=REF, got "${name}=…"`,
        {
          suggestion: 'agentvault run --env API_KEY=local://API_KEY -- cmd',
        },
      )
    const ref = pair.slice(eq + 1)
    if (!looksLikeReference(ref))
      throw new UsageError('BAD_ENV_MAPPING', `--env ${name}= must be a secret reference`, {
        suggestion:
          schemeTypoHint(name, ref) ??
          `Use a reference such as ${name}=local://${name}; plain values belong in an --env-file.`,
      })
    mappings.set(name, {name, ref: parseNamedReference(ref, `--env ${name}`)})
  }

  return mappings
}

/** parseReference, its error prefixed with where the reference came from (`--env NAME`, `FILE:LINE: NAME`). */
function parseNamedReference(text: string, where: string): SecretReference {
  try {
    return parseReference(text)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    throw new UsageError(error.code, `${where}: ${error.message}`, {
      details: error.details,
      suggestion: error.suggestion,
    })
  }
}

/**
 * Copy the inherited environment into `env`: everything (with --clean-env only CLEAN_ENV_KEEP),
 * minus every credential variable (child-env.ts), plus what --pass-env names — a kept credential
 * goes through `keepCredential` so that it is masked. Variables `mapped` by a reference are left to
 * the caller.
 */
function inheritEnvironment(
  baseEnv: NodeJS.ProcessEnv,
  options: RunOptions,
  into: {
    env: NodeJS.ProcessEnv
    keepCredential(name: string, value: string): void
    mapped(name: string): boolean
  },
): void {
  const {env, keepCredential, mapped} = into
  const credentials = new Set(credentialVariables())
  const passEnv = new Set(options.passEnv)
  for (const [name, value] of Object.entries(baseEnv)) {
    if (value === undefined || mapped(name)) continue
    if (credentials.has(name)) {
      if (passEnv.has(name)) keepCredential(name, value)
    } else if (!options.cleanEnv || passEnv.has(name) || CLEAN_ENV_KEEP.test(name)) env[name] = value
  }
}

/** Resolve every reference and build the child's environment. Fails before anything starts. */
export async function prepareRun(
  session: Session,
  options: RunOptions,
  baseEnv: NodeJS.ProcessEnv,
): Promise<PreparedRun> {
  const mappings = await collectMappings(options, baseEnv, (message) => session.options.warn(message))
  session.audit.touched = true
  // References of backends that inject values themselves are handed to them, not resolved here.
  const injected = new Map<Backend, RunInjection[]>()
  const refs: SecretReference[] = []
  for (const {name, ref} of mappings.values()) {
    if (!ref) continue
    const {backend} = await session.open(ref)
    if (backend.wrapRun) injected.set(backend, [...(injected.get(backend) ?? []), {name, reference: ref}])
    else refs.push(ref)
  }

  const {resolveReferences} = await import('./resolve.js')
  const values = refs.length > 0 ? await resolveReferences(session, refs) : new Map<string, Buffer>()

  // Credentials are withheld (child-env.ts) unless --pass-env keeps them, masked like secrets.
  const env: NodeJS.ProcessEnv = {}
  const secrets: Buffer[] = []
  const keepCredential = (name: string, value: string): void => {
    env[name] = value
    secrets.push(Buffer.from(value, 'utf8'))
    if (value.length > 0 && Buffer.byteLength(value) < MIN_MASK_LENGTH)
      session.options.warn(
        `${name} is shorter than ${MIN_MASK_LENGTH} bytes and will not be masked in output.`,
      )
  }

  inheritEnvironment(baseEnv, options, {
    env,
    keepCredential,
    mapped: (name) => mappings.get(name)?.ref !== undefined,
  })

  const resolved: PreparedRun['resolved'] = []
  for (const mapping of mappings.values()) {
    if (!mapping.ref) {
      env[mapping.name] = mapping.value
      continue
    }

    const value = values.get(mapping.ref.canonical)
    if (!value) continue // injected by its backend
    if (value.includes(0))
      throw new UsageError(
        'VALUE_NOT_ENV_SAFE',
        `The value of ${mapping.ref.canonical} contains a NUL byte`,
        {
          suggestion: 'Environment variables cannot hold NUL bytes; store the value base64-encoded.',
        },
      )
    const text = value.toString('utf8')
    env[mapping.name] = text
    secrets.push(value)
    if (!isUtf8(value)) {
      // The environment takes strings: each invalid byte becomes U+FFFD. Mask that form too.
      secrets.push(Buffer.from(text, 'utf8'))
      session.options.warn(
        `The value of ${mapping.name} is not valid UTF-8: the command gets it with each invalid byte replaced by U+FFFD.`,
      )
    }

    resolved.push({name: mapping.name, ref: mapping.ref, value})
    if (value.length > 0 && value.length < MIN_MASK_LENGTH)
      session.options.warn(
        `${mapping.name} is shorter than ${MIN_MASK_LENGTH} bytes and will not be masked in output.`,
      )
  }

  let {command} = options
  // One child takes one injecting wrapper per kind: two profiles of the same kind (two AgentSecrets
  // projects or environments) cannot both wrap it.
  const wrappingKinds = [...injected.keys()].map((backend) => backend.kind)
  const repeated = wrappingKinds.find((kind, index) => wrappingKinds.indexOf(kind) !== index)
  if (repeated)
    throw new UsageError(
      'RUN_SEVERAL_PROFILES',
      `One run can use ${repeated} references of one profile only`,
      {
        suggestion: `Use the same ${repeated} profile for every ${repeated}:// reference (drop ?profile= or make them match), or start separate runs.`,
      },
    )
  for (const [backend, injections] of injected) {
    const wrapped = await (backend.wrapRun as NonNullable<Backend['wrapRun']>)(injections, command)
    for (const name of wrapped.removeEnv) delete env[name]
    // A wrapper that reads a credential itself (the AgentSecrets CLI's AS_AGENT_TOKEN) gets it; the
    // command inherits it from the wrapper, so it is masked.
    for (const name of wrapped.keepEnv ?? []) {
      const value = baseEnv[name]
      if (value !== undefined && env[name] === undefined) keepCredential(name, value)
    }

    command = wrapped.command
  }

  checkSpawnable(command, env)
  return {command, env, resolved, secrets}
}

/** Is this process in the foreground process group of its terminal? (Linux: /proc; else a TTY check.) */
async function inTerminalForeground(): Promise<boolean> {
  try {
    const {readFile} = await import('node:fs/promises')
    const stat = await readFile('/proc/self/stat', 'utf8')
    // Fields after the parenthesised command name: state ppid pgrp session tty_nr tpgid …
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields[2] === fields[5]
  } catch {
    return Boolean(process.stdin.isTTY || process.stdout.isTTY || process.stderr.isTTY)
  }
}

function forwardSignals(child: ChildProcess): () => void {
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = async (): Promise<void> => {
      // A terminal's SIGINT/SIGQUIT/SIGWINCH already reached the child, which shares our process
      // group: forwarding it again would deliver it twice.
      if (TERMINAL_SIGNALS.has(signal) && (await inTerminalForeground())) return
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    }

    process.on(signal, handler)
    return [signal, handler] as const
  })
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler)
  }
}

/**
 * Mask this descriptor's output? Asked of the descriptor (isTerminal): creating `process.stdout`
 * would make it non-blocking, and a stream we do not mask is never touched.
 */
function shouldMask(mode: RunOptions['mask'], fd: 1 | 2, isTerminal: (fd: 1 | 2) => boolean): boolean {
  if (mode === 'never') return false
  if (mode === 'always') return true
  return !isTerminal(fd)
}

/**
 * Start preparing the child's masked outputs for `mask` (socket pairs, see output-pump.ts), so that
 * it overlaps with resolving the secrets. Undefined when no stream would be masked.
 */
export async function openOutputs(mask: RunOptions['mask']): Promise<MaskedOutputs | undefined> {
  const {isTerminal} = await import('../ui/terminal.js')
  const fds = ([1, 2] as const).filter((fd) => shouldMask(mask, fd, isTerminal))
  if (fds.length === 0) return undefined
  const {openMaskedOutputs} = await import('./output-pump.js')
  return openMaskedOutputs(fds)
}

/**
 * A stream's filter that builds its masker (tables over every pattern, a few ms) on the first
 * output: after the child has started rather than before, and never for a stream that stays
 * silent. Until then nothing is held back and there is nothing to flush.
 */
export function lazyFilter(make: () => OutputFilter): OutputFilter {
  let filter: OutputFilter | undefined
  return {
    end: () => filter?.end() ?? [],
    flush: () => filter?.flush() ?? [],
    get heldBack() {
      return filter?.heldBack ?? 0
    },
    push(chunk) {
      filter ??= make()
      return filter.push(chunk)
    },
  }
}

/**
 * `filter`'s output, with every whole occurrence of `unheld`'s patterns inside one of its pieces
 * concealed too; nothing is held back for them, so whether output begins such a value never shows
 * (see {@link PreparedRun.unheld}). A value split across pieces is not caught.
 */
export function concealUnheld(filter: OutputFilter, unheld: Masker): OutputFilter {
  const again = (pieces: Buffer[]): Buffer[] =>
    pieces.length === 1 ? unheld.whole(pieces[0]!) : pieces.flatMap((piece) => unheld.whole(piece))
  return {
    end: () => again(filter.end()),
    flush: () => again(filter.flush()),
    get heldBack() {
      return filter.heldBack
    },
    push: (chunk) => again(filter.push(chunk)),
  }
}

/**
 * Makes a masker per stream on demand; the pattern set and its search tables are built once, by
 * the first stream that needs one (after the child has started), and shared with the other.
 */
function sharedMasker(
  masking: typeof import('./mask.js'),
  secrets: readonly Buffer[],
  unheld: readonly Buffer[] = [],
): () => OutputFilter {
  let make: (() => OutputFilter) | undefined
  return () => {
    if (!make) {
      const held = masking.maskers(masking.maskPatterns(secrets, {minLength: MIN_MASK_LENGTH}))
      const tables =
        unheld.length > 0
          ? new masking.MaskTables(masking.maskPatterns(unheld, {minLength: MIN_MASK_LENGTH}))
          : undefined
      make = tables ? () => concealUnheld(held(), new masking.Masker(tables)) : held
    }

    return make()
  }
}

/**
 * The child's output to `fd` could not all be written: exit 5 (OUTPUT_FAILED) when the command
 * itself succeeded, its own exit code otherwise (`details.commandExitCode`, which `run` exits with).
 */
function outputLost(
  error: NodeJS.ErrnoException,
  fd: number,
  commandExitCode: number,
): BackendUnavailableError {
  return new BackendUnavailableError(
    'OUTPUT_FAILED',
    `Could not write the command's output to ${fd === 1 ? 'stdout' : 'stderr'} (${error.code ?? 'error'}); it is incomplete`,
    {
      cause: error,
      details: {commandExitCode},
      suggestion:
        'Check where the output goes (a full disk, a failing device), make room or redirect it elsewhere, and run the command again.',
    },
  )
}

/**
 * Start the command and wait for it. Returns the child's exit code, or 128+N after signal N.
 * `outputs` is what `openOutputs(mask)` gave, when the caller started it early; `started` is called
 * once the child runs (for work that can wait until then).
 */
export async function spawnAndWait(
  prepared: PreparedRun,
  mask: RunOptions['mask'],
  outputs?: Promise<MaskedOutputs | undefined>,
  started?: () => void,
): Promise<number> {
  const concealed = prepared.unheld ? [...prepared.secrets, ...prepared.unheld] : prepared.secrets
  const [{spawn}, {constants}, masking, opened] = await Promise.all([
    import('node:child_process'),
    import('node:os'),
    concealed.length > 0 ? import('./mask.js') : undefined,
    outputs ?? (concealed.length > 0 ? openOutputs(mask) : undefined),
  ])
  // Values too short to mask leave nothing to mask: the child then writes to our descriptors itself.
  // (Any value of MIN_MASK_LENGTH bytes or more is a pattern; the rest are made once it started.)
  const masked = concealed.some((secret) => secret.length >= MIN_MASK_LENGTH) ? opened : undefined
  if (opened && !masked) opened.close()
  // A closed reader downstream: the child gets SIGPIPE, as it would writing to a shell pipeline.
  // Any other failure (a full disk under `> file`, a failing device) loses the rest of the child's
  // output, which a zero exit must not hide: it is reported once the child is done.
  const running: {child?: ChildProcess} = {}
  let lost: {error: NodeJS.ErrnoException; fd: number} | undefined
  const writeFailed = (error: NodeJS.ErrnoException, fd: number): void => {
    if (error.code === 'ECONNRESET') return // a reader that went away, as EPIPE
    if (error.code !== 'EPIPE') {
      lost ??= {error, fd}
      return
    }

    const {child} = running
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGPIPE')
  }

  const stdio = (fd: number) => masked?.stdio(fd) ?? 'inherit'
  const [file, ...args] = prepared.command as [string, ...string[]]
  let child: ChildProcess
  try {
    child = spawn(file, args, {env: prepared.env, stdio: ['inherit', stdio(1), stdio(2)]})
  } catch (error) {
    // Node throws (rather than emits) E2BIG: the total of argv and environment exceeds ARG_MAX.
    if ((error as NodeJS.ErrnoException).code === 'E2BIG')
      throw argumentListTooLong(prepared.command, prepared.env)
    throw error
  }

  running.child = child
  // Attached before yielding: Node discards the output of a child that exits while its pipes have
  // no reader.
  const piping =
    masking && masked
      ? masked.attach(
          child,
          () => lazyFilter(sharedMasker(masking, prepared.secrets, prepared.unheld)),
          writeFailed,
        )
      : []
  const stopForwarding = forwardSignals(child)
  try {
    const failed = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null))
      child.once('error', (error) => resolve(error))
    })
    if (failed) {
      const {code} = failed as NodeJS.ErrnoException
      throw new UsageError(
        'COMMAND_FAILED_TO_START',
        `Cannot start ${file}: ${code === 'ENOENT' ? 'command not found' : code}`,
        {
          suggestion:
            code === 'ENOENT'
              ? `Check that ${file} is installed and on PATH.`
              : `Check that ${file} is executable.`,
        },
      )
    }

    const exited = new Promise<[null | number, NodeJS.Signals | null]>((resolve) => {
      child.once('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal]))
    })
    started?.()
    const [code, signal] = await exited
    await Promise.all(piping)
    const exitCode = signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1)
    if (lost) throw outputLost(lost.error, lost.fd, exitCode)
    return exitCode
  } finally {
    stopForwarding()
  }
}

/**
 * `--env K=local:/NAME`, `local:NAME`, `locl://NAME`: a reference with its scheme mistyped. Names
 * the scheme only (what follows it may be a value).
 */
function schemeTypoHint(name: string, value: string): string | undefined {
  const scheme = /^([A-Za-z][\w+.-]{0,63}):(?!\/\/)/.exec(value)?.[1]?.toLowerCase()
  if (scheme !== undefined && (SUPPORTED_SCHEMES as readonly string[]).includes(scheme))
    return `"${scheme}:" needs two slashes: ${name}=${scheme}://…`
  const typo = misspeltSchemeHint(value)
  return typo && `"${typo.scheme}://" is not a known scheme: did you mean ${name}=${typo.suggestion}://…?`
}
