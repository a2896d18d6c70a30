/**
 * What the commands use of `@oclif/core` at run time — `Command`, `Flags`, `Args` — without
 * oclif's startup (importing it costs more than Node's own start, and `Config.load` discovers
 * plugins on top). The build bundles every command with `@oclif/core` resolved to this module
 * (scripts/bundle.js); help, completion, the manifest and the README keep using the real oclif.
 *
 * The rule: this runtime either does exactly what oclif would, or hands the command line back to
 * oclif before anything happened (`NeedsOclif`). Parse errors, flag features it does not
 * reproduce, `this.warn`/`this.error`/`this.exit` take oclif's own code paths (loaded on demand).
 */
import {createRequire} from 'node:module'
import {format, inspect} from 'node:util'

import {writeOutput} from '../ui/terminal.js'
import {
  type ArgDefinition,
  type FlagDefinition,
  NeedsOclif,
  parseCommandLine,
  type ParseInput,
} from './parse.js'

export {NeedsOclif} from './parse.js'

type Options = Record<string, unknown>
type ParseFunction = (input: never, context: unknown, options: never) => Promise<unknown>

/** oclif's error helpers, loaded only when a command asks for them (they cost ~100 ms). */
function oclifErrors(): {
  error(input: Error | string, options?: object): never
  exit(code?: number): never
  warn(input: Error | string): void
} {
  return createRequire(import.meta.url)('@oclif/core/errors')
}

function makeFlag(type: 'boolean' | 'option', defaults: Options, options: Options): FlagDefinition {
  if (type === 'boolean')
    return {parse: async (value: boolean) => value, ...options, allowNo: Boolean(options.allowNo), type}
  return {
    parse: async (input: string) => input,
    ...defaults,
    ...options,
    input: [],
    multiple: Boolean(options.multiple === undefined ? (defaults.multiple ?? false) : options.multiple),
    type,
  } as FlagDefinition
}

/** A custom option flag: `defaults` (a `parse`, …) overridden by each use's options. */
function customFlag(defaults: Options = {}) {
  return (options: Options = {}): FlagDefinition => makeFlag('option', defaults, options)
}

async function parseInteger(
  input: string,
  _context: unknown,
  options: {max?: number; min?: number},
): Promise<number> {
  if (!/^-?\d+$/.test(input)) throw new NeedsOclif(`not an integer: ${input.length} characters`)
  const value = Number.parseInt(input, 10)
  if (
    (options.min !== undefined && value < options.min) ||
    (options.max !== undefined && value > options.max)
  )
    throw new NeedsOclif('integer out of range')
  return value
}

export const Flags = {
  boolean: (options: Options = {}): FlagDefinition => makeFlag('boolean', {}, options),
  custom: customFlag,
  integer: customFlag({parse: parseInteger as ParseFunction}),
  option: customFlag,
  string: customFlag(),
}

function makeArg(defaults: Options) {
  return (options: Options = {}): ArgDefinition =>
    ({
      parse: async (input: string) => input,
      ...defaults,
      ...options,
      input: [],
      type: 'option',
    }) as ArgDefinition
}

export const Args = {
  boolean: makeArg({
    parse: async (input: string) =>
      Boolean(input) && !['0', 'false', 'n', 'no'].includes(input.toLowerCase()),
  }),
  custom: makeArg,
  integer: makeArg({parse: parseInteger}),
  string: makeArg({}),
}

/** The part of oclif's Config the commands read, computed without loading any plugin. */
export interface LiteConfig {
  arch: string
  bin: string
  dirname: string
  name: string
  pjson: {name: string; oclif: Record<string, unknown>; version: string}
  platform: string
  root: string
  theme: undefined
  topicSeparator: string
  userAgent: string
  version: string
  windows: boolean
  runHook(): Promise<{failures: unknown[]; successes: unknown[]}>
  scopedEnvVar(key: string): string | undefined
  scopedEnvVarKey(key: string): string
  scopedEnvVarKeys(key: string): string[]
  scopedEnvVarTrue(key: string): boolean
}

