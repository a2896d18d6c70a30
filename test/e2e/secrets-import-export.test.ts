/**
 * `secrets import` and `secrets export` through the built binary (issue 16 §3): dotenv in, one
 * write, summaries that name secrets and never values; export only with --reveal, never from a
 * zero-knowledge backend, and round-tripping through import.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {expectFailure, filesUnder, parseJson} from '../helpers/e2e.js'
import {type AgentSecretsE2e, setupAgentSecretsE2e} from '../servers/agentsecrets/e2e-fixture.js'

const canary = (label: string): string => `canary-${label}-${randomBytes(12).toString('hex')}`

async function assertNoCanaryUnder(home: string, canaries: string[]): Promise<void> {
  for (const file of await filesUnder(home)) {
    const text = (await readFile(file)).toString('latin1')
    for (const value of canaries) assert.ok(!text.includes(value), `a value appears in ${file}`)
  }
}

function assertNoCanaryIn(result: CliResult, canaries: string[], where = 'output'): void {
  for (const value of canaries) {
    assert.ok(!result.stdout.includes(value), `a value appears on stdout of ${where}`)
    assert.ok(!result.stderr.includes(value), `a value appears on stderr of ${where}`)
  }
}

/** `audit --json` prints one JSON object per line. */
function auditLines(result: CliResult): Array<{operation?: string; references?: string[]}> {
  assert.equal(result.code, 0, result.stderr)
  return result.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as {operation?: string; references?: string[]})
}

