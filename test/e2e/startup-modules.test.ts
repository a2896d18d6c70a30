/**
 * Issue 17: the usual commands start as close to Node's own floor as they can. Setting up Node's
 * ES module loader costs a few milliseconds on every call, so `run` and the commands of the
 * dispatch table start from CommonJS (bin/run.cjs → dist/launch.cjs) and run from their script
 * bundles without it. A probe preloaded into agentvault's process lists the Node modules it loaded;
 * the commands must still do their work.
 */
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {runCli, tempHome} from '../helpers/cli.js'

const MASK = '<concealed by agentvault>'
/** Node's modules that only its ES module loader needs (it loads them all when it starts). */
const ESM_LOADER = ['internal/modules/esm/module_job', 'internal/modules/esm/translators']
// scripts/test-on-nodes.js runs the suite on other Nodes against this machine's build, whose code
// caches those Nodes cannot take: they load the ESM chunks, through the loader, by design.
const builtByThisNode = process.env.AGENTVAULT_TEST_NODE === undefined

describe('e2e: the usual commands start without Node’s ES module loader', function () {
  this.timeout(60_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let probe: string
  let list: string

  before(async () => {
    t = await tempHome()
    const stored = await runCli(['secrets', 'set', 'K'], {env: t.env, input: 'startup-modules value'})
    assert.equal(stored.code, 0, stored.stderr)
    probe = join(t.home, '..', 'probe.cjs')
    list = join(t.home, '..', 'modules.txt')
    // Only agentvault's own process writes the list (a Node child would inherit NODE_OPTIONS).
    await writeFile(
      probe,
      `process.on('exit', () => { if (/[\\\\/]bin[\\\\/]run\\.c?js$/.test(process.argv[1] ?? '')) require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')) })\n`,
    )
  })

  after(async () => {
    await t.dispose()
  })

  async function modulesOf(args: string[], input?: string): Promise<{modules: string[]; stdout: string}> {
    await writeFile(list, '')
    const result = await runCli(args, {env: {...t.env, NODE_OPTIONS: `--require=${probe}`}, input})
    assert.equal(result.code, 0, result.stderr)
    return {modules: (await readFile(list, 'utf8')).split('\n'), stdout: result.stdout}
  }

  for (const [label, args, input, expected] of [
    ['run', ['run', '--env', 'K=local://K', '--', 'sh', '-c', 'echo "$K"'], undefined, `${MASK}\n`],
    ['secrets set', ['secrets', 'set', 'OTHER'], 'another value', ''],
    ['secrets list', ['secrets', 'list', '--json'], undefined, undefined],
    ['--help', ['--help'], undefined, /^USAGE$/m],
    ['secrets set --help', ['secrets', 'set', '--help'], undefined, /^USAGE$/m],
    ['run --help', ['run', '--help'], undefined, /^USAGE$/m],
  ] as const)
    it(`${label} loads none of it, and works`, async () => {
      const {modules, stdout} = await modulesOf([...args], input)
      assert.ok(modules.length > 1, 'the probe listed the modules')
      for (const name of builtByThisNode ? ESM_LOADER : [])
        assert.ok(!modules.includes(`NativeModule ${name}`), `${label} loaded ${name}`)
      if (expected === undefined)
        assert.deepEqual(
          (JSON.parse(stdout) as {secrets: Array<{name: string}>}).secrets.map((entry) => entry.name).sort(),
          ['K', 'OTHER'],
        )
      else if (typeof expected === 'string') assert.equal(stdout, expected)
      else assert.match(stdout, expected)
    })

  it('run starts its child before it loads fs/promises (and readline with it): only the audit, after, needs them', async function () {
    // Other Nodes load the ESM chunks, through the loader, which loads fs/promises itself.
    if (!builtByThisNode) this.skip()
    const {modules} = await modulesOf(['run', '--env', 'K=local://K', '--', 'true'])
    const spawned = modules.indexOf('NativeModule child_process')
    assert.ok(spawned > 0, 'child_process was loaded')
    for (const name of ['fs/promises', 'internal/readline/interface', 'timers/promises'])
      assert.ok(
        !modules.slice(0, spawned).includes(`NativeModule ${name}`),
        `${name} loaded before the child started`,
      )
  })
})
