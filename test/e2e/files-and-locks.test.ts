/**
 * Through the built binary: concurrent commands keep one unbroken audit chain and lose no vault
 * write (issue 12 §1), and odd files in the home fail fast and clearly (issue 12 §2).
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {chmod, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {collect, runCli, startCli, tempHome} from '../helpers/cli.js'
import {digestOf, expectFailure, parseJson} from '../helpers/e2e.js'

function escape(text: string): string {
  return text.replaceAll(/[$()*+.?[\\\]^{|}]/g, '\\$&')
}

async function mkfifo(path: string): Promise<void> {
  execFileSync('mkfifo', [path])
}

// Device nodes need privileges (CI runs as root); elsewhere those cases are skipped.
const mknod = (major: string, minor: string) => async (path: string) => {
  execFileSync('mknod', [path, 'c', major, minor], {stdio: 'ignore'})
}

async function makeOrSkip(
  context: Mocha.Context,
  make: (path: string) => Promise<void>,
  path: string,
): Promise<void> {
  try {
    await make(path)
  } catch {
    context.skip()
  }
}

describe('e2e: files and locks', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let count = 0
  const fresh = (): {env: NodeJS.ProcessEnv; home: string} => {
    count++
    const home = join(t.home, `home-${count}`)
    return {env: {...t.env, AGENTVAULT_HOME: home}, home}
  }

  before(async () => {
    t = await tempHome()
  })

  after(async () => {
    await t.dispose()
  })

  it('40 concurrent commands (secrets set and run): every write kept, the audit chain verifies', async () => {
    const {env, home} = fresh()
    const first = await runCli(['secrets', 'set', 'BASE'], {env, input: 'base-value'})
    assert.equal(first.code, 0, first.stderr)
    const children = Array.from({length: 40}, (_, index) =>
      index % 2 === 0
        ? startCli(['secrets', 'set', `K${index}`], {env, input: `value-${index}`})
        : startCli(['run', '--env', 'BASE=local://BASE', '--', 'true'], {env}),
    )
    const results = await Promise.all(children.map((child) => collect(child)))
    for (const [index, result] of results.entries())
      assert.equal(result.code, 0, `#${index}: ${result.stderr}`)

    const verify = await runCli(['audit', 'verify', '--json'], {env})
    assert.equal(verify.code, 0, verify.stdout)
    // Exactly one record for each of the 1 + 40 commands.
    assert.deepEqual(JSON.parse(verify.stdout), {count: 41, ok: true})
    const listed = parseJson<{secrets: Array<{name: string}>}>(
      await runCli(['secrets', 'list', '--json'], {env}),
    )
    const expected = ['BASE', ...Array.from({length: 20}, (_, index) => `K${index * 2}`)].sort()
    assert.deepEqual(listed.secrets.map((secret) => secret.name).sort(), expected)

    const debris = (await readdir(home)).filter((entry) => /\.(lock|tmp)$/.test(entry))
    assert.deepEqual(debris, [], 'no lock or temp left behind')
  })

  it('an empty lock file left by a crash (old format) does not wedge `secrets set`', async () => {
    const {env, home} = fresh()
    await mkdir(home, {mode: 0o700})
    const past = new Date(Date.now() - 60_000)
    for (const name of ['vault.lock', 'audit.lock']) {
      await writeFile(join(home, name), '')
      await utimes(join(home, name), past, past)
    }

    const set = await runCli(['secrets', 'set', 'AFTER_CRASH'], {env, input: 'v'})
    assert.equal(set.code, 0, set.stderr)
    assert.doesNotMatch(set.stderr, /audit/i)
    const get = await runCli(['secrets', 'get', 'AFTER_CRASH', '--reveal'], {env})
    assert.equal(get.stdout, 'v')
  })

  describe('odd files fail fast with exit 3 naming the path', () => {
    const ODD: Array<{kind: string; make(path: string): Promise<void>}> = [
      {kind: 'a FIFO', make: mkfifo},
      {kind: 'a directory', make: (path) => mkdir(path)},
      {kind: 'a device like /dev/null', make: mknod('1', '3')},
      {kind: 'a device like /dev/zero', make: mknod('1', '5')},
    ]

    for (const {kind, make} of ODD) {
      it(`vault.json is ${kind}: secrets get/set/list and run exit 3`, async function () {
        const {env, home} = fresh()
        await mkdir(home, {mode: 0o700})
        const file = join(home, 'vault.json')
        await makeOrSkip(this, make, file)
        const message = new RegExp(escape(file))
        for (const [args, input] of [
          [['secrets', 'list'], undefined],
          [['secrets', 'get', 'X', '--reveal'], undefined],
          [['secrets', 'set', 'X'], 'value'],
        ] as Array<[string[], string | undefined]>)
          await expectFailure(args, {env, input}, {code: 3, message})
        const run = await runCli(['run', '--env', 'X=local://X', '--', 'true'], {env})
        assert.equal(run.code, 3, run.stderr)
        assert.match(run.stderr, message)
      })

      it(`config.json is ${kind}: exit 3`, async function () {
        const {env, home} = fresh()
        await mkdir(home, {mode: 0o700})
        const file = join(home, 'config.json')
        await makeOrSkip(this, make, file)
        await expectFailure(['profiles', 'list'], {env}, {code: 3, message: new RegExp(escape(file))})
        await expectFailure(['secrets', 'list'], {env}, {code: 3, message: new RegExp(escape(file))})
      })

      it(`credentials.enc is ${kind}: exit 3`, async function () {
        const {env, home} = fresh()
        await mkdir(home, {mode: 0o700})
        const file = join(home, 'credentials.enc')
        await makeOrSkip(this, make, file)
        await expectFailure(['logout', 'openbao'], {env}, {code: 3, message: new RegExp(escape(file))})
      })
    }
  })

  it('audit.log that is a FIFO or a link: the command does not hang, the audit failure is named', async () => {
    for (const make of [mkfifo, (path: string) => symlink('/dev/null', path)]) {
      const {env, home} = fresh()
      await mkdir(home, {mode: 0o700})
      const log = join(home, 'audit.log')
      await make(log)
      const set = await runCli(['secrets', 'set', 'K'], {env, input: 'v'})
      assert.equal(set.code, 0, set.stderr)
      assert.match(set.stderr, new RegExp(`Warning: Could not write the audit log: .*${escape(log)}`))
    }
  })

  describe('a symlinked vault file is refused, never replaced', () => {
    it('exit 3 naming the link and its target; the target is unchanged', async () => {
      const {env: setupEnv, home: real} = fresh()
      const set = await runCli(['secrets', 'set', 'KEPT'], {env: setupEnv, input: 'kept'})
      assert.equal(set.code, 0, set.stderr)
      const {env, home} = fresh()
      await mkdir(home, {mode: 0o700})
      const target = join(real, 'vault.json')
      await symlink(target, join(home, 'vault.json'))
      await symlink(join(real, 'vault.key'), join(home, 'vault.key'))
      const before = await digestOf(target)
      const message = new RegExp(`${escape(join(home, 'vault.json'))}.*${escape(target)}`)
      await expectFailure(['secrets', 'set', 'NEW'], {env, input: 'new'}, {code: 3, message})
      await expectFailure(['secrets', 'get', 'KEPT', '--reveal'], {env}, {code: 3, message})
      assert.equal(await digestOf(target), before)
      assert.ok((await readdir(home)).includes('vault.json'))
      const link = await stat(join(home, 'vault.json'))
      assert.ok(link.isFile(), 'the link still points at the vault')
    })
  })

  it('a symlinked config.json is refused on read and never replaced on write', async () => {
    const {env, home} = fresh()
    await mkdir(home, {mode: 0o700})
    const target = join(t.home, 'dotfiles-config.json')
    await writeFile(target, '{"version": 1, "profiles": {}, "defaults": {}}\n')
    await symlink(target, join(home, 'config.json'))
    const before = await digestOf(target)
    const message = new RegExp(`${escape(join(home, 'config.json'))}.*${escape(target)}`)
    await expectFailure(['profiles', 'list'], {env}, {code: 3, message})
    await expectFailure(['profiles', 'add', 'team', '--kind', 'local'], {env}, {code: 3, message})
    assert.equal(await digestOf(target), before)
    assert.ok((await stat(join(home, 'config.json'))).isFile(), 'still a link to the target')
  })

  describe('vault.key and the home directory', () => {
    it('a vault.key readable by group or others is refused: exit 3, chmod 600 in Try this', async () => {
      const {env, home} = fresh()
      const set = await runCli(['secrets', 'set', 'K'], {env, input: 'v'})
      assert.equal(set.code, 0, set.stderr)
      const key = join(home, 'vault.key')
      for (const mode of [0o640, 0o604, 0o644]) {
        await chmod(key, mode)
        const {error, plain} = await expectFailure(
          ['secrets', 'get', 'K', '--reveal'],
          {env},
          {
            code: 3,
            message: new RegExp(escape(key)),
          },
        )
        assert.match(plain.stderr, new RegExp(`Try this: .*chmod 600 ${escape(key)}`))
        assert.equal(error.code, 'KEY_FILE_PERMISSIONS')
        await expectFailure(
          ['secrets', 'set', 'K2'],
          {env, input: 'v2'},
          {code: 3, message: new RegExp(escape(key))},
        )
      }

      await chmod(key, 0o600)
      const get = await runCli(['secrets', 'get', 'K', '--reveal'], {env})
      assert.equal(get.stdout, 'v')
    })

    it('a vault.key that is a FIFO or a directory: exit 3 naming it, no hang', async () => {
      for (const make of [mkfifo, (path: string) => mkdir(path)]) {
        const {env, home} = fresh()
        await mkdir(home, {mode: 0o700})
        const key = join(home, 'vault.key')
        await make(key)
        await expectFailure(
          ['secrets', 'set', 'K'],
          {env, input: 'v'},
          {code: 3, message: new RegExp(escape(key))},
        )
      }
    })

    it('a home open to others: one warning on stderr, nothing in --json stdout', async () => {
      const {env, home} = fresh()
      const set = await runCli(['secrets', 'set', 'K'], {env, input: 'v'})
      assert.equal(set.code, 0, set.stderr)
      await chmod(home, 0o755)
      const list = await runCli(['secrets', 'list', '--json'], {env})
      assert.equal(list.code, 0, list.stderr)
      assert.doesNotThrow(() => JSON.parse(list.stdout))
      const warnings = list.stderr.match(new RegExp(`Warning: .*${escape(home)}.*chmod 700`, 'g')) ?? []
      assert.equal(warnings.length, 1, list.stderr)
      await chmod(home, 0o700)
      const quiet = await runCli(['secrets', 'list', '--json'], {env})
      assert.equal(quiet.stderr, '')
    })
  })

  it('a temp file left by a crashed write is removed by the next write', async () => {
    const {env, home} = fresh()
    const set = await runCli(['secrets', 'set', 'K'], {env, input: 'v'})
    assert.equal(set.code, 0, set.stderr)
    const leftover = join(home, 'vault.json.999999999.0badf00d.tmp')
    await writeFile(leftover, 'half a vault', {mode: 0o600})
    const again = await runCli(['secrets', 'set', 'K2'], {env, input: 'v2'})
    assert.equal(again.code, 0, again.stderr)
    await assert.rejects(stat(leftover), {code: 'ENOENT'})
    assert.equal((await readFile(join(home, 'vault.json'), 'utf8')).includes('agentvault-vault'), true)
    await rm(join(home, 'nothing'), {force: true})
  })
})
