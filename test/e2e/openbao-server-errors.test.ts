/**
 * Server-provided error texts never carry back what agentvault sent (issue 11 §4): a server (or a
 * proxy in front of it) that echoes the request body and token in its `errors` has them concealed
 * in `details.serverErrors`; and a 400 is CAS_MISMATCH only when the server says so.
 */
import assert from 'node:assert/strict'

import {type CliResult, tempHome} from '../helpers/cli.js'
import {expectFailure} from '../helpers/e2e.js'
import {CANARY, PASSWORD, type SeededTokens, startSeededServer, USERNAME} from '../servers/openbao/harness.js'
import {type OpenBaoTestServer} from '../servers/openbao/server.js'

const NEW_VALUE = 'canary-openbao-new-value-71aa'
const MASK = '<concealed by agentvault>'

describe('e2e: openbao error texts', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: OpenBaoTestServer
  let tokens: SeededTokens
  const env = (): NodeJS.ProcessEnv => ({
    ...t.env,
    BAO_ADDR: server.url,
    BAO_TOKEN: tokens.writer,
    HOME: t.home,
  })
  const canaries = (): string[] => [CANARY, NEW_VALUE, PASSWORD, tokens.writer]

  function assertClean(result: CliResult): void {
    for (const canary of canaries()) {
      assert.ok(!result.stdout.includes(canary), `${canary} on stdout: ${result.stdout}`)
      assert.ok(!result.stderr.includes(canary), `${canary} on stderr: ${result.stderr}`)
    }
  }

  before(async () => {
    t = await tempHome()
    ;({server, tokens} = await startSeededServer())
  })

  after(async () => {
    await server.close()
    await t.dispose()
  })

  beforeEach(() => {
    server.faults = {}
  })

  it('a write whose error echoes the body: values and token concealed, BACKEND_REJECTED (not CAS_MISMATCH)', async () => {
    // A field update sends the other fields too (token = CANARY) with an implicit cas.
    server.faults = {echo: {method: 'POST', route: /\/data\//}}
    const {error, json, plain} = await expectFailure(
      ['secrets', 'set', 'openbao://secret/myapp/api#user'],
      {env: env(), input: NEW_VALUE},
      {code: 2, errorCode: 'BACKEND_REJECTED'},
    )
    assertClean(plain)
    assertClean(json)
    const serverErrors = error.details?.serverErrors as string[]
    assert.ok(Array.isArray(serverErrors), json.stdout)
    assert.match(serverErrors.join('\n'), /invalid request body/)
    assert.ok(serverErrors.join('\n').includes(MASK), json.stdout)
    const written = server.log.filter((entry) => entry.method === 'POST' && entry.path.includes('/data/'))
    assert.ok(
      written.some((entry) => entry.body.includes(NEW_VALUE)),
      'the server did receive the value',
    )
  })

  it('a real check-and-set mismatch is still CAS_MISMATCH', async () => {
    await expectFailure(
      ['secrets', 'set', 'openbao://secret/myapp/db#password', '--cas', '7'],
      {env: env(), input: NEW_VALUE},
      {code: 2, errorCode: 'CAS_MISMATCH'},
    )
  })

  it('a login whose error echoes the password: concealed', async () => {
    server.faults = {echo: {route: /\/auth\//}}
    const {error, json, plain} = await expectFailure(
      [
        'login',
        'openbao',
        '--profile',
        'up',
        '--address',
        server.url,
        '--method',
        'userpass',
        '--username',
        USERNAME,
        '--password-stdin',
      ],
      {env: {...t.env, HOME: t.home}, input: `${PASSWORD}\n`},
      {code: 4, errorCode: 'AUTH_FAILED'},
    )
    assertClean(plain)
    assertClean(json)
    assert.ok((error.details?.serverErrors as string[]).join('\n').includes(MASK), json.stdout)
  })
})
