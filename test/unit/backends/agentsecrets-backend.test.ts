import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {BackendContext} from '../../../src/core/backend.js'
import type {Profile} from '../../../src/core/config.js'

import {createBackend} from '../../../src/backends/agentsecrets/index.js'
import {checkInjections} from '../../../src/backends/agentsecrets/run.js'
import {resolveSettings} from '../../../src/backends/agentsecrets/settings.js'
import {resolveTokens, saveStoredTokens} from '../../../src/backends/agentsecrets/tokens.js'
import {validateConfig} from '../../../src/core/config.js'
import {openCredentialStore} from '../../../src/core/credentials.js'
import {AgentVaultError} from '../../../src/core/errors.js'
import {parseReference} from '../../../src/core/references.js'
import {type AgentSecretsWorld, createAgentSecretsWorld} from '../../servers/agentsecrets/harness.js'
import {startUpstream, type Upstream} from '../../servers/http-upstream/index.js'

const profile = (settings: Record<string, unknown> = {}, name = 'agentsecrets'): Profile => ({
  implicit: Object.keys(settings).length === 0,
  kind: 'agentsecrets',
  name,
  settings,
})

const config = (settings: Record<string, unknown>) => ({
  profiles: {as: {kind: 'agentsecrets', ...settings}},
  version: 1,
})
const ref = (key: string) => parseReference(`agentsecrets://${key}`)
const request = (url: string) => ({
  http: {
    headers: [],
    injections: [{reference: parseReference('agentsecrets://K'), style: 'bearer' as const}],
    method: 'GET',
    url,
  },
  operation: 'http_request',
  params: {},
})

function expectError(fn: () => unknown, code: string, exitCode: number): AgentVaultError {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof AgentVaultError, String(error))
    assert.equal(error.code, code)
    assert.equal(error.exitCode, exitCode)
    return error
  }

  assert.fail(`expected ${code}`)
}

