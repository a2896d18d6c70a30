/**
 * The flags of `agentvault run`, declared once. The oclif command builds its help and completion
 * from RUN_FLAGS; `parseRunArgv` parses them for the fast path that starts without oclif (loading
 * oclif alone costs more than Node's own startup).
 */
import {nearest} from './did-you-mean.js'
import {UsageError} from './errors.js'

export type MaskMode = 'always' | 'auto' | 'never'

export interface RunFlagSpec {
  /** Old names still accepted, with a deprecation warning (hidden from help). */
  aliases?: readonly string[]
  char?: string
  default?: string
  description: string
  env?: string
  /** An old name of `env`, still read when `env` is unset, with a deprecation warning. */
  deprecatedEnv?: string
  /** How the env var splits into several values (multiple flags; default: commas). */
  envSeparator?: RegExp
  helpValue?: string
  multiple?: boolean
  options?: readonly string[]
  type: 'boolean' | 'string'
}

export const RUN_FLAGS = {
  env: {
    char: 'e',
    description: 'Set NAME to the value of a secret reference (repeatable; wins over env files).',
    helpValue: 'NAME=REF',
    multiple: true,
    type: 'string',
  },
  'env-file': {
    description:
      'Read NAME=REF or NAME=value lines from a dotenv file (repeatable; later files win; at most 4 MiB each).',
    env: 'AGENTVAULT_ENV_FILE',
    helpValue: 'FILE',
    multiple: true,
    type: 'string',
  },
  mask: {
    default: 'auto',
    description:
      'Conceal secret values in the output: auto (only when not a terminal), always, or never. Bytes held back as the possible start of a value are written after 100 ms without new output.',
    env: 'AGENTVAULT_MASK',
    options: ['auto', 'always', 'never'],
    type: 'string',
  },
  'clean-env': {
    description:
      'Start the command with a minimal environment (PATH, HOME, locale, terminal) plus the secrets.',
    type: 'boolean',
  },
  'pass-env': {
    description:
      "Keep this withheld credential variable in the command's environment (repeatable; the env var takes names separated by commas or spaces). Its value is masked in the output like a secret. With --clean-env it keeps any variable.",
    env: 'AGENTVAULT_PASS_ENV',
    envSeparator: /[\s,]+/,
    helpValue: 'NAME',
    multiple: true,
    type: 'string',
  },
  placeholders: {
    description:
      'Give the command placeholders (avph_NAME_…) instead of values; a proxy swaps in the real values only in requests to hosts each secret allows. Implies proxy and CA variables in its environment.',
    env: 'AGENTVAULT_PLACEHOLDERS',
    type: 'boolean',
  },
  // One spelling with `secrets set --allow-domain` and `allowedDomains`; --allow-host and
  // AGENTVAULT_ALLOW_HOST (the old names) still work, with a warning.
  'allow-domain': {
    aliases: ['allow-host'],
    deprecatedEnv: 'AGENTVAULT_ALLOW_HOST',
    description:
      'With --placeholders: a host (or *.suffix; optionally with :port) for secrets without an allowlist of their own (repeatable).',
    env: 'AGENTVAULT_ALLOW_DOMAIN',
    helpValue: 'HOST',
    multiple: true,
    type: 'string',
  },
  isolate: {
    description:
      'Run the command under bubblewrap with the agentvault home and the OS keychain socket hidden (Linux only).',
    env: 'AGENTVAULT_ISOLATE',
    type: 'boolean',
  },
  profile: {
    char: 'p',
    description: 'Default profile for references of its kind that name none.',
    env: 'AGENTVAULT_PROFILE',
    type: 'string',
  },
} as const satisfies Record<string, RunFlagSpec>

export interface RunOptions {
  /** `--allow-domain` patterns (as given; normalised where used). */
  allowHosts: string[]
  cleanEnv: boolean
  /** The command and its arguments. */
  command: string[]
  env: string[]
  envFiles: string[]
  isolate: boolean
  mask: MaskMode
  /** Variables kept although withheld (credentials) or dropped (--clean-env) by default. */
  passEnv: string[]
  placeholders: boolean
  profile?: string
  /** Deprecation notices (an old flag or variable name was used), for stderr. */
  warnings?: string[]
}

/** A flag or variable given a value outside its options: the nearest option, never the value. */
function notAnOption(what: string, options: readonly string[], value: string): UsageError {
  const meant = nearest(value, options)
  const example = what.startsWith('--') ? `${what} ${meant ?? options[0]}` : `${what}=${meant ?? options[0]}`
  return new UsageError('BAD_FLAG', `${what} must be one of ${options.join(', ')}`, {
    suggestion: meant === undefined ? `For example: ${example}` : `Did you mean ${example}?`,
  })
}

function unknownFlag(flag: string): UsageError {
  const afterDashes = 'Put the command after `--`: agentvault run --env K=local://K -- mycmd --its-flags'
  const meant = flag.startsWith('--')
    ? nearest(
        flag.replace(/=.*/s, ''),
        Object.keys(RUN_FLAGS).map((name) => `--${name}`),
      )
    : undefined
  // Named, never its value: `--name=VALUE` and `-xVALUE` may carry a secret.
  const named = flag.startsWith('--') ? flag.replace(/=.*/s, '') : flag.slice(0, 2)
  return new UsageError('UNKNOWN_FLAG', `Unknown flag ${named} for run`, {
    suggestion: meant === undefined ? afterDashes : `Did you mean ${meant}? Or: ${afterDashes}`,
  })
}

