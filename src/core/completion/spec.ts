/**
 * What shell completion offers, derived from the commands' declarations (oclif's manifest): the
 * command tree, each command's flags and arguments, and what each value completes to. The bash
 * and zsh scripts (script.ts) are rendered from this, so a new command or flag completes without
 * editing anything here.
 *
 * The few things a declaration cannot say live here, in one place: which flags and arguments take
 * a path, which name secrets or profiles, and which command runs another after `--`.
 */
import {BACKEND_KINDS} from '../backend.js'

/** A flag as the manifest (or a loaded oclif command) declares it. */
export interface DeclaredFlag {
  allowNo?: boolean
  char?: string
  description?: string
  helpValue?: string | string[]
  hidden?: boolean
  name: string
  options?: readonly string[]
  summary?: string
  type: 'boolean' | 'option'
}

/** An argument as the manifest declares it. */
export interface DeclaredArg {
  description?: string
  hidden?: boolean
  name: string
  options?: readonly string[]
}

/** A command as the manifest (or oclif's `config.commands`) declares it; ids use colons. */
export interface DeclaredCommand {
  aliases?: readonly string[]
  args?: Record<string, DeclaredArg | undefined>
  description?: string
  flags?: Record<string, DeclaredFlag | undefined>
  hidden?: boolean
  id: string
  summary?: string
}

/**
 * What a value completes to, besides the fixed words listed with it: nothing more, file names,
 * profile names (configured ones, from the names cache), secret names of the local vault (from
 * the names cache), or exported environment variable names.
 */
export type DynamicKind = 'envvars' | 'files' | 'none' | 'profiles' | 'secrets'

export interface ValueSpec {
  dynamic: DynamicKind
  /** Fixed candidates (option values, backend kinds). */
  words: string[]
}

export interface FlagSpec {
  char?: string
  description: string
  long: string
  /** undefined: a boolean flag (takes no value). */
  value?: ValueSpec
}

export interface CommandSpec {
  args: ValueSpec[]
  /** `run … -- COMMAND ARGS…`: after `--` come a command and its own arguments. */
  exec: boolean
  flags: FlagSpec[]
  /** Words typed to reach it: `secrets get`. */
  path: string
}

export interface CompletionSpec {
  commands: CommandSpec[]
  /** Each command path prefix ('' is the top level) → the words that may follow, with descriptions. */
  tree: Map<string, Array<{description: string; word: string}>>
}

/** Flags that take a path wherever they appear. */
const PATH_FLAGS = new Set([
  'ca-cert',
  'cacert',
  'cli-path',
  'config-file',
  'data-file',
  'env-file',
  'from-file',
  'in-file',
  'key-path',
  'out-file',
  'socket',
])

/** Help values that say a flag takes a path. */
const PATH_HELP_VALUES = new Set(['DIR', 'FILE', 'PATH', 'TEMPLATE'])

/** Commands whose remaining words after `--` are a command line of its own. */
const EXEC_COMMANDS = new Set(['run'])

/** Argument names that take a path. */
const PATH_ARGS = new Set(['file', 'path'])

/** Arguments of `secrets …` (and `use`) that name an existing secret. */
const SECRET_ARGS = new Set(['name', 'old', 'prefix', 'ref'])

/** Flags naming a secret of the local vault (and those whose help value is REF: a reference). */
const SECRET_FLAGS = new Set(['secret'])

function text(value: string | undefined): string {
  return (value ?? '').split('\n')[0]?.trim() ?? ''
}

function helpValues(flag: DeclaredFlag): string[] {
  if (flag.helpValue === undefined) return []
  return Array.isArray(flag.helpValue) ? flag.helpValue : [flag.helpValue as string]
}

/** Whether a flag takes a path: by name (PATH_FLAGS, `*-file`, `*-path`) or by its help value. */
export function isPathFlag(flag: DeclaredFlag): boolean {
  return (
    flag.type === 'option' &&
    (PATH_FLAGS.has(flag.name) ||
      /-(file|path)$/.test(flag.name) ||
      helpValues(flag).some((value) => PATH_HELP_VALUES.has(value.replaceAll(/^<|>$/g, '').toUpperCase())))
  )
}

