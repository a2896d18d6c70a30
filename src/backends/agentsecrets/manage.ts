/**
 * `secrets list | set | delete` through the AgentSecrets CLI (protocols/agentsecrets.md §4.4).
 * Exit codes of ≤2.1.0 are unreliable, so success is a marker line for every key *and* a following
 * `secrets list` that confirms the change. Production prompts need a terminal (open point 8).
 */
import type {AgentSecretsCli, CliOutput} from './cli.js'

import {concealSent} from '../../core/conceal.js'
import {AgentVaultError, ConfigError, UsageError} from '../../core/errors.js'
import {MANAGEMENT_TIMEOUT_MS} from './cli.js'
import {AgentSecretsProtocolError, classifyCliText, keyNotFound, quoteOutput} from './errors.js'
import {errorLines, labelledValue, parseTable, successLines} from './text.js'

/** The keys of the active environment. */
export interface KeyListing {
  environment: string
  keys: string[]
}

/** development→DEV, staging→STAGING, production→PROD, anything else upper-cased (§4.4). */
export function environmentColumn(environment: string): string {
  const lower = environment.toLowerCase()
  return lower === 'development'
    ? 'DEV'
    : lower === 'staging'
      ? 'STAGING'
      : lower === 'production'
        ? 'PROD'
        : environment.toUpperCase()
}

export function isProduction(environment: string): boolean {
  return /^prod(uction)?$/i.test(environment)
}

/** A failure the CLI reported in its own words (`x …`), mapped to a typed error. */
export function cliFailure(
  output: CliOutput,
  what: string,
  scrub: (text: string) => string = (text) => text,
): AgentVaultError {
  const text = scrub(`${output.stdout}\n${output.stderr}`)
  const found = classifyCliText(text)
  if (found) return found
  const [line] = errorLines(text)
  if (line !== undefined && /no project configured/i.test(line))
    return new ConfigError('AGENTSECRETS_NO_PROJECT', 'AgentSecrets has no project for this directory', {
      suggestion:
        'Run agentvault from your AgentSecrets project directory (the one with .agentsecrets/project.json), or `agentsecrets project use NAME`.',
    })
  const said =
    line === undefined ? `exit code ${output.code ?? output.signal ?? 'unknown'}` : `"${quoteOutput(line)}"`
  return new AgentVaultError(
    'unavailable',
    'AGENTSECRETS_CLI_ERROR',
    `agentsecrets ${what} failed: ${said}`,
    {
      suggestion: `Run \`agentsecrets ${what}\` yourself to see the whole message and fix it there.`,
    },
  )
}

/** Parse `secrets list` (2.1.0/3.x table with environment columns, or the 1.1.0 one-column table). */
export function parseKeyListing(stdout: string, fallbackEnvironment: string): KeyListing {
  const environment = labelledValue(stdout, 'Environment') ?? fallbackEnvironment
  if (!/^[\w.-]{1,64}$/.test(environment))
    throw new AgentSecretsProtocolError('`agentsecrets secrets list` names an unreadable environment')
  const table = parseTable(stdout, ['Key'], 'secrets list')
  const column = environmentColumn(environment).toLowerCase()
  const perEnvironment = table.headers.some((header) =>
    ['dev', 'prod', 'staging'].includes(header.toLowerCase()),
  )
  const keys = new Set<string>()
  for (const row of table.rows) {
    const key = row.key ?? ''
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue
    if (!perEnvironment || /^(?:\*|✓)$/.test(row[column] ?? '')) keys.add(key)
  }

  return {environment, keys: [...keys].sort()}
}

/** `agentsecrets secrets list` → the keys of the active environment. */
export async function listKeys(cli: AgentSecretsCli, env: NodeJS.ProcessEnv): Promise<KeyListing> {
  const output = await cli.run(['secrets', 'list'], {timeoutMs: MANAGEMENT_TIMEOUT_MS})
  if (errorLines(output.stdout + '\n' + output.stderr).length > 0) throw cliFailure(output, 'secrets list')
  return parseKeyListing(
    output.stdout,
    env.AGENTSECRETS_ENV && env.AGENTSECRETS_ENV !== '' ? env.AGENTSECRETS_ENV : 'development',
  )
}

export interface ManageOptions {
  /** `--allow-argv`: accept the value in argv when the CLI has no other way. */
  allowArgv?: boolean
  env: NodeJS.ProcessEnv
  interactive: boolean
  warn(message: string): void
}

function needsTerminal(what: string, environment: string): UsageError {
  return new UsageError(
    'AGENTSECRETS_NEEDS_TERMINAL',
    `AgentSecrets asks for confirmation to ${what} in the ${environment} environment, and this is not a terminal`,
    {
      suggestion:
        'Rerun the command in a terminal (without --no-prompt or CI), or run the agentsecrets command yourself there.',
    },
  )
}

