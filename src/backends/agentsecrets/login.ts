/**
 * `agentvault login agentsecrets` and `status` (protocols/agentsecrets.md §3): check that the CLI
 * runs or that the proxy answers `/health`, then save the profile (transport, cliPath, port,
 * agentId) — and, when given on stdin, the session or agent token in the credential store.
 * Tokens never go to config.json.
 */
import type {Debugger} from 'debug'

import {join, resolve} from 'node:path'

import type {BackendContext, LoginResult, ProfileStatus} from '../../core/backend.js'
import type {ProxyHealth} from './proxy-client.js'
import type {AgentSecretsOverrides, AgentSecretsSettings} from './settings.js'

import {type StoredProfile, updateConfig} from '../../core/config.js'
import {AgentVaultError, UsageError} from '../../core/errors.js'
import {AgentSecretsProtocolError} from './errors.js'

export interface AgentSecretsLoginInput {
  /** An agent token read from stdin by the command layer (`--agent-token-stdin`). */
  agentToken?: Buffer
  context: BackendContext
  log?: Debugger
  overrides: AgentSecretsOverrides
  /** A proxy session token read from stdin by the command layer (`--session-token-stdin`). */
  sessionToken?: Buffer
  settings: AgentSecretsSettings
}

interface Checked {
  cli?: {path: string; version: string}
  proxy?: ProxyHealth & {port: number}
  transport: 'cli' | 'proxy'
}

/** A token given on stdin: visible ASCII only (it goes into HTTP headers). */
function checkedToken(bytes: Buffer, flag: string): string {
  const token = bytes.toString('utf8').trim()
  if (token === '' || !/^[\u0021-\u007E]{1,512}$/.test(token))
    throw new UsageError(
      'AGENTSECRETS_BAD_TOKEN',
      `${flag} read no valid token (visible ASCII characters only)`,
      {
        suggestion: `Pipe the token: printf %s "$TOKEN" | agentvault login agentsecrets ${flag}`,
      },
    )
  return token
}

/** Run the CLI's `--version`: it must answer like AgentSecrets. */
async function checkCli(
  settings: AgentSecretsSettings,
  context: BackendContext,
  log?: Debugger,
): Promise<{path: string; version: string}> {
  const {AgentSecretsCli, requireExecutable} = await import('./cli.js')
  const path = await requireExecutable(settings.cliPath, context.env)
  const version = await new AgentSecretsCli(path, context.env, log).version()
  if (version === null)
    throw new AgentSecretsProtocolError(`${path} --version did not print "agentsecrets version …"`)
  return {path, version}
}

async function check(
  settings: AgentSecretsSettings,
  context: BackendContext,
  log?: Debugger,
): Promise<Checked> {
  const {findExecutable} = await import('./cli.js')
  const {proxyHealth} = await import('./proxy-client.js')
  const useCli =
    settings.transport === 'cli' ||
    (settings.transport === 'auto' && (await findExecutable(settings.cliPath, context.env)) !== undefined)
  if (useCli) return {cli: await checkCli(settings, context, log), transport: 'cli'}
  return {proxy: {...(await proxyHealth(settings.port)), port: settings.port}, transport: 'proxy'}
}

export async function login(input: AgentSecretsLoginInput): Promise<LoginResult> {
  const {context, overrides, settings} = input
  const sessionTokenStdin = input.sessionToken !== undefined
  const agentTokenStdin = input.agentToken !== undefined
  if (sessionTokenStdin && agentTokenStdin)
    throw new UsageError('AGENTSECRETS_ONE_STDIN', 'Only one token can be read from stdin per login', {
      suggestion:
        'Run `agentvault login agentsecrets --session-token-stdin`, then again with --agent-token-stdin.',
    })
  const checked = await check(settings, context, input.log)
  const profile = context.profile.name
  await updateConfig(context.home, (config) => {
    const next: StoredProfile = {...config.profiles[profile], kind: 'agentsecrets'}
    if (overrides.transport !== undefined) next.transport = settings.transport
    if (overrides.cliPath !== undefined && checked.cli) next.cliPath = checked.cli.path
    else if (overrides.cliPath !== undefined) next.cliPath = resolve(overrides.cliPath)
    if (overrides.port !== undefined) next.port = settings.port
    if (overrides.agentId !== undefined && settings.agentId !== undefined) next.agentId = settings.agentId
    config.profiles[profile] = next
    config.defaults.agentsecrets ??= profile
  })
  let savedToken: string | undefined
  if (sessionTokenStdin || agentTokenStdin) {
    const flag = sessionTokenStdin ? '--session-token-stdin' : '--agent-token-stdin'
    const token = checkedToken((input.sessionToken ?? input.agentToken) as Buffer, flag)
    const {SESSION_TOKEN, openTokenStore, readStoredTokens, saveStoredTokens} = await import('./tokens.js')
    if (sessionTokenStdin && !SESSION_TOKEN.test(token))
      context.warn('The session token does not look like as_sess_ + 32 hex characters; saving it anyway.')
    const store = await openTokenStore(context)
    const stored = await readStoredTokens(store, profile)
    await saveStoredTokens(
      store,
      profile,
      sessionTokenStdin
        ? {...stored, port: settings.port, sessionToken: token}
        : {...stored, agentToken: token},
    )
    savedToken = sessionTokenStdin ? `a session token for port ${settings.port}` : 'an agent token'
  }

  const where = checked.cli
    ? `the AgentSecrets CLI ${checked.cli.version} at ${checked.cli.path}`
    : `the AgentSecrets proxy at 127.0.0.1:${settings.port}${checked.proxy?.project ? ` (project ${checked.proxy.project})` : ''}`
  return {
    details: {
      ...(checked.cli && {cli: checked.cli}),
      ...(checked.proxy && {proxy: checked.proxy}),
      profile,
      saved: true,
      ...(savedToken && {token: savedToken}),
      transport: checked.transport,
    },
    ...(settings.agentId === undefined ? {} : {identity: settings.agentId}),
    message: `Checked ${where}; saved profile ${profile} (transport ${settings.transport}).${savedToken ? ` Saved ${savedToken} in the credential store.` : ''}`,
  }
}

