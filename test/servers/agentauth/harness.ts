/**
 * Helpers around the AgentAuth test server for unit and e2e tests: a server per generation with a
 * shared fake clock, a webhook receiver on loopback, an in-process backend context on a temp home,
 * and assertions on typed errors.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {createServer, type IncomingHttpHeaders, type Server} from 'node:http'
import {type AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {BackendContext} from '../../../src/core/backend.js'
import type {Profile} from '../../../src/core/config.js'

import {type AgentAuthServerOptions, AgentAuthTestServer, type Generation} from './server.js'
import {FakeClock} from './state.js'

export {FakeClock} from './state.js'

export const GENERATIONS: readonly Generation[] = ['v1', 'legacy']

/** A server on a fake clock (starting at wall time, so tokens look current to a real client). */
export async function startServer(
  generation: Generation,
  options: Partial<AgentAuthServerOptions> = {},
): Promise<{clock: FakeClock; server: AgentAuthTestServer}> {
  // Whole seconds, like JWT times, so expiries compare exactly.
  const clock =
    options.clock instanceof FakeClock ? options.clock : new FakeClock(Math.floor(Date.now() / 1000) * 1000)
  const server = await new AgentAuthTestServer({...options, clock, generation}).listen()
  return {clock, server}
}

export interface ReceivedHook {
  body: Buffer
  headers: IncomingHttpHeaders
}

/** An HTTP endpoint on loopback that records the webhook deliveries it receives. */
export async function startReceiver(): Promise<{
  close(): Promise<void>
  received: ReceivedHook[]
  url: string
}> {
  const received: ReceivedHook[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({body: Buffer.concat(chunks), headers: req.headers})
      res.writeHead(200).end('ok')
    })
  })
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const {port} = server.address() as AddressInfo
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
    received,
    url: `http://127.0.0.1:${port}/hook`,
  }
}

export interface TestContext {
  context(profile?: Partial<Profile>, env?: NodeJS.ProcessEnv): BackendContext
  dispose(): Promise<void>
  home: string
  warnings: string[]
}

/** A temp AGENTVAULT_HOME and backend contexts on it (file credential store, never the keychain). */
export async function testContext(): Promise<TestContext> {
  const root = await mkdtemp(join(tmpdir(), 'agentauth-unit-'))
  const home = join(root, 'home')
  const warnings: string[] = []
  return {
    context: (profile = {}, env = {}) => ({
      env: {AGENTVAULT_HOME: home, AGENTVAULT_NO_KEYCHAIN: '1', ...env},
      home,
      interactive: false,
      profile: {implicit: false, kind: 'agentauth', name: 'aa', settings: {}, ...profile},
      warn: (message) => warnings.push(message),
    }),
    dispose: () => rm(root, {force: true, recursive: true}),
    home,
    warnings,
  }
}

export interface Typed extends Error {
  category: string
  code: string
  details?: Record<string, unknown>
  exitCode: number
  suggestion?: string
}

/** Await `promise` and check it fails with a typed error of this exit code (and code). */
export async function fails(promise: Promise<unknown>, exitCode: number, code?: string): Promise<Typed> {
  try {
    await promise
  } catch (error) {
    const typed = error as Typed
    assert.equal(typeof typed.code, 'string', `not typed: ${String(error)}`)
    if (code !== undefined) assert.equal(typed.code, code, typed.message)
    assert.equal(typed.exitCode, exitCode, `${typed.code}: ${typed.message}`)
    assert.ok(typed.suggestion && typed.suggestion.length > 0, `${typed.code} has a suggestion`)
    return typed
  }

  assert.fail(`expected a failure with exit ${exitCode}`)
}
