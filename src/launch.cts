/**
 * The binary's first module, in CommonJS: bin/run.cjs requires it. `run`, help and every command
 * the dispatch table routes run from their script bundles (dist/fast/*.cjs, compiled from the
 * build's V8 code cache) without Node's ES module loader, which costs a few milliseconds to set up
 * on every call (18 of Node's own modules) before any of ours runs. Everything else — DEBUG, a
 * build without bundles or caches, the commands oclif must run — goes on to main.ts.
 */
import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {Script} from 'node:vm'

import type {CommandLoader, dispatch as dispatchArgv} from './dispatch/dispatcher.js' with {
  'resolution-mode': 'import',
}
import type {runFromArgv} from './fast-run.js' with {'resolution-mode': 'import'}

const HELP_FLAGS = new Set(['--help', '-h'])
const VERSION_WORDS = new Set(['--version', '-v', 'version'])

/** Whether argv asks for help (before any `--`). */
export function wantsHelp(argv: string[]): boolean {
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
 * Packages the build bundles with what they load into one CommonJS file under dist/fast/vendor/
 * (scripts/bundle.js), by the specifiers that load them. @peculiar/x509 (the CA of
 * `run --placeholders`) is a dozen packages: through Node's ES module loader, resolving, reading
 * and lexing each for its named exports cost ~100 ms of every `run --placeholders`.
 */
const VENDORED: Readonly<Record<string, string>> = {
  '@peculiar/x509': 'x509.cjs',
  // Loaded by x509.cjs first: @peculiar/x509 needs the polyfill before it runs.
  'reflect-metadata': 'x509.cjs',
}

/**
 * What a bundle's `import()` calls get (a vm script has no importer of its own): Node's own
 * modules from `require`, which is what `import()` of one resolves to minus the ES module
 * machinery (no bundled code reads their `default`); a vendored package from its file (its
 * exports are the named exports the callers read); anything else from `import()`.
 */
function importForBundle(specifier: string): Promise<unknown> {
  const vendored = Object.hasOwn(VENDORED, specifier) ? VENDORED[specifier] : undefined
  if (specifier.startsWith('node:') || vendored) {
    try {
      return Promise.resolve(require(vendored ? join(__dirname, 'fast', 'vendor', vendored) : specifier))
    } catch (error) {
      // A build without the vendored file: the package itself, as without the bundle.
      if (!vendored || (error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND')
        return Promise.reject(error)
    }
  }

  return import(specifier)
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
  cache: 'ignore' | 'require' = 'require',
): ScriptBundle<T> | undefined {
  const file = join(__dirname, 'fast', `${name}.cjs`)
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
  // This module's `require` resolves the bundles' externals (packages) from dist/ upwards, as one
  // made for the bundle's own path would, without loading node:module for createRequire.
  wrapper(module.exports, require, module, file, dirname(file), importForBundle, pathToFileURL(file).href)
  return {exports: module.exports, fromCache: cachedData !== undefined && !script.cachedDataRejected, script}
}

/** The dispatcher and every command module, as scripts/bundle.js writes dist/fast/dispatch/all.cjs. */
interface DispatchBundle {
  commands: Record<string, () => ReturnType<CommandLoader>>
  dispatch: typeof dispatchArgv
}

/** Runs argv without oclif; resolves to false when oclif must take it (nothing was done then). */
export type Dispatch = (argv: string[], binUrl: string) => Promise<boolean>

/** The dispatcher of the script bundle dist/fast/dispatch/all.cjs; undefined without it. */
export function bundledDispatcher(): Dispatch | undefined {
  const script = loadScriptBundle<DispatchBundle>('dispatch/all')
  if (!script) return undefined
  const {commands, dispatch} = script.exports
  return (argv, binUrl) =>
    dispatch(argv, binUrl, async (module) => {
      const load = Object.hasOwn(commands, module) ? commands[module] : undefined
      if (!load) throw new Error(`no bundled command module ${module}`)
      return load()
    })
}

function ignoreSignal(): void {}

/** Run the binary's arguments `argv`; `binUrl` is the launcher's file URL. */
export async function launch(argv: string[], binUrl: string): Promise<void> {
  // SIGUSR1 would open Node's inspector on 127.0.0.1:9229, from which any process of the user reads
  // the heap (the vault key, values, tokens) whatever ptrace_scope says: never, in any command.
  // `run` forwards it to its command as well (runner.ts); see core/process-guard.ts.
  process.on('SIGUSR1', ignoreSignal)
  if (VERSION_WORDS.has(argv[0]!) && (argv.length === 1 || (argv.length === 2 && argv[1] === '--json'))) {
    const pjson = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
      name: string
      version: string
    }
    const [cliVersion, architecture, nodeVersion] = [
      `${pjson.name}/${pjson.version}`,
      `${process.platform}-${process.arch}`,
      `node-${process.version}`,
    ]
    // --json: the keys of oclif's own `version --json` (plugin-version) that apply here.
    process.stdout.write(
      argv.length === 2
        ? `${JSON.stringify({architecture, cliVersion, nodeVersion}, null, 2)}\n`
        : `${cliVersion} ${architecture} ${nodeVersion}\n`,
    )
    return
  }

  // Under DEBUG main.ts redacts what it prints first. Help too is the dispatcher's (its stored
  // text): deserialising its bundle costs less than starting Node's ES module loader for it.
  if (!process.env.DEBUG) {
    if (argv[0] === 'run' && !wantsHelp(argv)) {
      const bundle = loadScriptBundle<{runFromArgv: typeof runFromArgv}>('run')
      if (bundle) {
        process.exitCode = await bundle.exports.runFromArgv(argv.slice(1))
        return
      }
    } else {
      const dispatch = bundledDispatcher()
      if (dispatch) {
        if (!(await dispatch(argv, binUrl))) await (await import('./main.js')).runWithOclif(argv, binUrl)
        return
      }
    }
  }

  await (await import('./main.js')).main(argv, binUrl)
}