describe('agentsecrets backend', () => {
  describe('settings (§3)', () => {
    it('flags win, then the profile, then AGENTSECRETS_PORT, then 8765', () => {
      assert.deepEqual(resolveSettings(profile(), {}, 'c.json'), {
        port: 8765,
        portSource: 'default',
        transport: 'auto',
      })
      assert.equal(resolveSettings(profile(), {AGENTSECRETS_PORT: '9001'}, 'c.json').port, 9001)
      assert.equal(resolveSettings(profile({port: 9002}), {AGENTSECRETS_PORT: '9001'}, 'c.json').port, 9002)
      const flagged = resolveSettings(profile({port: 9002, transport: 'cli'}), {}, 'c.json', {
        port: '9003',
        transport: 'proxy',
      })
      assert.deepEqual([flagged.port, flagged.portSource, flagged.transport], [9003, 'flag', 'proxy'])
      assert.equal(resolveSettings(profile({cliPath: '/opt/as'}), {}, 'c.json').cliPath, '/opt/as')
    })

    it('invalid values name their source', () => {
      expectError(
        () => resolveSettings(profile(), {AGENTSECRETS_PORT: 'http'}, 'c.json'),
        'CONFIG_INVALID',
        3,
      )
      assert.match(
        expectError(() => resolveSettings(profile({transport: 'ftp'}), {}, 'c.json'), 'CONFIG_INVALID', 3)
          .message,
        /profiles\.agentsecrets\.transport/,
      )
      expectError(() => resolveSettings(profile(), {}, 'c.json', {port: '70000'}), 'AGENTSECRETS_BAD_FLAG', 2)
      expectError(
        () => resolveSettings(profile(), {}, 'c.json', {agentId: 'a b'}),
        'AGENTSECRETS_BAD_FLAG',
        2,
      )
    })

    it('config.json: agentsecrets keys are checked and tokens refused', () => {
      validateConfig(
        config({agentId: 'bot-1', cliPath: '/usr/local/bin/agentsecrets', port: 8765, transport: 'proxy'}),
        'c.json',
      )
      for (const bad of [
        {transport: 'tcp'},
        {port: 0},
        {port: '8765'},
        {cliPath: ''},
        {sessionToken: 'as_sess_x'},
        {agentToken: 't'},
        {agentId: 'x y'},
      ])
        assert.throws(
          () => validateConfig(config(bad), 'c.json'),
          /Invalid configuration in c\.json: profiles\.as\./,
          JSON.stringify(bad),
        )
    })
  })

  it('run: each NAME must be its KEY (§8.2); keys come back sorted', () => {
    assert.deepEqual(
      checkInjections([
        {name: 'B', reference: ref('B')},
        {name: 'A', reference: ref('A')},
      ]),
      ['A', 'B'],
    )
    const error = expectError(
      () => checkInjections([{name: 'OPENAI', reference: ref('OPENAI_KEY')}]),
      'AGENTSECRETS_RENAME',
      2,
    )
    assert.equal(
      error.message,
      'Cannot map OPENAI to agentsecrets://OPENAI_KEY: AgentSecrets injects each secret under its own key name and cannot rename it. Map OPENAI_KEY=agentsecrets://OPENAI_KEY or rename the secret in AgentSecrets.',
    )
  })

  describe('against the doubles', () => {
    let world: AgentSecretsWorld
    let upstream: Upstream
    let home: string
    const VALUE = 'unit-canary-value-19af'

    before(async () => {
      upstream = await startUpstream()
      world = await createAgentSecretsWorld({secrets: {development: {K: VALUE}, production: {}, staging: {}}})
      home = await mkdtemp(join(tmpdir(), 'agentvault-as-unit-'))
    })

    after(async () => {
      await world.dispose()
      await upstream.close()
      await rm(home, {force: true, recursive: true})
    })

    const contextFor = (env: NodeJS.ProcessEnv, settings: Record<string, unknown> = {}): BackendContext => ({
      env: {...env, AGENTVAULT_NO_KEYCHAIN: '1'},
      home,
      interactive: false,
      profile: profile(settings),
      warn() {},
    })

    it('auto picks the CLI when one is found, else the proxy; both perform the call', async () => {
      const proxy = await world.startProxy()
      const before = world.proxyLog()
      for (const env of [world.env, {...world.proxyOnlyEnv, AGENTSECRETS_PORT: String(proxy.port)}]) {
        const backend = createBackend(contextFor(env)) as Awaited<ReturnType<typeof createBackend>>
        const result = await backend.use!(parseReference('agentsecrets://K'), request(upstream.url('/echo')))
        assert.equal(result.status, 200)
        assert.equal(result.redacted, true)
        assert.ok(!JSON.stringify(result).includes(VALUE))
        assert.equal(upstream.last('/echo').headers.authorization, `Bearer ${VALUE}`)
      }

      assert.equal(
        (await world.invocations()).filter(
          (invocation) => invocation.argv[0] === 'call' && !invocation.argv.includes('--help'),
        ).length,
        1,
      )
      assert.ok((await before).length < (await world.proxyLog()).length)
      await proxy.close()
    })

    it('has no value to give: get is not a capability, and --reveal is explained as zero knowledge', async () => {
      const backend = await createBackend(contextFor(world.env))
      assert.equal(backend.capabilities.get, false)
      assert.equal(backend.get, undefined)
      const error = backend.explainUnsupported!('get', parseReference('agentsecrets://K'))
      assert.equal(error.message, 'AgentSecrets never reveals values: agentsecrets://K cannot be printed')
    })

    it('a saved session token is sent only to the port it was saved for', async () => {
      const store = await openCredentialStore({
        env: {AGENTVAULT_NO_KEYCHAIN: '1', AGENTVAULT_PASSPHRASE: 'pw'},
        home,
        keychain: null,
      })
      await saveStoredTokens(store, 'agentsecrets', {port: 1111, sessionToken: 'as_sess_stored'})
      const warnings: string[] = []
      const base = {
        ...contextFor({AGENTVAULT_PASSPHRASE: 'pw', AGENTSECRETS_SESSION_TOKEN: 'as_sess_env'}),
        warn: (message: string) => warnings.push(message),
      }
      assert.deepEqual(await resolveTokens(base, 1111), {
        sessionToken: 'as_sess_stored',
        sessionTokenSource: 'credential store',
      })
      assert.deepEqual(await resolveTokens(base, 2222), {
        sessionToken: 'as_sess_env',
        sessionTokenSource: 'AGENTSECRETS_SESSION_TOKEN',
      })
      assert.match(warnings.join('\n'), /for port 1111, not 2222/)
      assert.ok(!warnings.join('\n').includes('as_sess_stored'))
    })
  })
})