export function liteConfig(root: string, pjson: LiteConfig['pjson']): LiteConfig {
  const bin = String(pjson.oclif.bin ?? pjson.name)
  const envKey = (key: string): string =>
    `${bin.replaceAll('@', '').replaceAll(/[/-]/g, '_')}_${key}`.toUpperCase()
  const config: LiteConfig = {
    arch: process.arch === 'ia32' ? 'x86' : process.arch,
    bin,
    dirname: String(pjson.oclif.dirname ?? pjson.name),
    name: pjson.name,
    pjson,
    platform: process.platform,
    root,
    async runHook() {
      return {failures: [], successes: []}
    },
    scopedEnvVar: (key) => process.env[envKey(key)] || undefined,
    scopedEnvVarKey: envKey,
    scopedEnvVarKeys: (key) => [envKey(key)],
    scopedEnvVarTrue(key) {
      const value = config.scopedEnvVar(key)
      return value === 'true' || value === '1'
    },
    theme: undefined,
    topicSeparator: String(pjson.oclif.topicSeparator ?? ':'),
    userAgent: `${pjson.name}/${pjson.version} ${process.platform}-${process.arch === 'ia32' ? 'x86' : process.arch} node-${process.version}`,
    version: pjson.version,
    windows: process.platform === 'win32',
  }
  return config
}

type CommandClass = typeof Command

/** The base of every command when bundled: oclif's Command lifecycle, minus oclif. */
export abstract class Command {
  static aliases: string[] = []
  static args: Record<string, ArgDefinition> = {}
  static baseFlags: Record<string, FlagDefinition> | undefined
  static constraints: unknown
  static deprecateAliases: boolean | undefined
  static description: string | undefined
  static enableJsonFlag = false
  static examples: unknown
  static flags: Record<string, FlagDefinition> | undefined
  static hasDynamicHelp = false
  static hidden: boolean | undefined
  static hiddenAliases: string[] = []
  static id: string
  static state: string | undefined
  static strict = true
  static summary: string | undefined
  static usage: unknown
  argv: string[]
  config: LiteConfig
  // oclif's debug logger; DEBUG runs take oclif's path (main.ts), so this one is silent.
  debug: (...args: unknown[]) => void = () => {}
  id: string | undefined
  parsed = false

  constructor(argv: string[], config: LiteConfig) {
    this.argv = argv
    this.config = config
    this.id = this.ctor.id
  }

  /** The flags and arguments as `parse` sees them (`--json`, base flags, own flags): for the build's check. */
  static liteDefinitions(): ParseInput {
    return {args: this.args ?? {}, flags: aggregateFlags(this), strict: this.strict !== false}
  }

  get ctor(): CommandClass {
    return this.constructor as CommandClass
  }

  async _run(): Promise<unknown> {
    let failure: Error | undefined
    let handBack = false
    let result: unknown
    try {
      for (const key of this.config.scopedEnvVarKeys('REDIRECTED')) delete process.env[key]
      try {
        await this.init()
      } catch (error) {
        // Nothing ran yet: oclif takes the whole command line (and prints its own errors).
        handBack = error instanceof NeedsOclif
        throw error
      }

      result = await this.run()
    } catch (error) {
      if (handBack) throw error
      failure = error as Error
      await this.catch(failure)
    } finally {
      if (!handBack) await this.finally(failure)
    }

    if (result && this.jsonEnabled()) this.logJson(this.toSuccessJson(result))
    return result
  }

