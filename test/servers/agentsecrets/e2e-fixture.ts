/**
 * Shared setup of the agentsecrets e2e suites: a fake AgentSecrets world (CLI first on PATH, a
 * proxy on loopback), a recording upstream, a temp AGENTVAULT_HOME, and a runner that records
 * every agentvault result so a suite can prove no canary ever reached agentvault's output.
 */
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type CliOptions, type CliResult, runCli, tempHome} from '../../helpers/cli.js'
import {startUpstream, type Upstream} from '../http-upstream/index.js'
import {type AgentSecretsWorld, createAgentSecretsWorld, type FakeProxy} from './harness.js'

/** AgentSecrets values: only the fake CLI and proxy ever hold them. */
export const CANARIES = {
  API_KEY: 'as-canary-api-7d1e5b',
  BASIC: 'svc:as-canary-pw-4b2a9c',
  FORM: 'as-canary-form-0c3d77',
  HDR: 'as-canary-hdr-91f0aa',
  JSON_TOKEN: 'as-canary-json-e2e2f1',
  OTHER: 'as-canary-other-331199',
  Q: 'as-canary-q-55aa0b',
} as const

/** Every AgentSecrets canary, and the recognisable inner part of the basic one. */
export const CANARY_VALUES: readonly string[] = [...Object.values(CANARIES), 'as-canary-pw-4b2a9c']

export interface AgentSecretsE2e {
  /** Run agentvault; the result is recorded for the canary sweep unless `record: false`. */
  av(args: string[], options?: CliOptions & {record?: boolean}): Promise<CliResult>
  /** agentvault + the fake CLI first on PATH (transport auto → cli). */
  cliEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv
  dispose(): Promise<void>
  /** Fail if any AgentSecrets canary occurs in `text`. */
  expectNoCanary(text: string, where: string): void
  home: string
  proxy: FakeProxy
  /** agentvault with no CLI on PATH and AGENTSECRETS_PORT at the fake proxy (transport auto → proxy). */
  proxyEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv
  results: Array<{args: string[]; result: CliResult}>
  /** Sweep: recorded outputs, agentvault's audit log and config, the fake CLI's argv and env. */
  sweep(options?: {argvAllowed?: (argv: string[]) => boolean}): Promise<void>
  upstream: Upstream
  world: AgentSecretsWorld
}

/** Fail if any AgentSecrets canary occurs in `text`. */
export function expectNoCanary(text: string, where: string): void {
  for (const canary of CANARY_VALUES)
    assert.ok(!text.includes(canary), `an AgentSecrets value reached ${where}`)
}

export async function setupAgentSecretsE2e(): Promise<AgentSecretsE2e> {
  const upstream = await startUpstream()
  const world = await createAgentSecretsWorld({
    secrets: {development: {...CANARIES}, production: {}, staging: {}},
  })
  const proxy = await world.startProxy()
  const t = await tempHome()
  const results: Array<{args: string[]; result: CliResult}> = []
  return {
    async av(args, options = {}) {
      const result = await runCli(args, options)
      if (options.record !== false) results.push({args, result})
      return result
    },
    cliEnv: (extra = {}) => ({...t.env, ...world.env, ...extra}),
    async dispose() {
      await world.dispose()
      await upstream.close()
      await t.dispose()
    },
    expectNoCanary,
    home: t.env.AGENTVAULT_HOME as string,
    proxy,
    proxyEnv: (extra = {}) => ({
      ...t.env,
      ...world.proxyOnlyEnv,
      AGENTSECRETS_PORT: String(proxy.port),
      ...extra,
    }),
    results,
    async sweep(options = {}) {
      for (const {args, result} of results) {
        expectNoCanary(result.stdout, `stdout of agentvault ${args.join(' ')}`)
        expectNoCanary(result.stderr, `stderr of agentvault ${args.join(' ')}`)
      }

      const home = t.env.AGENTVAULT_HOME as string
      for (const file of ['audit.log', 'config.json']) {
        let text = ''
        try {
          text = await readFile(join(home, file), 'utf8')
        } catch {}

        expectNoCanary(text, file)
      }

      for (const invocation of await world.invocations()) {
        assert.ok(
          !(invocation.argv[0] === 'secrets' && invocation.argv[1] === 'get'),
          'agentvault ran `agentsecrets secrets get`',
        )
        assert.ok(invocation.argv[0] !== 'exec', 'agentvault ran `agentsecrets exec`')
        if (!options.argvAllowed?.(invocation.argv))
          expectNoCanary(JSON.stringify(invocation.argv), `the argv of agentsecrets ${invocation.argv[0]}`)
        expectNoCanary(
          JSON.stringify(invocation.env ?? {}),
          `the environment agentvault gave agentsecrets ${invocation.argv[0]}`,
        )
      }
    },
    upstream,
    world,
  }
}
