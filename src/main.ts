/**
 * The binary's entry. Two hot paths skip oclif entirely — `--version` and `run` — because
 * importing oclif costs more than Node's own startup; everything else is an oclif command.
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
