/**
 * The binary's ES module entry, after launch.cts. oclif stays off the execution path, because
 * importing it costs more than Node's own startup: `--version` and `run` have paths of their own,
 * every other command runs from the dispatch table the build writes (src/dispatch/dispatcher.ts),
 * and oclif takes only what that does not reproduce exactly (unknown commands, parse errors, help
 * on a terminal, …). launch.cts takes the usual calls, help included, without Node's ES module
 * loader; the rest (DEBUG, a build without script bundles or their caches) comes here.
 */
import {createRequire} from 'node:module'
import {fileURLToPath} from 'node:url'

// Required, not imported: an ES module importing CommonJS has Node parse its source for the names
// it exports (cjs-module-lexer, a few milliseconds to set up); launch.cjs is loaded already.
const {bundledDispatcher, codeCacheFile, loadScriptBundle, wantsHelp} = createRequire(import.meta.url)(
  './launch.cjs',
) as typeof import('./launch.cjs')

export {codeCacheFile, loadScriptBundle}
export type {ScriptBundle} from './launch.cjs'

/**
 * The build bundles fast-run.js and what it imports into dist/fast/ (one file per lazily loaded
 * part): fewer modules to resolve on every `run`; and into dist/fast/run.cjs with its code cache
 * (above), taken first. Unbundled builds fall back to the plain module.
 */
async function loadFastRun(): Promise<typeof import('./fast-run.js')> {
  const script = loadScriptBundle<typeof import('./fast-run.js')>('run')
  if (script) return script.exports
  const bundled = new URL('fast/fast-run.js', import.meta.url)
  try {
    return (await import(bundled.href)) as typeof import('./fast-run.js')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error
    return import('./fast-run.js')
  }
}

/**
 * The bundled dispatcher (dist/fast/), or undefined in a build without it. Help here (under DEBUG,
 * or without the script bundle) needs no command module: the small ESM dispatcher prints it.
 */
async function loadDispatcher(
  help: boolean,
): Promise<Pick<typeof import('./dispatch/dispatcher.js'), 'dispatch'> | undefined> {
  const dispatch = help ? undefined : bundledDispatcher()
  if (dispatch) return {dispatch}

  try {
    return (await import(
      new URL('fast/dispatch/dispatcher.js', import.meta.url).href
    )) as typeof import('./dispatch/dispatcher.js')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error
    return undefined
  }
}

/** Run `argv` as launch.cts leaves it: DEBUG, builds without script bundles or their caches. */
export async function main(argv: string[], binUrl: string): Promise<void> {
  // Before oclif loads: it dumps argv under DEBUG, and `secrets set NAME=VALUE` carries a value.
  if (process.env.DEBUG) await (await import('./core/debug-redaction.js')).redactDebugOutput(argv)

  const help = argv.length === 0 || wantsHelp(argv)
  if (argv[0] === 'run' && !help) {
    process.exitCode = await (await loadFastRun()).runFromArgv(argv.slice(1))
    return
  }

  if (await (await loadDispatcher(help))?.dispatch(argv, binUrl)) return
  await runWithOclif(argv, binUrl)
}

/** oclif runs `argv`: what the dispatcher does not reproduce exactly. */
export async function runWithOclif(argv: string[], binUrl: string): Promise<void> {
  // Every other command may start children (mcp, proxy, wrappers): blank what they could read in
  // /proc/$PPID/environ. (`run` does it itself, from its bundle.)
  const [{scrubInitialEnvironment}, {credentialVariables}] = await Promise.all([
    import('./core/initial-env.js'),
    import('./core/child-env.js'),
  ])
  scrubInitialEnvironment(credentialVariables())
  const {execute} = await import('@oclif/core')
  // No user plugins: oclif would load the ones its data folder lists (~/.local/share/agentvault,
  // AGENTVAULT_DATA_DIR), outside the agentvault home and writable by any command `run` starts,
  // and run their hooks in here, next to the vault's key. agentvault installs none.
  await execute({args: argv, loadOptions: {root: fileURLToPath(binUrl), userPlugins: false}})
}