  async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    process.exitCode = process.exitCode ?? error.exitCode ?? 1
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(error))
      return undefined
    }

    throw error
  }

  error(input: Error | string, options: object = {}): never {
    return oclifErrors().error(input, options)
  }

  exit(code = 0): never {
    return oclifErrors().exit(code)
  }

  async finally(_error: Error | undefined): Promise<void> {}

  async init(): Promise<void> {}

  jsonEnabled(): boolean {
    if (!this.ctor?.enableJsonFlag) return false
    if (this.config.scopedEnvVar('CONTENT_TYPE')?.toLowerCase() === 'json') return true
    const end = this.argv.indexOf('--')
    const json = this.argv.indexOf('--json')
    return end === -1 ? json !== -1 : json !== -1 && json < end
  }

  log(message: unknown = '', ...args: unknown[]): void {
    if (!this.jsonEnabled())
      writeLine('stdout', typeof message === 'string' ? message : inspect(message), args)
  }

  logJson(json: unknown): void {
    writeLine('stdout', JSON.stringify(json, undefined, 2), [])
  }

  logToStderr(message: unknown = '', ...args: unknown[]): void {
    if (!this.jsonEnabled())
      writeLine('stderr', typeof message === 'string' ? message : inspect(message), args)
  }

  async parse(
    options?: {
      args?: Record<string, ArgDefinition>
      baseFlags?: Record<string, FlagDefinition>
      enableJsonFlag?: boolean
      flags?: Record<string, FlagDefinition>
      strict?: boolean
    },
    argv: string[] = this.argv,
  ): Promise<{args: Record<string, unknown>; argv: unknown[]; flags: Record<string, unknown>}> {
    const source = options ?? this.ctor
    const flags = aggregateFlags(source)
    this.argv = [...argv]
    if (this.ctor.constraints !== undefined || this.ctor.state === 'deprecated' || this.ctor.deprecateAliases)
      throw new NeedsOclif('command features')
    const parsed = await parseCommandLine(
      argv,
      {args: source.args ?? {}, flags, strict: source.strict !== false},
      this,
    )
    this.warnIfAliasDeprecated(flags, parsed.flags)
    this.parsed = true
    return parsed
  }

  abstract run(): Promise<unknown>

  toErrorJson(error: unknown): unknown {
    return error instanceof Error ? {error: {...error, message: error.message, name: error.name}} : {error}
  }

  toSuccessJson(result: unknown): unknown {
    return result
  }

  /** As oclif's warnIfFlagDeprecated for `deprecateAliases` (an alias counts only as a whole word). */
  warnIfAliasDeprecated(definitions: Record<string, FlagDefinition>, given: Record<string, unknown>): void {
    for (const name of Object.keys(given)) {
      const flag = definitions[name]
      if (!flag?.deprecateAliases) continue
      const aliases = [...new Set([...(flag.aliases ?? []), ...(flag.charAliases ?? [])])].map((alias) =>
        alias.length === 1 ? `-${alias}` : `--${alias}`,
      )
      const preferred = `--${name}${flag.char ? ` | -${flag.char}` : ''}`
      for (const alias of aliases.filter((word) => this.argv.includes(word)))
        this.warn(`The "${alias}" flag has been deprecated. Use "${preferred}" instead.`)
    }
  }

  warn(input: Error | string): Error | string {
    if (!this.jsonEnabled()) oclifErrors().warn(input)
    return input
  }
}

const JSON_FLAG = Flags.boolean({description: 'Format output as json.', helpGroup: 'GLOBAL'})

/** As oclif's aggregateFlags: `--json` first when enabled, then the base flags, then the command's. */
function aggregateFlags(source: {
  baseFlags?: Record<string, FlagDefinition>
  enableJsonFlag?: boolean
  flags?: Record<string, FlagDefinition>
}): Record<string, FlagDefinition> {
  return {...(source.enableJsonFlag ? {json: JSON_FLAG} : {}), ...source.baseFlags, ...source.flags}
}

/** As oclif's ux.stdout/stderr: one console line, printf-style arguments applied. */
function writeLine(stream: 'stderr' | 'stdout', message: string, args: unknown[]): void {
  writeOutput(stream === 'stdout' ? 1 : 2, `${message ? format(message, ...args) : format(...args)}\n`)
}
