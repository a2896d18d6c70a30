import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtemp, readdir, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {baseEnv, type CliResult, collect, ROOT, runCli, tempHome, withNodeOnPath} from '../helpers/cli.js'
import {install, pack} from '../helpers/package.js'

type Example = string | {command: string; description?: string}

interface ManifestCommand {
  aliases?: string[]
  description?: string
  examples?: Example[]
  id: string
  summary?: string
}

/** Help wraps and indents; compare texts with whitespace runs collapsed. */
const flat = (text: string): string => text.replaceAll(/\s+/g, ' ').trim()

/** An example as help renders it: the templates filled in. */
function exampleText(example: Example, id: string): string {
  const command = typeof example === 'string' ? example : example.command
  return command
    .replaceAll('<%= config.bin %>', 'agentvault')
    .replaceAll('<%= command.id %>', id.replaceAll(':', ' '))
}

describe('e2e: help, version, completion and the npm package', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let manifest: {commands: Record<string, ManifestCommand>; version: string}
  let version: string

  before(async () => {
    t = await tempHome()
    manifest = JSON.parse(await readFile(join(ROOT, 'oclif.manifest.json'), 'utf8')) as typeof manifest
    version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {version: string}).version
  })

  after(() => t.dispose())

  it('the manifest lists the commands of issue 2', () => {
    const ids = Object.keys(manifest.commands)
    for (const id of [
      'audit',
      'audit:verify',
      'login',
      'logout',
      'profiles:add',
      'profiles:list',
      'profiles:remove',
      'profiles:use',
      'run',
      'secrets:delete',
      'secrets:get',
      'secrets:list',
      'secrets:set',
      'status',
    ])
      assert.ok(ids.includes(id), `${id} is in oclif.manifest.json`)
    assert.equal(manifest.version, version, 'the manifest was generated for this version')
  })

  it('every command has a summary, a description and an example, and `--help` prints them', async function () {
    this.timeout(120_000)
    const commands = Object.values(manifest.commands)
    const helps = await Promise.all(
      commands.map((command) => runCli([...command.id.split(':'), '--help'], {env: t.env})),
    )
    for (const [i, command] of commands.entries()) {
      const help = helps[i] as CliResult
      const {id} = command
      assert.ok(command.summary && command.summary.trim().length > 0, `${id} has a summary`)
      assert.ok(command.description && command.description.trim().length > 0, `${id} has a description`)
      assert.ok((command.examples ?? []).length > 0, `${id} has an example`)

      assert.equal(help.code, 0, `${id} --help: ${help.stderr}`)
      const text = flat(help.stdout)
      assert.ok(text.includes(flat(command.summary)), `${id} --help shows its summary`)
      assert.ok(text.includes(flat(command.description)), `${id} --help shows its description`)
      assert.match(help.stdout, /^EXAMPLES$/m, `${id} --help has an EXAMPLES section`)
      for (const example of command.examples ?? [])
        assert.ok(
          text.includes(flat(exampleText(example, id))),
          `${id} --help shows the example ${exampleText(example, id)}`,
        )
      assert.match(help.stdout, new RegExp(`^USAGE\\n\\s+\\$ agentvault ${id.replaceAll(':', ' ')}`, 'm'))
    }
  })

  it('aliases have help too (whoami, secrets rm), and `help CMD` works', async () => {
    const whoami = await runCli(['whoami', '--help'], {env: t.env})
    assert.equal(whoami.code, 0, whoami.stderr)
    assert.ok(flat(whoami.stdout).includes(flat(manifest.commands.status?.summary ?? '')))
    const rm = await runCli(['secrets', 'rm', '--help'], {env: t.env})
    assert.equal(rm.code, 0, rm.stderr)
    assert.ok(flat(rm.stdout).includes(flat(manifest.commands['secrets:delete']?.summary ?? '')))
    const help = await runCli(['help', 'secrets', 'get'], {env: t.env})
    assert.equal(help.code, 0, help.stderr)
    assert.ok(flat(help.stdout).includes('--reveal'))
  })

  it('`--help` at the top lists the topics and commands', async () => {
    const result = await runCli(['--help'], {env: t.env})
    assert.equal(result.code, 0, result.stderr)
    for (const word of ['secrets', 'profiles', 'audit', 'run', 'status', 'login', 'logout', 'autocomplete'])
      assert.match(result.stdout, new RegExp(`^\\s+${word}\\s`, 'm'), word)
  })

  it('`--version` (and -v, version) prints agentvault/<version> <platform>-<arch> node-<version>', async () => {
    for (const flag of ['--version', '-v', 'version']) {
      const result = await runCli([flag], {env: t.env})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(
        result.stdout,
        `agentvault/${version} ${process.platform}-${process.arch} node-${process.version}\n`,
      )
    }
  })

  it('help for a command that does not exist is answered as an unknown command: Error, Try this, exit 2', async () => {
    for (const [args, message, suggestion] of [
      [['help', 'nope'], 'Unknown command "nope"', 'See `agentvault --help` for the commands.'],
      [['nope', '--help'], 'Unknown command "nope"', 'See `agentvault --help` for the commands.'],
      [
        ['secrets', 'nope', '-h'],
        'Unknown command "secrets nope"',
        'See `agentvault secrets --help` for the commands.',
      ],
      [
        ['help', 'secrts', 'list'],
        'Unknown command "secrts list"',
        'Did you mean `agentvault secrets list`?',
      ],
    ] as const) {
      const result = await runCli([...args], {env: t.env})
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
      assert.equal(result.stdout, '')
      assert.match(result.stderr, new RegExp(`^Error: ${message.replaceAll('"', '"')}$`, 'm'), args.join(' '))
      assert.ok(result.stderr.includes(`Try this: ${suggestion}`), result.stderr)
      assert.doesNotMatch(result.stderr, /›|not found\./)
    }
  })

  it('`version --json` (and --version --json) prints the same as JSON, with the keys oclif uses', async () => {
    for (const flag of ['version', '--version', '-v']) {
      const result = await runCli([flag, '--json'], {env: t.env})
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(JSON.parse(result.stdout), {
        architecture: `${process.platform}-${process.arch}`,
        cliVersion: `agentvault/${version}`,
        nodeVersion: `node-${process.version}`,
      })
    }
  })

  for (const shell of ['bash', 'zsh', 'powershell']) {
    it(`autocomplete ${shell} prints setup instructions (exit 0)`, async () => {
      const env = {...t.env, HOME: t.home, XDG_CACHE_HOME: join(t.home, 'cache')}
      const result = await runCli(['autocomplete', shell], {env})
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stdout, /Setup Instructions for AGENTVAULT CLI Autocomplete/)
      assert.ok(result.stdout.includes(`agentvault autocomplete script ${shell}`))

      // The completion script it points at completes our own commands.
      const script = await runCli(['autocomplete', 'script', shell], {env})
      assert.equal(script.code, 0, script.stderr)
      const cache = join(t.home, 'cache', 'agentvault', 'autocomplete', 'functions', shell)
      const [file] = await readdir(cache)
      assert.ok(file, `a ${shell} completion function was written`)
      const completion = await readFile(join(cache, file), 'utf8')
      for (const word of ['secrets', 'reveal', 'profiles'])
        assert.ok(completion.includes(word), `${shell} completes ${word}`)
    })
  }

  describe('npm pack → npm i -g → agentvault', () => {
    let work: string

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'agentvault-pack-'))
    })

    after(async () => {
      await rm(work, {force: true, recursive: true})
    })

    it('the packed tarball installs globally and runs from another directory', async function () {
      this.timeout(300_000)
      const {files, tarball} = await pack(work)
      for (const expected of ['bin/run.js', 'dist/main.js', 'oclif.manifest.json', 'package.json', 'LICENSE'])
        assert.ok(files.includes(expected), `the tarball holds ${expected}`)
      assert.ok(
        !files.some((file) => file.startsWith('src/') || file.startsWith('test/')),
        'no sources or tests',
      )
      // bin/dev.js runs the TypeScript sources through tsx: it cannot work where the package is installed.
      assert.ok(!files.includes('bin/dev.js'), 'no bin/dev.js')
      const license = await readFile(join(ROOT, 'LICENSE'), 'utf8')
      const {license: declared} = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
        license: string
      }
      assert.equal(declared, 'MIT')
      assert.match(license, /^MIT License\n\nCopyright \(c\) 2026 agentvault contributors\n/)
      assert.match(license, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/)
      await stat(tarball)

      // Prefer the npm cache (filled by `npm ci`), fall back to the registry.
      const bin = await install(tarball, join(work, 'prefix'), {global: true})

      const elsewhere = await mkdtemp(join(work, 'cwd-'))
      const start = (args: string[], input?: string): Promise<CliResult> => {
        const child = spawn(bin, args, {
          cwd: elsewhere,
          env: withNodeOnPath(baseEnv(t.env)),
          stdio: ['pipe', 'pipe', 'pipe'],
        })
        child.stdin.end(input)
        return collect(child)
      }

      const help = await start(['--help'])
      assert.equal(help.code, 0, help.stderr)
      assert.match(help.stdout, /^USAGE\n\s+\$ agentvault \[COMMAND\]/m)
      assert.match(help.stdout, /^TOPICS$/m)
      const setHelp = await start(['secrets', 'set', '--help'])
      assert.equal(setHelp.code, 0, setHelp.stderr)
      const versionOut = await start(['--version'])
      assert.match(versionOut.stdout, new RegExp(`^agentvault/${version.replaceAll('.', '\\.')} `))

      // The main job works from the installed copy too.
      const set = await start(['secrets', 'set', 'PACKED'], 'packed-value')
      assert.equal(set.code, 0, set.stderr)
      const used = await start([
        'run',
        '--env',
        'P=local://PACKED',
        '--',
        process.execPath,
        '-e',
        'console.log(process.env.P)',
      ])
      assert.equal(used.code, 0, used.stderr)
      assert.equal(used.stdout, '<concealed by agentvault>\n')
    })
  })
})
