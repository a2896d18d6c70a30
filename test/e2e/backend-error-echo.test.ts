/**
 * A server whose error text echoes the request (issue 11 §4): what agentvault sent (an API key, a
 * token) never comes back through the error message or `--json` details. The OpenBao case is in
 * openbao-server-errors.test.ts.
 */
import assert from 'node:assert/strict'
import {join} from 'node:path'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {startServer} from '../servers/agentauth/harness.js'
import {type AgentAuthTestServer} from '../servers/agentauth/server.js'
import {AGENT, startStandardServer, writeSeedFile} from '../servers/sanctum/harness.js'
import {type SanctumTestServer} from '../servers/sanctum/server.js'

function assertAbsent(result: CliResult, canaries: string[]): void {
  for (const canary of canaries) {
    for (const form of [canary, Buffer.from(canary).toString('base64').replace(/=+$/, '')]) {
      assert.ok(!result.stdout.includes(form), `${canary} on stdout: ${result.stdout}`)
      assert.ok(!result.stderr.includes(form), `${canary} on stderr: ${result.stderr}`)
    }
  }
}

describe('e2e: agentauth error texts never echo what was sent', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: AgentAuthTestServer
  let admin: {agentId: string; apiKey: string}

  before(async () => {
    t = await tempHome()
    ;({server} = await startServer('v1'))
    admin = server.seedAgent({name: 'echo-admin', permissions: ['*:*:*']})
  })

  after(async () => {
    await server.close()
    await t.dispose()
  })

  for (const json of [false, true]) {
    it(`login whose verify error quotes the API key${json ? ' (--json)' : ''}`, async () => {
      server.fault('POST', /\/agents\/verify$/, {echo: true, status: 400})
      const args = [
        'login',
        'agentauth',
        '--profile',
        'echo',
        '--base-url',
        server.url,
        '--agent-id',
        admin.agentId,
        '--api-key-stdin',
      ]
      const result = await runCli(json ? [...args, '--json'] : args, {env: t.env, input: `${admin.apiKey}\n`})
      assert.notEqual(result.code, 0)
      assert.notEqual(result.code, 1, result.stderr)
      const faulted = server.requests.filter((r) => r.faulted)
      assert.ok(faulted.at(-1)?.body.toString('utf8').includes(admin.apiKey), 'the key was sent and echoed')
      assertAbsent(result, [admin.apiKey])
      assert.match(json ? result.stdout : result.stderr, /concealed by agentvault/)
    })
  }
})

describe('e2e: sanctum error texts never echo what was sent', () => {
  const PARAM = 'canary-sanctum-param-6b3d'
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: SanctumTestServer
  let keyPath: string

  before(async () => {
    t = await tempHome()
    server = await startStandardServer()
    keyPath = await writeSeedFile(join(t.home, '.sanctum', 'keys'), `${AGENT}.key`)
  })

  after(async () => {
    await server.close()
    await t.dispose()
  })

  for (const json of [false, true]) {
    it(`a use whose error quotes its params${json ? ' (--json)' : ''}`, async () => {
      server.inject('use', {kind: 'echo-error'})
      server.inject('credential.use', {kind: 'echo-error'})
      const args = [
        'use',
        'sanctum://canary/token',
        'sign',
        '--param',
        'algorithm=hmac-sha256',
        '--param',
        `data=${PARAM}`,
      ]
      const env = {
        ...t.env,
        HOME: t.home,
        SANCTUM_AGENT: AGENT,
        SANCTUM_KEY_PATH: keyPath,
        SANCTUM_SOCKET: server.socketPath,
      }
      const result = await runCli(json ? [...args, '--json'] : args, {env})
      assert.notEqual(result.code, 0, result.stdout)
      assert.notEqual(result.code, 1, result.stderr)
      assertAbsent(result, [PARAM])
      assert.match(json ? result.stdout : result.stderr, /invalid params .*concealed by agentvault/)
    })
  }
})
