// Shared state of the AgentSecrets test doubles (protocols/agentsecrets.md §10): one JSON file,
// named by AGENTSECRETS_FAKE_STATE, read afresh on every use so a test can change it between calls.
// The doubles may read values from it; agentvault never does. `~/.agentsecrets/` (proxy.pid,
// proxy.log) lives under the HOME the doubles are given.
import {appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

/**
 * @typedef {object} FakeSwitches
 * @property {boolean} [banner] print the `Update Available` block on stdout before any output
 * @property {boolean} [mask] `env` masks values in the child's output with `[REDACTED]`
 * @property {boolean} [httpsOnly] 3.x: non-HTTPS targets get 403 `non_https_blocked`
 * @property {boolean} [ssrf] 3.x: loopback targets get 403 `ssrf_protection_blocked`
 * @property {boolean} [recordEnv] the invocation log also records the environment's values
 * @property {boolean} [setStdin] `secrets set --help` advertises `--value-stdin` (a future CLI)
 * @property {boolean} [cliNoSession] the CLI's `call` sends no session token (keychain without one)
 * @property {boolean} [transientFails] the CLI's transient proxy cannot start
 * @property {boolean} [noJsonAudit] neither `log` nor `logs` exists (only `proxy logs`: the table path)
 *
 * @typedef {object} FakeState
 * @property {'2.1.0' | '3.3.0'} version the emulated AgentSecrets version
 * @property {string | null} project the project id (null: no project configured)
 * @property {string} environment the active environment (AGENTSECRETS_ENV wins)
 * @property {Record<string, Record<string, string>>} secrets per environment
 * @property {string[]} allowlist the workspace allowlist (exact hosts)
 * @property {string} [sessionToken] 3.x: `/proxy` wants this X-AS-Session-Token
 * @property {Record<string, string>} [agents] agent id → agent token (3.x identity check)
 * @property {FakeSwitches} [switches] behaviour switches
 * @property {string} [invocationLog] where the CLI logs invocations (default: next to the state file)
 */

/** @returns {FakeState} 3.3.0, project proj_test, development, no secrets, allowlist 127.0.0.1 */
export function defaultState() {
  return {
    allowlist: ['127.0.0.1'],
    environment: 'development',
    project: 'proj_test',
    secrets: {development: {}, production: {}, staging: {}},
    switches: {},
    version: '3.3.0',
  }
}

/** @param {string} file @returns {FakeState} */
export function loadState(file) {
  return {...defaultState(), ...JSON.parse(readFileSync(file, 'utf8'))}
}

/** @param {string} file @param {FakeState} state */
export function saveState(file, state) {
  const temporary = `${file}.${process.pid}.tmp`
  writeFileSync(temporary, JSON.stringify(state, null, 2))
  renameSync(temporary, file)
}

/** @param {string} stateFile @param {FakeState} state */
export function invocationLogPath(stateFile, state) {
  return state.invocationLog ?? join(dirname(stateFile), 'invocations.jsonl')
}

/**
 * @param {string} home the HOME of the doubles
 * @returns {string} `~/.agentsecrets`
 */
export function agentsecretsDir(home) {
  return join(home, '.agentsecrets')
}

/** @param {FakeState} state @param {NodeJS.ProcessEnv} env */
export function activeEnvironment(state, env) {
  return env.AGENTSECRETS_ENV && env.AGENTSECRETS_ENV !== '' ? env.AGENTSECRETS_ENV : state.environment
}

/** @param {FakeState} state @param {string} environment @returns {Record<string, string>} */
export function secretsOf(state, environment) {
  return state.secrets?.[environment] ?? {}
}

/** Append one audit entry to `~/.agentsecrets/proxy.log` (JSONL, oldest first). @param {string} home @param {object} entry */
export function appendAudit(home, entry) {
  mkdirSync(agentsecretsDir(home), {recursive: true})
  appendFileSync(join(agentsecretsDir(home), 'proxy.log'), JSON.stringify(entry) + '\n')
}

/** @param {string} home @returns {Array<Record<string, unknown>>} oldest first */
export function readAuditEntries(home) {
  let text = ''
  try {
    text = readFileSync(join(agentsecretsDir(home), 'proxy.log'), 'utf8')
  } catch {
    return []
  }

  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line))
}

/** Write `proxy.pid`: pid, Unix start time, port — one per line. @param {string} home @param {number} port @param {number} [pid] */
export function writePidFile(home, port, pid = process.pid) {
  mkdirSync(agentsecretsDir(home), {recursive: true})
  writeFileSync(
    join(agentsecretsDir(home), 'proxy.pid'),
    `${pid}\n${Math.floor(Date.now() / 1000)}\n${port}\n`,
  )
}

/** The live proxy named by `proxy.pid`, if its process exists. @param {string} home */
export function livePidFile(home) {
  let text
  try {
    text = readFileSync(join(agentsecretsDir(home), 'proxy.pid'), 'utf8')
  } catch {
    return
  }

  const [pid, , port] = text.split('\n').map((line) => Number(line.trim()))
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return
  try {
    process.kill(pid, 0)
  } catch {
    return
  }

  return {pid, port}
}
