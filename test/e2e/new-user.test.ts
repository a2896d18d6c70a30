/**
 * A new user's wrong turns, through the built binary: each failure must name what happened, and
 * its `Try this:` line — run as printed, in the same situation — must get the user forward, not
 * fail, name a command or flag that does not exist, or loop back to the same error.
 */
import assert from 'node:assert/strict'
import {createServer, type Server} from 'node:http'
import {type AddressInfo} from 'node:net'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {expectFailure, parseJson} from '../helpers/e2e.js'

/** The `agentvault …` command a `Try this:` line names (the text between backticks, or after a colon). */
function suggestedCommand(suggestion: string): string[] {
  const quoted =
    /`agentvault ([^`]+)`/.exec(suggestion)?.[1] ?? /agentvault (.+?)(?:$|\.\s|;)/.exec(suggestion)?.[1]
  assert.ok(quoted, `no agentvault command in ${JSON.stringify(suggestion)}`)
  // The shell's word splitting of a suggestion that quotes nothing.
  return quoted.trim().split(/\s+/)
}

describe('e2e: a new user follows the Try this lines', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const cli = (args: string[], input = ''): Promise<CliResult> => runCli(args, {env: t.env, input})

  beforeEach(async () => {
    t = await tempHome()
    assert.equal((await cli(['secrets', 'set', 'DEMO_TOKEN'], 'sk-demo-1234567890')).code, 0)
  })

  afterEach(async () => {
    await t.dispose()
  })

  it('secrets get NAME without --reveal suggests a run --env mapping that works', async () => {
    const {error} = await expectFailure(
      ['secrets', 'get', 'DEMO_TOKEN'],
      {env: t.env, input: ''},
      {code: 2, errorCode: 'REVEAL_REQUIRED'},
    )
    const suggested = suggestedCommand(error.suggestion)
    assert.equal(suggested[0], 'run', error.suggestion)
    assert.equal(suggested.at(-1), 'cmd', error.suggestion)
    const ran = await cli([...suggested.slice(0, -1), 'sh', '-c', 'test "$DEMO_TOKEN" = sk-demo-1234567890'])
    assert.equal(ran.code, 0, `${suggested.join(' ')}: ${ran.stderr}`)
  })

  describe('call to a loopback server', () => {
    let server: Server
    let url: string

    before(async () => {
      server = createServer((_request, response) => response.end('ok'))
      await new Promise<void>((resolve) => {
        server.listen(0, '127.0.0.1', resolve)
      })
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`
    })

    after(async () => {
      await new Promise((resolve) => {
        server.close(resolve)
      })
    })

    it('the private-address refusal names the profile setting that lets it through', async () => {
      const call = ['call', url, '--bearer', 'DEMO_TOKEN', '--allow-domain', '127.0.0.1']
      const {error} = await expectFailure(
        call,
        {env: t.env, input: ''},
        {code: 7, errorCode: 'PRIVATE_ADDRESS'},
      )
      const suggested = suggestedCommand(error.suggestion)
      const followed = await cli(suggested)
      assert.equal(followed.code, 0, `${suggested.join(' ')}: ${followed.stderr}`)
      const again = await cli([...call, '--json'])
      assert.equal(parseJson<{status: number}>(again).status, 200)
    })
  })
})
