/**
 * Issue 17: `run` compiles dist/fast/run.cjs from the V8 code cache the build writes beside it
 * (scripts/warm-cache.js, src/main.ts). The build must leave a cache this Node accepts, `run` must
 * behave the same when the cache is damaged (V8 rejects it) or made by another V8 (none for this
 * one: the ESM chunks load instead), and nothing at run time writes a cache anywhere.
 */
import assert from 'node:assert/strict'
import {execFile, spawn} from 'node:child_process'
import {cp, mkdtemp, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, dirname, join} from 'node:path'
import {promisify} from 'node:util'

import {baseEnv, collect, ROOT, runCli, tempHome, withNodeOnPath} from '../helpers/cli.js'

const CANARY = 'canary-code-cache-7f3a9c2e51'
const MASK = '<concealed by agentvault>'
const execFileP = promisify(execFile)

/** Every file under `dir`, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {recursive: true, withFileTypes: true})
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .sort()
}

/** The code caches of dist/fast/run.cjs under `dir`. */
async function cacheFiles(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'dist', 'fast'))).filter(
    (name) => name.startsWith('run.cjs.') && name.endsWith('.cache'),
  )
}

describe('e2e: run loads its bundle from the build’s V8 code cache', function () {
  this.timeout(120_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let copy: string

  before(async () => {
    t = await tempHome()
    const stored = await runCli(['secrets', 'set', 'K'], {env: t.env, input: CANARY})
    assert.equal(stored.code, 0, stored.stderr)
    copy = await mkdtemp(join(tmpdir(), 'agentvault-code-cache-'))
    for (const entry of ['bin', 'dist', 'package.json'])
      await cp(join(ROOT, entry), join(copy, entry), {recursive: true})
    await symlink(join(ROOT, 'node_modules'), join(copy, 'node_modules'))
  })

  after(async () => {
    await t.dispose()
    await rm(copy, {force: true, recursive: true})
  })

  /** `run --env K=local://K -- sh -c 'echo "[$K]"'` through the copy's launcher. */
  async function runInCopy(): Promise<void> {
    const child = spawn(
      join(copy, 'bin', 'run.js'),
      ['run', '--env', 'K=local://K', '--', 'sh', '-c', 'echo "[$K]"'],
      {
        env: withNodeOnPath(baseEnv(t.env)),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    const result = await collect(child)
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, `[${MASK}]\n`)
    assert.ok(!result.stderr.includes(CANARY), result.stderr)
  }

  // scripts/test-on-nodes.js runs this suite on other Nodes against the build of this machine's,
  // after writing those Nodes' caches as a build on them would (and removes them after the pass).
  const builtByThisNode = process.env.AGENTVAULT_TEST_NODE === undefined

  for (const [name, exported] of [
    ['run', 'runFromArgv'],
    ['dispatch/all', 'dispatch'],
  ] as const)
    it(`${name}.cjs loads from a cache for this Node’s V8 (accepted): the build writes it`, async () => {
      const dir = join(ROOT, 'dist', 'fast', dirname(name))
      const caches = (await readdir(dir)).filter((file) => file.startsWith(`${basename(name)}.cjs.`))
      const mine = `${basename(name)}.cjs.v8-${process.versions.v8}.cache`
      if (builtByThisNode) assert.deepEqual(caches, [mine])
      else
        assert.ok(
          caches.includes(mine) && caches.length === 2,
          `the building Node’s and this one’s: ${caches.join(', ')}`,
        )
      const {stdout} = await execFileP(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const {loadScriptBundle} = await import(${JSON.stringify(join(ROOT, 'dist', 'main.js'))}); const b = loadScriptBundle(${JSON.stringify(name)}); console.log(JSON.stringify(b ? {fromCache: b.fromCache, exports: typeof b.exports.${exported}} : null))`,
        ],
        {env: baseEnv()},
      )
      assert.deepEqual(JSON.parse(stdout), {exports: 'function', fromCache: true})
    })

  it('commands behave as before with a damaged cache of the dispatcher’s bundle, and write none', async () => {
    const dir = join(copy, 'dist', 'fast', 'dispatch')
    for (const file of await readdir(dir))
      if (file.startsWith('all.cjs.')) {
        const {length} = await readFile(join(dir, file))
        await writeFile(join(dir, file), Buffer.alloc(length, 0x5a))
      }

    const before = await filesUnder(copy)
    const env = withNodeOnPath(baseEnv(t.env))
    const listed = await collect(
      spawn(join(copy, 'bin', 'run.js'), ['secrets', 'list', '--json'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    )
    assert.equal(listed.code, 0, listed.stderr)
    assert.deepEqual(
      (JSON.parse(listed.stdout) as {secrets: {name: string}[]}).secrets.map((entry) => entry.name),
      ['K'],
    )
    const missing = await collect(
      spawn(join(copy, 'bin', 'run.js'), ['secrets', 'get', 'NOPE', '--reveal'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    )
    const reference = await runCli(['secrets', 'get', 'NOPE', '--reveal'], {env: t.env})
    assert.deepEqual(
      [missing.code, missing.stdout, missing.stderr],
      [reference.code, reference.stdout, reference.stderr],
    )
    assert.deepEqual(await filesUnder(copy), before)
  })

  it('masks and exits as before with a damaged cache, and writes none', async () => {
    const name = `run.cjs.v8-${process.versions.v8}.cache`
    assert.ok((await cacheFiles(copy)).includes(name), 'the copy has a code cache of run.cjs for this V8')
    const file = join(copy, 'dist', 'fast', name)
    const original = await readFile(file)
    // Same length, other bytes: V8 rejects it and compiles the bundle from its source.
    await writeFile(file, Buffer.alloc(original.length, 0x5a))
    const before = await filesUnder(copy)
    const homeBefore = await filesUnder(t.env.AGENTVAULT_HOME!)
    await runInCopy()
    assert.deepEqual(await filesUnder(copy), before)
    assert.ok(
      (await filesUnder(t.env.AGENTVAULT_HOME!)).every(
        (entry) => homeBefore.includes(entry) || entry.startsWith('audit'),
      ),
      'run wrote something new under the home besides its audit log',
    )
    assert.deepEqual(await readFile(file), Buffer.alloc(original.length, 0x5a))
  })

  it('masks and exits as before when the cache was made by another V8 (the ESM chunks load)', async () => {
    for (const name of await cacheFiles(copy)) await rm(join(copy, 'dist', 'fast', name))
    await writeFile(join(copy, 'dist', 'fast', 'run.cjs.v8-0.0.0-other.cache'), Buffer.alloc(64, 1))
    const before = await filesUnder(copy)
    await runInCopy()
    assert.deepEqual(await filesUnder(copy), before)
  })

  it('masks and exits as before from the ESM chunks when the build made no script bundle', async () => {
    const fast = join(copy, 'dist', 'fast')
    for (const name of await readdir(fast)) if (name.startsWith('run.cjs')) await rm(join(fast, name))
    await runInCopy()
  })
})
