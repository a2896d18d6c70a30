import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmod, cp, mkdir, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {baseEnv, BIN, type CliResult, collect, runCli, startCli, tempHome} from '../helpers/cli.js'
import {digestOf, expectFailure, filesUnder, modeOf, parseJson} from '../helpers/e2e.js'

const CHECKSUM_PREFIX = '"checksum": "sha256:'

/**
 * Recompute a vault file's checksum the way sealed-file.ts defines it (SHA-256 of the file with its
 * own 64 digits zeroed), so a test can alter the sealed body without tripping the checksum.
 */
function withValidChecksum(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes)
  const start = copy.lastIndexOf(CHECKSUM_PREFIX) + CHECKSUM_PREFIX.length
  copy.write('0'.repeat(64), start, 'latin1')
  copy.write(createHash('sha256').update(copy).digest('hex'), start, 'latin1')
  return copy
}

/** Offset of the middle of the sealed box's base64 text. */
function middleOfBox(bytes: Buffer): number {
  const text = bytes.toString('latin1')
  const match = /"box": "([^"]+)"/.exec(text)
  assert.ok(match, 'the vault file has a sealed box')
  return match.index + match[0].indexOf(match[1] ?? '') + Math.floor((match[1]?.length ?? 0) / 2)
}

interface Damage {
  /** Make the damaged bytes from a good vault file. */
  damage(good: Buffer): Buffer
  /** The error code agentvault must report. */
  errorCode: RegExp
  name: string
}

const DAMAGES: Damage[] = [
  {
    name: 'truncated',
    errorCode: /^VAULT_CORRUPT$/,
    damage: (good) => good.subarray(0, Math.floor(good.length / 2)),
  },
  {
    name: 'truncated by one byte',
    errorCode: /^VAULT_CORRUPT$/,
    damage: (good) => good.subarray(0, -1),
  },
  {
    name: 'bit-flipped',
    errorCode: /^VAULT_CORRUPT$/,
    damage(good) {
      const bad = Buffer.from(good)
      const at = middleOfBox(bad)
      bad[at] = (bad[at] ?? 0) ^ 0x02
      return bad
    },
  },
  {
    name: 'bit-flipped in the sealed body with a recomputed checksum',
    errorCode: /^VAULT_TAMPERED$/,
    damage(good) {
      const bad = Buffer.from(good)
      const at = middleOfBox(bad)
      // Swap to another valid base64 digit so only the authentication of the box can tell.
      bad[at] = bad[at] === 0x41 ? 0x42 : 0x41
      return withValidChecksum(bad)
    },
  },
  {
    name: 'empty',
    errorCode: /^VAULT_CORRUPT$/,
    damage: () => Buffer.alloc(0),
  },
  {
    name: 'a foreign JSON file',
    errorCode: /^VAULT_FOREIGN$/,
    damage: () => Buffer.from('{"name": "my-app", "version": "1.0.0", "secrets": {"A": "b"}}\n'),
  },
  {
    name: 'a foreign non-JSON file',
    errorCode: /^VAULT_FOREIGN$/,
    damage: () => Buffer.from('# some notes\nA=b\n'),
  },
]

