/**
 * Test harness for the AgentSecrets doubles: a temp HOME with `~/.agentsecrets/`, a bin dir whose
 * `agentsecrets` is the fake CLI (put it first on PATH), the shared state file, an optional fake
 * proxy on loopback, and readers for the invocation log and the proxy's audit log.
 */
import {chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'
import {fileURLToPath} from 'node:url'

// @ts-expect-error: plain ESM test double without type declarations
import {startFakeProxy as startProxy} from './fake-proxy.mjs'
// @ts-expect-error: plain ESM test double without type declarations
import {defaultState, readAuditEntries} from './state.mjs'

export const FAKE_CLI = fileURLToPath(new URL('fake-cli.mjs', import.meta.url))

export interface FakeSwitches {
  banner?: boolean
  cliNoSession?: boolean
  httpsOnly?: boolean
  mask?: boolean
  noJsonAudit?: boolean
  recordEnv?: boolean
  setStdin?: boolean
  ssrf?: boolean
  transientFails?: boolean
}

export interface FakeState {
  agents?: Record<string, string>
  allowlist: string[]
  environment: string
  project: null | string
  secrets: Record<string, Record<string, string>>
  sessionToken?: string
  switches?: FakeSwitches
  version: '2.1.0' | '3.3.0'
}

export interface Invocation {
  argv: string[]
  cwd: string
  env?: Record<string, string>
  envNames: string[]
  pid: number
  stdinIsTTY: boolean
  time: string
}

export interface FakeProxy {
  close(): Promise<void>
  port: number
  requests: Array<{headers: string[]; method: string; path: string}>
}

export interface AgentSecretsWorld {
  /** The bin dir holding the fake `agentsecrets`. */
  binDir: string
  dispose(): Promise<void>
  /** Environment for agentvault: HOME, PATH with the fake first, AGENTSECRETS_FAKE_STATE. */
  env: NodeJS.ProcessEnv
  /** The fake HOME (`~/.agentsecrets` lives here). */
  home: string
  invocations(): Promise<Invocation[]>
  /** The proxy's JSONL audit entries, oldest first. */
  proxyLog(): Promise<Array<Record<string, unknown>>>
  /** Environment without the fake on PATH (no CLI: `auto` picks the proxy). */
  proxyOnlyEnv: NodeJS.ProcessEnv
  startProxy(options?: {pidFile?: boolean}): Promise<FakeProxy>
  state(): Promise<FakeState>
  stateFile: string
  update(change: (state: FakeState) => void): Promise<void>
}

/** Build a fresh world; `initial` overrides the default state (3.3.0, project proj_test, allowlist 127.0.0.1). */
export async function createAgentSecretsWorld(initial: Partial<FakeState> = {}): Promise<AgentSecretsWorld> {
  const root = await mkdtemp(join(tmpdir(), 'agentvault-as-'))
  const home = join(root, 'home')
  const binDir = join(root, 'bin')
  const stateFile = join(root, 'state.json')
  await mkdir(join(home, '.agentsecrets'), {recursive: true})
  await mkdir(binDir)
  await chmod(FAKE_CLI, 0o755)
  await symlink(FAKE_CLI, join(binDir, 'agentsecrets'))
  const state = {...(defaultState() as FakeState), ...initial}
  await writeFile(stateFile, JSON.stringify(state, null, 2))
  const proxies: FakeProxy[] = []
  const systemPath = process.env.PATH ?? ''
  const base = {AGENTSECRETS_FAKE_STATE: stateFile, HOME: home}
  const read = async (): Promise<FakeState> => JSON.parse(await readFile(stateFile, 'utf8')) as FakeState
  return {
    binDir,
    async dispose() {
      await Promise.all(proxies.map((proxy) => proxy.close()))
      await rm(root, {force: true, recursive: true})
    },
    env: {...base, PATH: `${binDir}${delimiter}${systemPath}`},
    home,
    async invocations() {
      let text = ''
      try {
        text = await readFile(join(root, 'invocations.jsonl'), 'utf8')
      } catch {
        return []
      }

      return text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Invocation)
    },
    async proxyLog() {
      return readAuditEntries(home) as Array<Record<string, unknown>>
    },
    proxyOnlyEnv: {...base, PATH: systemPath},
    async startProxy(options = {}) {
      const proxy = (await startProxy({
        env: {},
        home,
        pidFile: options.pidFile ?? false,
        stateFile,
      })) as FakeProxy
      proxies.push(proxy)
      return proxy
    },
    state: read,
    stateFile,
    async update(change) {
      const current = await read()
      change(current)
      await writeFile(stateFile, JSON.stringify(current, null, 2))
    },
  }
}
