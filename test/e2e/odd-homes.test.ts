/**
 * Through the built binary: AGENTVAULT_HOME as an unlucky user or a hostile setup leaves it — a
 * regular file, a path through a file, a name too long for the system, a symbolic link to the real
 * directory, a name with spaces, a newline and non-ASCII characters, a read-only bind mount, files
 * this user may not read (as an unprivileged user: root reads everything). Every command ends with a
 * §9 code and `Error:` / `Try this:` — never exit 1 ("a bug") — and one that can work does.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawn} from 'node:child_process'
import {chmod, chown, mkdir, readFile, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {
  baseEnv,
  BIN,
  type CliResult,
  collect,
  ROOT,
  runCli,
  tempHome,
  withNodeOnPath,
} from '../helpers/cli.js'
import {digestOf} from '../helpers/e2e.js'

/** Commands that read or write the home, each with its stdin. */
const COMMANDS: Array<{args: string[]; input?: string}> = [
  {args: ['secrets', 'list']},
  {args: ['secrets', 'get', 'A', '--reveal']},
  {args: ['secrets', 'set', 'A'], input: 'new-value'},
  {args: ['secrets', 'delete', 'A', '--yes']},
  {args: ['secrets', 'import', '-'], input: 'X=1\n'},
  {args: ['profiles', 'list']},
  {args: ['profiles', 'add', 'p', '--kind', 'openbao', '--set', 'address=https://bao.example.com']},
  {args: ['status']},
  {args: ['audit']},
  {args: ['audit', 'verify']},
  {args: ['logout', 'openbao']},
  {args: ['run', '--env', 'K=local://A', '--', 'node', '-e', '0']},
]

function expectExplainedFailure(result: CliResult, what: string, code = 3): void {
  assert.equal(result.code, code, `${what}: exit ${result.code}\n${result.stderr}`)
  assert.equal(result.stdout, '', what)
  assert.match(result.stderr, /^Error: .+\nTry this: .+/m, what)
  assert.doesNotMatch(result.stderr, /bug in agentvault/, what)
}

