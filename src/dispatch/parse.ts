/**
 * oclif's command-line parsing, for the command lines it accepts: the same tokenising (`--flag
 * value`, `--flag=value`, `-fvalue`, bundled booleans `-ab`, `--no-flag`, `--`), the same values
 * (env vars, defaults, options, `multiple` greedily taking the words that follow), the same
 * missing-argument read of piped stdin. Whatever oclif would reject — an unknown flag, a bad
 * value, a missing or extra argument, exclusive flags together — and every flag feature not
 * reproduced here throws `NeedsOclif` instead, so that oclif parses the line again and prints its
 * own error: identical by construction. test/unit/dispatch/parse.test.ts compares both parsers.
 */
import {EOL} from 'node:os'

/** Thrown before the command did anything: run the same command line through oclif instead. */
export class NeedsOclif extends Error {
  constructor(reason: string) {
    super(`handled by oclif: ${reason}`)
    this.name = 'NeedsOclif'
  }
}

export interface FlagDefinition {
  [key: string]: unknown
  aliases?: string[]
  allowNo?: boolean
  char?: string
  charAliases?: string[]
  default?: unknown
  dependsOn?: unknown[]
  env?: string
  exclusive?: unknown[]
  multiple?: boolean
  name?: string
  options?: readonly string[]
  parse?: (input: never, context: unknown, options: never) => Promise<unknown>
  required?: boolean
  type: 'boolean' | 'option'
}

export interface ArgDefinition {
  [key: string]: unknown
  default?: unknown
  ignoreStdin?: boolean
  multiple?: boolean
  name?: string
  options?: readonly string[]
  parse?: (input: never, context: unknown, options: never) => Promise<unknown>
  required?: boolean
}

export interface ParseInput {
  args: Record<string, ArgDefinition>
  flags: Record<string, FlagDefinition>
  strict: boolean
}

export interface ParseOutput {
  args: Record<string, unknown>
  argv: unknown[]
  flags: Record<string, unknown>
}

/** Flag properties with semantics this parser does not reproduce: oclif handles those commands. */
const UNSUPPORTED_FLAG_KEYS = [
  'allowStdin',
  'atLeastOne',
  'combinable',
  'defaultHelp',
  'delimiter',
  'deprecated',
  'exactlyOne',
  'relationships',
]

/** Why oclif must parse these definitions, or undefined when this parser reproduces them all. */
export function unsupportedFeature(input: ParseInput): string | undefined {
  for (const [name, flag] of Object.entries(input.flags)) {
    const key = UNSUPPORTED_FLAG_KEYS.find((k) => flag[k] !== undefined && flag[k] !== false)
    if (key) return `--${name}: ${key}`
    if (typeof flag.default === 'function') return `--${name}: dynamic default`
    if (flag.type !== 'boolean' && flag.type !== 'option') return `--${name}: type ${String(flag.type)}`
    for (const list of [flag.exclusive, flag.dependsOn])
      if (list !== undefined && (!Array.isArray(list) || list.some((entry) => typeof entry !== 'string')))
        return `--${name}: conditional relationship`
  }

  let optional = false
  for (const [name, arg] of Object.entries(input.args)) {
    if (arg.multiple) return `${name}: variadic`
    if (typeof arg.default === 'function') return `${name}: dynamic default`
    // oclif refuses this spec at parse time
    if (arg.required && optional) return `${name}: required after optional`
    if (!arg.required) optional = true
  }

  return undefined
}

const own = <T>(record: Record<string, T>, key: string): T | undefined =>
  Object.hasOwn(record, key) ? record[key] : undefined

/** Reads piped stdin as oclif does for a missing argument: whole lines, 10 ms to start. */
export async function readStdinForArgument(): Promise<string | null> {
  const {stdin, stdout} = process
  if (stdin.isTTY) return null
  const shared = globalThis as {oclif?: {stdinCache?: string}}
  if (shared.oclif?.stdinCache) return shared.oclif.stdinCache
  const {createInterface} = await import('node:readline')
  return new Promise((resolve) => {
    const lines: string[] = []
    const reader = createInterface({input: stdin, output: stdout, terminal: false})
    // As oclif: after 10 ms the reader closes and what arrived so far is the answer.
    const timer = setTimeout(() => reader.close(), 10)
    reader.on('line', (line) => lines.push(line))
    reader.once('close', () => {
      clearTimeout(timer)
      const text = lines.join(EOL)
      // oclif reads this cache: a command line handed back to it sees the same stdin.
      shared.oclif = {...shared.oclif, stdinCache: text}
      resolve(text)
    })
  })
}