/** Parse `run`'s argv: flags, then the command (after `--` or at the first non-flag word). */
export function parseRunArgv(argv: string[], env: NodeJS.ProcessEnv): RunOptions {
  const specs = RUN_FLAGS as Record<string, RunFlagSpec>
  const byChar = new Map(
    Object.entries(specs).flatMap(([name, spec]) => (spec.char ? [[spec.char, name]] : [])),
  )
  const byAlias = new Map(
    Object.entries(specs).flatMap(([name, spec]) =>
      (spec.aliases ?? []).map((alias) => [alias, name] as const),
    ),
  )
  const warnings: string[] = []
  const values = new Map<string, string[]>()
  let index = 0
  for (; index < argv.length; index++) {
    const word = argv[index] as string
    if (word === '--') {
      index++
      break
    }

    if (!word.startsWith('-') || word === '-') break
    let name: string | undefined
    let inline: string | undefined
    if (word.startsWith('--')) {
      const eq = word.indexOf('=')
      name = eq === -1 ? word.slice(2) : word.slice(2, eq)
      inline = eq === -1 ? undefined : word.slice(eq + 1)
    } else {
      name = byChar.get(word.slice(1, 2))
      if (word.length > 2) inline = word.slice(2).replace(/^=/, '')
    }

    const canonical = name === undefined ? undefined : byAlias.get(name)
    if (canonical !== undefined) {
      const notice = `The "--${name}" flag has been deprecated. Use "--${canonical}" instead.`
      if (!warnings.includes(notice)) warnings.push(notice)
      name = canonical
    }

    const spec = name === undefined ? undefined : specs[name]
    if (!spec || name === undefined) throw unknownFlag(word)
    let value: string
    if (spec.type === 'boolean') {
      if (inline !== undefined)
        throw new UsageError('BAD_FLAG', `--${name} takes no value`, {
          suggestion: `Give --${name} alone (no =VALUE); \`agentvault run --help\` lists run's flags.`,
        })
      value = 'true'
    } else if (inline === undefined) {
      const next = argv[index + 1]
      if (next === undefined)
        throw new UsageError('MISSING_FLAG_VALUE', `--${name} needs a value`, {
          suggestion: `--${name} ${spec.helpValue ?? 'VALUE'}; \`agentvault run --help\` lists run's flags.`,
        })
      value = next
      index++
    } else {
      value = inline
    }

    if (spec.options && !spec.options.includes(value)) throw notAnOption(`--${name}`, spec.options, value)
    if (!spec.multiple && values.has(name))
      throw new UsageError('BAD_FLAG', `--${name} was given twice`, {
        suggestion: `Give --${name} once, with the value you mean.`,
      })
    values.set(name, [...(values.get(name) ?? []), value])
  }

  const command = argv.slice(index)
  if (command.length === 0)
    throw new UsageError('MISSING_COMMAND', 'No command to run', {
      suggestion: 'agentvault run --env API_KEY=local://API_KEY -- ./deploy.sh',
    })

  if (command[0] === '')
    throw new UsageError('MISSING_COMMAND', 'The command name is empty', {
      suggestion:
        'Name the program to start after `--`: agentvault run --env API_KEY=local://API_KEY -- ./deploy.sh',
    })

  const pick = (name: keyof typeof RUN_FLAGS): string[] => {
    const given = values.get(name)
    if (given) return given
    const spec = RUN_FLAGS[name] as RunFlagSpec
    let fromEnv = spec.env ? env[spec.env] : undefined
    if ((fromEnv === undefined || fromEnv === '') && spec.deprecatedEnv && env[spec.deprecatedEnv]) {
      fromEnv = env[spec.deprecatedEnv]
      warnings.push(`${spec.deprecatedEnv} has been deprecated. Use ${spec.env} instead.`)
    }

    if (fromEnv !== undefined && fromEnv !== '')
      return spec.multiple ? fromEnv.split(spec.envSeparator ?? ',').filter((item) => item !== '') : [fromEnv]
    return spec.default === undefined ? [] : [spec.default]
  }

  const mask = pick('mask')[0] as string
  if (!RUN_FLAGS.mask.options.includes(mask as MaskMode))
    throw notAnOption('AGENTVAULT_MASK', RUN_FLAGS.mask.options, mask)
  const passEnv = pick('pass-env')
  const badName = passEnv.find((name) => !/^[A-Za-z_]\w*$/.test(name))
  if (badName !== undefined)
    // Not echoed: `--pass-env NAME=value` would put a value in the message.
    throw new UsageError('BAD_FLAG', '--pass-env expects variable names (letters, digits and _)', {
      suggestion: 'agentvault run --pass-env BAO_TOKEN -- bao kv get secret/app',
    })
  // A boolean flag's variable counts when set to 1 or true (as oclif reads it).
  const on = (name: 'isolate' | 'placeholders'): boolean =>
    values.has(name) || /^(1|true)$/i.test(env[RUN_FLAGS[name].env] ?? '')
  return {
    allowHosts: pick('allow-domain'),
    cleanEnv: values.has('clean-env'),
    command,
    env: pick('env'),
    envFiles: pick('env-file'),
    isolate: on('isolate'),
    mask: mask as MaskMode,
    passEnv,
    placeholders: on('placeholders'),
    profile: pick('profile')[0],
    ...(warnings.length > 0 && {warnings}),
  }
}