describe('e2e: odd homes (a file, a path through a file, too long, a link, odd names, read-only, unreadable)', function () {
  this.timeout(120_000)
  let t: Awaited<ReturnType<typeof tempHome>>

  before(async () => {
    t = await tempHome()
  })

  after(() => t.dispose())

  async function seeded(home: string): Promise<NodeJS.ProcessEnv> {
    const env = {...t.env, AGENTVAULT_HOME: home}
    const stored = await runCli(['secrets', 'set', 'A'], {env, input: 'a-value'})
    assert.equal(stored.code, 0, stored.stderr)
    return env
  }

  it('a home that is a regular file: exit 3 saying it is not a directory, the file untouched', async () => {
    const file = join(t.home, 'home-is-a-file')
    await writeFile(file, 'not a directory\n', {mode: 0o600})
    const env = {...t.env, AGENTVAULT_HOME: file}
    for (const {args, input} of COMMANDS) {
      const result = await runCli(args, {env, input})
      expectExplainedFailure(result, args.join(' '))
      assert.match(result.stderr, /not a directory/, args.join(' '))
    }

    assert.equal(await readFile(file, 'utf8'), 'not a directory\n')
  })

  it('a home below a regular file, or with a name too long: exit 3 with Error and Try this', async () => {
    const file = join(t.home, 'a-file')
    await writeFile(file, '')
    for (const home of [join(file, 'home'), join(t.home, 'x'.repeat(300)), t.home + '/y'.repeat(2500)]) {
      const env = {...t.env, AGENTVAULT_HOME: home}
      for (const {args, input} of COMMANDS) {
        const result = await runCli(args, {env, input})
        expectExplainedFailure(result, `${args.join(' ')} (home ${home.slice(0, 60)}…)`)
      }
    }
  })

  it('a symbolic link to the home directory works, and the files land in the directory', async () => {
    const real = join(t.home, 'real-home')
    await mkdir(real, {mode: 0o700})
    const link = join(t.home, 'linked-home')
    await symlink(real, link)
    const env = await seeded(link)
    const got = await runCli(['secrets', 'get', 'A', '--reveal'], {env})
    assert.equal(got.stdout, 'a-value')
    assert.ok((await readFile(join(real, 'vault.json'))).length > 0)
    const verify = await runCli(['audit', 'verify'], {env})
    assert.equal(verify.code, 0, verify.stderr)
  })

  it('a home whose path has spaces, a newline, unicode and shell characters works end to end', async () => {
    const home = join(t.home, 'my home\nwith $(id) `x` "q" \'s\' hömé 🔥')
    const env = await seeded(home)
    const file = join(home, 'value file\n🔑.txt')
    await writeFile(file, 'from-file\n')
    for (const [args, input] of [
      [['secrets', 'set', 'F', '--from-file', file], ''],
      [['secrets', 'import', '-', '--overwrite'], 'B=b\n'],
      [['profiles', 'add', 'p', '--kind', 'openbao', '--set', 'address=https://bao.example.com'], ''],
      [['audit', 'verify'], ''],
    ] as const) {
      const result = await runCli([...args], {env, input})
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
    }

    const run = await runCli(
      ['run', '--env', 'K=local://F', '--', 'node', '-e', 'process.stdout.write(process.env.K)'],
      {
        env: {...env, AGENTVAULT_MASK: 'never'},
      },
    )
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stdout, 'from-file')
  })

  describe('a read-only bind mount of the home', () => {
    let home: string
    let mounted = false
    let env: NodeJS.ProcessEnv

    before(async function () {
      if (process.getuid?.() !== 0) {
        console.warn('skipped: a bind mount needs root (CI runs as root)')
        this.skip()
      }

      const source = join(t.home, 'ro-source')
      await seeded(source)
      home = join(t.home, 'ro-home')
      await mkdir(home, {mode: 0o700})
      try {
        execFileSync('mount', ['--bind', '-o', 'ro', source, home], {stdio: 'pipe'})
        // Older util-linux ignores ro on the first bind: remount it read-only explicitly.
        execFileSync('mount', ['-o', 'remount,bind,ro', home], {stdio: 'pipe'})
      } catch (error) {
        console.warn(`skipped: mount --bind is not permitted here: ${(error as Error).message}`)
        this.skip()
      }

      mounted = true
      env = {...t.env, AGENTVAULT_HOME: home}
    })

    after(() => {
      if (mounted) execFileSync('umount', ['-l', home])
    })

    it('writers exit 3 naming the read-only filesystem; readers still read; nothing changed', async () => {
      const before = await digestOf(join(home, 'vault.json'))
      for (const {args, input} of COMMANDS) {
        const result = await runCli(args, {env, input})
        const what = args.join(' ')
        assert.notEqual(result.code, 1, `${what}: ${result.stderr}`)
        assert.doesNotMatch(result.stderr, /bug in agentvault/, what)
        if (result.code !== 0) {
          assert.ok([3, 6].includes(result.code ?? -1), `${what}: exit ${result.code}\n${result.stderr}`)
          assert.match(result.stderr, /^Error: .+\nTry this: .+/m, what)
        }
      }

      const got = await runCli(['secrets', 'get', 'A', '--reveal'], {env})
      assert.equal(got.stdout, 'a-value')
      const set = await runCli(['secrets', 'set', 'A'], {env, input: 'other'})
      expectExplainedFailure(set, 'secrets set')
      assert.match(set.stderr, /read-only/)
      assert.equal(await digestOf(join(home, 'vault.json')), before)
    })
  })

  describe('files this user may not read (an unprivileged user; root reads everything)', () => {
    let home: string
    let env: NodeJS.ProcessEnv

    before(async function () {
      if (process.getuid?.() !== 0) {
        console.warn('skipped: needs root to act as another user')
        this.skip()
      }

      try {
        execFileSync('setpriv', ['--version'], {stdio: 'pipe'})
      } catch {
        console.warn('skipped: setpriv is not installed')
        this.skip()
      }

      const parent = join(t.home, 'nobody')
      await mkdir(parent, {mode: 0o755})
      await chmod(t.home, 0o755) // nobody must reach its home
      home = join(parent, 'home')
      env = await seeded(home)
      execFileSync('chown', ['-R', '65534:65534', home])
    })

    function asNobody(args: string[], input = ''): Promise<CliResult> {
      const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', BIN, ...args], {
        cwd: ROOT,
        env: withNodeOnPath(baseEnv(env)),
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      child.stdin.end(input)
      return collect(child)
    }

    for (const file of ['vault.json', 'vault.key', 'audit.log', 'config.json', '.']) {
      it(`${file === '.' ? 'the home itself' : file} unreadable (mode 000): exit 3 or the read still works, never exit 1`, async () => {
        const path = join(home, file)
        if (file === 'config.json') {
          await writeFile(path, '{}\n')
          await chown(path, 65_534, 65_534)
        }

        await chmod(path, 0o000)
        try {
          for (const {args, input} of COMMANDS) {
            const result = await asNobody(args, input)
            const what = `${args.join(' ')} (${file} mode 000)`
            assert.notEqual(result.code, 1, `${what}: ${result.stderr}`)
            assert.doesNotMatch(result.stderr, /bug in agentvault/, what)
            if (result.code !== 0) assert.match(result.stderr, /^Error: .+\nTry this: .+/m, what)
          }
        } finally {
          await chmod(path, file === '.' ? 0o700 : 0o600)
        }
      })
    }
  })
})