/** Run the CLI with umask 000, to prove modes are set explicitly rather than inherited. */
function runWithOpenUmask(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<CliResult> {
  const child = spawn('sh', ['-c', 'umask 000 && exec "$0" "$@"', process.execPath, BIN, ...args], {
    env: baseEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  child.stdin.end(input)
  return collect(child)
}

describe('e2e: local vault integrity', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const homeOf = (name: string): string => join(t.home, name)
  const envFor = (home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    ...t.env,
    AGENTVAULT_HOME: home,
    ...extra,
  })

  before(async () => {
    t = await tempHome()
  })

  after(() => t.dispose())

  it('20 concurrent `secrets set` processes: all 20 secrets present, the file valid, no debris', async () => {
    const home = homeOf('concurrent')
    const env = envFor(home)
    const names = Array.from({length: 20}, (_, i) => `CONCURRENT_${String(i).padStart(2, '0')}`)
    // Started together on a home with no vault yet: they also race to create the vault and its key.
    const children = names.map((name) => startCli(['secrets', 'set', name], {env, input: `value of ${name}`}))
    const results = await Promise.all(children.map((child) => collect(child)))
    for (const [i, result] of results.entries()) assert.equal(result.code, 0, `${names[i]}: ${result.stderr}`)
    const keyNotices = results.filter((result) => /Created the agentvault key file/.test(result.stderr))
    assert.equal(keyNotices.length, 1, 'exactly one process created the key file')

    const listed = parseJson<{secrets: Array<{name: string; version: number}>}>(
      await runCli(['secrets', 'list', '--json'], {env}),
    )
    assert.deepEqual(
      listed.secrets.map((s) => s.name),
      names,
    )
    assert.ok(listed.secrets.every((s) => s.version === 1))

    // The file is a well-formed agentvault vault, and every value decrypts to what was written.
    const vault = JSON.parse(await readFile(join(home, 'vault.json'), 'utf8')) as Record<string, unknown>
    assert.equal(vault.format, 'agentvault-vault')
    assert.deepEqual(vault.key, {file: 'vault.key', source: 'file'})
    const script = `process.stdout.write(JSON.stringify(${JSON.stringify(names)}.map((n) => process.env[n])))`
    const run = await runCli(
      [
        'run',
        '--mask',
        'never',
        ...names.flatMap((n) => ['--env', `${n}=local://${n}`]),
        '--',
        process.execPath,
        '-e',
        script,
      ],
      {env},
    )
    assert.equal(run.code, 0, run.stderr)
    assert.deepEqual(
      JSON.parse(run.stdout),
      names.map((n) => `value of ${n}`),
    )

    // Every command's audit record made it into one unbroken chain.
    const verify = parseJson<{count: number; ok: boolean}>(await runCli(['audit', 'verify', '--json'], {env}))
    assert.deepEqual(verify, {count: 22, ok: true})
    const leftovers = (await readdir(home)).filter((file) => /\.(lock|tmp)$/.test(file))
    assert.deepEqual(leftovers, [], 'no lock or temp files are left behind')
  })

  it('modes: home 0700; vault.json, vault.key, audit.log, config.json 0600 (even with umask 000)', async () => {
    const home = homeOf('modes')
    const env = envFor(home)
    const set = await runWithOpenUmask(['secrets', 'set', 'MODE_TEST'], env, 'mode-value')
    assert.equal(set.code, 0, set.stderr)
    const add = await runWithOpenUmask(['profiles', 'add', 'team', '--kind', 'local'], env)
    assert.equal(add.code, 0, add.stderr)

    assert.equal(await modeOf(home), 0o700)
    for (const file of ['vault.json', 'vault.key', 'audit.log', 'config.json'])
      assert.equal((await modeOf(join(home, file))).toString(8), '600', file)
    for (const file of await filesUnder(home)) assert.equal((await modeOf(file)).toString(8), '600', file)

    // A write puts loosened modes back (a loosened vault.key is refused instead: files-and-locks.test.ts).
    for (const file of ['vault.json', 'audit.log']) await chmod(join(home, file), 0o644)
    const again = await runWithOpenUmask(['secrets', 'set', 'MODE_TEST'], env, 'mode-value-2')
    assert.equal(again.code, 0, again.stderr)
    for (const file of ['vault.json', 'vault.key', 'audit.log'])
      assert.equal((await modeOf(join(home, file))).toString(8), '600', `${file} after a write`)
  })

  describe('a damaged or foreign vault.json is refused (exit 3) and left byte-for-byte unchanged', () => {
    let goodHome: string
    let good: Buffer

    before(async () => {
      goodHome = homeOf('good')
      const set = await runCli(['secrets', 'set', 'KEPT'], {env: envFor(goodHome), input: 'kept-value'})
      assert.equal(set.code, 0, set.stderr)
      good = await readFile(join(goodHome, 'vault.json'))
    })

    for (const {damage, errorCode, name} of DAMAGES) {
      it(`${name}: secrets get/set/list/delete, login local and run`, async () => {
        const home = homeOf(`damaged-${name.replaceAll(/\W+/g, '-')}`)
        await rm(home, {force: true, recursive: true})
        await cp(goodHome, home, {recursive: true})
        const file = join(home, 'vault.json')
        const bad = damage(good)
        assert.notDeepEqual(bad, good)
        await writeFile(file, bad)
        const before = await digestOf(file)
        const keyBefore = await digestOf(join(home, 'vault.key'))
        const env = envFor(home)
        const message = new RegExp(
          `${file.replaceAll(/[$()*+.?[\\\]^{|}]/g, '\\$&')}.*agentvault has not modified it`,
        )

        for (const [args, input] of [
          [['secrets', 'get', 'KEPT', '--reveal'], undefined],
          [['secrets', 'set', 'NEW'], 'new-value'],
          [['secrets', 'set', 'KEPT'], 'replacement'],
          [['secrets', 'list'], undefined],
          [['secrets', 'delete', 'KEPT', '--yes'], undefined],
        ] as Array<[string[], string | undefined]>) {
          const {error} = await expectFailure(args, {env, input}, {code: 3, message})
          assert.match(error.code, errorCode, args.join(' '))
          assert.equal(await digestOf(file), before, `${args.join(' ')} left vault.json unchanged`)
        }

        // `login local` reads only the header (by design it never needs the key), so a body altered
        // behind a valid header is reported by the commands above, not by it; it still writes nothing.
        const login = await runCli(['login', 'local'], {env})
        if (name.includes('recomputed checksum')) {
          assert.equal(login.code, 0, login.stderr)
          assert.match(login.stderr, /already exists .*nothing changed/)
        } else {
          assert.equal(login.code, 3, login.stderr)
          assert.match(login.stderr, message)
        }

        assert.equal(await digestOf(file), before, 'login local left vault.json unchanged')

        // `status` describes every profile, and exits 3 (the vault is unusable) after printing them.
        const statusRun = await runCli(['status', '--json'], {env})
        assert.equal(statusRun.code, 3, statusRun.stderr)
        const status = JSON.parse(statusRun.stdout) as {
          profiles: Array<{message?: string; name: string; signedIn: boolean}>
        }
        const local = status.profiles.find((profile) => profile.name === 'local')
        assert.equal(local?.signedIn, false)
        assert.match(local?.message ?? '', message)

        const marker = join(t.home, `ran-${name.replaceAll(/\W+/g, '-')}`)
        const run = await runCli(
          [
            'run',
            '--env',
            'KEPT=local://KEPT',
            '--',
            process.execPath,
            '-e',
            `require('node:fs').writeFileSync(${JSON.stringify(marker)}, '')`,
          ],
          {env},
        )
        assert.equal(run.code, 3, run.stderr)
        assert.equal(run.stdout, '')
        assert.match(run.stderr, message)
        await assert.rejects(stat(marker), {code: 'ENOENT'}, 'the command never started')
        assert.equal(await digestOf(file), before, 'run left vault.json unchanged')
        assert.equal(await digestOf(join(home, 'vault.key')), keyBefore, 'the key file is untouched')
        const debris = (await readdir(home)).filter((entry) => /\.(lock|tmp)$/.test(entry))
        assert.deepEqual(debris, [])
      })
    }
  })

  describe('AGENTVAULT_PASSPHRASE as the key source', () => {
    let home: string
    let file: string

    before(async () => {
      home = homeOf('passphrase')
      const set = await runCli(['secrets', 'set', 'LOCKED'], {
        env: envFor(home, {AGENTVAULT_PASSPHRASE: 'correct horse battery staple'}),
        input: 'locked-value',
      })
      assert.equal(set.code, 0, set.stderr)
      file = join(home, 'vault.json')
    })

    it('creates a passphrase vault: no key file, the header says passphrase', async () => {
      await assert.rejects(stat(join(home, 'vault.key')), {code: 'ENOENT'})
      const vault = JSON.parse(await readFile(file, 'utf8')) as {key: {source: string}}
      assert.equal(vault.key.source, 'passphrase')
      const get = await runCli(['secrets', 'get', 'LOCKED', '--reveal'], {
        env: envFor(home, {AGENTVAULT_PASSPHRASE: 'correct horse battery staple'}),
      })
      assert.equal(get.code, 0, get.stderr)
      assert.equal(get.stdout, 'locked-value')
    })

    for (const [label, extra] of [
      ['without the passphrase', {}],
      ['with a wrong passphrase', {AGENTVAULT_PASSPHRASE: 'wrong horse'}],
    ] as Array<[string, NodeJS.ProcessEnv]>) {
      it(`${label}: exit 4 for get, set, list and run; the vault is unchanged and no key file appears`, async () => {
        const env = envFor(home, extra)
        const before = await digestOf(file)
        for (const [args, input] of [
          [['secrets', 'get', 'LOCKED', '--reveal'], undefined],
          [['secrets', 'set', 'OTHER'], 'other-value'],
          [['secrets', 'list'], undefined],
        ] as Array<[string[], string | undefined]>) {
          const {error} = await expectFailure(args, {env, input}, {code: 4, message: /AGENTVAULT_PASSPHRASE/})
          assert.equal(error.category, 'auth')
        }

        const run = await runCli(['run', '--env', 'L=local://LOCKED', '--', 'true'], {env})
        assert.equal(run.code, 4, run.stderr)
        assert.equal(run.stdout, '')
        assert.equal(await digestOf(file), before)
        await assert.rejects(stat(join(home, 'vault.key')), {code: 'ENOENT'})
      })
    }

    it('a missing key file is exit 4 and is never recreated over an existing vault', async () => {
      const keyHome = homeOf('lost-key')
      await mkdir(keyHome, {recursive: true})
      const set = await runCli(['secrets', 'set', 'A'], {env: envFor(keyHome), input: 'a-value'})
      assert.equal(set.code, 0, set.stderr)
      await rm(join(keyHome, 'vault.key'))
      const before = await digestOf(join(keyHome, 'vault.json'))
      await expectFailure(
        ['secrets', 'set', 'B'],
        {env: envFor(keyHome), input: 'b'},
        {code: 4, message: /vault\.key/},
      )
      await expectFailure(['secrets', 'get', 'A', '--reveal'], {env: envFor(keyHome)}, {code: 4})
      assert.equal(await digestOf(join(keyHome, 'vault.json')), before)
      await assert.rejects(stat(join(keyHome, 'vault.key')), {code: 'ENOENT'})
    })
  })
})
