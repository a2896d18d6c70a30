/**
 * The binary's entry. oclif stays off the execution path, because importing it costs more than
 * Node's own startup: `--version` and `run` have paths of their own, every other command runs
 * from the dispatch table the build writes (src/dispatch/dispatcher.ts), and oclif takes only what
 * that does not reproduce exactly (unknown commands, parse errors, help on a terminal, …).
 */
import {readFileSync} from 'node:fs'

const HELP_FLAGS = new Set(['--help', '-h'])

function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--')
  return (end === -1 ? argv : argv.slice(0, end)).some((word) => HELP_FLAGS.has(word))
}

/**
 * The build bundles fast-run.js and what it imports into dist/fast/ (one file per lazily loaded
 * part): fewer modules to resolve on every `run`. Unbundled builds fall back to the plain module.
 */
async function loadFastRun(): Promise<typeof import('./fast-run.js')> {
  const bundled = new URL('fast/fast-run.js', import.meta.url)
  try {
    return (await import(bundled.href)) as typeof import('./fast-run.js')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error
    return import('./fast-run.js')
  }
}

/** The bundled dispatcher (dist/fast/), or undefined in a build without it. */
async function loadDispatcher(): Promise<typeof import('./dispatch/dispatcher.js') | undefined> {
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

  if (argv[0] === 'run' && !wantsHelp(argv)) {
    process.exitCode = await (await loadFastRun()).runFromArgv(argv.slice(1))
    return
  }

  if (await (await loadDispatcher())?.dispatch(argv, binUrl)) return

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
  await execute({args: argv, dir: binUrl})
}
