import assert from 'node:assert/strict'
import {chmod, copyFile, mkdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {runCli, tempHome} from '../helpers/cli.js'
import {digestOf, expectFailure, filesUnder, parseJson} from '../helpers/e2e.js'

const FIXTURE = fileURLToPath(new URL('../fixtures/vault-v1/', import.meta.url))

interface Versions {
  current_version: number
  oldest_version: number
  versions: Array<{created_time: string; state: string; version: number}>
}

describe('e2e: local versions and the per-secret vault format', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const cli = (args: string[], input?: string, home?: string) =>
    runCli(args, {env: {...t.env, ...(home ? {AGENTVAULT_HOME: home} : {})}, input})

  before(async () => {
    t = await tempHome()
  })

  after(() => t.dispose())

  it('keeps previous values: secrets versions, ?version=N in get and run, secrets rollback', async () => {
    const canary = 'CANARY-local-versions-5d2e'
    for (const value of [`${canary}-one`, `${canary}-two`, `${canary}-three`])
      assert.equal((await cli(['secrets', 'set', 'K'], value)).code, 0)

    const versions = parseJson<Versions>(await cli(['secrets', 'versions', 'local://K', '--json']))
    assert.equal(versions.current_version, 3)
    assert.deepEqual(
      versions.versions.map((v) => v.version),
      [1, 2, 3],
    )
    const table = await cli(['secrets', 'versions', 'local://K'])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /3 \(current\)/)
    assert.ok(!table.stdout.includes(canary) && !table.stderr.includes(canary), 'versions never shows values')

    const old = await cli(['secrets', 'get', 'local://K?version=1', '--reveal'])
    assert.equal(old.code, 0, old.stderr)
    assert.equal(old.stdout, `${canary}-one`)

    const run = await cli([
      'run',
      '--env',
      'K=local://K?version=2',
      '--',
      process.execPath,
      '-e',
      `process.exit(process.env.K === ${JSON.stringify(`${canary}-two`)} ? 0 : 7)`,
    ])
    assert.equal(run.code, 0, run.stderr)

    await expectFailure(['secrets', 'get', 'local://K?version=9', '--reveal'], {env: t.env}, {code: 6})
    await expectFailure(
      ['secrets', 'set', 'local://K?version=1'],
      {env: t.env, input: 'x'},
      {
        code: 2,
        errorCode: 'VERSION_READ_ONLY',
      },
    )

    const rolled = parseJson<{rolledBackTo: number; version: number}>(
      await cli(['secrets', 'rollback', 'local://K', '--version', '1', '--json']),
    )
    assert.deepEqual([rolled.rolledBackTo, rolled.version], [1, 4])
    assert.equal((await cli(['secrets', 'get', 'K', '--reveal'])).stdout, `${canary}-one`)
    assert.equal((await cli(['secrets', 'get', 'local://K?version=3', '--reveal'])).stdout, `${canary}-three`)
    await expectFailure(
      ['secrets', 'rollback', 'local://K', '--version', '9'],
      {env: t.env},
      {
        // Not found (product.md §9), as `secrets get local://K?version=9` is.
        code: 6,
        errorCode: 'VERSION_NOT_KEPT',
      },
    )

    for (const file of await filesUnder(t.home)) {
      const bytes = await readFile(file)
      assert.ok(!bytes.includes(canary), `${file} holds no value in the clear`)
    }
  })

  it('opens a vault written in format version 1, and rewrites it as version 2 on the next write only', async () => {
    const home = join(t.home, 'v1-home')
    await mkdir(home, {mode: 0o700})
    for (const file of ['vault.json', 'vault.key']) {
      await copyFile(join(FIXTURE, file), join(home, file))
      await chmod(join(home, file), 0o600)
    }

    const vault = join(home, 'vault.json')
    const before = await digestOf(vault)
    const got = await cli(['secrets', 'get', 'FIXTURE_CANARY', '--reveal'], undefined, home)
    assert.equal(got.code, 0, got.stderr)
    assert.equal(got.stdout, 'v1-fixture-canary-7f3a9c1e')
    const listed = parseJson<{secrets: Array<{name: string; version: number}>}>(
      await cli(['secrets', 'list', '--json'], undefined, home),
    )
    assert.deepEqual(
      listed.secrets.map(({name, version}) => [name, version]),
      [
        ['FIXTURE_CANARY', 2],
        ['OTHER', 1],
      ],
    )
    assert.equal(await digestOf(vault), before, 'reading leaves a version-1 vault as it is')

    assert.equal((await cli(['secrets', 'set', 'NEW'], 'new-value', home)).code, 0)
    const rewritten = JSON.parse(await readFile(vault, 'utf8')) as {version: number}
    assert.equal(rewritten.version, 2)
    assert.equal(
      (await cli(['secrets', 'get', 'OTHER', '--reveal'], undefined, home)).stdout,
      'other-dummy-value',
    )
    assert.equal(
      (await cli(['secrets', 'get', 'FIXTURE_CANARY', '--reveal'], undefined, home)).stdout,
      'v1-fixture-canary-7f3a9c1e',
    )
  })
})
