/**
 * `login KIND` from a backend's declaration (core/declarations.ts): its oclif flags and help, and
 * the reading of its inputs — flags, `--X-stdin`, variables, prompts — into the already-read
 * {@link LoginOptions} the backend receives. Backends never touch the terminal.
 */
import {Flags, type Interfaces} from '@oclif/core'

import type {LoginOptions} from '../core/backend.js'
import type {LoginDeclaration, LoginInput} from '../core/declarations.js'

import {UsageError} from '../core/errors.js'
import {DEFAULT_MAX_VALUE_BYTES} from '../core/value-size.js'

/** The flag a secret input is read through: `--<flag>-stdin`. */
export function stdinFlag(input: LoginInput): string {
  return `${input.flag}-stdin`
}

/** The oclif flags of `login KIND`: one per declared input, a secret's as `--<flag>-stdin`. */
export function loginFlags(declaration: LoginDeclaration): Interfaces.FlagInput {
  const flags: Interfaces.FlagInput = {}
  for (const input of declaration.inputs) {
    const common = {
      ...(input.aliases && {aliases: [...input.aliases]}),
      ...(input.exclusive && {exclusive: [...input.exclusive]}),
    }
    if (input.secret) {
      flags[stdinFlag(input)] = Flags.boolean({...common, description: input.description})
      continue
    }

    const env = input.env === undefined ? {} : {env: input.env}
    const helpValue = input.helpValue === undefined ? {} : {helpValue: input.helpValue}
    switch (input.type) {
      case 'boolean': {
        flags[input.flag] = Flags.boolean({...common, ...env, description: input.description})
        break
      }

      case 'integer': {
        flags[input.flag] = Flags.integer({
          ...common,
          ...env,
          ...helpValue,
          description: input.description,
          ...(input.max !== undefined && {max: input.max}),
          ...(input.min !== undefined && {min: input.min}),
        }) as Interfaces.OptionFlag<unknown>
        break
      }

      default: {
        const options = {
          ...common,
          ...env,
          ...helpValue,
          description: input.description,
          ...(input.options && {options: [...input.options]}),
        }
        flags[input.flag] = (
          input.type === 'strings' ? Flags.string({...options, multiple: true}) : Flags.string(options)
        ) as Interfaces.OptionFlag<unknown>
      }
    }
  }

  return flags
}

/** What reading inputs needs from the command: the parsed flags and how it may ask. */
export interface LoginReadContext {
  env: NodeJS.ProcessEnv
  flags: Record<string, unknown>
  interactive: boolean
  /** The profile's stored settings (those a `profileSetting` input stands for). */
  settings: Record<string, unknown>
}

function given(value: unknown): boolean {
  if (value === undefined || value === '' || value === false) return false
  return !Array.isArray(value) || value.length > 0
}

/** Whether `input` applies, given what the inputs it depends on resolved to. */
function applies(input: LoginInput, resolved: Map<string, unknown>): boolean {
  if (!input.when) return true
  const value = resolved.get(input.when.input)
  return typeof value === 'string' && input.when.is.includes(value)
}

/** Nothing gave a required input: name the command, flag and variable that would (bare `login` has no flags). */
function missing(input: LoginInput, kind: string): UsageError {
  const variable = input.env ? ` or set ${input.env}` : ''
  if (input.secret)
    return new UsageError('VALUE_REQUIRED', `No ${input.label} given and prompting is off`, {
      suggestion: `Pipe it to agentvault login ${kind} --${stdinFlag(input)}${variable}; never put it in argv.`,
    })
  return new UsageError('VALUE_REQUIRED', `No ${input.label} given and prompting is off`, {
    suggestion: `Pass it: agentvault login ${kind} --${input.flag} VALUE${variable}.`,
  })
}

