/**
 * An e2e world for `use` and `call`: a temp AGENTVAULT_HOME with canary secrets and profiles, and
 * the recording upstream (HTTP + HTTPS) on loopback.
 *
 * Profiles (all `local`, one vault):
 * - `lp` (the default): allowPrivateNetworks, allowedDomains ["127.0.0.1"] — reaches the upstream;
 * - `strict`: no settings — nothing is allowed without --allow-host;
 * - `noprivate`: allowedDomains ["127.0.0.1", "localhost"], private networks refused;
 * - `tls`: like lp, plus caCert = the upstream's test CA.
 */
import assert from 'node:assert/strict'

import {type CliResult, runCli, tempHome} from '../../helpers/cli.js'
import {startUpstream, type Upstream} from './index.js'

/** A bearer-safe canary with characters that need URL and form encoding. */
export const CANARY = 'cAnary+7f3a/9c=2e&x y'
export const BASIC_USER = 'svc-user'
export const SCOPED_CANARY = 'scoped-canary-41b8d07c'
export const MASK = '<concealed by agentvault>'

/** Every form of `value` that must never reach agent-facing output. */
export function leakedForms(value: string): string[] {
  return [
    value,
    Buffer.from(value).toString('base64'),
    Buffer.from(value).toString('base64url'),
    encodeURIComponent(value),
  ]
}

function domains(list: string[]): string {
  return `allowedDomains=${JSON.stringify(list)}`
}

export interface UseWorld {
  cli(args: string[], options?: {env?: NodeJS.ProcessEnv; input?: Buffer | string}): Promise<CliResult>
  dispose(): Promise<void>
  home: string
  upstream: Upstream
}

export async function createUseWorld(): Promise<UseWorld> {
  const t = await tempHome()
  const upstream = await startUpstream({tls: true})
  const cli: UseWorld['cli'] = (args, options = {}) =>
    runCli(args, {
      env: {...t.env, ...options.env},
      ...(options.input !== undefined && {input: options.input}),
    })
  const must = async (args: string[], input?: string): Promise<void> => {
    const result = await cli(args, {input})
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
  }

  await must(['secrets', 'set', 'K'], CANARY)
  await must(['secrets', 'set', 'B'], `${BASIC_USER}:${CANARY}`)
  await must(['secrets', 'set', 'SCOPED', '--allow-domain', '127.0.0.2'], SCOPED_CANARY)
  await must([
    'profiles',
    'add',
    'lp',
    '--kind',
    'local',
    '--default',
    '--set',
    'allowPrivateNetworks=true',
    '--set',
    domains(['127.0.0.1']),
  ])
  await must(['profiles', 'add', 'strict', '--kind', 'local'])
  await must([
    'profiles',
    'add',
    'noprivate',
    '--kind',
    'local',
    '--set',
    domains(['127.0.0.1', 'localhost']),
  ])
  await must([
    'profiles',
    'add',
    'tls',
    '--kind',
    'local',
    '--set',
    'allowPrivateNetworks=true',
    '--set',
    domains(['127.0.0.1']),
    '--set',
    `caCert=${upstream.caFile}`,
  ])
  return {
    cli,
    async dispose() {
      await upstream.close()
      await t.dispose()
    },
    home: t.env.AGENTVAULT_HOME!,
    upstream,
  }
}
