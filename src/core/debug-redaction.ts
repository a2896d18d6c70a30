/**
 * `DEBUG=*` output never carries a value given in argv (product.md §10). oclif dumps argv under
 * `DEBUG` (process.argv, runCommand, command init), and our own namespaces may format arguments:
 * every line the `debug` package prints goes through `redactDebugText` first, which conceals the
 * values argv carries — the part after `=` of any `NAME=VALUE` word (`secrets set NAME=VALUE`,
 * `--param data=…`, `--env K=REF`, `--flag=value`) and the word after any flag that is not known
 * to take a harmless value (`-d BODY`, `-H 'Name: value'`, `--params JSON`), a short flag's attached
 * value (`-vVALUE`), and every positional word after a command's first argument (`secrets set NAME
 * VALUE`, a space typed for the `=`). Over-redacting a
 * positional is the price of not knowing every flag's type here.
 *
 * Installed by main.ts only when DEBUG is set, before oclif is imported.
 */
import {formatWithOptions, inspect, type InspectOptions} from 'node:util'

const REDACTED = '<redacted>'

/** Shorter values would shred every line (as in masking); they are not redacted. */
const MIN_LENGTH = 4

/** Flags whose value is never a secret: keeping it makes debug output useful. */
const HARMLESS_VALUE_FLAGS = new Set([
  '--address',
  '--allow-domain',
  '--allow-host',
  '--auth-mount',
  '--ca-cert',
  '--cacert',
  '--env-file',
  '--mask',
  '--max-response-bytes',
  '--method',
  '--namespace',
  '--pass-env',
  '--profile',
  '--request',
  '--source',
  '--timeout',
  '-p',
  '-X',
])

/** The values in `argv` that debug output must not show, longest first. */
export function argvSecrets(argv: readonly string[]): string[] {
  const found = new Set<string>()
  let positionals = 0
  let ended = false
  for (const [index, word] of argv.entries()) {
    const eq = word.indexOf('=')
    if (eq !== -1) found.add(word.slice(eq + 1))
    // `-vVALUE`: a short flag with its value attached
    if (!ended && /^-[^-]./s.test(word)) found.add(word.slice(2))
    if (word === '--') ended = true
    // Beyond a two-word command and its first argument, a word is what a typo makes of a value:
    // `secrets set NAME VALUE` (a space for the `=`).
    const afterFlag = index > 0 && /^-[^=]*$/s.test(argv[index - 1] ?? '') && argv[index - 1] !== '--'
    if (!ended && !word.startsWith('-') && !afterFlag && ++positionals > 3) found.add(word)
    const previous = index > 0 ? argv[index - 1] : undefined
    if (
      previous !== undefined &&
      previous.startsWith('-') &&
      previous !== '--' &&
      !previous.includes('=') &&
      !HARMLESS_VALUE_FLAGS.has(previous) &&
      !word.startsWith('-')
    )
      found.add(word)
  }

  return [...found].filter((value) => value.length >= MIN_LENGTH).sort((a, b) => b.length - a.length)
}

/** The spellings of `value` that formatted debug output may contain: raw, inspected, JSON-escaped. */
function spellings(value: string): string[] {
  const forms = new Set([inspect(value).slice(1, -1), JSON.stringify(value).slice(1, -1), value])
  return [...forms].filter((form) => form.length > 0)
}

/** `text` with every spelling of every secret replaced by `<redacted>`. */
export function redactDebugText(text: string, secrets: readonly string[]): string {
  let result = text
  for (const secret of secrets)
    for (const form of spellings(secret)) result = result.split(form).join(REDACTED)
  return result
}

/**
 * Route every `debug` line (oclif's included: they share the `debug` package) through the
 * redaction of `argv`'s values. Returns the redaction for other debug-only output (stack traces).
 */
export async function redactDebugOutput(argv: readonly string[]): Promise<(text: string) => string> {
  const secrets = argvSecrets(argv)
  const redact = (text: string): string => redactDebugText(text, secrets)
  const {default: createDebug} = await import('debug')
  createDebug.log = (...args: unknown[]): void => {
    process.stderr.write(
      `${redact(formatWithOptions((createDebug.inspectOpts ?? {}) as InspectOptions, ...args))}\n`,
    )
  }

  return redact
}
