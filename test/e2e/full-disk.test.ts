/**
 * Through the built binary: every writing command on a home whose filesystem is full — a real one,
 * a 256 KiB tmpfs mounted as AGENTVAULT_HOME and filled up (ENOSPC, not a simulation). Each command
 * must fail with exit 5 DISK_FULL, `Error:` and `Try this:` (its `--json` twin on stdout), and leave
 * the vault, the credential file, config.json and the audit log as they were and readable; once
 * space is freed, the next write works without repair.
 *
 * Mounting needs root (CI runs as root); elsewhere the suite is skipped and says why.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdir, open, readdir, readFile, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {runCli, tempHome} from '../helpers/cli.js'
import {digestOf, parseJsonError} from '../helpers/e2e.js'
import {startSeededServer} from '../servers/openbao/harness.js'
import {type OpenBaoTestServer} from '../servers/openbao/server.js'

/** The files a failed write must leave byte for byte (the audit log may record the failure). */
const FILES = ['vault.json', 'vault.key', 'config.json', 'credentials.enc']

/** Fill the filesystem of `dir` with `name`, leaving about `leave` bytes free (a page at most more). */
async function fill(dir: string, name: string, leave: number): Promise<void> {
  const file = await open(join(dir, name), 'w')
  try {
    const chunk = Buffer.alloc(4096, 0x2e)
    for (;;) {
      const {bavail, bsize} = await statFs(dir)
      if (bavail * bsize <= leave) break
      try {
        await file.write(chunk)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break
        throw error
      }
    }
  } finally {
    await file.close()
  }
}

async function statFs(dir: string): Promise<{bavail: number; bsize: number}> {
  const {statfs} = await import('node:fs/promises')
  const stats = await statfs(dir)
  return {bavail: Number(stats.bavail), bsize: Number(stats.bsize)}
}

async function digests(home: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {}
  for (const name of FILES) result[name] = await digestOf(join(home, name))
  return result
}

