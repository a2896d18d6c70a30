/**
 * agentvault runs only its own code. oclif, which takes the command lines the dispatcher hands it
 * (a typo, `DEBUG`, help on a terminal, AGENTVAULT_DISPATCH=oclif), would also load "user plugins"
 * listed in its data folder (~/.local/share/agentvault/package.json, or AGENTVAULT_DATA_DIR), a
 * place outside the agentvault home that a command started by `run` can write: their hooks would
 * then run inside agentvault, next to the vault's key. agentvault has no plugin command; the list
 * is never read.
 */
import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {runCli, tempHome} from '../helpers/cli.js'

describe('e2e: no user plugins', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let root: string
  let marker: string
  let env: NodeJS.ProcessEnv

  before(async () => {
    t = await tempHome()
    root = await mkdtemp(join(tmpdir(), 'agentvault-plugin-'))
    marker = join(root, 'ran')
    const plugin = join(root, 'planted')
    await mkdir(join(plugin, 'dist'), {recursive: true})
    await writeFile(
      join(plugin, 'package.json'),
      JSON.stringify({
        name: 'planted',
        oclif: {hooks: {init: './dist/init.js'}},
        type: 'module',
        version: '1.0.0',
      }),
    )
    await writeFile(
      join(plugin, 'dist', 'init.js'),
      `import {writeFileSync} from 'node:fs'\nexport default async function () { writeFileSync(${JSON.stringify(marker)}, 'ran') }\n`,
    )
    const list = JSON.stringify({
      oclif: {plugins: [{name: 'planted', root: plugin, type: 'link'}], schema: 1},
    })
    for (const dir of [join(root, 'xdg', 'agentvault'), join(root, 'data')]) {
      await mkdir(dir, {recursive: true})
      await writeFile(join(dir, 'package.json'), list)
    }

    env = {...t.env, XDG_DATA_HOME: join(root, 'xdg')}
  })

  after(async () => {
    await t.dispose()
    await rm(root, {force: true, recursive: true})
  })

  afterEach(async () => {
    await rm(marker, {force: true})
  })

  const lines: Array<[string, string[], NodeJS.ProcessEnv]> = [
    ['a mistyped command', ['secrets', 'lst'], {}],
    ['a command oclif runs', ['secrets', 'list'], {AGENTVAULT_DISPATCH: 'oclif'}],
    ['DEBUG=*', ['status'], {DEBUG: '*'}],
  ]

  for (const [what, args, extra] of lines)
    it(`${what}: a plugin listed in the data folder never runs`, async () => {
      for (const more of [{}, {AGENTVAULT_DATA_DIR: join(root, 'data')}]) {
        const result = await runCli(args, {env: {...env, ...extra, ...more}})
        assert.ok(result.code !== null, result.stderr)
        assert.equal(
          existsSync(marker),
          false,
          `the planted hook ran (${JSON.stringify(more)}): ${result.stderr}`,
        )
      }
    })
})