function notConfirmed(what: string, key: string): AgentVaultError {
  return new AgentVaultError(
    'unavailable',
    'AGENTSECRETS_NOT_CONFIRMED',
    `agentsecrets reported no success for ${what} ${key}, and \`secrets list\` does not show the change`,
    {
      suggestion: `Check with \`agentsecrets secrets list\`, then run \`agentsecrets secrets ${what} ${key}…\` yourself to see its messages.`,
    },
  )
}

/**
 * Store `value` under `key`. The CLI reads values only from argv, where other local processes can
 * see them: refused unless `allowArgv` (then one argv element, never a shell) — or unless this
 * CLI advertises a stdin option, which is then used instead.
 */
export async function setKey(
  cli: AgentSecretsCli,
  key: string,
  value: Buffer,
  options: ManageOptions,
): Promise<void> {
  if (value.includes(0) || !Buffer.from(value.toString('utf8'), 'utf8').equals(value))
    throw new UsageError(
      'VALUE_NOT_TEXT',
      'AgentSecrets stores text: the value must be UTF-8 without NUL bytes',
      {
        suggestion: 'Store binary data base64-encoded.',
      },
    )
  const stdinFlag = await cli.setStdinFlag()
  if (stdinFlag === null && !options.allowArgv)
    throw new UsageError(
      'AGENTSECRETS_ARGV_REQUIRED',
      'The AgentSecrets CLI takes a value only as a KEY=value command-line argument, which other local processes can read (ps, /proc): refusing',
      {
        suggestion: `Accept that with --allow-argv (agentvault passes one argument, never through a shell), or run \`agentsecrets secrets set ${key}=…\` yourself.`,
      },
    )
  const before = await listKeys(cli, options.env)
  const production = isProduction(before.environment)
  if (production && (!options.interactive || stdinFlag !== null))
    throw needsTerminal('store a secret', before.environment)
  const text = value.toString('utf8')
  // Every form of the value (raw, JSON-escaped, base64…) the CLI might echo; short ones raw too.
  const scrub = (output: string): string => {
    const concealed = concealSent(output, [value])
    return text.length > 0 ? concealed.split(text).join('…') : concealed
  }

  let output: CliOutput
  if (stdinFlag === null) {
    options.warn(
      `Passing the value of ${key} to agentsecrets as a command-line argument (--allow-argv): other local processes can read it while it runs.`,
    )
    output = await cli.run(['secrets', 'set', `${key}=${text}`], {
      inheritStdio: production,
      timeoutMs: production ? 10 * 60_000 : MANAGEMENT_TIMEOUT_MS,
    })
  } else {
    output = await cli.run(['secrets', 'set', stdinFlag, key], {
      input: value,
      timeoutMs: MANAGEMENT_TIMEOUT_MS,
    })
  }

  const reported = successLines(scrub(output.stdout)).some(
    (line) => line === `Set ${key}` || line.startsWith(`Set ${key} `),
  )
  if (!production && !reported)
    throw cliFailure({...output, stdout: scrub(output.stdout), stderr: scrub(output.stderr)}, 'secrets set')
  const after = await listKeys(cli, options.env)
  if (!after.keys.includes(key)) throw notConfirmed('set', key)
}

/** Delete `key` from the active environment; a key that is not there is `not_found`. */
export async function deleteKey(cli: AgentSecretsCli, key: string, options: ManageOptions): Promise<void> {
  const before = await listKeys(cli, options.env)
  if (!before.keys.includes(key)) throw keyNotFound(key)
  const production = isProduction(before.environment)
  if (production && !options.interactive) throw needsTerminal('delete a secret', before.environment)
  const output = await cli.run(['secrets', 'delete', key], {
    inheritStdio: production,
    timeoutMs: production ? 10 * 60_000 : MANAGEMENT_TIMEOUT_MS,
  })
  const text = `${output.stdout}\n${output.stderr}`
  if (/\[SEC-404\]/.test(text)) throw keyNotFound(key)
  if (/Delete cancelled/i.test(text))
    throw new UsageError('ABORTED', 'Deletion cancelled in AgentSecrets', {
      suggestion: 'Nothing was deleted.',
    })
  const reported = successLines(output.stdout).some(
    (line) => line.startsWith(`Deleted ${key} `) || line === `Deleted ${key}`,
  )
  if (!production && !reported) throw cliFailure(output, 'secrets delete')
  const after = await listKeys(cli, options.env)
  if (after.keys.includes(key)) throw notConfirmed('delete', key)
}
