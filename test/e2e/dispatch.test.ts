/**
 * The dispatcher (src/dispatch/) runs commands without loading oclif; it must not change a byte of
 * what users see. Each case runs twice through the built binary — as dispatched, and with
 * AGENTVAULT_DISPATCH=oclif forcing oclif's own path — and compares stdout, stderr and exit code.
 */
import assert from 'node:assert/strict'
import {readFile, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {type CliResult, collect, ROOT, runCli, startCli, tempHome} from '../helpers/cli.js'

interface DispatchTable {
  commands: Record<string, {id: string; module?: string}>
  topics: string[]
}

const TRACE = join(ROOT, 'test', 'fixtures', 'oclif-trace.mjs')

describe('e2e: commands dispatched without oclif behave as under oclif', function () {
  // About 200 runs of the binary
  this.timeout(600_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let table: DispatchTable
  let traceFile: string

  /** Run `args`; `oclif` forces oclif's path. Also says whether the process loaded oclif. */
  const cli = async (
    args: string[],
    options: {env?: NodeJS.ProcessEnv; input?: string; oclif?: boolean} = {},
  ): Promise<CliResult & {loadedOclif: boolean}> => {
    await rm(traceFile, {force: true})
    const result = await runCli(args, {
      env: {
        ...t.env,
        NODE_OPTIONS: `--import=${pathToFileURL(TRACE).href}`,
        OCLIF_TRACE_FILE: traceFile,
        ...(options.oclif ? {AGENTVAULT_DISPATCH: 'oclif'} : {}),
        ...options.env,
      },
      input: options.input,
    })
    return {...result, loadedOclif: (await readFile(traceFile, 'utf8')) === 'oclif'}
  }

  /** Both paths print the same bytes and exit the same way. */
  const same = async (args: string[], options: {env?: NodeJS.ProcessEnv; input?: string} = {}) => {
    const oclif = await cli(args, {...options, oclif: true})
    const dispatched = await cli(args, options)
    assert.ok(oclif.loadedOclif, 'AGENTVAULT_DISPATCH=oclif did not run oclif')
    const label = `agentvault ${args.join(' ')}`
    assert.equal(dispatched.stdout, oclif.stdout, `${label}: stdout`)
    assert.equal(dispatched.stderr, oclif.stderr, `${label}: stderr`)
    assert.equal(dispatched.code, oclif.code, `${label}: exit code`)
    return dispatched
  }

  before(async () => {
    t = await tempHome()
    traceFile = join(t.home, 'trace')
    table = JSON.parse(await readFile(join(ROOT, 'dist', 'fast', 'dispatch.json'), 'utf8')) as DispatchTable
    for (const [name, value] of [
      ['K', 'value-of-k'],
      ['SIGN', 'hmac-key-for-tests'],
    ]) {
      const stored = await runCli(['secrets', 'set', name!], {env: t.env, input: value})
      assert.equal(stored.code, 0, stored.stderr)
    }
  })

  after(() => t.dispose())

  it('--help of the root, every topic, every command and alias is oclif’s own text, without oclif', async () => {
    const subjects = ['', ...table.topics, ...Object.keys(table.commands)]
    for (const subject of new Set(subjects)) {
      const args = [...(subject === '' ? [] : subject.split(':')), '--help']
      const result = await same(args)
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
      assert.ok(!result.loadedOclif, `agentvault ${args.join(' ')} loaded oclif`)
      assert.ok(result.stdout.length > 0, `agentvault ${args.join(' ')} printed no help`)
    }

    // No arguments, -h, help flags after other words, `help` itself
    for (const args of [
      [],
      ['-h'],
      ['secrets', 'list', '-h'],
      ['secrets', 'set', 'NAME', '--json', '--help'],
      ['--help', 'secrets'],
    ])
      assert.ok(!(await same(args)).loadedOclif, `agentvault ${args.join(' ')} loaded oclif`)
    await same(['help', 'secrets', 'list'])
  })

  it('help that depends on the terminal (width, colour) is left to oclif', async () => {
    for (const env of [{OCLIF_COLUMNS: '120'}, {FORCE_COLOR: '1', NO_COLOR: undefined}]) {
      const result = await same(['secrets', 'set', '--help'], {env})
      assert.ok(result.loadedOclif, `${JSON.stringify(env)}: oclif did not render the help`)
    }
  })

  it('commands run without oclif and print what oclif’s path prints', async () => {
    for (const args of [
      ['secrets', 'list'],
      ['secrets', 'list', '--json'],
      ['secrets', 'list', 'S', '-r'],
      ['secrets', 'get', 'K', '--reveal'],
      ['secrets', 'get', '--reveal', 'local://K', '--json'],
      ['secrets', 'versions', 'K'],
      ['use', 'local://SIGN', 'sign', '--param', 'algorithm=hmac-sha256', '--param=data=hello'],
      ['use', 'SIGN', 'sign', '--params', '{"algorithm":"hmac-sha512","data":"x"}', '--json'],
      ['profiles', 'list'],
      ['profiles', 'list', '--json'],
      ['secrets', 'get', 'MISSING', '--reveal'],
      ['secrets', 'get', 'MISSING', '--reveal', '--json'],
      // A deprecated alias warns as oclif does (a whole word only, as oclif checks it).
      ['use', 'SIGN', 'sign', '--param', 'algorithm=hmac-sha256', '--allow-host', 'example.com'],
      ['use', 'SIGN', 'sign', '--param', 'algorithm=hmac-sha256', '--allow-host=example.com'],
    ]) {
      const result = await same(args)
      assert.ok(!result.loadedOclif, `agentvault ${args.join(' ')} loaded oclif`)
    }

    // Alias, env-provided flag, value from stdin
    assert.ok(!(await same(['whoami', '--json'])).loadedOclif)
    assert.ok(!(await same(['secrets', 'list'], {env: {AGENTVAULT_PROFILE: 'local'}})).loadedOclif)
    const set = await cli(['secrets', 'set', 'NEW', '--tag', 'a', '--tag=b', '--description', 'd'], {
      input: 'v',
    })
    assert.equal(set.code, 0, set.stderr)
    assert.ok(!set.loadedOclif)
    const listed = JSON.parse((await cli(['secrets', 'list', 'NEW', '--json'])).stdout) as {
      secrets: Array<{description?: string; tags?: string[]}>
    }
    assert.deepEqual(
      listed.secrets.map((s) => [s.description, s.tags]),
      [['d', ['a', 'b']]],
    )
  })

  it('stdout closed by its reader (`| head`) is no error on either path, whatever is printed', async () => {
    for (const args of [
      ['secrets', 'list'],
      ['secrets', 'list', '--json'],
      ['profiles', 'list'],
    ])
      for (const oclif of [true, false]) {
        const child = startCli(args, {env: {...t.env, ...(oclif ? {AGENTVAULT_DISPATCH: 'oclif'} : {})}})
        // The reader is gone before the command writes a byte: every write meets EPIPE.
        child.stdout?.destroy()
        const result = await collect(child)
        const label = `agentvault ${args.join(' ')}${oclif ? ' (oclif)' : ''}`
        assert.equal(result.code, 0, `${label}: ${result.stderr}`)
        assert.equal(result.stderr, '', label)
      }
  })

  it('what the dispatcher does not reproduce goes to oclif: usage errors, unknown commands, DEBUG', async () => {
    for (const args of [
      ['secrets', 'list', '--bogus'],
      ['secrets', 'list', '--recursiv'],
      ['secrets', 'lst'],
      ['secrets', 'get'],
      ['secrets', 'get', 'K', '--reveal', 'extra'],
      ['secrets', 'set', 'X', '--from-env', 'A', '--from-file', 'B'],
      ['secrets', 'set', 'X', '--max-value-bytes', '0'],
      ['secrets', 'set', 'X', '--max-value-bytes', 'many'],
      ['secrets', 'list', '--profile'],
      ['audit', '--limit', '-1', '--json'],
      ['secrets', 'get', 'K', '--reveal', '-p', 'a', '--profile', 'b'],
      ['secrets:list'],
      ['secrets'],
      ['nonsense', '--json'],
    ]) {
      const result = await same(args)
      assert.ok(result.loadedOclif, `agentvault ${args.join(' ')} did not go to oclif`)
    }

    // A boolean given twice is fine for oclif, so for the dispatcher too
    assert.ok(!(await same(['secrets', 'get', 'K', '--reveal', '--reveal'])).loadedOclif)
    const debug = await cli(['secrets', 'list'], {env: {DEBUG: 'agentvault*'}})
    assert.equal(debug.code, 0, debug.stderr)
    assert.ok(debug.loadedOclif, 'DEBUG output is oclif’s: it must run')
  })
})