async function secretFromStdin(input: LoginInput, kind: string): Promise<Buffer> {
  const {inputTooLarge, readStdin, stripOneNewline} = await import('./input.js')
  const read = await readStdin(
    DEFAULT_MAX_VALUE_BYTES,
    2,
    inputTooLarge(`The ${input.label} on stdin`, `Pipe only the ${input.label} to --${stdinFlag(input)}.`),
  )
  const stripped = stripOneNewline(read)
  const bytes =
    input.trim === false ? Buffer.from(stripped) : Buffer.from(stripped.toString('utf8').trim(), 'utf8')

  read.fill(0)
  if (bytes.length === 0)
    throw new UsageError('VALUE_REQUIRED', `--${stdinFlag(input)} read nothing from stdin`, {
      suggestion: `Pipe the ${input.label.toLowerCase()}: printf %s "$VALUE" | agentvault login ${kind} --${stdinFlag(input)} …`,
    })
  return bytes
}

async function prompted(input: LoginInput): Promise<Buffer | string | undefined> {
  const ui = await import('./input.js')
  if (input.prompt === 'hidden') {
    const answer = await ui.promptHidden(input.label)
    if (input.trim === false) return answer
    const value = Buffer.from(answer.toString('utf8').trim(), 'utf8')
    answer.fill(0)
    return value.length > 0 ? value : undefined
  }

  const answer = (await ui.promptText(input.label)).trim()
  return answer === '' ? undefined : answer
}

/** A flag's value (its variable included), or for a secret `--X-stdin`, then its variable. */
async function givenValue(
  input: LoginInput,
  kind: string,
  context: LoginReadContext,
): Promise<LoginOptions[string]> {
  if (input.secret) {
    if (context.flags[stdinFlag(input)] === true) return secretFromStdin(input, kind)
    const fromEnv = input.env === undefined ? undefined : context.env[input.env]
    return fromEnv === undefined || fromEnv === '' ? undefined : Buffer.from(fromEnv, 'utf8')
  }

  const flag = context.flags[input.flag]
  if (typeof flag === 'number') return String(flag)
  return given(flag) ? (flag as boolean | string | string[]) : undefined
}

/**
 * Read every input that applies, in declaration order: a flag (or its variable), then for a
 * secret `--X-stdin`, its variable, then a hidden prompt; a non-secret falls back to the profile's
 * setting, then a prompt. A required input that nothing gave fails naming the flag and variable.
 * Secrets come back as Buffers: the caller wipes them.
 */
export async function readLoginInputs(
  declaration: LoginDeclaration,
  context: LoginReadContext,
): Promise<LoginOptions> {
  const stdinFlags = declaration.inputs
    .filter((input) => input.secret && context.flags[stdinFlag(input)] === true)
    .map((input) => `--${stdinFlag(input)}`)
  if (stdinFlags.length > 1)
    throw new UsageError(
      'ONE_STDIN',
      `Only one value can be read from stdin per login: ${stdinFlags.join(', ')}`,
      {
        suggestion: `Give one on stdin and the others from their variables, or log in once per value.`,
      },
    )

  const options: LoginOptions = {}
  const resolved = new Map<string, unknown>()
  try {
    for (const input of declaration.inputs) {
      if (!applies(input, resolved)) continue
      let value = await givenValue(input, declaration.kind, context)

      const stored = input.profileSetting === undefined ? undefined : context.settings[input.profileSetting]
      if (value === undefined && given(stored)) {
        resolved.set(input.name, stored)
        continue
      }

      if (value === undefined && input.prompt && !input.deferred && context.interactive)
        value = await prompted(input)
      if (value === undefined) {
        if (input.required) throw missing(input, declaration.kind)
        if (input.default !== undefined) resolved.set(input.name, input.default)
        continue
      }

      options[input.name] = value
      resolved.set(input.name, value)
    }
  } catch (error) {
    wipeLoginInputs(options)
    throw error
  }

  return options
}

/** Overwrite the secrets read for a login (Buffers) once it is over. */
export function wipeLoginInputs(options: LoginOptions): void {
  for (const value of Object.values(options)) if (Buffer.isBuffer(value)) value.fill(0)
}
