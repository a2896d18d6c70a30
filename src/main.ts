/**
 * The binary's entry. oclif stays off the execution path, because importing it costs more than
 * Node's own startup: `--version` and `run` have paths of their own, every other command runs
 * from the dispatch table the build writes (src/dispatch/dispatcher.ts), and oclif takes only what
 * that does not reproduce exactly (unknown commands, parse errors, help on a terminal, …).
 */
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {Script} from 'node:vm'

const HELP_FLAGS = new Set(['--help', '-h'])

function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--')
  return (end === -1 ? argv : argv.slice(0, end)).some((word) => HELP_FLAGS.has(word))
}

/** A script bundle loaded by {@link loadScriptBundle}, and the script it was compiled as. */
export interface ScriptBundle<T> {
  exports: T
  /** Whether V8 took the build's code cache (false: compiled from source). */
  fromCache: boolean
  script: Script
}

/** The code cache file of `file` for the V8 running this process. */
export function codeCacheFile(file: string): string {
  return `${file}.v8-${process.versions.v8}.cache`
}

/**
 * dist/fast/NAME.cjs: a bundle wrapped as one CommonJS-style function, compiled from the V8 code
 * cache the build wrote next to it (scripts/bundle.js), so the code `run` needs is deserialized
 * rather than parsed and compiled on every call. Undefined when there is no bundle or no cache
 * for this V8 (another Node than the build's): compiling the whole bundle from source costs more
 * than loading the ESM chunks, so the caller takes those.
 *
 * The cache is only ever read here, never written: V8 checks its version, flags and the source's
 * length but nothing else, so a cache is as trusted as the directory it lives in. It is written
 * once, at build time, into dist/ beside the code it was made from (same owner, same trust: whoever
 * can replace it can replace the code); a cache written at first use into a per-user directory
 * would be a second place to guard against tampering for no gain on an installed package.
 */
export function loadScriptBundle<T>(
  name: string,
  cache: 'require' | 'ignore' = 'require',
): ScriptBundle<T> | undefined {
  const file = fileURLToPath(new URL(`fast/${name}.cjs`, import.meta.url))
  let cachedData: Buffer | undefined
  let source: string
  try {
    if (cache === 'require') cachedData = readFileSync(codeCacheFile(file))
    source = readFileSync(file, 'latin1') // ASCII (scripts/bundle.js checks)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }

  const script = new Script(source, {cachedData, filename: file})
  const module = {exports: {} as T}
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void
  // The bundle's own `import()` calls go through the importer below (a vm script has none).
  wrapper(
    module.exports,
    createRequire(file),
    module,
    file,
    dirname(file),
    (specifier: string) => import(specifier),
    pathToFileURL(file).href,
  )
  return {exports: module.exports, fromCache: cachedData !== undefined && !script.cachedDataRejected, script}
}

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

/** The dispatcher and every command module, as scripts/bundle.js writes dist/fast/dispatch/all.cjs. */
interface DispatchBundle {
  commands: Record<string, () => ReturnType<import('./dispatch/dispatcher.js').CommandLoader>>
  dispatch: typeof import('./dispatch/dispatcher.js').dispatch
}

/**
 * The bundled dispatcher (dist/fast/), or undefined in a build without it. Help needs no command
 * module: the small ESM dispatcher prints it, rather than the script bundle holding all of them.
 */
async function loadDispatcher(
  help: boolean,
): Promise<Pick<typeof import('./dispatch/dispatcher.js'), 'dispatch'> | undefined> {
  const script = help ? undefined : loadScriptBundle<DispatchBundle>('dispatch/all')
  if (script) {
    const {commands, dispatch} = script.exports
    return {
      dispatch: (argv, binUrl) =>
        dispatch(argv, binUrl, async (module) => {
          const load = Object.hasOwn(commands, module) ? commands[module] : undefined
          if (!load) throw new Error(`no bundled command module ${module}`)
          return load()
        }),
    }
  }

  try {
    return (await import(
      new URL('fast/dispatch/dispatcher.js', import.meta.url).href
    )) as typeof import('./dispatch/dispatcher.js')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error
    return undefined
  }
}

export async function main(argv: string[], binUrl: string): Promise<void> {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version')) {
    const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      name: string
      version: string
    }
    process.stdout.write(
      `${pjson.name}/${pjson.version} ${process.platform}-${process.arch} node-${process.version}\n`,
    )
    return
  }

  // Before oclif loads: it dumps argv under DEBUG, and `secrets set NAME=VALUE` carries a value.
  if (process.env.DEBUG) await (await import('./core/debug-redaction.js')).redactDebugOutput(argv)

  const help = argv.length === 0 || wantsHelp(argv)
  if (argv[0] === 'run' && !help) {
    process.exitCode = await (await loadFastRun()).runFromArgv(argv.slice(1))
    return
  }

  if (await (await loadDispatcher(help))?.dispatch(argv, binUrl)) return

  // Every other command may start children (mcp, proxy, wrappers): blank what they could read in
  // /proc/$PPID/environ. (`run` does it itself, from its bundle.)
  const [{scrubInitialEnvironment}, {credentialVariables}] = await Promise.all([
    import('./core/initial-env.js'),
    import('./core/child-env.js'),
  ])
  const [, {execute}] = await Promise.all([
    scrubInitialEnvironment(credentialVariables()),
    import('@oclif/core'),
  ])
  // No user plugins: oclif would load the ones its data folder lists (~/.local/share/agentvault,
  // AGENTVAULT_DATA_DIR), outside the agentvault home and writable by any command `run` starts,
  // and run their hooks in here, next to the vault's key. agentvault installs none.
  await execute({args: argv, loadOptions: {root: fileURLToPath(binUrl), userPlugins: false}})
}
