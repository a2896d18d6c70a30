/**
 * `run --placeholders` makes its CA with @peculiar/x509, which the build bundles with what it loads
 * into dist/fast/vendor/x509.cjs (scripts/bundle.js): loading a dozen packages through Node's ES
 * module loader cost ~100 ms of every such run (bench: startup, `run --placeholders -- true`). The
 * run must take the vendored file (it works with those packages gone from node_modules), and the
 * packages when a build has no vendored file.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {cp, mkdir, mkdtemp, readdir, rm, symlink} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {baseEnv, collect, ROOT, runCli, tempHome, withNodeOnPath} from '../helpers/cli.js'

const CANARY = 'canary-vendored-x509-4be1c9'

describe('e2e: run --placeholders loads @peculiar/x509 from the build’s vendored file', function () {
  this.timeout(120_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let copy: string

  before(async () => {
    t = await tempHome()
    const stored = await runCli(['secrets', 'set', 'K', '--allow-domain', 'api.example.com'], {
      env: t.env,
      input: CANARY,
    })
    assert.equal(stored.code, 0, stored.stderr)
    copy = await mkdtemp(join(tmpdir(), 'agentvault-vendor-'))
    for (const entry of ['bin', 'dist', 'package.json'])
      await cp(join(ROOT, entry), join(copy, entry), {recursive: true})
    // node_modules without the X.509 stack: @peculiar/* and the Reflect polyfill it needs.
    await mkdir(join(copy, 'node_modules'))
    for (const entry of await readdir(join(ROOT, 'node_modules')))
      if (entry !== '@peculiar' && entry !== 'reflect-metadata')
        await symlink(join(ROOT, 'node_modules', entry), join(copy, 'node_modules', entry))
  })

  after(async () => {
    await t.dispose()
    await rm(copy, {force: true, recursive: true})
  })

  /** `run --placeholders` through the copy's launcher: the child prints its K. */
  async function placeholderInCopy(): Promise<{code: null | number; stderr: string; stdout: string}> {
    return collect(
      spawn(
        join(copy, 'bin', 'run.js'),
        ['run', '--placeholders', '--env', 'K=local://K', '--', 'sh', '-c', 'printf %s "$K"'],
        {env: withNodeOnPath(baseEnv(t.env)), stdio: ['ignore', 'pipe', 'pipe']},
      ),
    )
  }

  it('works with the X.509 packages gone from node_modules', async () => {
    const result = await placeholderInCopy()
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /^avph_K_[\da-f]{32}$/)
    assert.ok(!result.stderr.includes(CANARY))
  })

  it('without the vendored file, takes the packages from node_modules (and needs them)', async () => {
    await rm(join(copy, 'dist', 'fast', 'vendor'), {force: true, recursive: true})
    const missing = await placeholderInCopy()
    assert.notEqual(missing.code, 0, 'no vendored file and no package: the CA cannot be made')
    assert.ok(!missing.stderr.includes(CANARY))
    for (const entry of ['@peculiar', 'reflect-metadata'])
      await symlink(join(ROOT, 'node_modules', entry), join(copy, 'node_modules', entry))
    const result = await placeholderInCopy()
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /^avph_K_[\da-f]{32}$/)
  })
})
