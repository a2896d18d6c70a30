/**
 * Profile names are looked up in config.json's maps: a name that is also a property every
 * JavaScript object inherits (`constructor`, `toString`, `__proto__`) is a name like any other —
 * absent until added, added and removed as any other — never an inherited function taken for a
 * profile ("This backend is not supported by undefined").
 */
import assert from 'node:assert/strict'

import {runCli, tempHome} from '../helpers/cli.js'
import {expectFailure, parseJson} from '../helpers/e2e.js'

const INHERITED = ['constructor', 'toString', '__proto__', 'hasOwnProperty']

describe('e2e: profile names that objects inherit', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const cli = (args: string[]) => runCli(args, {env: t.env})

  beforeEach(async () => {
    t = await tempHome()
  })

  afterEach(async () => {
    await t.dispose()
  })

  for (const name of INHERITED)
    it(`${name}: no such profile until added; then added, listed, used and removed like any other`, async () => {
      await expectFailure(
        ['secrets', 'list', '--profile', name],
        {env: t.env},
        {code: 3, errorCode: 'PROFILE_NOT_FOUND', message: new RegExp(`No profile named ${name}`)},
      )
      const added = await cli(['profiles', 'add', name, '--kind', 'local'])
      assert.equal(added.code, 0, added.stderr)
      const listed = parseJson<{profiles: Array<{name: string}>}>(
        await cli(['profiles', 'list', '--json']),
      ).profiles
      assert.ok(
        listed.some((profile) => profile.name === name),
        JSON.stringify(listed),
      )
      const stored = await runCli(['secrets', 'set', 'K', '--profile', name], {env: t.env, input: 'value-1'})
      assert.equal(stored.code, 0, stored.stderr)
      const removed = await cli(['profiles', 'remove', name])
      assert.equal(removed.code, 0, removed.stderr)
      await expectFailure(
        ['secrets', 'list', '--profile', name],
        {env: t.env},
        {code: 3, errorCode: 'PROFILE_NOT_FOUND'},
      )
    })
})
