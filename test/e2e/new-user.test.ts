/**
 * A new user's wrong turns, through the built binary: each failure must name what happened, and
 * its `Try this:` line — run as printed, in the same situation — must get the user forward, not
 * fail, name a command or flag that does not exist, or loop back to the same error.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, renameSync, symlinkSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import {type AddressInfo} from 'node:net'
import {delimiter, join} from 'node:path'

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
import {expectFailure, parseJson} from '../helpers/e2e.js'
import {startSeededServer} from '../servers/openbao/harness.js'

/** The `agentvault …` command a `Try this:` line names (the text between backticks, or after a colon). */
function suggestedCommand(suggestion: string): string[] {
  const quoted =
    /`agentvault ([^`]+)`/.exec(suggestion)?.[1] ?? /agentvault (.+?)(?:$|\.\s|;)/.exec(suggestion)?.[1]
  assert.ok(quoted, `no agentvault command in ${JSON.stringify(suggestion)}`)
  // The shell's word splitting of a suggestion that quotes nothing.
  return quoted.trim().split(/\s+/)
}

/**
 * Run a suggested line as a user pastes it: `sh -c LINE` with `agentvault` (a link to the built
 * bin/run.js) first on PATH. Asynchronous, so that test servers in this process keep answering.
 */
async function pasteIntoShell(
  line: string,
  home: string,
  env: NodeJS.ProcessEnv,
): Promise<{code: null | number; stderr: string}> {
  const bin = join(home, 'bin')
  mkdirSync(bin, {recursive: true})
  if (!existsSync(join(bin, 'agentvault'))) symlinkSync(BIN, join(bin, 'agentvault'))
  const full = withNodeOnPath(baseEnv(env))
  const child = spawn('sh', ['-c', line], {
    env: {...full, PATH: `${bin}${delimiter}${full.PATH}`},
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
  })
  const code = await new Promise<null | number>((resolve) => {
    child.once('close', resolve)
  })
  return {code, stderr}
}

/** `agentvault ARGS | cat` typed at a terminal: stdin and stderr are the terminal, stdout a pipe. */
function pipedAtTerminal(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return collect(
    spawn(
      'python3',
      [
        join(ROOT, 'test', 'helpers', 'pty-run.py'),
        'bash',
        '-c',
        `set -o pipefail; "$0" "$1" ${args.join(' ')} | cat`,
        process.execPath,
        BIN,
      ],
      {env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe']},
    ),
  )
}

describe('e2e: a new user follows the Try this lines', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const cli = (args: string[], input = ''): Promise<CliResult> => runCli(args, {env: t.env, input})

  beforeEach(async () => {
    t = await tempHome()
    assert.equal((await cli(['secrets', 'set', 'DEMO_TOKEN'], 'sk-demo-1234567890')).code, 0)
  })

  afterEach(async () => {
    await t.dispose()
  })

  it('secrets get NAME without --reveal suggests a run --env mapping that works', async () => {
    const {error} = await expectFailure(
      ['secrets', 'get', 'DEMO_TOKEN'],
      {env: t.env, input: ''},
      {code: 2, errorCode: 'REVEAL_REQUIRED'},
    )
    const suggested = suggestedCommand(error.suggestion)
    assert.equal(suggested[0], 'run', error.suggestion)
    assert.equal(suggested.at(-1), 'cmd', error.suggestion)
    const ran = await cli([...suggested.slice(0, -1), 'sh', '-c', 'test "$DEMO_TOKEN" = sk-demo-1234567890'])
    assert.equal(ran.code, 0, `${suggested.join(' ')}: ${ran.stderr}`)
  })

  it('secrets ls and profiles ls list, as in op, gh and vault (ls once suggested secrets rm)', async () => {
    const secrets = await cli(['secrets', 'ls'])
    assert.equal(secrets.code, 0, secrets.stderr)
    assert.match(secrets.stdout, /DEMO_TOKEN/)
    const profiles = await cli(['profiles', 'ls'])
    assert.equal(profiles.code, 0, profiles.stderr)
    assert.match(profiles.stdout, /local/)
  })

  for (const args of [
    ['inject', 'config.yml.tpl'],
    ['status', 'extra'],
    ['audit', 'verify', 'extra'],
    ['mcp', 'foo'],
  ])
    it(`${args.join(' ')}: an unexpected argument, not an unknown command that suggests itself`, async () => {
      const command = args.slice(0, -1).join(' ')
      const {error} = await expectFailure(args, {env: t.env, input: ''}, {code: 2, errorCode: 'USAGE'})
      assert.match(error.message, new RegExp(`^Unexpected argument: \`agentvault ${command}\` takes none`))
      assert.doesNotMatch(error.message, /config\.yml|extra|foo/, 'argv may hold a secret: not repeated')
      assert.equal(error.suggestion, `See \`agentvault ${command} --help\`.`)
      const help = await cli(suggestedCommand(error.suggestion))
      assert.equal(help.code, 0)
      assert.match(help.stdout, /^USAGE/m)
    })

  it("a missing required flag is named as typed, without oclif's preamble", async () => {
    const {error} = await expectFailure(['profiles', 'add', 'x'], {env: t.env, input: ''}, {code: 2})
    assert.equal(error.message, 'Missing required flag --kind')
  })

  it('a missing argument carries the note on flags that take several values only when one was typed', async () => {
    const bare = await expectFailure(['secrets', 'delete'], {env: t.env, input: ''}, {code: 2})
    assert.doesNotMatch(bare.error.message, /Note:|--versions/)
    assert.match(bare.error.message, /^Missing 1 required arg: ref/)
    // `--tag prod NAME` hands NAME to --tag: there the note says what went wrong.
    const greedy = await expectFailure(
      ['secrets', 'set', '--tag', 'prod', 'NAME'],
      {env: t.env, input: 'v'},
      {code: 2},
    )
    assert.match(greedy.error.message, /Note: --allow-domain, --tag allow multiple values/)
  })

  it('openbao: a #field the secret lacks names the fields it has (not only in --json details)', async () => {
    const {server, tokens} = await startSeededServer()
    try {
      const env = {...t.env, BAO_ADDR: server.url, BAO_TOKEN: tokens.reader}
      const {error, plain} = await expectFailure(
        ['secrets', 'get', 'openbao://secret/myapp/api#tokn', '--reveal'],
        {env, input: ''},
        {code: 6, errorCode: 'FIELD_NOT_FOUND'},
      )
      assert.match(plain.stderr, /^Try this: .*\btoken, user, port\b/m)
      assert.match(
        error.suggestion,
        /openbao\+kv2:\/\/secret\/myapp\/api#token/,
        'the nearest field, as a reference',
      )
      const followed = await runCli(['secrets', 'get', 'openbao+kv2://secret/myapp/api#token', '--reveal'], {
        env,
      })
      assert.equal(followed.code, 0, followed.stderr)
    } finally {
      await server.close()
    }
  })

  it('use OPERATION REF (the order of some CLIs) says the secret comes first, and the swapped line works', async () => {
    const {error} = await expectFailure(
      ['use', 'sign', 'DEMO_TOKEN', '--param', 'data=hello'],
      {env: t.env, input: ''},
      {code: 2, errorCode: 'USE_ARGUMENT_ORDER'},
    )
    const suggested = suggestedCommand(error.suggestion)
    assert.deepEqual(suggested.slice(0, 3), ['use', 'local://DEMO_TOKEN', 'sign'], error.suggestion)
    const signed = await cli([...suggested.slice(0, 3), '--param', 'data=hello', '--json'])
    assert.equal(parseJson<{algorithm: string}>(signed).algorithm, 'hmac-sha256')
  })

  it('a version that is not kept points to secrets versions, not to secrets list (which shows the secret exists)', async () => {
    const {error} = await expectFailure(
      ['secrets', 'get', 'local://DEMO_TOKEN?version=3', '--reveal'],
      {env: t.env, input: ''},
      {code: 6, errorCode: 'SECRET_NOT_FOUND'},
    )
    const suggested = suggestedCommand(error.suggestion)
    assert.deepEqual(suggested, ['secrets', 'versions', 'local://DEMO_TOKEN'])
    const versions = await cli(suggested)
    assert.equal(versions.code, 0, versions.stderr)
    assert.match(versions.stdout, /^1 \(current\)/m)
  })

  for (const [typed, meant] of [
    ['scerets', 'secrets'],
    ['profile', 'profiles'],
  ] as const)
    it(`${typed} alone (a topic misspelt) suggests \`agentvault ${meant}\`, whose help lists its commands`, async () => {
      const {error} = await expectFailure(
        [typed],
        {env: t.env, input: ''},
        {code: 2, errorCode: 'UNKNOWN_COMMAND'},
      )
      const suggested = suggestedCommand(error.suggestion)
      assert.deepEqual(suggested, [meant])
      const help = await cli(suggested)
      assert.equal(help.code, 0, help.stderr)
      assert.match(help.stdout, new RegExp(`^  ${meant} list `, 'm'))
    })

  it('a misspelt --help is taken for --help, not for a value typed into argv', async () => {
    const {error} = await expectFailure(['secrets', 'set', '--hlep'], {env: t.env, input: ''}, {code: 2})
    assert.match(error.suggestion, /^Did you mean --help\?/)
  })

  for (const args of [
    ['secrets', 'set', 'API_KEY', 'sk-typed-in-argv'],
    ['secrets', 'set', 'API_KEY', '--body', 'sk-typed-in-argv'],
    ['secrets', 'set', 'API_KEY', '--value=sk-typed-in-argv'],
  ])
    it(`${args.join(' ')} (as doppler and gh take it) says how to pass the value, and that line works in sh`, async () => {
      const {error} = await expectFailure(args, {env: t.env, input: ''}, {code: 2})
      assert.ok(!JSON.stringify(error).includes('sk-typed-in-argv'))
      const line = /`(printf [^`]+)`/.exec(error.suggestion)?.[1]
      assert.ok(line, error.suggestion)
      // The suggestion as pasted into a shell where VALUE holds the value.
      const shell = await pasteIntoShell(line.replace('NAME', 'API_KEY'), t.home, {
        ...t.env,
        VALUE: 'sk-from-shell',
      })
      assert.equal(shell.code, 0, shell.stderr)
      assert.equal((await cli(['secrets', 'get', 'API_KEY', '--reveal'])).stdout, 'sk-from-shell')
    })

  it('a vault-style path#field without a scheme suggests the openbao reference, and it reads the field', async () => {
    const {server, tokens} = await startSeededServer()
    try {
      const env = {...t.env, BAO_ADDR: server.url, BAO_TOKEN: tokens.reader}
      const {error} = await expectFailure(
        ['secrets', 'get', 'secret/myapp/api#token', '--reveal'],
        {env, input: ''},
        {code: 2, errorCode: 'REFERENCE_REQUIRED'},
      )
      const reference = /openbao:\/\/[^\s`]+#token/.exec(error.suggestion)?.[0]
      assert.equal(reference, 'openbao://secret/myapp/api#token', error.suggestion)
      const followed = await runCli(['secrets', 'get', reference, '--reveal'], {env})
      assert.equal(followed.code, 0, followed.stderr)
    } finally {
      await server.close()
    }
  })

  it('login --token-stdin openbao (the kind after a flag of its own) says whose flag it is, and that line signs in', async () => {
    const {server, tokens} = await startSeededServer()
    try {
      const env = {...t.env, BAO_ADDR: server.url}
      const {error} = await expectFailure(
        ['login', '--token-stdin', 'openbao'],
        {env, input: tokens.reader},
        {code: 2, errorCode: 'UNKNOWN_FLAG'},
      )
      const suggested = suggestedCommand(error.suggestion)
      assert.deepEqual(suggested, ['login', 'openbao', '--token-stdin'], error.suggestion)
      const followed = await runCli(suggested, {env, input: tokens.reader})
      assert.equal(followed.code, 0, followed.stderr)
    } finally {
      await server.close()
    }
  })

  it('secrets list PREFIX that matches nothing says so, rather than that the profile holds no secrets', async () => {
    const listed = await cli(['secrets', 'list', 'NOPE'])
    assert.equal(listed.code, 0)
    assert.equal(listed.stdout, '')
    assert.match(
      listed.stderr,
      /^No secret names start with NOPE in profile local \(`agentvault secrets list` lists them all\)\.$/m,
    )
  })

  it('a leftover AGENTVAULT_PROFILE naming no profile says where the name came from, and unsetting it works', async () => {
    const env = {...t.env, AGENTVAULT_PROFILE: 'staging'}
    const {error} = await expectFailure(
      ['secrets', 'list'],
      {env, input: ''},
      {code: 3, errorCode: 'PROFILE_NOT_FOUND'},
    )
    assert.match(error.message, /^No profile named staging \(from AGENTVAULT_PROFILE\)$/)
    assert.match(error.suggestion, /^Unset AGENTVAULT_PROFILE/)
    const unset = await runCli(['secrets', 'list'], {env: t.env})
    assert.equal(unset.code, 0, unset.stderr)
    // Named on the command line, it is the flag's value: no mention of the variable.
    const flag = await expectFailure(['secrets', 'list', '-p', 'staging'], {env, input: ''}, {code: 3})
    assert.equal(flag.error.message, 'No profile named staging')
  })

  it('a flag value from its AGENTVAULT_* variable that does not parse names the variable', async () => {
    const env = {...t.env, AGENTVAULT_TIMEOUT: 'abc'}
    const {error} = await expectFailure(
      ['call', 'https://api.example.com/', '--bearer', 'DEMO_TOKEN'],
      {env, input: ''},
      {code: 2},
    )
    assert.equal(error.message, 'AGENTVAULT_TIMEOUT (--timeout) expects an integer, got "abc"')
    const typed = await expectFailure(
      ['call', 'https://api.example.com/', '--bearer', 'DEMO_TOKEN', '--timeout', 'abc'],
      {env: t.env, input: ''},
      {code: 2},
    )
    assert.equal(typed.error.message, '--timeout expects an integer, got "abc"')
    const low = await expectFailure(
      ['secrets', 'generate', 'G', '--length', '0'],
      {env: t.env, input: ''},
      {code: 2},
    )
    assert.equal(low.error.message, '--length expects an integer greater than or equal to 1, got "0"')
  })

  describe('login local --key-source keychain where no keychain is usable', () => {
    let fresh: Awaited<ReturnType<typeof tempHome>>

    beforeEach(async () => {
      fresh = await tempHome()
    })

    afterEach(async () => {
      await fresh.dispose()
    })

    it('with the keychain not disabled, suggests no variable that is not set, and a key source that works', async () => {
      // A session bus that does not exist: no Secret Service, whatever the machine has.
      const env: NodeJS.ProcessEnv = {
        ...fresh.env,
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(fresh.home, 'no-bus')}`,
      }
      delete env.AGENTVAULT_NO_KEYCHAIN
      const {error} = await expectFailure(
        ['login', 'local', '--key-source', 'keychain'],
        {env, input: ''},
        {code: 5, errorCode: 'KEYCHAIN_UNAVAILABLE'},
      )
      assert.doesNotMatch(error.suggestion, /AGENTVAULT_NO_KEYCHAIN/)
      const suggested = suggestedCommand(error.suggestion)
      const followed = await runCli(suggested, {env})
      assert.equal(followed.code, 0, `${suggested.join(' ')}: ${followed.stderr}`)
    })

    it('with AGENTVAULT_NO_KEYCHAIN set, says to unset it', async () => {
      const {error} = await expectFailure(
        ['login', 'local', '--key-source', 'keychain'],
        {env: fresh.env, input: ''},
        {code: 5, errorCode: 'KEYCHAIN_UNAVAILABLE'},
      )
      assert.match(error.suggestion, /^Unset AGENTVAULT_NO_KEYCHAIN/)
    })
  })

  it('secrets rename across profiles suggests a copy that runs as pasted into sh', async () => {
    const {server, tokens} = await startSeededServer()
    try {
      const env = {...t.env, BAO_ADDR: server.url, BAO_TOKEN: tokens.writer}
      const target = 'openbao://secret/copied#token'
      const {error} = await expectFailure(
        ['secrets', 'rename', 'DEMO_TOKEN', target],
        {env, input: ''},
        {code: 2, errorCode: 'RENAME_ACROSS_PROFILES'},
      )
      const line = /`(agentvault secrets get [^`]+)`/.exec(error.suggestion)?.[1]
      assert.ok(line, error.suggestion)
      const shell = await pasteIntoShell(line, t.home, env)
      assert.equal(shell.code, 0, shell.stderr)
      const copied = await runCli(['secrets', 'get', target, '--reveal'], {env})
      assert.equal(copied.stdout, 'sk-demo-1234567890')
    } finally {
      await server.close()
    }
  })

  describe('"prompting is off" says why, when the user did not turn it off', () => {
    it('stdin not a terminal', async () => {
      const {error} = await expectFailure(
        ['login', 'openbao', '--address', 'http://127.0.0.1:1'],
        {env: t.env, input: ''},
        {code: 2, errorCode: 'VALUE_REQUIRED'},
      )
      assert.equal(error.message, 'No OpenBao token given and prompting is off (stdin is not a terminal)')
    })

    it('stdout not a terminal (agentvault … | cat at a terminal)', async () => {
      const result = await pipedAtTerminal(['secrets', 'set', 'X'], t.env)
      assert.equal(result.code, 2, result.stdout)
      assert.match(result.stdout, /Error: No value given and prompting is off \(stdout is not a terminal\)/)
    })

    it('CI set, and --no-prompt', async () => {
      assert.match(
        (await pipedAtTerminal(['secrets', 'set', 'X'], {...t.env, CI: 'true'})).stdout,
        /prompting is off \(CI is set\)/,
      )
      assert.match(
        (await pipedAtTerminal(['secrets', 'set', 'X', '--no-prompt'], t.env)).stdout,
        /prompting is off \(--no-prompt\)/,
      )
    })
  })

  for (const [typed, hint] of [
    ['local:/DEMO_TOKEN', /"local:" needs two slashes: TOKEN=local:\/\/…/],
    ['local:DEMO_TOKEN', /"local:" needs two slashes: TOKEN=local:\/\/…/],
    ['locl://DEMO_TOKEN', /"locl:\/\/" is not a known scheme: did you mean TOKEN=local:\/\/…\?/],
  ] as const)
    it(`run --env TOKEN=${typed}: a reference with a typo in its scheme is named as such`, async () => {
      // `run` has no --json (its output is the command's): the plain form only.
      const result = await cli(['run', '--env', `TOKEN=${typed}`, '--', 'true'])
      assert.equal(result.code, 2, result.stderr)
      assert.equal(result.stdout, '')
      assert.match(result.stderr, /^Error: .+\nTry this: .+$/m)
      const suggestion = /^Try this: (.+)$/m.exec(result.stderr)?.[1] ?? ''
      assert.match(suggestion, hint)
      assert.ok(!result.stderr.includes('DEMO_TOKEN'), 'the rest of the value is not echoed')
    })

  it('secrets get locl://NAME (a typo in the scheme) suggests the scheme meant, and that reference reads the secret', async () => {
    const result = await cli(['secrets', 'get', 'locl://DEMO_TOKEN', '--reveal'])
    assert.equal(result.code, 2, result.stderr)
    const suggestion = /^Try this: (.+)$/m.exec(result.stderr)?.[1] ?? ''
    assert.match(suggestion, /^Did you mean local:\/\/…\?/)
    assert.ok(!result.stderr.includes('DEMO_TOKEN'), 'the rest of the reference is not echoed')
    const fixed = await cli(['secrets', 'get', 'local://DEMO_TOKEN', '--reveal'])
    assert.equal(fixed.code, 0, fixed.stderr)
    assert.equal(fixed.stdout.trim(), 'sk-demo-1234567890')
  })

  it('status with the local key file gone points to the fix, not to login local (which leaves an existing vault alone)', async () => {
    renameSync(join(t.env.AGENTVAULT_HOME!, 'vault.key'), join(t.home, 'vault.key.moved'))
    // `status` prints its table on stdout, then fails (its --json is the rows, not an error).
    const status = await cli(['status'])
    assert.equal(status.code, 4, status.stderr)
    const suggestion = /^Try this: (.+)$/m.exec(status.stderr)?.[1] ?? ''
    const suggested = suggestedCommand(suggestion)
    assert.notDeepEqual(suggested.slice(0, 2), ['login', 'local'], suggestion)
    const followed = await cli(suggested)
    assert.match(followed.stderr, /^Try this: Restore .*vault\.key from your backup/m)
  })

  for (const [typed, meant] of [
    [['auth', 'status'], ['status']],
    [['me'], ['status']],
    [['signin'], ['login']],
    [
      ['item', 'list'],
      ['secrets', 'list'],
    ],
    [
      ['kv', 'list'],
      ['secrets', 'list'],
    ],
    [
      ['get', 'DEMO_TOKEN'],
      ['secrets', 'get'],
    ],
    [
      ['read', 'local://DEMO_TOKEN'],
      ['secrets', 'get'],
    ],
    [
      ['secrets', 'download'],
      ['secrets', 'export'],
    ],
    [['exec'], ['run']],
  ] as const)
    it(`${typed.join(' ')} (another tool's word) suggests \`agentvault ${meant.join(' ')}\``, async () => {
      const {error} = await expectFailure(
        [...typed],
        {env: t.env, input: ''},
        {code: 2, errorCode: 'UNKNOWN_COMMAND'},
      )
      const suggested = suggestedCommand(error.suggestion)
      assert.deepEqual(suggested.slice(0, meant.length), meant, error.suggestion)
      const help = await cli([...meant, '--help'])
      assert.equal(help.code, 0)
    })

  describe('call to a loopback server', () => {
    let server: Server
    let url: string

    before(async () => {
      server = createServer((_request, response) => response.end('ok'))
      await new Promise<void>((resolve) => {
        server.listen(0, '127.0.0.1', resolve)
      })
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`
    })

    after(async () => {
      await new Promise((resolve) => {
        server.close(resolve)
      })
    })

    it('the private-address refusal names the profile setting that lets it through', async () => {
      const call = ['call', url, '--bearer', 'DEMO_TOKEN', '--allow-domain', '127.0.0.1']
      const {error} = await expectFailure(
        call,
        {env: t.env, input: ''},
        {code: 7, errorCode: 'PRIVATE_ADDRESS'},
      )
      const suggested = suggestedCommand(error.suggestion)
      const followed = await cli(suggested)
      assert.equal(followed.code, 0, `${suggested.join(' ')}: ${followed.stderr}`)
      const again = await cli([...call, '--json'])
      assert.equal(parseJson<{status: number}>(again).status, 200)
    })
  })
})