interface Token {
  arg?: string
  flag?: string
  input: string
}

/**
 * Parse `argv` against the definitions, as oclif's parser and validator would; `context` is the
 * command (custom parse functions receive it). Throws NeedsOclif where oclif would fail.
 */
export async function parseCommandLine(
  argv: string[],
  input: ParseInput,
  context: unknown,
  readStdin: () => Promise<null | string> = readStdinForArgument,
): Promise<ParseOutput> {
  const unsupported = unsupportedFeature(input)
  if (unsupported) throw new NeedsOclif(unsupported)
  const {flags} = input
  for (const [name, flag] of Object.entries(flags)) flag.name = name
  for (const [name, arg] of Object.entries(input.args)) arg.name = name
  const aliases = new Map<string, string>()
  for (const [name, flag] of Object.entries(flags))
    for (const alias of [...(flag.aliases ?? []), ...(flag.charAliases ?? [])]) aliases.set(alias, name)

  const findLong = (word: string): string | undefined => {
    const name = word.slice(2)
    if (own(flags, name)) return name
    if (aliases.has(name)) return aliases.get(name)
    if (word.startsWith('--no-')) {
      const positive = word.slice(5)
      const direct = own(flags, positive)
      if (direct?.type === 'boolean' && direct.allowNo) return positive
      const aliased = aliases.get(positive)
      const viaAlias = aliased === undefined ? undefined : flags[aliased]
      if (viaAlias?.type === 'boolean' && viaAlias.allowNo) return aliased
    }

    return undefined
  }

  const findShort = (word: string): string | undefined => {
    const char = word[1]
    if (char === undefined) return undefined
    if (aliases.has(char)) return aliases.get(char)
    return Object.keys(flags).find((name) => flags[name]?.char === char)
  }

  const find = (word: string): {isLong: boolean; name: string | undefined} => {
    const isLong = word.startsWith('--')
    // oclif looks flags up in plain objects, so `--constructor` means something to it.
    if (isLong && word.replace(/^--(no-)?/, '') in Object.prototype) throw new NeedsOclif('inherited name')
    return {isLong, name: isLong ? findLong(word) : word.startsWith('-') ? findShort(word) : undefined}
  }

  const queue = [...argv]
  const tokens: Token[] = []
  const argNames = Object.keys(input.args)
  let current: FlagDefinition | undefined
  let argCount = 0

  const takeFlag = (word: string): boolean => {
    const {isLong, name} = find(word)
    if (name === undefined) {
      const eq = word.indexOf('=')
      if (eq === -1) return false
      queue.unshift(word.slice(eq + 1))
      const taken = takeFlag(word.slice(0, eq))
      if (!taken) queue.shift()
      return taken
    }

    const flag = flags[name] as FlagDefinition
    if (flag.type === 'option') {
      if (!flag.multiple && tokens.some((token) => token.flag === name))
        throw new NeedsOclif('flag given twice')
      current = flag
      const value = isLong || word.length < 3 ? queue.shift() : word.slice(word[2] === '=' ? 3 : 2)
      if (value === undefined || find(value).name !== undefined) throw new NeedsOclif('flag without a value')
      tokens.push({flag: name, input: value})
    } else {
      tokens.push({flag: name, input: word})
      if (!isLong && word.length > 2) queue.unshift(`-${word.slice(2)}`)
    }

    return true
  }

  let parsingFlags = true
  while (queue.length > 0) {
    const word = queue.shift() as string
    if (parsingFlags && word.startsWith('-') && word !== '-') {
      if (word === '--') {
        parsingFlags = false
        continue
      }

      if (takeFlag(word)) continue
      // an unknown flag (a negative number is an argument)
      if (!/^-\d/.test(word)) throw new NeedsOclif('unknown flag')
    }

    if (parsingFlags && current?.multiple && !current.multipleNonGreedy) {
      tokens.push({flag: current.name, input: word})
      continue
    }

    tokens.push({arg: argNames[argCount], input: word})
    argCount++
  }

  const callParse = async (
    definition: ArgDefinition | FlagDefinition,
    value: unknown,
    token?: Record<string, unknown>,
  ): Promise<unknown> => {
    if (!definition.parse) return value
    const command = context as Record<string, unknown>
    let parseContext: unknown
    if (token?.type === 'arg') {
      // oclif hands argument parsers the command itself, its `token` set
      command.token = token
      parseContext = command
    } else {
      const {error, exit, jsonEnabled, log, logToStderr, warn} = command
      parseContext = {...command, error, exit, jsonEnabled, log, logToStderr, token, warn}
    }

    try {
      return await definition.parse(value as never, parseContext, definition as never)
    } catch (error) {
      if (error instanceof NeedsOclif) throw error
      throw new NeedsOclif('a parse function refused the value')
    }
  }

  const checkOption = (definition: ArgDefinition | FlagDefinition, value: string): string => {
    if (definition.options && !definition.options.includes(value))
      throw new NeedsOclif('not one of the options')
    return value
  }

  // Arguments, as oclif's _args: each from its token, else from piped stdin (once), else its default.
  const args: Record<string, unknown> = {}
  const values: unknown[] = []
  const argTokens = tokens.filter((token) => token.flag === undefined)
  let stdinRead = false
  for (const [name, arg] of Object.entries(input.args)) {
    const token = argTokens.find((t) => t.arg === name)
    let text: null | string | undefined = token?.input
    if (text === undefined && !arg.ignoreStdin && !stdinRead) {
      stdinRead = true
      const piped = await readStdin()
      if (piped) text = piped.trim()
    }

    if (text !== undefined) {
      const parsed = await callParse(arg, checkOption(arg, text), {arg: name, input: text, type: 'arg'})
      values.push(parsed)
      args[name] = parsed
    }

    if (args[name] === undefined && (arg.default || arg.default === false)) {
      const fallback = arg.default
      if (Array.isArray(fallback)) values.push(...(fallback as unknown[]))
      else values.push(fallback)
      args[name] = fallback
    }
  }

  for (const token of argTokens)
    if (token.arg === undefined || args[token.arg] === undefined) values.push(token.input)

  // Flags, as oclif's _flags: tokens, else a non-empty env var, else the default.
  const result: Record<string, unknown> = {}
  const fromDefault = new Set<string>()
  for (const [name, flag] of Object.entries(flags)) {
    const given = tokens.filter((token) => token.flag === name)
    const last = given.at(-1)
    let value: unknown
    if (last) {
      if (flag.type === 'boolean') {
        const negations = [name, ...(flag.aliases ?? [])].map((n) => `--no-${n}`)
        value = await callParse(flag, !negations.includes(last.input), {...last, type: 'flag'})
      } else if (flag.multiple) {
        value = await Promise.all(
          given.map((token) => callParse(flag, checkOption(flag, token.input), {...token, type: 'flag'})),
        )
      } else {
        value = await callParse(flag, checkOption(flag, last.input), {...last, type: 'flag'})
      }
    } else if (flag.env && process.env[flag.env]) {
      const text = process.env[flag.env] as string
      value =
        flag.type === 'boolean'
          ? ['1', 'true', 'y', 'yes'].includes(text.toLowerCase())
          : await callParse(flag, checkOption(flag, text))
    } else {
      value = flag.default
      fromDefault.add(name)
    }

    if (value !== undefined) result[name] = value
  }

  // oclif's validation: every failure is oclif's to report.
  if (input.strict && values.length > argNames.length) throw new NeedsOclif('unexpected argument')
  for (const [name, arg] of Object.entries(input.args))
    if (arg.required && args[name] === undefined) throw new NeedsOclif('missing argument')
  for (const [name, flag] of Object.entries(flags)) {
    if (result[name] === undefined) {
      if (flag.required) throw new NeedsOclif('missing flag')
      continue
    }

    for (const other of (flag.dependsOn ?? []) as string[])
      if (result[other] === undefined) throw new NeedsOclif('flag depends on another')
    if (fromDefault.has(name)) continue
    for (const other of (flag.exclusive ?? []) as string[])
      if (!fromDefault.has(other) && result[other] !== undefined) throw new NeedsOclif('exclusive flags')
  }

  return {
    args,
    argv: values.sort((a, b) => argv.indexOf(a as string) - argv.indexOf(b as string)),
    flags: result,
  }
}
