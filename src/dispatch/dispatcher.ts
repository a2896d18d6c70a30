/**
 * Runs a command without loading oclif, from the dispatch table the build writes
 * (scripts/bundle.js: command ids → bundled modules, oclif's own help text pre-rendered). oclif
 * would cost more than Node's own startup on every call. Everything this does not reproduce
 * byte for byte goes to oclif: `dispatch` then resolves to false before anything was printed.
 */
import {existsSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {homedir, release} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {LiteConfig} from './oclif-lite.js'

import {isTerminal, watchOutputStreams} from '../ui/terminal.js'

/** What scripts/bundle.js writes to dist/fast/dispatch.json. */
export interface DispatchTable {
  /** Any plugin hook oclif would run around a command (init, prerun, …): then oclif runs them all. */
  commandHooks: boolean
  commands: Record<string, DispatchEntry>
  helpFlags: string[]
  pjson: LiteConfig['pjson']
  /** pjson.oclif.theme was set: oclif colours with it whenever colour is on. */
  theme: boolean
  topics: string[]
  /** The userAgent in the pre-rendered root help (its VERSION section). */
  userAgent: string
}

export interface DispatchEntry {
  /** The command's own id (an alias maps to the id of the command it names). */
  id: string
  /** The bundled module under dist/fast/, when the command can run without oclif. */
  module?: string
  /** Takes positional arguments (or any words): ends the command id in argv. */
  takesArgs: boolean
}

const fastDir = new URL('../', import.meta.url)

function readJson<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, fastDir), 'utf8')) as T
}

/** The command id at the start of argv, as oclif finds it with a space as topic separator. */
export function commandIdFromArgv(argv: string[], table: Pick<DispatchTable, 'commands'>): string[] {
  if (argv.length === 1) return argv
  const usable = new Set(
    Object.keys(table.commands).flatMap((id) =>
      id.split(':').map((_, i, parts) => parts.slice(0, i + 1).join(':')),
    ),
  )
  const words: string[] = []
  const join = (next?: string): string => (next ? [...words, next] : words).filter(Boolean).join(':')
  for (const word of argv) {
    if (usable.has(join(word))) words.push(word)
    else if (word.includes('=') || word.startsWith('-') || table.commands[join()]?.takesArgs) break
    else words.push(word)
  }

  const id = join()
  return id ? [id, ...argv.slice(id.split(':').length)] : argv
}

/** oclif's help subject: the id or topic the help is about; undefined for the root help. */
function helpSubject(argv: string[], table: DispatchTable): string | undefined {
  const words = commandIdFromArgv(
    argv.filter((word) => !table.helpFlags.includes(word)),
    table,
  )
  for (const word of words) {
    if (word === '--' || (word.startsWith('-') && !table.helpFlags.includes(word))) return undefined
    if (table.helpFlags.includes(word) || word === 'help') continue
    return word
  }

  return undefined
}

/** Whether oclif would colour its output here (supports-color for stdout and stderr). */
function colourPossible(argv: string[]): boolean {
  return (
    process.env.FORCE_COLOR !== undefined ||
    argv.some((word) => /^--(?:no-)?colou?rs?(?:=|$)/.test(word)) ||
    (isTerminal(1) && isTerminal(2))
  )
}

function userThemeExists(table: DispatchTable): boolean {
  const bin = String(table.pjson.oclif.bin ?? table.pjson.name)
  const prefix = bin.replaceAll('@', '').replaceAll(/[/-]/g, '_').toUpperCase()
  const disabled = process.env[`${prefix}_DISABLE_THEME`]
  if (disabled === 'true' || disabled === '1') return false
  const dir =
    process.env[`${prefix}_CONFIG_DIR`] ||
    join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), String(table.pjson.oclif.dirname ?? bin))
  return existsSync(join(dir, 'theme.json'))
}

/** oclif's help for `argv`, pre-rendered, when this terminal setup gets exactly that text. */
function storedHelp(argv: string[], table: DispatchTable): string | undefined {
  // Width: oclif wraps at OCLIF_COLUMNS, else the terminal's width, else 80 (what was rendered).
  if (isTerminal(1) || Number.parseInt(process.env.OCLIF_COLUMNS ?? '', 10)) return undefined
  if (colourPossible(argv)) return undefined
  const subject = helpSubject(argv, table) ?? ''
  const help = readJson<Record<string, string>>('help.json')
  const text = Object.hasOwn(help, subject) ? help[subject] : undefined
  if (text === undefined || subject !== '') return text
  // The root help's VERSION section names this platform and Node: oclif calls WSL `wsl`.
  if (
    process.platform === 'linux' &&
    (release().toLowerCase().includes('microsoft') || existsSync('/run/WSL'))
  )
    return undefined
  const arch = process.arch === 'ia32' ? 'x86' : process.arch
  const userAgent = `${table.pjson.name}/${table.pjson.version} ${process.platform}-${arch} node-${process.version}`
  return text.replace(table.userAgent, userAgent)
}

