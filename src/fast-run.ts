/**
 * `agentvault run` without oclif: the path CI takes on every job, so it starts as fast as Node
 * allows. The oclif `run` command delegates here too, so both behave the same.
 */
import type {MaskedOutputs} from './core/output-pump.js'

import {credentialVariables} from './core/child-env.js'
import {toAgentVaultError} from './core/errors.js'
import {scrubInitialEnvironment} from './core/initial-env.js'
import {guardProcess} from './core/process-guard.js'
import {parseRunArgv} from './core/run-options.js'
import {Session} from './core/session.js'
import {reportError, warn} from './ui/errors.js'

/** Run the command described by `argv` (everything after `run`); resolves to the exit code. */
export async function runFromArgv(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let session: Session | undefined
  let outputs: Promise<MaskedOutputs | undefined> | undefined
  // Before any child starts: it could read them in /proc/$PPID/environ (initial-env.ts).
  const credentials = credentialVariables()
  scrubInitialEnvironment(credentials)
  let guarded: Promise<void> | undefined
  try {
    const options = parseRunArgv(argv, env)
    // No core file of agentvault for the command to crash it into (process-guard.ts) when it would
    // hold what the command cannot read itself: --placeholders' real values, or credentials
    // withheld from it (AGENTVAULT_PASSPHRASE, BAO_TOKEN, …). Otherwise it would hold only what the
    // command can read anyway (the key file, the values it is given), and the prlimit process (a
    // fork of this one, ~2 ms of this thread) is saved. It runs while the secrets resolve.
    if (options.placeholders || credentials.some((name) => env[name] !== undefined)) guarded = guardProcess()
    for (const notice of options.warnings ?? []) warn(notice)
    session = new Session({command: 'run', env, interactive: false, profileName: options.profile, warn})
    const {openOutputs, prepareRun, spawnAndWait} = await import('./core/runner.js')
    // The masked outputs' sockets are made while the secrets resolve.
    outputs = openOutputs(options.mask)
    outputs.catch(() => {}) // awaited by spawnAndWait; marked handled should resolving fail first
    const prepared = await prepareRun(session, options, env)
    const placeholders = options.placeholders
      ? await (await import('./core/placeholders/index.js')).startPlaceholders(session, prepared, options)
      : undefined
    let code: number
    try {
      if (options.isolate) {
        const {profiles} = await session.config()
        const keyPaths = Object.values(profiles).flatMap((profile) =>
          typeof profile.keyPath === 'string' ? [profile.keyPath] : [],
        )
        await (await import('./core/placeholders/isolate.js')).isolate(prepared, session.home, env, keyPaths)
      }

      await guarded
      // Backends stay open while the child runs: leases must outlive it (sanctum releases on close).
      // The audit writer loads while the child runs (this process waits then), not after it exits.
      code = await spawnAndWait(prepared, options.mask, outputs, () => {
        import('./core/audit.js').catch(() => {})
      })
    } finally {
      await placeholders?.close()
    }

    await session.close()
    await session.finish('ok', code)
    return code
  } catch (error) {
    const typed = toAgentVaultError(error)
    let code = reportError(typed, {json: false})
    // The command ran but its output could not all be written: its own failure, if any, wins.
    const commandExitCode = typed.code === 'OUTPUT_FAILED' ? typed.details?.commandExitCode : undefined
    if (typeof commandExitCode === 'number' && commandExitCode !== 0) code = commandExitCode
    // No child (or it never started): release the sockets made for its output.
    await outputs?.then(
      (opened) => opened?.close(),
      () => {},
    )
    if (session) {
      await session.close()
      await session.finish(typed.category === 'denied' ? 'denied' : 'error', code, typed.code)
    }

    return code
  }
}
