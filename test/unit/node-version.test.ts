import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'

/**
 * scripts/test-on-nodes.js runs the suite again on other Node versions; this proves a pass really
 * runs on the version it names — the tests themselves and the `node` the e2e launcher finds on PATH.
 */
describe('the Node version of this test pass', () => {
  const wanted = process.env.AGENTVAULT_TEST_NODE

  it('is the one scripts/test-on-nodes.js asked for (when it asked)', function () {
    if (wanted === undefined) this.skip()
    const prefix = new RegExp(`^v${wanted.replaceAll('.', String.raw`\.`)}(\\.|$)`)
    assert.match(process.version, prefix)
    const onPath = execFileSync('node', ['-p', 'process.version'], {encoding: 'utf8'}).trim()
    assert.match(onPath, prefix, 'the first node on PATH, which bin/run.js runs on')
  })

  it('is within the range package.json promises', async () => {
    const {readFile} = await import('node:fs/promises')
    const pjson = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      engines: {node: string}
    }
    assert.equal(pjson.engines.node, '>=20.19.0')
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number]
    assert.ok(major > 20 || (major === 20 && minor >= 19), process.version)
  })
})