function flagValue(flag: DeclaredFlag): ValueSpec | undefined {
  if (flag.type === 'boolean') return undefined
  const words = [...(flag.options ?? [])]
  if (isPathFlag(flag)) return {dynamic: 'files', words}
  if (flag.name === 'profile') return {dynamic: 'profiles', words: [...BACKEND_KINDS]}
  if (SECRET_FLAGS.has(flag.name) || helpValues(flag).includes('REF')) return {dynamic: 'secrets', words}
  if (flag.name === 'from-env' || flag.name === 'pass-env') return {dynamic: 'envvars', words}
  if (flag.name === 'kind' && words.length === 0) return {dynamic: 'none', words: [...BACKEND_KINDS]}
  return {dynamic: 'none', words}
}

function argValue(id: string, arg: DeclaredArg): ValueSpec {
  const words = [...(arg.options ?? [])]
  const topic = id.split(':')[0]
  if (arg.name === 'kind') return {dynamic: 'none', words: [...new Set([...BACKEND_KINDS, ...words])]}
  if (words.length > 0) return {dynamic: 'none', words}
  if (PATH_ARGS.has(arg.name)) return {dynamic: 'files', words}
  if (topic === 'profiles' && id !== 'profiles:add' && arg.name === 'name')
    return {dynamic: 'profiles', words}
  if ((topic === 'secrets' || id === 'use') && SECRET_ARGS.has(arg.name)) return {dynamic: 'secrets', words}
  return {dynamic: 'none', words}
}

function flagSpecs(command: DeclaredCommand): FlagSpec[] {
  const flags: FlagSpec[] = []
  for (const flag of Object.values(command.flags ?? {})) {
    if (!flag || flag.hidden) continue
    const description = text(flag.summary ?? flag.description)
    const value = flagValue(flag)
    flags.push({
      ...(flag.char ? {char: flag.char} : {}),
      description,
      long: flag.name,
      ...(value ? {value} : {}),
    })
    if (flag.type === 'boolean' && flag.allowNo) flags.push({description, long: `no-${flag.name}`})
  }

  if (!flags.some((flag) => flag.long === 'help')) flags.push({description: 'Show help.', long: 'help'})
  return flags
}

/** The completion spec of `commands` (hidden commands, flags and arguments left out). */
export function buildCompletionSpec(
  commands: Iterable<DeclaredCommand>,
  topics: Record<string, {description?: string}> = {},
): CompletionSpec {
  const byPath = new Map<string, CommandSpec>()
  const tree = new Map<string, Map<string, string>>()
  const addWord = (prefix: string, word: string, description: string): void => {
    const words = tree.get(prefix) ?? new Map<string, string>()
    if (!words.has(word) || (words.get(word) === '' && description !== '')) words.set(word, description)
    tree.set(prefix, words)
  }

  for (const command of commands) {
    if (command.hidden) continue
    const description = text(command.summary ?? command.description)
    const flags = flagSpecs(command)
    const args = Object.values(command.args ?? {})
      .filter((arg): arg is DeclaredArg => arg !== undefined && !arg.hidden)
      .map((arg) => argValue(command.id, arg))
    for (const id of [command.id, ...(command.aliases ?? [])]) {
      const words = id.split(':')
      const path = words.join(' ')
      if (byPath.has(path)) continue
      byPath.set(path, {args, exec: EXEC_COMMANDS.has(command.id), flags, path})
      for (let depth = 0; depth < words.length; depth++) {
        const prefix = words.slice(0, depth).join(' ')
        const word = words[depth] as string
        const topic = topics[words.slice(0, depth + 1).join(':')]
        addWord(prefix, word, depth === words.length - 1 ? description : text(topic?.description))
      }
    }
  }

  const sortedTree = new Map<string, Array<{description: string; word: string}>>()
  for (const [prefix, words] of [...tree].sort(([a], [b]) => a.localeCompare(b)))
    sortedTree.set(
      prefix,
      [...words].sort(([a], [b]) => a.localeCompare(b)).map(([word, description]) => ({description, word})),
    )
  return {commands: [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path)), tree: sortedTree}
}