describe('e2e: secrets import / export', () => {
  let home: Awaited<ReturnType<typeof tempHome>>
  let env: NodeJS.ProcessEnv

  beforeEach(async () => {
    home = await tempHome()
    env = {...home.env, AGENTVAULT_PASSPHRASE: 'import-export-pass'}
  })

  afterEach(async () => {
    await home.dispose()
  })

  const av = (args: string[], options: {input?: string} = {}): Promise<CliResult> =>
    runCli(args, {env, ...options})

  it('imports a dotenv file in one go: summary by name, values retrievable, never printed or audited', async () => {
    const a = canary('a')
    const b = canary('b')
    const multi = `${canary('m1')}\n${canary('m2')}`
    const file = join(home.home, 'app.env')
    await writeFile(
      file,
      `# app settings\nexport API_KEY=${a}\nDB_PASSWORD = "${b}" # inline comment\nCERT='${multi}'\nAPI_KEY=${a}\n`,
    )
    const result = await av(['secrets', 'import', file])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /Imported 3 secrets into local; new: API_KEY, DB_PASSWORD, CERT/)
    assertNoCanaryIn(result, [a, b, multi], 'import')
    for (const [name, value] of [
      ['API_KEY', a],
      ['DB_PASSWORD', b],
      ['CERT', multi],
    ] as const) {
      const got = await av(['secrets', 'get', name, '--reveal'])
      assert.equal(got.stdout, value)
    }

    const list = parseJson<{secrets: Array<{name: string; version: number}>}>(
      await av(['secrets', 'list', '--json']),
    )
    assert.deepEqual(
      list.secrets.map(({name, version}) => [name, version]),
      [
        ['API_KEY', 1],
        ['CERT', 1],
        ['DB_PASSWORD', 1],
      ],
    )
    const audit = auditLines(await av(['audit', '--json', '--command', 'secrets import']))
    assert.equal(audit.length, 1)
    assert.equal(audit[0]?.operation, 'import')
    assert.deepEqual([...(audit[0]?.references ?? [])].sort(), [
      'local://API_KEY',
      'local://CERT',
      'local://DB_PASSWORD',
    ])
    await assertNoCanaryUnder(home.env.AGENTVAULT_HOME as string, [a, b, multi, ...multi.split('\n')])
  })

  it('skips existing names unless --overwrite, and says which in --json', async () => {
    const old = canary('old')
    const fresh = canary('new')
    assert.equal((await av(['secrets', 'set', 'TOKEN'], {input: old})).code, 0)
    const file = join(home.home, 'x.env')
    await writeFile(file, `TOKEN=${fresh}\nOTHER=${fresh}-2\n`)

    const first = parseJson<Record<string, unknown>>(await av(['secrets', 'import', file, '--json']))
    assert.deepEqual(first, {
      backend: 'local',
      created: ['OTHER'],
      ignored: [],
      overridden: [],
      profile: 'local',
      replaced: [],
      skipped: ['TOKEN'],
    })
    assert.equal((await av(['secrets', 'get', 'TOKEN', '--reveal'])).stdout, old)

    const plain = await av(['secrets', 'import', file])
    assert.match(
      plain.stderr,
      /Imported 0 secrets into local; skipped 2 existing \(--overwrite replaces them\): TOKEN, OTHER/,
    )

    const second = await av(['secrets', 'import', file, '--overwrite', '--json'])
    assertNoCanaryIn(second, [old, fresh])
    assert.deepEqual(parseJson<{replaced: string[]}>(second).replaced, ['TOKEN', 'OTHER'])
    assert.equal((await av(['secrets', 'get', 'TOKEN', '--reveal'])).stdout, fresh)
  })

  it('reads stdin with "-"; leaves out references and empty values with a warning naming them', async () => {
    const value = canary('plain')
    const result = await av(['secrets', 'import', '-', '--json'], {
      input: `PLAIN=${value}\nREF=local://PLAIN\nBAO="openbao://secret/app#k"\nEMPTY=\n`,
    })
    const summary = parseJson<{
      created: string[]
      ignored: Array<{line: number; name: string; reason: string}>
    }>(result)
    assert.deepEqual(summary.created, ['PLAIN'])
    assert.deepEqual(summary.ignored, [
      {line: 2, name: 'REF', reason: 'reference'},
      {line: 3, name: 'BAO', reason: 'reference'},
      {line: 4, name: 'EMPTY', reason: 'empty'},
    ])
    assert.match(result.stderr, /stdin:2: REF holds a reference, not a value; not imported/)
    assert.match(result.stderr, /stdin:4: EMPTY is empty; not imported/)
    assert.doesNotMatch(
      result.stderr,
      /local:\/\/PLAIN|openbao:\/\/secret/,
      'the ignored values are not echoed',
    )
    const names = parseJson<{secrets: Array<{name: string}>}>(await av(['secrets', 'list', '--json']))
    assert.deepEqual(
      names.secrets.map(({name}) => name),
      ['PLAIN'],
    )
  })

  it('writes nothing when one value is too large, a line is malformed, or the file is missing', async () => {
    const value = canary('big')
    const file = join(home.home, 'big.env')
    await writeFile(file, `SMALL=${value}\nLARGE=${'x'.repeat(100)}\n`)
    await expectFailure(
      ['secrets', 'import', file, '--max-value-bytes', '64'],
      {env},
      {
        code: 2,
        errorCode: 'VALUE_TOO_LARGE',
        message: /big\.env:2: LARGE is larger than the limit of 64 bytes; nothing was imported/,
      },
    )
    await writeFile(file, `GOOD=${value}\n${value} no equals sign\n`)
    const {plain, json} = await expectFailure(
      ['secrets', 'import', file],
      {env},
      {code: 2, errorCode: 'ENV_FILE_SYNTAX', message: /big\.env:2/},
    )
    assertNoCanaryIn(plain, [value])
    assertNoCanaryIn(json, [value])
    await expectFailure(
      ['secrets', 'import', join(home.home, 'nope.env')],
      {env},
      {code: 2, errorCode: 'FILE_UNREADABLE', message: /nope\.env \(ENOENT\)/},
    )
    assert.equal(
      existsSync(join(home.env.AGENTVAULT_HOME as string, 'vault.json')),
      false,
      'no vault was created',
    )
  })

  it('export refuses without --reveal; dotenv output round-trips through import into another vault', async () => {
    const tricky = `${canary('t')} "quoted" $HOME \\ back\ttab\nnew line # not a comment`
    const plain = canary('p')
    assert.equal((await av(['secrets', 'set', 'TRICKY'], {input: tricky})).code, 0)
    assert.equal((await av(['secrets', 'set', 'PLAIN'], {input: plain})).code, 0)
    assert.equal((await av(['secrets', 'set', 'not-a-var'], {input: plain})).code, 0)

    const refused = await expectFailure(['secrets', 'export'], {env}, {code: 2, errorCode: 'REVEAL_REQUIRED'})
    assertNoCanaryIn(refused.plain, [plain])

    const exported = await av(['secrets', 'export', '--reveal'])
    // A backup that holds less than the profile is no success: printed, but exit 2.
    assert.equal(exported.code, 2, exported.stderr)
    assert.match(exported.stderr, /"not-a-var" is not a valid variable name for a dotenv file; left out/)
    assert.match(
      exported.stderr,
      /^Error: 1 secret is not in the dotenv output: "not-a-var"\nTry this: Export with --json/m,
    )
    assert.ok(!exported.stderr.includes(plain), 'no value on stderr')
    assert.match(exported.stdout, /^PLAIN="canary-p-[0-9a-f]+"\nTRICKY=".*"\n$/)

    const other = await tempHome()
    try {
      const otherEnv = {...other.env, AGENTVAULT_PASSPHRASE: 'other-pass'}
      const imported = await runCli(['secrets', 'import', '-'], {env: otherEnv, input: exported.stdout})
      assert.equal(imported.code, 0, imported.stderr)
      for (const [name, value] of [
        ['TRICKY', tricky],
        ['PLAIN', plain],
      ] as const)
        assert.equal((await runCli(['secrets', 'get', name, '--reveal'], {env: otherEnv})).stdout, value)
    } finally {
      await other.dispose()
    }
  })

  it('export --format json|yaml, a name prefix, and --json with binary values base64-encoded', async () => {
    const value = `${canary('y')}\u2028\u0085: - [x] #`
    assert.equal((await av(['secrets', 'set', 'APP_ONE'], {input: value})).code, 0)
    await writeFile(join(home.home, 'bin'), Buffer.from([0xff, 0xfe, 0x00]))
    assert.equal((await av(['secrets', 'set', 'APP_BIN', '--from-file', join(home.home, 'bin')])).code, 0)
    assert.equal((await av(['secrets', 'set', 'OTHER'], {input: 'o'})).code, 0)

    const json = await av(['secrets', 'export', 'APP_', '--reveal', '--format', 'json'])
    assert.equal(json.code, 2, json.stderr)
    assert.deepEqual(JSON.parse(json.stdout), {APP_ONE: value})
    assert.match(json.stderr, /"APP_BIN" is not UTF-8 text; left out of the json output/)

    const yaml = await av(['secrets', 'export', 'APP_', '--reveal', '--format', 'yaml'])
    assert.equal(yaml.code, 2, yaml.stderr)
    assert.match(yaml.stderr, /EXPORT_INCOMPLETE|not in the yaml output: "APP_BIN"/)
    const parsed = execFileSync(
      'python3',
      ['-c', 'import sys, yaml, json; print(json.dumps(yaml.safe_load(sys.stdin)))'],
      {
        input: yaml.stdout,
      },
    ).toString()
    assert.deepEqual(JSON.parse(parsed), {APP_ONE: value})

    const result = parseJson<{secrets: Array<{encoding: string; name: string; value: string}>}>(
      await av(['secrets', 'export', 'APP_', '--reveal', '--json']),
    )
    assert.deepEqual(result.secrets, [
      {encoding: 'base64', name: 'APP_BIN', value: Buffer.from([0xff, 0xfe, 0x00]).toString('base64')},
      {encoding: 'utf8', name: 'APP_ONE', value},
    ])
  })
})

describe('e2e: import / export and a zero-knowledge backend', () => {
  let e: AgentSecretsE2e

  before(async () => {
    e = await setupAgentSecretsE2e()
  })

  after(async () => {
    await e?.dispose()
  })

  it('export is refused before AgentSecrets is contacted; import says to use secrets set', async () => {
    const before = (await e.world.invocations()).length
    await expectFailure(
      ['secrets', 'export', '--reveal', '--profile', 'agentsecrets'],
      {env: e.cliEnv()},
      {code: 2, errorCode: 'ZERO_KNOWLEDGE', message: /AgentSecrets never reveals values/},
    )
    const value = canary('zk')
    const {plain} = await expectFailure(
      ['secrets', 'import', '-', '--profile', 'agentsecrets'],
      {env: e.cliEnv(), input: `KEY=${value}\n`},
      {code: 2, message: /Importing secrets/},
    )
    assertNoCanaryIn(plain, [value])
    assert.equal((await e.world.invocations()).length, before, 'AgentSecrets was not contacted')
  })
})
