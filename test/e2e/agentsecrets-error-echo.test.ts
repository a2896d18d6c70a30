/**
 * An AgentSecrets CLI whose failure quotes the request (issue 11 §4): the body and the agent token
 * agentvault handed it never come back in agentvault's error.
 */
import assert from 'node:assert/strict'

import {type AgentSecretsE2e, setupAgentSecretsE2e} from '../servers/agentsecrets/e2e-fixture.js'

const BODY = 'canary-as-body-8e0f1d'
const TOKEN = 'canary-as-agent-token-c4a2'

describe('e2e: agentsecrets error texts never echo what was sent', () => {
  let e: AgentSecretsE2e

  before(async () => {
    e = await setupAgentSecretsE2e()
  })

  after(() => e.dispose())

  for (const json of [false, true]) {
    it(`call whose CLI failure quotes the body and token${json ? ' (--json)' : ''}`, async () => {
      const args = ['call', e.upstream.url('/echo'), '--bearer', 'agentsecrets://API_KEY', '-d', BODY]
      const result = await e.av(json ? [...args, '--json'] : args, {
        env: e.cliEnv({AS_AGENT_TOKEN: TOKEN, FAKE_AS_ECHO_ERRORS: '1'}),
      })
      assert.notEqual(result.code, 0, result.stdout)
      assert.notEqual(result.code, 1, result.stderr)
      const output = result.stdout + result.stderr
      assert.match(output, /bad request/, 'the CLI failure is reported')
      for (const canary of [BODY, TOKEN]) assert.ok(!output.includes(canary), `${canary} in ${output}`)
    })
  }
})