/** oclif's handling of an error that escaped a command: print it its way, exit with its code. */
async function oclifHandle(error: unknown): Promise<void> {
  const {handle} = createRequire(import.meta.url)('@oclif/core/handle') as {
    handle(error: unknown): Promise<void>
  }
  await handle(error)
}

let outputFailed = false

/**
 * stdout could not be written: `Error:` and `Try this:` on stderr and exit 5, once, rather than an
 * uncaught exception (exit 1, "a bug") with a stack trace.
 */
function reportOutputFailure(error: NodeJS.ErrnoException): void {
  if (outputFailed) return
  outputFailed = true
  Promise.all([import('../core/errors.js'), import('../ui/errors.js')]).then(
    ([{BackendUnavailableError}, {reportError}]) => {
      const failure = new BackendUnavailableError(
        'OUTPUT_FAILED',
        `Could not write the output to stdout (${error.code ?? 'error'}); it is incomplete`,
        {
          cause: error,
          suggestion:
            'Check where the output goes (a full disk, a failing device), make room or redirect it elsewhere, and run the command again.',
        },
      )
      process.exitCode = reportError(failure, {json: false})
    },
    () => {
      process.exitCode = 5
    },
  )
}

/** A bundled command module, by its path under dist/fast/ (DispatchEntry.module). */
export type CommandLoader = (module: string) => Promise<{default: typeof import('./oclif-lite.js').Command}>

const importBundled: CommandLoader = (module) =>
  import(new URL(module, fastDir).href) as ReturnType<CommandLoader>

/**
 * Run `argv` (the binary's arguments) without oclif. Resolves to false when oclif must take it:
 * nothing has been printed or done then. `load` brings the command's module (the script bundle
 * of main.ts has them all inside).
 */
export async function dispatch(
  argv: string[],
  binUrl: string,
  load: CommandLoader = importBundled,
): Promise<boolean> {
  const {env} = process
  if (env.DEBUG || env.AGENTVAULT_DISPATCH === 'oclif' || argv[0]?.includes(':')) return false
  const table = readJson<DispatchTable>('dispatch.json')
  if (table.commandHooks) return false
  // As oclif: output cut short by a closed pipe (`| head`) is not an error. Any other failure to
  // write it (a full disk under `> backup.env`, /dev/full) is reported as agentvault's errors are.
  watchOutputStreams((error) => {
    if (error.code !== 'EPIPE') reportOutputFailure(error)
  })

  const end = argv.indexOf('--')
  const beforeEnd = end === -1 ? argv : argv.slice(0, end)
  if (argv.length === 0 || beforeEnd.some((word) => table.helpFlags.includes(word))) {
    const text = storedHelp(argv, table)
    if (text === undefined) return false
    process.stdout.write(text)
    return true
  }

  const [id = '', ...rest] = commandIdFromArgv(argv, table)
  const entry = Object.hasOwn(table.commands, id) ? table.commands[id] : undefined
  if (entry?.module === undefined) return false
  if ((table.theme || colourPossible(argv)) && (table.theme || userThemeExists(table))) return false

  const [{credentialVariables}, {scrubInitialEnvironment}, lite, loaded] = await Promise.all([
    import('../core/child-env.js'),
    import('../core/initial-env.js'),
    import('./oclif-lite.js'),
    load(entry.module),
  ])
  // Commands may start children (mcp, proxy, wrappers): blank what they could read in /proc/$PPID/environ.
  scrubInitialEnvironment(credentialVariables())
  const CommandClass = loaded.default as unknown as (new (
    argv: string[],
    config: LiteConfig,
  ) => InstanceType<typeof lite.Command>) & {id: string}
  CommandClass.id = entry.id
  const root = dirname(dirname(fileURLToPath(binUrl)))
  const command = new CommandClass(rest, lite.liteConfig(root, table.pjson))
  try {
    await command._run()
  } catch (error) {
    if (error instanceof lite.NeedsOclif) return false
    await oclifHandle(error)
  }

  return true
}