/** `~/.agentsecrets/proxy.pid` (pid, start time, port), for diagnostics only (open point 11). */
async function pidFile(env: NodeJS.ProcessEnv): Promise<undefined | {pid: number; port: number}> {
  const [{readFile}, {homedir}] = await Promise.all([import('node:fs/promises'), import('node:os')])
  const home = env.HOME && env.HOME !== '' ? env.HOME : homedir()
  try {
    const [pid, , port] = (await readFile(join(home, '.agentsecrets', 'proxy.pid'), 'utf8'))
      .split('\n')
      .map((line) => line.trim())
    const parsed = {pid: Number(pid), port: Number(port)}
    return Number.isInteger(parsed.pid) && Number.isInteger(parsed.port) ? parsed : undefined
  } catch {
    return undefined
  }
}

/** The CLI part of `status`: where it is and its version, or why there is none. */
async function cliStatus(
  context: BackendContext,
  settings: AgentSecretsSettings,
  log?: Debugger,
): Promise<{executable?: string; problem?: string; version: null | string}> {
  const {AgentSecretsCli, findExecutable} = await import('./cli.js')
  if (settings.transport === 'proxy') return {version: null}
  const executable = await findExecutable(settings.cliPath, context.env)
  if (executable === undefined)
    return {
      problem:
        settings.cliPath === undefined
          ? 'the AgentSecrets CLI is not on PATH'
          : `cliPath ${settings.cliPath} is not an executable file`,
      version: null,
    }
  try {
    return {executable, version: await new AgentSecretsCli(executable, context.env, log).version()}
  } catch (error) {
    if (!(error instanceof AgentVaultError)) throw error
    return {executable, problem: error.message, version: null}
  }
}

/**
 * The proxy part of `status`: `/health`, checked when the proxy is the transport or is known (a
 * port was set, or a pid file exists). A failure matters only when the proxy is the transport.
 */
async function proxyStatus(
  chosen: 'cli' | 'proxy',
  settings: AgentSecretsSettings,
  known: boolean,
): Promise<{details?: Record<string, unknown>; healthy: boolean; problem?: string}> {
  if (chosen === 'cli' && settings.portSource === 'default' && !known) return {healthy: false}
  const {proxyHealth} = await import('./proxy-client.js')
  try {
    const health = await proxyHealth(settings.port)
    const healthy = health.status === 'ok'
    return {details: {healthy, port: settings.port, ...health}, healthy}
  } catch (error) {
    if (!(error instanceof AgentVaultError)) throw error
    return {
      details: {healthy: false, port: settings.port},
      healthy: false,
      ...(chosen === 'proxy' && {problem: error.message}),
    }
  }
}

function healthyMessage(
  chosen: 'cli' | 'proxy',
  cli: {executable?: string; version: null | string},
  port: number,
): string {
  return chosen === 'cli'
    ? `AgentSecrets CLI ${cli.version} (${cli.executable})`
    : `AgentSecrets proxy on 127.0.0.1:${port}`
}

/** `status`: CLI version, proxy health and session state, never a token. */
export async function profileStatus(
  context: BackendContext,
  settings: AgentSecretsSettings,
  log?: Debugger,
): Promise<ProfileStatus> {
  const {resolveTokens} = await import('./tokens.js')
  const cli = await cliStatus(context, settings, log)
  const chosen = cli.executable === undefined && settings.transport !== 'cli' ? 'proxy' : 'cli'
  const pid = await pidFile(context.env)
  const proxy = await proxyStatus(chosen, settings, pid !== undefined)
  const problems = [cli.problem, proxy.problem].filter((problem) => problem !== undefined)
  const {healthy} = proxy
  const tokens = await resolveTokens(context, settings.port)
  if (chosen === 'proxy' && healthy && tokens.sessionToken === undefined)
    problems.push(
      'no session token is set: a 3.x proxy answers /proxy with 401 (set AGENTSECRETS_SESSION_TOKEN, or use the CLI)',
    )
  const reachable = chosen === 'cli' ? cli.version !== null : healthy
  const details: Record<string, unknown> = {
    chosenTransport: chosen,
    port: settings.port,
    sessionToken: tokens.sessionTokenSource ?? 'none',
    transport: settings.transport,
  }
  if (cli.executable !== undefined) details.cli = {path: cli.executable, version: cli.version}
  if (pid) details.pidFile = pid
  if (proxy.details) details.proxy = proxy.details
  const identity = settings.agentId === undefined ? {} : {identity: settings.agentId}
  if (settings.agentId !== undefined) details.agentId = settings.agentId
  return {
    details,
    ...identity,
    message: problems.length > 0 ? problems.join('; ') : healthyMessage(chosen, cli, settings.port),
    reachable,
    signedIn: reachable,
  }
}
