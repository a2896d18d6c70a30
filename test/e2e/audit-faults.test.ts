/**
 * Through the built binary, with faults injected at an exact step (test/fixtures/crash-at-op.c): the
 * audit head (audit.head, which lets verify notice lines cut from the end) when replacing it fails
 * or the process dies right before. A failed append must be one that wrote nothing, so its warning
 * is true and a caller may append again; and no sequence of failures or crashes may leave a log that
 * `audit verify` calls edited when nothing was edited.
 */
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {runCli, tempHome} from '../helpers/cli.js'
import {buildCrashAtOp, crashAtOpEnv} from '../helpers/crash-at-op.js'

describe('e2e: the audit head when replacing it fails or is cut short', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let home: string
  let audit: string
  let headRename: string

  before(async () => {
    buildCrashAtOp()

    t = await tempHome()
    home = t.env.AGENTVAULT_HOME as string
    audit = join(home, 'audit.log')
    const stored = await runCli(['secrets', 'set', 'A'], {env: t.env, input: 'a-value'})
    assert.equal(stored.code, 0, stored.stderr)
    // The change to fail or die at: the rename of the new head into place.
    headRename = `rename ${join(home, 'audit.head')}`
  })

  after(() => t?.dispose())

  async function verify(): Promise<{count: number; ok: boolean}> {
    const result = await runCli(['audit', 'verify', '--json'], {env: t.env})
    assert.equal(result.code, 0, `audit verify: ${result.stdout}${result.stderr}`)
    return JSON.parse(result.stdout) as {count: number; ok: boolean}
  }

  it('the head cannot be replaced (EIO), twice in a row: each append is taken back whole, verify passes', async () => {
    const before = await readFile(audit)
    const {count} = await verify()
    for (let i = 0; i < 2; i++) {
      const result = await runCli(['secrets', 'get', 'A', '--reveal'], {
        env: crashAtOpEnv(t.env, {at: 1, errno: 5, match: headRename, mode: 'fail', root: home}),
      })
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, 'a-value')
      assert.match(result.stderr, /Could not write the audit log/)
      // The warning says nothing was written: nothing was.

      assert.deepEqual(await readFile(audit), before, 'the failed append left its line')

      assert.equal((await verify()).count, count)
    }

    const next = await runCli(['secrets', 'get', 'A', '--reveal'], {env: t.env})
    assert.equal(next.code, 0, next.stderr)
    assert.equal((await verify()).count, count + 1)
  })

  it('killed twice in a row between the lines and the head: verify passes, the next append catches the head up', async () => {
    const {count} = await verify()
    for (let i = 0; i < 2; i++) {
      const result = await runCli(['secrets', 'get', 'A', '--reveal'], {
        env: crashAtOpEnv(t.env, {at: 1, match: headRename, mode: 'before', root: home}),
      })
      assert.equal(result.signal, 'SIGKILL', result.stderr)
    }

    assert.equal((await verify()).count, count + 2)
    const next = await runCli(['secrets', 'get', 'A', '--reveal'], {env: t.env})
    assert.equal(next.code, 0, next.stderr)
    assert.equal((await verify()).count, count + 3)
    const head = JSON.parse(await readFile(join(home, 'audit.head'), 'utf8')) as {seq: number}
    const last = JSON.parse((await readFile(audit, 'utf8')).trim().split('\n').at(-1) as string) as {
      seq: number
    }
    assert.equal(head.seq, last.seq, 'the head caught up')
  })

  it('a head that names no entry of the chain (rewound with a made-up hash) is still reported', async () => {
    const lines = (await readFile(audit, 'utf8')).trim().split('\n')
    const earlier = JSON.parse(lines.at(-3) as string) as {hash: string; seq: number}
    const head = join(home, 'audit.head')
    const kept = await readFile(head)
    try {
      await writeFile(head, `${JSON.stringify({hash: 'f'.repeat(64), seq: earlier.seq})}\n`)
      const result = await runCli(['audit', 'verify'], {env: t.env})
      assert.equal(result.code, 3, result.stderr)
      assert.match(result.stderr, /audit\.head/)
    } finally {
      await writeFile(head, kept)
    }
  })
})
