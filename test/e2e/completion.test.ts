/**
 * Issue 16 §2: shell completion. The scripts `agentvault autocomplete` writes are loaded the way
 * its instructions say (the startup line appended to ~/.bashrc / ~/.zshrc) into real bash and zsh
 * processes; bash's completion function is called with COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT
 * as readline sets them, zsh's with `words`/CURRENT and compadd, _files and _normal standing in
 * for the completion widgets; and a few completions are typed into interactive shells on a real
 * terminal. Profile and secret names come from the names cache the built binary keeps.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {mkdir, readdir, readFile, stat, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {BIN, collect, nodeDir, ROOT, runCli, tempHome} from '../helpers/cli.js'
import {ensureShells} from '../helpers/clients.js'
import {watchOutput} from '../helpers/e2e.js'

const CANARY = 'canary-Zq8vT3-completion-value'
const PTY_RUN = join(ROOT, 'test', 'helpers', 'pty-run.py')

/** Stand-ins for zsh's completion widgets: each prints what it was asked to offer. */
const ZSH_STUBS = `
compadd() { local -a a; a=("$@"); print -rl -- "\${(@)a[\${a[(i)--]}+1,-1]}"; }
_files() { print -r -- "<files>"; }
_normal() { print -r -- "<normal $CURRENT \${(j:|:)words}>"; }
compset() { print -r -- "<compset $*>"; }
`

