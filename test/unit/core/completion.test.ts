import fc from 'fast-check'
/**
 * Shell completion (issue 16 §2): the spec derived from the commands' declarations, the names
 * cache the local vault and config.json keep (names only, and only once completion was set up),
 * and the generated scripts fed hostile words in real bash and zsh processes.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {Backend} from '../../../src/core/backend.js'
import type {SecretReference} from '../../../src/core/references.js'

import {BACKEND_KINDS} from '../../../src/core/backend.js'
import {setupLine} from '../../../src/core/completion/install.js'
import {
  changeSecretNames,
  enableNamesCache,
  recordProfileNames,
  recordSecretNames,
} from '../../../src/core/completion/names-cache.js'
import {bashScript, zshScript} from '../../../src/core/completion/script.js'
import {buildCompletionSpec, type DeclaredCommand, isPathFlag} from '../../../src/core/completion/spec.js'
import {updateConfig} from '../../../src/core/config.js'
import {ROOT} from '../../helpers/cli.js'
import {ensureShells} from '../../helpers/clients.js'
import {LocalBackends} from '../../helpers/local-backends.js'

const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {
  commands: Record<string, DeclaredCommand>
}
const commands = Object.values(manifest.commands)
const CANARY = 'canary-7Hq2-names-cache-value'

function ref(name: string): SecretReference {
  return {canonical: `local://${name}`, kind: 'local', path: name, scheme: 'local'}
}

describe('core/completion: spec', () => {
  const spec = buildCompletionSpec(commands)
  const command = (path: string) => {
    const found = spec.commands.find((item) => item.path === path)
    assert.ok(found, path)
    return found
  }

  const flag = (path: string, long: string) => {
    const found = command(path).flags.find((item) => item.long === long)
    assert.ok(found, `${path} --${long}`)
    return found
  }

  it('completes files for every flag that takes a path (by name, help value, or what it says it reads)', () => {
    // Flags whose help mentions a file or socket without taking one.
    const notPaths = new Set(['login:sanctum --host'])
    for (const [id, declared] of Object.entries(manifest.commands))
      for (const declaredFlag of Object.values(declared.flags ?? {})) {
        if (!declaredFlag || declaredFlag.type !== 'option' || notPaths.has(`${id} --${declaredFlag.name}`))
          continue
        const says = `${declaredFlag.summary ?? ''} ${declaredFlag.description ?? ''}`
        if (/\bfile\b|Unix socket|executable/i.test(says) || /-(file|path)$/.test(declaredFlag.name))
          assert.ok(isPathFlag(declaredFlag), `${id} --${declaredFlag.name} takes a path: mark it (spec.ts)`)
      }

    for (const [path, long] of [
      ['run', 'env-file'],
      ['secrets set', 'from-file'],
      ['inject', 'in-file'],
      ['call', 'cacert'],
    ])
      assert.equal(flag(path as string, long as string).value?.dynamic, 'files', `${path} --${long}`)
    assert.equal(command('secrets import').args[0]?.dynamic, 'files')
  })

  it('offers option values, profile names, secret names and the kinds where they belong', () => {
    assert.deepEqual(flag('run', 'mask').value?.words, ['auto', 'always', 'never'])
    assert.equal(flag('run', 'profile').value?.dynamic, 'profiles')
    assert.equal(flag('secrets list', 'profile').char, 'p')
    assert.equal(flag('run', 'clean-env').value, undefined)
    assert.equal(flag('call', 'bearer').value?.dynamic, 'secrets')
    assert.equal(flag('audit', 'secret').value?.dynamic, 'secrets')
    assert.deepEqual(command('login').args[0]?.words, [...BACKEND_KINDS])
    for (const path of ['secrets get', 'secrets delete', 'secrets rm', 'secrets rename', 'use'])
      assert.equal(command(path).args[0]?.dynamic, 'secrets', path)
    assert.equal(command('secrets rename').args[1]?.dynamic, 'none')
    assert.equal(command('profiles use').args[0]?.dynamic, 'profiles')
    assert.equal(command('profiles add').args[0]?.dynamic, 'none')
    assert.ok(command('run').exec)
    assert.ok(!command('call').exec)
  })

  it('completes login kinds from `login KIND` subcommands too (one command per kind)', () => {
    const perKind = buildCompletionSpec([
      {args: {}, flags: {}, id: 'login', summary: 'Sign in to the active profile.'},
      ...BACKEND_KINDS.map((kind) => ({
        args: {},
        flags: {},
        id: `login:${kind}`,
        summary: `Sign in to ${kind}.`,
      })),
    ])
    assert.deepEqual(
      perKind.tree.get('login')?.map((item) => item.word),
      [...BACKEND_KINDS].sort(),
    )
    assert.deepEqual(
      perKind.tree.get('')?.map((item) => item.word),
      ['login'],
    )
  })

  it('leaves hidden commands and flags out; aliases complete like their command', () => {
    const built = buildCompletionSpec([
      {flags: {secret: {hidden: true, name: 'secret', type: 'option'}}, hidden: false, id: 'a'},
      {hidden: true, id: 'b'},
      {aliases: ['c:d'], id: 'c:e'},
    ])
    assert.deepEqual(
      built.tree.get('')?.map((item) => item.word),
      ['a', 'c'],
    )
    assert.deepEqual(
      built.tree.get('c')?.map((item) => item.word),
      ['d', 'e'],
    )
    assert.deepEqual(
      built.commands.find((item) => item.path === 'a')?.flags.map((item) => item.long),
      ['help'],
    )
  })
})

describe('core/completion: names cache', () => {
  const locals = new LocalBackends('agentvault-names-')
  const backend = (): Backend => locals.backend()

  beforeEach(() => locals.setUp())

  afterEach(() => locals.tearDown())

  const cached = async (file: string): Promise<string[] | undefined> =>
    existsSync(join(locals.home, 'completion', file))
      ? (await readFile(join(locals.home, 'completion', file), 'utf8')).split('\n').filter(Boolean)
      : undefined

  it('is not written until completion was set up: the vault keeps its names sealed', async () => {
    const b = backend()
    await b.set!(ref('OPENAI_KEY'), Buffer.from(CANARY), {})
    await b.list!()
    await updateConfig(locals.home, (config) => {
      config.profiles['prod-bao'] = {address: 'https://bao.example.com', kind: 'openbao'}
    })
    assert.ok(!existsSync(join(locals.home, 'completion')))
    assert.ok(!(await readFile(join(locals.home, 'vault.json'), 'utf8')).includes('OPENAI_KEY'))
  })

  it('follows every change of the local vault, with names only (0600)', async () => {
    await enableNamesCache(locals.home)
    const b = backend()
    await b.set!(ref('OPENAI_KEY'), Buffer.from(CANARY), {description: `${CANARY} description`})
    await b.set!(ref('team/db'), Buffer.from(`${CANARY}-db`), {})
    assert.deepEqual(await cached('local-secrets'), ['OPENAI_KEY', 'team/db'])
    await b.rename!(ref('team/db'), ref('team/database'), {})
    assert.deepEqual(await cached('local-secrets'), ['OPENAI_KEY', 'team/database'])
    await b.delete!(ref('OPENAI_KEY'))
    assert.deepEqual(await cached('local-secrets'), ['team/database'])
    await b.setMany!([{reference: ref('IMPORTED'), value: Buffer.from(CANARY)}], {})
    assert.deepEqual(await cached('local-secrets'), ['IMPORTED', 'team/database'])
    // A stale cache (written by hand, or by another version) is put right by the next read.
    await writeFile(join(locals.home, 'completion', 'local-secrets'), 'GONE\n')
    await backend().list!()
    assert.deepEqual(await cached('local-secrets'), ['IMPORTED', 'team/database'])
    const file = join(locals.home, 'completion', 'local-secrets')
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    for (const name of await readdir(join(locals.home, 'completion')))
      assert.ok(!(await readFile(join(locals.home, 'completion', name), 'utf8')).includes('canary'), name)
  })

  it('lists the configured profiles after config.json changes', async () => {
    await enableNamesCache(locals.home)
    await updateConfig(locals.home, (config) => {
      config.profiles['prod-bao'] = {address: 'https://bao.example.com', kind: 'openbao'}
      config.profiles.ci = {kind: 'local'}
    })
    assert.deepEqual(await cached('profiles'), ['ci', 'prod-bao'])
  })

  it('holds exactly the names given, one a line: never a control character, never a partial line', async () => {
    await enableNamesCache(locals.home)
    await fc.assert(
      fc.asyncProperty(fc.array(fc.string({unit: 'binary'}), {maxLength: 12}), async (names) => {
        await recordSecretNames(locals.home, names)
        const expected = [
          ...new Set(names.filter((name) => name !== '' && !/[\u0000-\u001F\u007F]/.test(name))),
        ].sort()
        const text = await readFile(join(locals.home, 'completion', 'local-secrets'), 'utf8')
        assert.equal(text, expected.map((name) => `${name}\n`).join(''))
        await changeSecretNames(locals.home, {added: ['x\ny'], removed: expected.slice(0, 1)})
        assert.deepEqual(await cached('local-secrets'), expected.slice(1))
        await recordProfileNames(locals.home, names)
      }),
      {numRuns: 60},
    )
  })

  it('a locals.home that cannot be written leaves the command working', async () => {
    await enableNamesCache(locals.home)
    await rm(join(locals.home, 'completion'), {recursive: true})
    await writeFile(join(locals.home, 'completion'), 'not a folder')
    const b = backend()
    await b.set!(ref('STILL_WORKS'), Buffer.from('v'), {})
    assert.equal((await b.get!(ref('STILL_WORKS'))).toString(), 'v')
  })
})

describe('core/completion: scripts under hostile input', function () {
  this.timeout(120_000)
  let root: string
  let bashFile: string
  let zshFile: string
  const spec = buildCompletionSpec(commands)

  before(async () => {
    ensureShells()
    root = await mkdtemp(join(tmpdir(), 'agentvault-compl-'))
    bashFile = join(root, 'agentvault.bash')
    zshFile = join(root, '_agentvault')
    await writeFile(bashFile, bashScript(spec))
    await writeFile(zshFile, zshScript(spec))
    await mkdir(join(root, 'home', 'completion'), {recursive: true})
  })

  after(() => rm(root, {force: true, recursive: true}))

  /** Words with shell syntax that would run something if a script ever evaluated them. */
  const hostileWord = fc.oneof(
    fc.constantFrom(
      '',
      '--',
      '-',
      '--mask',
      '--mask=',
      '--env-file',
      '-p',
      'run',
      'secrets',
      'get',
      'login',
      'local://',
      '=',
      ':',
      '$(touch PWNED)',
      '`touch PWNED`',
      "'; touch PWNED; '",
      '"; touch PWNED; "',
      '$((1/0))',
      // eslint-disable-next-line no-template-curly-in-string -- shell syntax, not a template
      '${PATH:?}',
      '*',
      '\\',
      '!!',
      'a\nb',
    ),
    fc.string({maxLength: 12}),
  )

  it('bash and zsh never evaluate the words typed, and never fail, whatever they are', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(hostileWord, {maxLength: 6}), hostileWord, async (before, current) => {
        const words = ['agentvault', ...before, current]
        const env = {AGENTVAULT_HOME: join(root, 'home'), HOME: root, PATH: process.env.PATH ?? ''}
        const bash = spawnSync(
          'bash',
          [
            '-c',
            // eslint-disable-next-line no-template-curly-in-string -- shell syntax, not a template
            'source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _agentvault',
            bashFile,
            ...words,
          ],
          {cwd: root, encoding: 'utf8', env},
        )
        assert.equal(bash.status, 0, bash.stderr)
        assert.equal(bash.stderr, '')
        const zsh = spawnSync(
          'zsh',
          [
            '-f',
            '-c',
            'compdef() { :; }; compadd() { :; }; _files() { :; }; _normal() { :; }; compset() { :; }; source "$0"; words=("$@"); CURRENT=$#; _agentvault',
            zshFile,
            ...words,
          ],
          {cwd: root, encoding: 'utf8', env},
        )
        assert.equal(zsh.status, 0, zsh.stderr)
        assert.equal(zsh.stderr, '')
        assert.ok(!existsSync(join(root, 'PWNED')), `evaluated: ${JSON.stringify(words)}`)
      }),
      {numRuns: 80},
    )
  })

  it('login kinds complete once each, from `login KIND` subcommands and the kind argument alike', async () => {
    const perKind = buildCompletionSpec([
      {args: {kind: {name: 'kind', options: [...BACKEND_KINDS]}}, flags: {}, id: 'login'},
      ...BACKEND_KINDS.map((kind) => ({
        args: {},
        flags: {},
        id: `login:${kind}`,
        summary: `Sign in to ${kind}.`,
      })),
    ])
    const file = join(root, 'per-kind.bash')
    await writeFile(file, bashScript(perKind))
    const bash = spawnSync(
      'bash',
      [
        '-c',
        // eslint-disable-next-line no-template-curly-in-string -- shell syntax, not a template
        'source "$0"; COMP_WORDS=(agentvault login ""); COMP_CWORD=2; COMP_LINE="agentvault login "; COMP_POINT=17; _agentvault; printf "%s\\n" "${COMPREPLY[@]}"',
        file,
      ],
      {encoding: 'utf8'},
    )
    assert.equal(bash.status, 0, bash.stderr)
    assert.deepEqual(bash.stdout.split('\n').filter(Boolean).sort(), [...BACKEND_KINDS].sort())
    const zshFilePerKind = join(root, '_per_kind')
    await writeFile(zshFilePerKind, zshScript(perKind))
    const zsh = spawnSync(
      'zsh',
      [
        '-f',
        '-c',
        // eslint-disable-next-line no-template-curly-in-string -- shell syntax, not a template
        'compdef() { :; }; compadd() { local -a a; a=("$@"); print -rl -- "${(@)a[${a[(i)--]}+1,-1]}"; }; source "$0"; words=(agentvault login ""); CURRENT=3; _agentvault',
        zshFilePerKind,
      ],
      {encoding: 'utf8'},
    )
    assert.equal(zsh.status, 0, zsh.stderr)
    assert.deepEqual(zsh.stdout.split('\n').filter(Boolean).sort(), [...BACKEND_KINDS].sort())
  })

  it('the startup line ends with a newline, and quotes the cache path', () => {
    for (const shell of ['bash', 'zsh'] as const) {
      const line = setupLine(shell, '/tmp/a dir/$HOME/`x`')
      assert.ok(line.startsWith('\n') && line.endsWith('\n'), JSON.stringify(line))
      assert.equal(line.trim().split('\n').length, 1)
      assert.ok(line.includes('"/tmp/a dir/\\$HOME/\\`x\\`/autocomplete/'), line)
    }
  })
})
