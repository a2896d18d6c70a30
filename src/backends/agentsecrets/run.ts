/**
 * `agentvault run` with `agentsecrets://KEY` references (protocols/agentsecrets.md §8): agentvault
 * never resolves them. The child is started as `agentsecrets env --only K… -- CMD`, so the values
 * exist only in the agentsecrets process and the child.
 */
import type {RunInjection, WrappedCommand} from '../../core/backend.js'
import type {AgentSecretsCli} from './cli.js'

import {AgentVaultError, UsageError} from '../../core/errors.js'
import {KEY_PATTERN, keyNotFound} from './errors.js'
import {listKeys} from './manage.js'

/** §8.2–8.3: each NAME must be its KEY, and a valid environment name. Returns the keys, sorted. */
export function checkInjections(injections: readonly RunInjection[]): string[] {
  const keys = new Set<string>()
  for (const {name, reference} of injections) {
    const key = reference.path
    if (name !== key)
      throw new UsageError(
        'AGENTSECRETS_RENAME',
        `Cannot map ${name} to agentsecrets://${key}: AgentSecrets injects each secret under its own key name and cannot rename it. Map ${key}=agentsecrets://${key} or rename the secret in AgentSecrets.`,
        {
          suggestion: `agentvault run --env ${key}=agentsecrets://${key} -- CMD (and read ${key} in the program).`,
        },
      )
    if (!KEY_PATTERN.test(key))
      throw new UsageError(
        'AGENTSECRETS_BAD_KEY',
        'An AgentSecrets key must be an environment-variable name',
        {
          suggestion: 'Write it as agentsecrets://KEY, e.g. agentsecrets://OPENAI_API_KEY.',
        },
      )
    keys.add(key)
  }

  return [...keys].sort()
}

export interface WrapOptions {
  env: NodeJS.ProcessEnv
  warn(message: string): void
}

/** §8.4–8.7: check the CLI, preflight the keys, and wrap the command. */
export async function wrapWithEnv(
  cli: AgentSecretsCli,
  injections: readonly RunInjection[],
  command: readonly string[],
  options: WrapOptions,
): Promise<WrappedCommand> {
  const keys = checkInjections(injections)
  if (keys.length === 0) return {command: [...command], removeEnv: []}
  if (!(await cli.envOnly()))
    throw new UsageError(
      'AGENTSECRETS_ENV_ONLY_UNSUPPORTED',
      'This AgentSecrets CLI cannot inject selected secrets (`env --only`): it would inject every secret of the project',
      {suggestion: 'Upgrade AgentSecrets to 3.x (`agentsecrets env --help` must list --only).'},
    )
  // Open point 9: `env --only` only warns about unknown keys, so check them first.
  try {
    const listing = await listKeys(cli, options.env)
    const missing = keys.filter((key) => !listing.keys.includes(key))
    if (missing.length > 0) throw keyNotFound(missing[0]!)
  } catch (error) {
    if (error instanceof AgentVaultError && error.category === 'not_found') throw error
    if (error instanceof AgentVaultError && error.code === 'AGENTSECRETS_PROTOCOL')
      options.warn(
        'Could not read `agentsecrets secrets list`; starting without checking that the keys exist.',
      )
    else throw error
  }

  return {
    command: [cli.executable, 'env', '--only', keys.join(','), '--', ...command],
    // The AgentSecrets CLI reads its agent token from AS_AGENT_TOKEN itself.
    keepEnv: ['AS_AGENT_TOKEN'],
    removeEnv: keys,
  }
}
