import assert from 'node:assert/strict'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {runCli, tempHome} from '../helpers/cli.js'
import {expectFailure, parseJson} from '../helpers/e2e.js'

interface SecretMetadata {
  allowedDomains?: string[]
  created: string
  description?: string
  name: string
  tags?: string[]
  updated: string
  version: number
}

interface SecretList {
  backend: string
  profile: string
  secrets: SecretMetadata[]
}

const ALL_BYTES = Buffer.from(Array.from({length: 256}, (_, i) => i))

describe('e2e: secrets', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const cli = (args: string[], input?: Buffer | string, env: NodeJS.ProcessEnv = {}) =>
    runCli(args, {env: {...t.env, ...env}, input})
  const reveal = async (name: string): Promise<Buffer> => {
    const result = await cli(['secrets', 'get', name, '--reveal'])
    assert.equal(result.code, 0, result.stderr)
    return result.stdoutBytes
  }

  const list = async (...args: string[]): Promise<SecretList> =>
    parseJson<SecretList>(await cli(['secrets', 'list', ...args, '--json']))

  before(async () => {
    t = await tempHome()
  })

  after(() => t.dispose())

  describe('set', () => {
    it('reads piped stdin and strips exactly one trailing newline', async () => {
      for (const [name, input, stored] of [
        ['NL_ONE', 'value\n', 'value'],
        ['NL_TWO', 'value\n\n', 'value\n'],
        ['NL_NONE', 'value', 'value'],
        ['NL_CRLF', 'value\r\n', 'value'],
      ] as const) {
        const result = await cli(['secrets', 'set', name], input)
        assert.equal(result.code, 0, result.stderr)
        assert.match(result.stderr, new RegExp(`Stored local://${name} \\(version 1\\)`))
        assert.equal(result.stdout, '', 'set prints its progress on stderr, not stdout')
        assert.deepEqual(await reveal(name), Buffer.from(stored), name)
      }
    })

    it('--from-file stores the file’s bytes exactly (binary, trailing newline kept)', async () => {
      const file = join(t.home, 'binary.bin')
      const bytes = Buffer.concat([ALL_BYTES, Buffer.from(ALL_BYTES).reverse(), Buffer.from('\n')])
      await writeFile(file, bytes)
      const result = await cli(['secrets', 'set', 'BINARY', '--from-file', file])
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(await reveal('BINARY'), bytes)

      const json = parseJson<{encoding: string; reference: string; value: string}>(
        await cli(['secrets', 'get', 'BINARY', '--reveal', '--json']),
      )
      assert.deepEqual(json, {
        encoding: 'base64',
        reference: 'local://BINARY',
        value: bytes.toString('base64'),
      })
    })

    it('--from-env reads the variable (no stdin needed)', async () => {
      const result = await cli(['secrets', 'set', 'FROM_ENV', '--from-env', 'MY_VALUE'], undefined, {
        MY_VALUE: 'from the environment\n',
      })
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(await reveal('FROM_ENV'), Buffer.from('from the environment\n'))
    })

    it('NAME=VALUE in argv works but warns that argv leaks', async () => {
      const result = await cli(['secrets', 'set', 'INLINE=in-argv-value'])
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stderr, /^Warning: .*argv leaks to shell history and `ps`/m)
      assert.ok(!result.stderr.includes('in-argv-value'), 'the warning does not repeat the value')
      assert.deepEqual(await reveal('INLINE'), Buffer.from('in-argv-value'))
    })

    it('empty stdin is a usage error (exit 2) naming the alternatives; nothing prompts off a TTY', async () => {
      const {error, plain} = await expectFailure(
        ['secrets', 'set', 'EMPTY'],
        {env: t.env, input: ''},
        {code: 2, errorCode: 'VALUE_REQUIRED'},
      )
      assert.match(error.suggestion, /--from-file/)
      assert.match(error.suggestion, /--from-env/)
      assert.doesNotMatch(plain.stderr, /Value for/, 'no prompt when stdin is not a TTY')
      assert.deepEqual((await list('EMPTY')).secrets, [])
    })

    it('a lone newline on stdin is empty too (exit 2)', async () => {
      await expectFailure(['secrets', 'set', 'EMPTY'], {env: t.env, input: '\n'}, {code: 2})
    })

    it('bad value sources are usage errors: unset --from-env, unreadable --from-file, both at once', async () => {
      await expectFailure(
        ['secrets', 'set', 'X', '--from-env', 'AGENTVAULT_TEST_UNSET_VAR'],
        {env: t.env},
        {code: 2, errorCode: 'ENV_VAR_UNSET', message: /AGENTVAULT_TEST_UNSET_VAR/},
      )
      await expectFailure(
        ['secrets', 'set', 'X', '--from-file', join(t.home, 'no-such-file')],
        {env: t.env},
        {code: 2, errorCode: 'FILE_UNREADABLE'},
      )
      await expectFailure(
        ['secrets', 'set', 'X', '--from-file', 'a', '--from-env', 'B'],
        {env: t.env},
        {code: 2},
      )
    })

    it('--description, --tag and --allow-domain appear in `secrets list --json`', async () => {
      const result = await cli(
        [
          'secrets',
          'set',
          'META',
          '--description',
          'deploy key for prod',
          '--tag',
          'prod',
          '--tag',
          'deploy',
          '--allow-domain',
          'api.example.com',
          '--allow-domain',
          '*.example.org',
        ],
        'meta-value',
      )
      assert.equal(result.code, 0, result.stderr)
      const [meta] = (await list('META')).secrets
      assert.ok(meta)
      assert.equal(meta.name, 'META')
      assert.equal(meta.description, 'deploy key for prod')
      assert.deepEqual(meta.tags, ['prod', 'deploy'])
      assert.deepEqual(meta.allowedDomains, ['api.example.com', '*.example.org'])
    })

    it('storing again increments the version and keeps created and metadata', async () => {
      const first = parseJson<SecretMetadata & {reference: string}>(
        await cli(['secrets', 'set', 'VERSIONED', '--description', 'kept', '--json'], 'v1'),
      )
      assert.equal(first.reference, 'local://VERSIONED')
      assert.equal(first.version, 1)
      const second = parseJson<SecretMetadata>(await cli(['secrets', 'set', 'VERSIONED', '--json'], 'v2'))
      assert.equal(second.version, 2)
      assert.equal(second.created, first.created)
      assert.equal(second.description, 'kept')
      const third = await cli(['secrets', 'set', 'local://VERSIONED'], 'v3')
      assert.match(third.stderr, /Stored local:\/\/VERSIONED \(version 3\)/)
      const [listed] = (await list('VERSIONED')).secrets
      assert.equal(listed?.version, 3)
      assert.deepEqual(await reveal('VERSIONED'), Buffer.from('v3'))
    })
  })

  describe('list', () => {
    const values = {APP_ONE: 'list-value-one', APP_TWO: 'list-value-two', OTHER_THING: 'list-value-other'}

    before(async () => {
      for (const [name, value] of Object.entries(values)) {
        const result = await cli(
          ['secrets', 'set', name, '--tag', 'app', '--description', `about ${name}`],
          value,
        )
        assert.equal(result.code, 0, result.stderr)
      }
    })

    it('--json: {backend, profile, secrets: [metadata]} filtered by PREFIX, never values', async () => {
      const result = await cli(['secrets', 'list', 'APP_', '--json'])
      const parsed = parseJson<SecretList>(result)
      assert.equal(parsed.backend, 'local')
      assert.equal(parsed.profile, 'local')
      assert.deepEqual(
        parsed.secrets.map((s) => s.name),
        ['APP_ONE', 'APP_TWO'],
      )
      for (const secret of parsed.secrets) {
        assert.deepEqual(Object.keys(secret).sort(), [
          'created',
          'description',
          'name',
          'tags',
          'updated',
          'version',
        ])
        assert.ok(!Number.isNaN(Date.parse(secret.created)))
        assert.equal(secret.version, 1)
      }

      for (const value of Object.values(values)) assert.ok(!result.stdout.includes(value))
    })

    it('table: a header and one row per secret with name, version, tags, description', async () => {
      const result = await cli(['secrets', 'list'])
      assert.equal(result.code, 0, result.stderr)
      const lines = result.stdout.trimEnd().split('\n')
      assert.match(lines[0] ?? '', /^NAME\s+VERSION\s+UPDATED\s+TAGS\s+DESCRIPTION$/)
      const row = lines.find((line) => line.startsWith('APP_TWO '))
      assert.match(row ?? '', /^APP_TWO\s+1\s+\S+\s+app\s+about APP_TWO$/)
      assert.ok(lines.some((line) => line.startsWith('OTHER_THING ')))
      assert.ok(lines.some((line) => line.startsWith('BINARY ')))
      for (const value of Object.values(values)) assert.ok(!result.stdout.includes(value))
    })

    it('a prefix that matches nothing: empty list, a note on stderr, exit 0', async () => {
      const table = await cli(['secrets', 'list', 'NOTHING_'])
      assert.equal(table.code, 0)
      assert.equal(table.stdout, '')
      assert.match(table.stderr, /No secrets/)
      assert.deepEqual((await list('NOTHING_')).secrets, [])
    })
  })

  describe('get', () => {
    before(async () => {
      const result = await cli(['secrets', 'set', 'GETTABLE'], 'gettable-value')
      assert.equal(result.code, 0, result.stderr)
    })

    it('refuses without --reveal (exit 2, "Try this"), printing nothing', async () => {
      const {error, plain} = await expectFailure(
        ['secrets', 'get', 'GETTABLE'],
        {env: t.env},
        {code: 2, errorCode: 'REVEAL_REQUIRED'},
      )
      assert.match(plain.stderr, /Try this: .*--reveal/)
      assert.match(error.suggestion, /agentvault run --env/)
      assert.ok(!plain.stderr.includes('gettable-value'))
    })

    it('--reveal prints the exact bytes, no newline added off a TTY', async () => {
      const result = await cli(['secrets', 'get', 'local://GETTABLE', '--reveal'])
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(result.stdoutBytes, Buffer.from('gettable-value'))
      assert.equal(result.stderr, '')
    })

    it('--reveal --json prints {reference, encoding, value}', async () => {
      const parsed = parseJson<Record<string, string>>(
        await cli(['secrets', 'get', 'GETTABLE', '--reveal', '--json']),
      )
      assert.deepEqual(parsed, {encoding: 'utf8', reference: 'local://GETTABLE', value: 'gettable-value'})
    })

    it('a missing secret is exit 6', async () => {
      const {error} = await expectFailure(
        ['secrets', 'get', 'NO_SUCH_SECRET', '--reveal'],
        {env: t.env},
        {code: 6, errorCode: 'SECRET_NOT_FOUND', message: /local:\/\/NO_SUCH_SECRET/},
      )
      assert.equal(error.category, 'not_found')
    })

    for (const bad of ['local://a/../b', 'bogus://x', 'local://', 'local://X?nope=1']) {
      it(`bad reference syntax ${bad} is exit 2`, async () => {
        const {error} = await expectFailure(['secrets', 'get', bad, '--reveal'], {env: t.env}, {code: 2})
        assert.equal(error.category, 'usage')
      })
    }

    it('oclif’s own parse errors use the same format (exit 2)', async () => {
      await expectFailure(['secrets', 'get', 'GETTABLE', '--no-such-flag'], {env: t.env}, {code: 2})
      await expectFailure(['secrets', 'get'], {env: t.env}, {code: 2})
    })
  })

  describe('delete', () => {
    beforeEach(async () => {
      const result = await cli(['secrets', 'set', 'DOOMED'], 'doomed-value')
      assert.equal(result.code, 0, result.stderr)
    })

    it('without --yes off a TTY: exit 2, nothing deleted', async () => {
      const {error} = await expectFailure(
        ['secrets', 'delete', 'DOOMED'],
        {env: t.env},
        {code: 2, errorCode: 'CONFIRMATION_REQUIRED'},
      )
      assert.match(error.suggestion, /--yes/)
      assert.deepEqual(await reveal('DOOMED'), Buffer.from('doomed-value'))
    })

    it('with --yes deletes (and `secrets rm` is the same command)', async () => {
      const result = await cli(['secrets', 'delete', 'DOOMED', '--yes'])
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stderr, /Deleted local:\/\/DOOMED/)
      assert.deepEqual((await list('DOOMED')).secrets, [])
      await expectFailure(['secrets', 'get', 'DOOMED', '--reveal'], {env: t.env}, {code: 6})

      await cli(['secrets', 'set', 'DOOMED'], 'again')
      const json = parseJson<{deleted: string}>(
        await cli(['secrets', 'rm', 'local://DOOMED', '-y', '--json']),
      )
      assert.deepEqual(json, {deleted: 'local://DOOMED'})
      assert.deepEqual((await list('DOOMED')).secrets, [])
    })

    it('a missing secret is exit 6', async () => {
      await expectFailure(['secrets', 'delete', 'NEVER_EXISTED', '--yes'], {env: t.env}, {code: 6})
    })

    it('bad reference syntax is exit 2', async () => {
      await expectFailure(['secrets', 'delete', 'local://a/../b', '--yes'], {env: t.env}, {code: 2})
    })
  })
})