describe('e2e: shell completion (bash and zsh)', function () {
  this.timeout(120_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let env: NodeJS.ProcessEnv
  let work: string

  /** Run `script` in `shell` with the test's HOME (and agentvault on PATH); stdout. */
  async function inShell(shell: 'bash' | 'zsh', script: string, args: string[] = []): Promise<string> {
    const flags = shell === 'zsh' ? ['-f', '-c', script, 'zsh'] : ['-c', script, 'bash']
    const child = spawn(shell, [...flags, ...args], {cwd: work, env, stdio: ['ignore', 'pipe', 'pipe']})
    const result = await collect(child)
    assert.equal(result.code, 0, `${shell}: ${result.stderr}`)
    assert.equal(result.stderr, '', `${shell} printed warnings`)
    return result.stdout
  }

  /**
   * bash's replies for the words readline would make of a line (`=` and `:` are words of their
   * own: COMP_WORDBREAKS), with the cursor at the end of `line`.
   */
  async function bashComplete(words: string[], line = words.join(' ')): Promise<string[]> {
    const script = `source ~/.bashrc
COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMP_LINE=$LINE; COMP_POINT=\${#LINE}
_agentvault
printf '%s\\n' "\${COMPREPLY[@]}"`
    const saved = env.LINE
    env.LINE = line
    try {
      return (await inShell('bash', script, words)).split('\n').filter((word) => word !== '')
    } finally {
      env.LINE = saved
    }
  }

  /** What zsh's `_agentvault` offers for `words` (the last one under the cursor). */
  async function zshComplete(words: string[]): Promise<string[]> {
    const script = `source ~/.zshrc
${ZSH_STUBS}
words=("$@"); CURRENT=$#
_agentvault`
    return (await inShell('zsh', script, words)).split('\n').filter((word) => word !== '')
  }

  before(async function () {
    this.timeout(300_000)
    ensureShells()
    t = await tempHome()
    const bin = join(t.home, 'bin')
    work = join(t.home, 'work')
    await mkdir(bin, {recursive: true})
    await mkdir(join(work, 'envs'), {recursive: true})
    await symlink(BIN, join(bin, 'agentvault'))
    for (const file of ['.env.agentvault', 'notes.txt', 'readme.md'])
      await writeFile(join(work, file), 'X=1\n')
    env = {
      ...t.env,
      HOME: t.home,
      PATH: `${bin}:${nodeDir()}:${process.env.PATH ?? ''}`,
      XDG_CACHE_HOME: join(t.home, 'cache'),
      ZDOTDIR: t.home,
    }
    // An earlier line without a trailing newline: the appended setup must still stand on its own.
    await writeFile(join(t.home, '.bashrc'), 'export EARLIER=1')

    for (const shell of ['bash', 'zsh']) {
      const setup = await runCli(['autocomplete', shell], {env})
      assert.equal(setup.code, 0, setup.stderr)
      const rc = shell === 'bash' ? '~/.bashrc' : '~/.zshrc'
      const instruction = `agentvault autocomplete script ${shell} >> ${rc}; source ${rc}`
      assert.ok(setup.stdout.includes(instruction), setup.stdout)
      // The instruction, as the user pastes it (in the shell it is for).
      await inShell(shell as 'bash' | 'zsh', instruction)
    }

    const set = await runCli(['secrets', 'set', 'OPENAI_API_KEY'], {env, input: CANARY})
    assert.equal(set.code, 0, set.stderr)
    for (const name of ['DEPLOY_KEY', 'team/old_name']) {
      const other = await runCli(['secrets', 'set', name], {env, input: `${CANARY}-${name}`})
      assert.equal(other.code, 0, other.stderr)
    }

    const renamed = await runCli(['secrets', 'rename', 'team/old_name', 'team/db_password'], {env})
    assert.equal(renamed.code, 0, renamed.stderr)
    const added = await runCli(
      ['profiles', 'add', 'prod-bao', '--kind', 'openbao', '--set', 'address=https://bao.example.com:8200'],
      {env},
    )
    assert.equal(added.code, 0, added.stderr)
  })

  after(() => t?.dispose())

  describe('setup', () => {
    it('the line appended to ~/.bashrc ends with a newline (and starts on a line of its own)', async () => {
      const bashrc = await readFile(join(t.home, '.bashrc'), 'utf8')
      assert.ok(bashrc.startsWith('export EARLIER=1\n'), JSON.stringify(bashrc))
      assert.ok(bashrc.endsWith('# agentvault autocomplete setup\n'), JSON.stringify(bashrc))
      // Appending once more leaves every line whole.
      await inShell(
        'bash',
        'agentvault autocomplete script bash >> ~/.bashrc; echo "export LATER=1" >> ~/.bashrc',
      )
      const lines = (await readFile(join(t.home, '.bashrc'), 'utf8')).split('\n')
      assert.deepEqual(
        lines.filter((line) => line !== ''),
        [
          'export EARLIER=1',
          lines.find((line) => line.includes('# agentvault autocomplete setup')),
          lines.find((line) => line.includes('# agentvault autocomplete setup')),
          'export LATER=1',
        ],
      )
      assert.match(
        await inShell('bash', 'source ~/.bashrc; complete -p agentvault'),
        /-F _agentvault agentvault/,
      )
    })

    it('--json says what it wrote; the names cache is 0700/0600', async () => {
      const result = await runCli(['autocomplete', 'zsh', '--json'], {env})
      assert.equal(result.code, 0, result.stderr)
      const parsed = JSON.parse(result.stdout) as {files: string[]; namesCache: string; shell: string}
      assert.equal(parsed.shell, 'zsh')
      assert.equal(parsed.namesCache, join(t.env.AGENTVAULT_HOME as string, 'completion'))
      assert.equal((await stat(parsed.namesCache)).mode & 0o777, 0o700)
      for (const file of await readdir(parsed.namesCache))
        assert.equal((await stat(join(parsed.namesCache, file))).mode & 0o777, 0o600, file)
    })

    it('writes no file or folder others could change, whatever the umask (compinit would refuse it)', async () => {
      await inShell(
        'bash',
        'umask 000; XDG_CACHE_HOME=$HOME/cache-umask agentvault autocomplete zsh --refresh-cache',
      )
      const dir = join(t.home, 'cache-umask', 'agentvault', 'autocomplete')
      for (const path of [
        dir,
        join(dir, 'functions', 'zsh'),
        join(dir, 'functions', 'zsh', '_agentvault'),
        join(dir, 'functions', 'bash', 'agentvault.bash'),
        join(dir, 'zsh_setup'),
      ])
        assert.equal((await stat(path)).mode & 0o022, 0, path)
      // zsh's own check finds nothing insecure (it prints what is, and fails).
      assert.equal(
        await inShell(
          'zsh',
          `fpath=(${join(dir, 'functions', 'zsh')} $fpath); autoload -Uz compaudit; compaudit`,
        ),
        '',
      )
    })

    it('an unknown shell is a usage error (exit 2); without one, $SHELL says which', async () => {
      const result = await runCli(['autocomplete', 'fish'], {env})
      assert.equal(result.code, 2, result.stderr)
      assert.match(result.stderr, /Error: /)
      const fromEnv = await runCli(['autocomplete'], {env: {...env, SHELL: '/usr/bin/zsh'}})
      assert.equal(fromEnv.code, 0, fromEnv.stderr)
      assert.ok(fromEnv.stdout.includes('agentvault autocomplete script zsh >> ~/.zshrc'), fromEnv.stdout)
      const unknown = await runCli(['autocomplete'], {env: {...env, SHELL: '/usr/bin/fish'}})
      assert.equal(unknown.code, 2, unknown.stderr)
      assert.match(
        unknown.stderr,
        /^Error: Cannot tell which shell to set up \(SHELL is fish\)\nTry this: .*autocomplete bash/m,
      )
    })
  })

  for (const shell of ['bash', 'zsh'] as const) {
    const complete = (words: string[]): Promise<string[]> =>
      shell === 'bash' ? bashComplete(words) : zshComplete(words)

    describe(shell, () => {
      it('completes commands and subcommands', async () => {
        const top = await complete(['agentvault', ''])
        for (const word of ['secrets', 'run', 'login', 'profiles', 'audit', 'autocomplete'])
          assert.ok(top.includes(word), word)
        if (shell === 'bash')
          assert.deepEqual(await complete(['agentvault', 'secrets', 'ge']), ['generate', 'get'])
        const secrets = await complete(['agentvault', 'secrets', ''])
        for (const word of ['get', 'set', 'list', 'delete', 'rename', 'import'])
          assert.ok(secrets.includes(word), word)
        assert.ok(!secrets.includes('run'))
      })

      it('completes backend kinds after login', async () => {
        const kinds = await complete(['agentvault', 'login', ''])
        for (const kind of ['local', 'sanctum', 'agentsecrets', 'openbao', 'agentauth'])
          assert.ok(kinds.includes(kind), kind)
      })

      it('completes flags, and option values: --mask auto|always|never', async () => {
        const flags = await complete(['agentvault', 'run', '--'])
        for (const flag of ['--env', '--env-file', '--mask', '--profile', '--'])
          assert.ok(flags.includes(flag), flag)
        assert.deepEqual((await complete(['agentvault', 'run', '--mask', ''])).sort(), [
          'always',
          'auto',
          'never',
        ])
        assert.deepEqual((await complete(['agentvault', 'audit', '--status', ''])).sort(), [
          'denied',
          'error',
          'ok',
        ])
      })

      it('completes profile names: configured ones and the kinds', async () => {
        const profiles = await complete(['agentvault', 'secrets', 'list', '--profile', ''])
        for (const name of ['prod-bao', 'local', 'openbao']) assert.ok(profiles.includes(name), name)
        assert.ok((await complete(['agentvault', 'profiles', 'use', ''])).includes('prod-bao'))
        if (shell === 'bash')
          assert.deepEqual(await complete(['agentvault', 'run', '-p', 'pr']), ['prod-bao'])
      })

      it('completes secret names of the local vault, kept up to date by the commands that change them', async () => {
        const names = await complete(['agentvault', 'secrets', 'get', ''])
        assert.deepEqual(names.sort(), ['DEPLOY_KEY', 'OPENAI_API_KEY', 'team/db_password'])
        const deleted = await runCli(['secrets', 'delete', 'DEPLOY_KEY', '--yes'], {env})
        assert.equal(deleted.code, 0, deleted.stderr)
        assert.deepEqual((await complete(['agentvault', 'secrets', 'get', ''])).sort(), [
          'OPENAI_API_KEY',
          'team/db_password',
        ])
        const again = await runCli(['secrets', 'set', 'DEPLOY_KEY'], {env, input: `${CANARY}-DEPLOY_KEY`})
        assert.equal(again.code, 0, again.stderr)
        assert.ok((await complete(['agentvault', 'use', ''])).includes('DEPLOY_KEY'))
      })

      it('completes file names where a flag or argument takes a path', async () => {
        if (shell === 'bash') {
          assert.deepEqual(await complete(['agentvault', 'run', '--env-file', '.env']), ['.env.agentvault'])
          assert.deepEqual(await complete(['agentvault', 'secrets', 'set', 'K', '--from-file', 'not']), [
            'notes.txt',
          ])
          assert.deepEqual(await complete(['agentvault', 'secrets', 'import', 'not']), ['notes.txt'])
          assert.deepEqual(await complete(['agentvault', 'inject', '--in-file', 'env']), ['envs'])
        } else {
          assert.deepEqual(await complete(['agentvault', 'run', '--env-file', '']), ['<files>'])
          assert.deepEqual(await complete(['agentvault', 'secrets', 'set', 'K', '--from-file', '']), [
            '<files>',
          ])
          assert.deepEqual(await complete(['agentvault', 'secrets', 'import', '']), ['<files>'])
          assert.deepEqual(await complete(['agentvault', 'run', '--env-file=no']), [
            '<compset -P *=>',
            '<files>',
          ])
        }
      })

      it('completes the command after `run --`, then that command’s arguments', async () => {
        if (shell === 'bash') {
          assert.ok((await complete(['agentvault', 'run', '--', 'ech'])).includes('echo'))
          assert.deepEqual(await complete(['agentvault', 'run', '--mask', 'never', '--', 'cat', 'not']), [
            'notes.txt',
          ])
          // The first word that is not a flag starts the command too, as `run` reads it.
          assert.ok((await complete(['agentvault', 'run', '--env-file', 'x', 'ech'])).includes('echo'))
        } else {
          assert.deepEqual(await complete(['agentvault', 'run', '--', 'ech']), ['<normal 1 ech>'])
          assert.deepEqual(await complete(['agentvault', 'run', '--mask', 'never', '--', 'cat', 'no']), [
            '<normal 2 cat|no>',
          ])
          assert.deepEqual(await complete(['agentvault', 'run', '--env-file', 'x', 'ech']), [
            '<normal 1 ech>',
          ])
        }

        // After `--` nothing is an agentvault flag any more.
        const after = await complete(['agentvault', 'run', '--', 'ls', '--'])
        assert.ok(!after.includes('--env-file'))
      })

      it('never offers a value: the names cache and every completion hold names only', async () => {
        const outputs = await Promise.all([
          complete(['agentvault', 'secrets', 'get', '']),
          complete(['agentvault', 'secrets', 'get', 'OPENAI_API_KEY']),
          complete(['agentvault', 'run', '--env', '']),
        ])
        for (const output of outputs) assert.ok(!output.join('\n').includes(CANARY))
        const dir = join(t.env.AGENTVAULT_HOME as string, 'completion')
        for (const file of await readdir(dir))
          assert.ok(!(await readFile(join(dir, file), 'utf8')).includes('canary'))
      })
    })
  }

  describe('bash: words readline splits at = and :', () => {
    it('--mask=al completes to always (readline replaces the text after =)', async () => {
      assert.deepEqual(
        await bashComplete(['agentvault', 'run', '--mask', '=', 'al'], 'agentvault run --mask=al'),
        ['always'],
      )
      assert.deepEqual(
        (await bashComplete(['agentvault', 'run', '--mask', '='], 'agentvault run --mask=')).sort(),
        ['always', 'auto', 'never'],
      )
    })

    it('local://OP completes the secret name after the colon', async () => {
      assert.deepEqual(
        await bashComplete(
          ['agentvault', 'secrets', 'get', 'local', ':', '//OP'],
          'agentvault secrets get local://OP',
        ),
        ['//OPENAI_API_KEY'],
      )
    })
  })

  describe('typed at a real terminal', () => {
    const children: ChildProcess[] = []
    // A test that times out waiting leaves its shell behind: end it.
    afterEach(() => {
      for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL')
    })

    const cases: Array<{expect: string; typed: string}> = [
      {expect: 'agentvault run --mask=always', typed: 'agentvault run --mask=al'},
      {expect: 'agentvault secrets get OPENAI_API_KEY', typed: 'agentvault secrets get OP'},
      {expect: 'agentvault run --env-file notes.txt', typed: 'agentvault run --env-file not'},
      {expect: 'agentvault secrets get local://OPENAI_API_KEY', typed: 'agentvault secrets get local://OP'},
    ]
    for (const shell of ['bash', 'zsh'] as const)
      for (const {expect, typed} of cases)
        it(`${shell}: ${typed}<TAB> → ${expect}`, async () => {
          const args = shell === 'bash' ? ['bash', '--rcfile', join(t.home, '.bashrc'), '-i'] : ['zsh', '-i']
          const child = spawn('python3', [PTY_RUN, ...args], {
            cwd: work,
            env: {...env, PS1: '$ ', PROMPT: '$ ', TERM: 'xterm'},
            stdio: ['pipe', 'pipe', 'pipe'],
          })
          children.push(child)
          const output = watchOutput(child)
          const result = collect(child)
          try {
            // Typed once the shell reads its input (the arithmetic shows in the output, not the echo).
            child.stdin.write('echo READY-$((20 + 22))\n')
            await output.until((seen) => seen.includes('READY-42'), 'the shell to start')
            child.stdin.write(`${typed}\t`)
            await output.until(
              (seen) => seen.replaceAll(/\u001B\[[\d;]*m|.\u0008/g, '').includes(expect),
              expect,
            )
          } finally {
            // Ctrl-U empties the line (Ctrl-C would also flush the `exit` typed after it).
            child.stdin.end('\u0015exit\n')
          }

          assert.equal((await result).code, 0)
        })
  })
})