describe('e2e: a full disk under AGENTVAULT_HOME (a small tmpfs, ENOSPC)', function () {
  this.timeout(120_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let home: string
  let mounted = false
  let server: OpenBaoTestServer
  let tokens: Awaited<ReturnType<typeof startSeededServer>>['tokens']

  before(async function () {
    if (process.getuid?.() !== 0) {
      console.warn('skipped: mounting a tmpfs needs root (CI runs as root)')
      this.skip()
    }

    t = await tempHome()
    home = t.env.AGENTVAULT_HOME as string
    await mkdir(home, {mode: 0o700})
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', home], {stdio: 'pipe'})
    } catch (error) {
      console.warn(`skipped: mount -t tmpfs is not permitted here: ${(error as Error).message}`)
      await t.dispose()
      this.skip()
    }

    mounted = true
    ;({server, tokens} = await startSeededServer())
    const {env} = t
    for (const [args, input] of [
      [['secrets', 'set', 'KEEP', '--description', 'kept', '--tag', 't'], 'keep-1'],
      [['secrets', 'set', 'KEEP'], 'keep-2'],
      [['secrets', 'set', 'OTHER'], 'other-1'],
      [['profiles', 'add', 'bao', '--kind', 'openbao', '--set', `address=${server.url}`], ''],
      [['profiles', 'add', 'spare', '--kind', 'openbao', '--set', `address=${server.url}`], ''],
      [['login', 'openbao', '--profile', 'bao', '--token-stdin'], tokens.reader],
    ] as const) {
      const result = await runCli([...args], {env, input})
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
    }
  })

  after(async () => {
    await server?.close()
    if (mounted) execFileSync('umount', ['-l', home])
    await t?.dispose()
  })

  const commands: Array<{args: string[]; input?: string}> = [
    {args: ['secrets', 'set', 'KEEP'], input: 'k'.repeat(9000)},
    {args: ['secrets', 'set', 'NEW'], input: 'n'.repeat(9000)},
    {args: ['secrets', 'rollback', 'KEEP', '--version', '1']},
    {args: ['secrets', 'delete', 'OTHER', '--yes']},
    {args: ['secrets', 'rename', 'OTHER', 'RENAMED']},
    {args: ['secrets', 'edit', 'KEEP', '--description', 'changed']},
    {args: ['secrets', 'generate', 'GEN']},
    {args: ['secrets', 'import', '-', '--overwrite'], input: `KEEP=imported\nFRESH=${'f'.repeat(9000)}\n`},
    {args: ['profiles', 'add', 'more', '--kind', 'openbao', '--set', 'address=https://bao.example.com']},
    {args: ['profiles', 'remove', 'spare']},
    {args: ['profiles', 'use', 'spare']},
    {args: ['profiles', 'set', 'spare', '--set', 'namespace=team']},
    {args: ['login', 'openbao', '--profile', 'spare', '--token-stdin'], input: 'TOKEN'},
    {args: ['logout', 'openbao', '--profile', 'bao']},
  ]

  // No room at all; and one page, which a large write fills part of before it fails (a short write).
  for (const leave of [0, 4096])
    describe(`filled to ${leave} bytes free`, () => {
      let before: Record<string, string>
      let auditBefore: Buffer

      beforeEach(async () => {
        before = await digests(home)
        auditBefore = await readFile(join(home, 'audit.log'))
        await fill(home, 'filler', leave)
      })

      afterEach(async () => {
        await rm(join(home, 'filler'), {force: true})
        // Everything is as it was, readable, and the next write works once there is room again.
        assert.deepEqual(await digests(home), before, 'a file of the home changed')
        const audit = await readFile(join(home, 'audit.log'))
        assert.deepEqual(audit.subarray(0, auditBefore.length), auditBefore, 'the audit log was rewritten')
        const debris = (await readdir(home)).filter((name) => /\.tmp$|\.lock$/.test(name))
        assert.deepEqual(debris, [], 'temp files or locks left behind')
        const kept = await runCli(['secrets', 'get', 'KEEP', '--reveal'], {env: t.env})
        assert.equal(kept.stdout, 'keep-2', kept.stderr)
        const verify = await runCli(['audit', 'verify'], {env: t.env})
        assert.equal(verify.code, 0, verify.stderr)
        before = await digests(home)
      })

      for (const {args, input} of commands.filter(
        (command) => leave === 0 || (command.input?.length ?? 0) > 8192,
      ))
        it(`${args.join(' ')}: exit 5 DISK_FULL with Error and Try this; nothing changed`, async () => {
          const withToken = input === 'TOKEN' ? tokens.writer : input
          const plain = await runCli(args, {env: t.env, input: withToken})
          assert.equal(plain.code, 5, `exit ${plain.code}: ${plain.stderr}${plain.stdout}`)
          assert.equal(plain.stdout, '')
          assert.match(plain.stderr, /^Error: .+\nTry this: .*(space|Free)/m, plain.stderr)
          assert.doesNotMatch(plain.stderr, /bug/i)
          const json = await runCli([...args, '--json'], {env: t.env, input: withToken})
          const error = parseJsonError(json)
          assert.equal(error.code, 'DISK_FULL', json.stdout)
        })
    })

  it('the audit append of a read on a full disk: the value is printed, the failure named, the log intact', async () => {
    const before = await readFile(join(home, 'audit.log'))
    await fill(home, 'filler', 0)
    try {
      const result = await runCli(['secrets', 'get', 'KEEP', '--reveal'], {env: t.env})
      assert.equal(result.stdout, 'keep-2')
      assert.match(result.stderr, /audit/i)
      assert.doesNotMatch(result.stderr, /bug/i)
      assert.ok(result.code === 0 || result.code === 5, `exit ${result.code}`)
    } finally {
      await rm(join(home, 'filler'), {force: true})
    }

    assert.deepEqual(await readFile(join(home, 'audit.log')), before)
    const verify = await runCli(['audit', 'verify'], {env: t.env})
    assert.equal(verify.code, 0, verify.stderr)
  })
})
