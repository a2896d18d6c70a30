/**
 * `inject` over a remote backend: references to the openbao test server (over real loopback HTTP)
 * and the local vault in one template, read concurrently — one read per openbao path, all in
 * flight at once — and a missing openbao field failing the render with exit 6.
 */
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {expectFailure} from '../helpers/e2e.js'
import {
  BULK_PATHS,
  bulkPath,
  bulkValue,
  CANARY,
  type SeededTokens,
  startSeededServer,
} from '../servers/openbao/harness.js'
import {type OpenBaoTestServer} from '../servers/openbao/server.js'

describe('e2e: inject with openbao and local references', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: OpenBaoTestServer
  let tokens: SeededTokens
  let env: NodeJS.ProcessEnv

  const av = (args: string[], input?: string): Promise<CliResult> => runCli(args, {env, input})

  before(async () => {
    t = await tempHome()
    ;({server, tokens} = await startSeededServer({name: 'inject'}))
    env = {...t.env, BAO_ADDR: server.url, BAO_TOKEN: tokens.reader}
    assert.equal((await av(['secrets', 'set', 'LOCAL_ONE'], 'local-value')).code, 0)
  })

  after(async () => {
    await server.close()
    await t.dispose()
  })

  it('renders both kinds; each openbao path is read once and all reads overlap', async () => {
    const lines = ['local={{ local://LOCAL_ONE }}', 'token={{ openbao://secret/myapp/api#token }}']
    for (let i = 0; i < BULK_PATHS; i++)
      lines.push(`k${i}={{openbao://secret/${bulkPath(i)}#f0}} {{ openbao://secret/${bulkPath(i)}#f1 }}`)
    const expected = ['local=local-value', `token=${CANARY}`]
    for (let i = 0; i < BULK_PATHS; i++) expected.push(`k${i}=${bulkValue(i, 0)} ${bulkValue(i, 1)}`)
    server.resetLog()
    // The gate answers no read before all eleven paths wait at once: they must be concurrent.
    server.faults = {gate: {count: BULK_PATHS + 1, route: /\/data\//}}
    const out = join(t.home, 'rendered.conf')
    const result = await av(['inject', '-o', out], `${lines.join('\n')}\n`)
    server.faults = {}
    assert.equal(result.code, 0, result.stderr)
    assert.ok(!result.stderr.includes(CANARY), 'no value on stderr')
    assert.equal(await readFile(out, 'utf8'), `${expected.join('\n')}\n`)
    const reads = server.log.filter((entry) => entry.path.includes('/data/'))
    assert.equal(reads.length, BULK_PATHS + 1, 'one read per path')
    assert.equal(server.maxInFlight, BULK_PATHS + 1, 'all reads overlapped on the server')
  })

  it('a missing openbao field and a missing local name: exit 6 naming both, nothing written', async () => {
    const out = join(t.home, 'missing.conf')
    await expectFailure(
      ['inject', '-o', out],
      {env, input: '{{ openbao://secret/myapp/api#nope }} {{ local://NOPE }} {{ local://LOCAL_ONE }}'},
      {
        code: 6,
        message: /2 secrets not found: openbao\+kv2:\/\/secret\/myapp\/api#nope, local:\/\/NOPE/,
      },
    )
    await assert.rejects(readFile(out), {code: 'ENOENT'})
  })
})
