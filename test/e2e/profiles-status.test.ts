import assert from 'node:assert/strict'
import {mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {runCli, tempHome} from '../helpers/cli.js'
import {digestOf, expectFailure, parseJson} from '../helpers/e2e.js'

interface ProfileRow {
  active: boolean
  default: boolean
  implicit: boolean
  kind: string
  name: string
  settings: Record<string, unknown>
}

interface StatusRow {
  active: boolean
  details?: Record<string, unknown>
  kind: string
  message?: string
  name: string
  reachable: boolean
  signedIn: boolean
}

interface LoginResult {
  details: {created: boolean; keySource: string; path: string}
  kind: string
  message: string
  profile: string
}

const escape = (text: string): string => text.replaceAll(/[$()*+.?[\\\]^{|}]/g, '\\$&')

describe('e2e: profiles, config.json, status, login and logout', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  /** A fresh AGENTVAULT_HOME per test, under the suite's temp dir. */
  let home: string
  let env: NodeJS.ProcessEnv
  let counter = 0
  const cli = (args: string[], input?: string, extra: NodeJS.ProcessEnv = {}) =>
    runCli(args, {env: {...env, ...extra}, input})
  const profiles = async (): Promise<ProfileRow[]> =>
    parseJson<{profiles: ProfileRow[]}>(await cli(['profiles', 'list', '--json'])).profiles
  const config = async (): Promise<Record<string, unknown>> =>
    JSON.parse(await readFile(join(home, 'config.json'), 'utf8')) as Record<string, unknown>

  before(async () => {
    t = await tempHome()
  })

  beforeEach(() => {
    home = join(t.home, `home-${++counter}`)
    env = {...t.env, AGENTVAULT_HOME: home}
  })

  after(() => t.dispose())

  describe('profiles', () => {
    it('with no config: the implicit local profile, active and default; nothing is written', async () => {
      assert.deepEqual(await profiles(), [
        {active: true, default: true, implicit: true, kind: 'local', name: 'local', settings: {}},
      ])
      const table = await cli(['profiles', 'list'])
      assert.equal(table.code, 0, table.stderr)
      const lines = table.stdout.trimEnd().split('\n')
      assert.match(lines[0] ?? '', /^\s+NAME\s+KIND\s+DEFAULT\s+SETTINGS$/)
      assert.match(lines[1] ?? '', /^\*\s+local\s+local\s+yes\s+\{\}$/)
      await assert.rejects(stat(home), {code: 'ENOENT'}, 'listing creates no home')
    })

    it('add, list, use, remove (and --json results)', async () => {
      const added = parseJson<Record<string, unknown>>(
        await cli([
          'profiles',
          'add',
          'team',
          '--kind',
          'local',
          '--set',
          'allowedDomains=["api.example.com"]',
          '--set',
          'auditPaths=ref',
          '--json',
        ]),
      )
      assert.deepEqual(added, {
        allowedDomains: ['api.example.com'],
        auditPaths: 'ref',
        kind: 'local',
        name: 'team',
      })
      const bao = await cli([
        'profiles',
        'add',
        'prod-bao',
        '--kind',
        'openbao',
        '--set',
        'address=https://bao.example.com:8200',
      ])
      assert.equal(bao.code, 0, bao.stderr)
      assert.match(bao.stderr, /Added openbao profile prod-bao/)
      const second = await cli(['profiles', 'add', 'second', '--kind', 'local'])
      assert.equal(second.code, 0, second.stderr)

      // The first profile of a kind becomes its default; the implicit local profile gives way.
      let rows = await profiles()
      assert.deepEqual(
        rows.map((p) => [p.name, p.kind, p.default, p.active, p.implicit]),
        [
          ['team', 'local', true, false, false],
          ['prod-bao', 'openbao', true, false, false],
          ['second', 'local', false, false, false],
        ],
      )
      assert.deepEqual(rows[1]?.settings, {address: 'https://bao.example.com:8200'})
      const table = await cli(['profiles', 'list'])
      assert.match(
        table.stdout,
        /^\s+prod-bao\s+openbao\s+yes\s+\{"address":"https:\/\/bao\.example\.com:8200"\}$/m,
      )

      assert.deepEqual(parseJson(await cli(['profiles', 'use', 'second', '--json'])), {active: 'second'})
      rows = await profiles()
      assert.deepEqual(
        rows.filter((p) => p.active).map((p) => p.name),
        ['second'],
      )
      assert.equal(
        rows.find((p) => p.name === 'second')?.default,
        true,
        '`use` also makes it its kind’s default',
      )
      const listed = parseJson<{profile: string}>(await cli(['secrets', 'list', '--json']))
      assert.equal(listed.profile, 'second', 'the active profile serves kind-less commands')
      assert.match((await cli(['profiles', 'list'])).stdout, /^\*\s+second\s+local\s+yes/m)

      // config.json holds exactly what was configured, and no credentials.
      assert.deepEqual(await config(), {
        version: 1,
        active: 'second',
        defaults: {local: 'second', openbao: 'prod-bao'},
        profiles: {
          team: {allowedDomains: ['api.example.com'], auditPaths: 'ref', kind: 'local'},
          'prod-bao': {address: 'https://bao.example.com:8200', kind: 'openbao'},
          second: {kind: 'local'},
        },
      })

      assert.deepEqual(parseJson(await cli(['profiles', 'remove', 'second', '--json'])), {removed: 'second'})
      // Removing the active profile (the local default) falls back to the implicit local profile.
      rows = await profiles()
      assert.deepEqual(
        rows.map((p) => [p.name, p.default, p.active]),
        [
          ['local', true, true],
          ['team', false, false],
          ['prod-bao', true, false],
        ],
      )
      const after = await config()
      assert.equal(after.active, undefined)
      assert.deepEqual(after.defaults, {openbao: 'prod-bao'})
      assert.equal(parseJson<{profile: string}>(await cli(['secrets', 'list', '--json'])).profile, 'local')

      assert.deepEqual(parseJson(await cli(['profiles', 'use', 'local', '--json'])), {active: 'local'})
      assert.equal((await config()).active, 'local')
    })

    it('profile errors: duplicates, unknown names, bad kinds and names, malformed --set', async () => {
      assert.equal((await cli(['profiles', 'add', 'dup', '--kind', 'local'])).code, 0)
      const before = await digestOf(join(home, 'config.json'))
      await expectFailure(
        ['profiles', 'add', 'dup', '--kind', 'local'],
        {env},
        {code: 2, errorCode: 'PROFILE_EXISTS'},
      )
      await expectFailure(
        ['profiles', 'use', 'nope'],
        {env},
        {code: 3, errorCode: 'PROFILE_NOT_FOUND', message: /nope/},
      )
      await expectFailure(['profiles', 'remove', 'nope'], {env}, {code: 3, errorCode: 'PROFILE_NOT_FOUND'})
      await expectFailure(['profiles', 'add', 'x', '--kind', 'nope'], {env}, {code: 2})
      await expectFailure(
        ['profiles', 'add', 'bad name!', '--kind', 'local'],
        {env},
        {code: 2, errorCode: 'BAD_PROFILE_NAME'},
      )
      await expectFailure(
        ['profiles', 'add', 'x', '--kind', 'local', '--set', 'novalue'],
        {env},
        {code: 2, errorCode: 'BAD_SETTING'},
      )
      await expectFailure(
        ['profiles', 'add', 'x', '--kind', 'local', '--set', 'allowedDomains=[oops'],
        {env},
        {code: 2, errorCode: 'BAD_SETTING'},
      )
      await expectFailure(['profiles', 'add'], {env}, {code: 2})
      assert.equal(
        await digestOf(join(home, 'config.json')),
        before,
        'failed commands leave config.json alone',
      )
    })

    it('a credential in --set is refused as a usage error and never written', async () => {
      assert.equal((await cli(['profiles', 'add', 'ok', '--kind', 'openbao'])).code, 0)
      const before = await digestOf(join(home, 'config.json'))
      const {error} = await expectFailure(
        ['profiles', 'add', 'leaky', '--kind', 'openbao', '--set', 'token=s.not-a-real-token'],
        {env},
        {code: 2, message: /token/},
      )
      assert.ok(!JSON.stringify(error).includes('s.not-a-real-token'), 'the value is not echoed')
      assert.match(error.suggestion, /login/)
      assert.equal(await digestOf(join(home, 'config.json')), before)
    })
  })

  describe('config.json validation', () => {
    const cases: Array<{content: string; key: RegExp; name: string}> = [
      {name: 'bad JSON', content: '{"version": 1, "profiles": {', key: /not valid JSON/},
      {name: 'an unknown top-level key', content: '{"version": 1, "colour": "blue"}', key: /colour/},
      {
        name: 'a token in a profile',
        content: JSON.stringify({version: 1, profiles: {bao: {kind: 'openbao', token: 's.abc'}}}),
        key: /profiles\.bao\.token/,
      },
      {
        name: 'an unknown kind',
        content: JSON.stringify({version: 1, profiles: {x: {kind: 'mystery'}}}),
        key: /profiles\.x\.kind/,
      },
      {
        name: 'a default naming no profile',
        content: JSON.stringify({version: 1, defaults: {local: 'ghost'}}),
        key: /defaults\.local/,
      },
    ]

    for (const {content, key, name} of cases) {
      it(`${name}: exit 3 naming the file and key, for every command that reads it; the file is untouched`, async () => {
        await mkdir(home, {mode: 0o700, recursive: true})
        const file = join(home, 'config.json')
        await writeFile(file, content, {mode: 0o600})
        const message = new RegExp(`${escape(file)}.*${key.source}`)
        for (const [args, input] of [
          [['profiles', 'list'], undefined],
          [['status'], undefined],
          [['secrets', 'list'], undefined],
          [['secrets', 'set', 'A'], 'a-value'],
          [['profiles', 'add', 'p', '--kind', 'local'], undefined],
        ] as Array<[string[], string | undefined]>) {
          const {error} = await expectFailure(
            args,
            {env, input},
            {code: 3, errorCode: 'CONFIG_INVALID', message},
          )
          assert.equal(error.category, 'config')
        }

        const run = await cli(['run', '--env', 'A=local://A', '--', 'true'])
        assert.equal(run.code, 3, run.stderr)
        assert.match(run.stderr, message)
        assert.equal(await readFile(file, 'utf8'), content)
        await assert.rejects(stat(join(home, 'vault.json')), {code: 'ENOENT'}, 'nothing was stored')
      })
    }

    it('the error for a credential key never repeats its value', async () => {
      await mkdir(home, {mode: 0o700, recursive: true})
      await writeFile(
        join(home, 'config.json'),
        JSON.stringify({version: 1, profiles: {bao: {kind: 'openbao', password: 'hunter2-do-not-print'}}}),
      )
      const {json, plain} = await expectFailure(
        ['status'],
        {env},
        {code: 3, message: /profiles\.bao\.password/},
      )
      assert.ok(!plain.stderr.includes('hunter2-do-not-print'))
      assert.ok(!json.stdout.includes('hunter2-do-not-print'))
    })

    it('a reference to an unknown ?profile= is exit 3', async () => {
      assert.equal((await cli(['secrets', 'set', 'A'], 'a-value')).code, 0)
      const {error} = await expectFailure(
        ['secrets', 'get', 'local://A?profile=nowhere', '--reveal'],
        {env},
        {code: 3, errorCode: 'PROFILE_NOT_FOUND', message: /nowhere/},
      )
      assert.match(error.suggestion, /profiles/)
      const run = await cli(['run', '--env', 'A=local://A?profile=nowhere', '--', 'true'])
      assert.equal(run.code, 3, run.stderr)
      assert.equal(run.stdout, '')
      await expectFailure(['secrets', 'list'], {env: {...env, AGENTVAULT_PROFILE: 'nowhere'}}, {code: 3})
      await expectFailure(['secrets', 'list', '--profile', 'nowhere'], {env}, {code: 3})
    })
  })

  describe('status / whoami', () => {
    it('before the vault exists: the implicit local profile, reachable, not signed in; nothing created', async () => {
      for (const command of ['status', 'whoami']) {
        const parsed = parseJson<{profiles: StatusRow[]}>(await cli([command, '--json']))
        assert.equal(parsed.profiles.length, 1)
        const [row] = parsed.profiles
        assert.equal(row?.name, 'local')
        assert.equal(row?.kind, 'local')
        assert.equal(row?.active, true)
        assert.equal(row?.reachable, true)
        assert.equal(row?.signedIn, false)
        assert.match(row?.message ?? '', /No vault yet/)
        assert.equal(row?.details?.path, join(home, 'vault.json'))
        assert.equal(row?.details?.secrets, 0)

        const table = await cli([command])
        assert.equal(table.code, 0, table.stderr)
        const lines = table.stdout.trimEnd().split('\n')
        assert.match(lines[0] ?? '', /^\s+PROFILE\s+KIND\s+REACHABLE\s+SIGNED IN\s+EXPIRES\s+NOTE$/)
        assert.match(lines[1] ?? '', /^\*\s+local\s+local\s+yes\s+no\s+No vault yet/)
      }

      await assert.rejects(stat(home), {code: 'ENOENT'}, 'status creates nothing')
    })

    it('after the vault exists: signed in, with its key source and secret count', async () => {
      assert.equal((await cli(['secrets', 'set', 'ONE'], '1111')).code, 0)
      assert.equal((await cli(['secrets', 'set', 'TWO'], '2222')).code, 0)
      const parsed = parseJson<{profiles: StatusRow[]}>(await cli(['whoami', '--json']))
      assert.deepEqual(parsed.profiles, [
        {
          active: true,
          details: {keySource: 'file', path: join(home, 'vault.json'), secrets: 2},
          identity: null,
          kind: 'local',
          message: null,
          name: 'local',
          problem: null,
          reachable: true,
          signedIn: true,
          tokenExpiry: null,
        },
      ])
      const table = await cli(['status'])
      assert.match(table.stdout, /^\*\s+local\s+local\s+yes\s+yes\s*$/m)
    })

    it('lists the implicit profile of a kind configured only by its native env vars (BAO_ADDR)', async () => {
      // Port 1 on loopback: nothing listens, so the connection is refused at once.
      const extra = {BAO_ADDR: 'http://127.0.0.1:1', BAO_TOKEN: ''}
      // The openbao profile is unusable (unreachable): status exits 5, its --json result still printed.
      const unreachable = await cli(['status', '--json'], undefined, extra)
      assert.equal(unreachable.code, 5, unreachable.stderr)
      const parsed = JSON.parse(unreachable.stdout) as {profiles: StatusRow[]}
      assert.deepEqual(
        parsed.profiles.map((p) => [p.name, p.kind, p.active, p.reachable]),
        [
          ['local', 'local', true, true],
          ['openbao', 'openbao', false, false],
        ],
      )
      const listed = parseJson<{profiles: ProfileRow[]}>(
        await cli(['profiles', 'list', '--json'], undefined, extra),
      )
      assert.deepEqual(
        listed.profiles.map((p) => [p.name, p.kind, p.implicit]),
        [
          ['local', 'local', true],
          ['openbao', 'openbao', true],
        ],
      )
      // Without the variable only the local profile is there.
      assert.deepEqual(
        parseJson<{profiles: StatusRow[]}>(await cli(['status', '--json'])).profiles.map((p) => p.name),
        ['local'],
      )
    })

    it('lists every configured profile and marks the active one', async () => {
      assert.equal((await cli(['profiles', 'add', 'team', '--kind', 'local'])).code, 0)
      assert.equal((await cli(['profiles', 'use', 'team'])).code, 0)
      const parsed = parseJson<{profiles: StatusRow[]}>(await cli(['status', '--json']))
      assert.deepEqual(
        parsed.profiles.map((p) => [p.name, p.kind, p.active]),
        [['team', 'local', true]],
      )
    })
  })

  describe('login local and logout', () => {
    it('login local --key-source file creates the vault; a second call changes nothing', async () => {
      const first = await cli(['login', 'local', '--key-source', 'file'])
      assert.equal(first.code, 0, first.stderr)
      assert.match(
        first.stderr,
        new RegExp(`Created the local vault at ${escape(join(home, 'vault.json'))} \\(key source: file\\)`),
      )
      assert.equal(first.stdout, '')
      const vault = join(home, 'vault.json')
      const before = await digestOf(vault)
      const key = await digestOf(join(home, 'vault.key'))

      const second = parseJson<LoginResult>(await cli(['login', 'local', '--key-source', 'file', '--json']))
      assert.deepEqual(second.details, {created: false, keySource: 'file', path: vault})
      assert.equal(second.kind, 'local')
      assert.equal(second.profile, 'local')
      assert.match(second.message, /already exists.*nothing changed/)
      const third = await cli(['login'])
      assert.equal(third.code, 0, third.stderr)
      assert.match(third.stderr, /nothing changed/)
      assert.equal(await digestOf(vault), before)
      assert.equal(await digestOf(join(home, 'vault.key')), key)

      const status = parseJson<{profiles: StatusRow[]}>(await cli(['status', '--json']))
      assert.equal(status.profiles[0]?.signedIn, true)
      assert.deepEqual(parseJson<{secrets: unknown[]}>(await cli(['secrets', 'list', '--json'])).secrets, [])
    })

    it('login local --key-source passphrase without AGENTVAULT_PASSPHRASE: a clear error, nothing created', async () => {
      const {error} = await expectFailure(
        ['login', 'local', '--key-source', 'passphrase'],
        {env},
        {code: 4, errorCode: 'PASSPHRASE_REQUIRED', message: /AGENTVAULT_PASSPHRASE/},
      )
      assert.match(error.suggestion, /AGENTVAULT_PASSPHRASE/)
      await assert.rejects(stat(join(home, 'vault.json')), {code: 'ENOENT'})
      await assert.rejects(stat(join(home, 'vault.key')), {code: 'ENOENT'})
    })

    it('login local --key-source passphrase with it: a passphrase vault, no key file', async () => {
      const result = parseJson<LoginResult>(
        await cli(['login', 'local', '--key-source', 'passphrase', '--json'], undefined, {
          AGENTVAULT_PASSPHRASE: 'pw',
        }),
      )
      assert.deepEqual(result.details, {
        created: true,
        keySource: 'passphrase',
        path: join(home, 'vault.json'),
      })
      await assert.rejects(stat(join(home, 'vault.key')), {code: 'ENOENT'})
    })

    it('login rejects an unknown key source or kind (exit 2)', async () => {
      await expectFailure(['login', 'local', '--key-source', 'floppy'], {env}, {code: 2})
      await expectFailure(['login', 'mystery'], {env}, {code: 2})
      await assert.rejects(stat(join(home, 'vault.json')), {code: 'ENOENT'})
    })

    it('logout: nothing to clear for local, exit 0, the vault kept', async () => {
      assert.equal((await cli(['secrets', 'set', 'KEEP'], 'keep-me')).code, 0)
      const before = await digestOf(join(home, 'vault.json'))
      const plain = await cli(['logout'])
      assert.equal(plain.code, 0, plain.stderr)
      assert.match(plain.stderr, /No stored credentials for local/)
      assert.deepEqual(parseJson(await cli(['logout', 'local', '--json'])), {
        cleared: false,
        kind: 'local',
        profile: 'local',
      })
      assert.equal(await digestOf(join(home, 'vault.json')), before)
      assert.equal((await cli(['secrets', 'get', 'KEEP', '--reveal'])).stdout, 'keep-me')
    })

    it('logout of a never-used home creates nothing', async () => {
      const result = await cli(['logout'])
      assert.equal(result.code, 0, result.stderr)
      await assert.rejects(stat(home), {code: 'ENOENT'})
    })
  })
})
