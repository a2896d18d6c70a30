import assert from 'node:assert/strict'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {collect, runCli, startCli, tempHome} from '../helpers/cli.js'
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

    it('--from-file stores the file’s bytes, minus one trailing newline (binary safe)', async () => {
      const file = join(t.home, 'binary.bin')
      const bytes = Buffer.concat([ALL_BYTES, Buffer.from(ALL_BYTES).reverse()])
      await writeFile(file, Buffer.concat([bytes, Buffer.from('\n')]))
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

    it('--from-file drops exactly one trailing newline (\\n or \\r\\n), as stdin does, and says so in --help', async () => {
      for (const [name, content, stored] of [
        ['FILE_NL', 'sk_file_value\n', 'sk_file_value'],
        ['FILE_CRLF', 'sk_file_value\r\n', 'sk_file_value'],
        ['FILE_NL_TWO', 'sk_file_value\n\n', 'sk_file_value\n'],
        ['FILE_CR_ONLY', 'sk_file_value\r', 'sk_file_value\r'],
        ['FILE_NONE', 'sk_file_value', 'sk_file_value'],
      ] as const) {
        const file = join(t.home, `${name}.txt`)
        await writeFile(file, content)
        const result = await cli(['secrets', 'set', name, '--from-file', file])
        assert.equal(result.code, 0, result.stderr)
        assert.deepEqual(await reveal(name), Buffer.from(stored), name)
      }

      const help = await cli(['secrets', 'set', '--help'])
      assert.match(help.stdout.replaceAll(/\s+/g, ' '), /--from-file.*one trailing newline/)
    })

    it('--from-file - reads stdin, as `-` means in curl, kubectl and gh (a file named - is ./-)', async () => {
      const result = await cli(['secrets', 'set', 'FROM_DASH', '--from-file', '-'], 'dash-value\n')
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(await reveal('FROM_DASH'), Buffer.from('dash-value'))
      await writeFile(join(t.home, '-'), 'file-named-dash')
      const named = await runCli(['secrets', 'set', 'NAMED_DASH', '--from-file', './-'], {
        cwd: t.home,
        env: t.env,
      })
      assert.equal(named.code, 0, named.stderr)
      assert.deepEqual(await reveal('NAMED_DASH'), Buffer.from('file-named-dash'))
    })

    it('a file holding only a newline is empty: refused (exit 2), nothing stored', async () => {
      const file = join(t.home, 'only-newline.txt')
      await writeFile(file, '\n')
      await expectFailure(
        ['secrets', 'set', 'FILE_EMPTY', '--from-file', file],
        {env: t.env},
        {code: 2, errorCode: 'VALUE_REQUIRED'},
      )
      assert.deepEqual((await list('FILE_EMPTY')).secrets, [])
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

    describe('value size cap (default 1 MiB, --max-value-bytes / AGENTVAULT_MAX_VALUE_BYTES)', () => {
      const MIB = 1024 * 1024

      it('a value of exactly 1 MiB is stored; one byte more on stdin is refused (exit 2), nothing stored', async () => {
        const ok = await cli(['secrets', 'set', 'CAP_EXACT'], Buffer.alloc(MIB, 0x61))
        assert.equal(ok.code, 0, ok.stderr)
        assert.equal((await reveal('CAP_EXACT')).length, MIB)
        const {error} = await expectFailure(
          ['secrets', 'set', 'CAP_OVER'],
          {env: t.env, input: Buffer.alloc(MIB + 1, 0x61)},
          {code: 2, errorCode: 'VALUE_TOO_LARGE', message: /1 MiB/},
        )
        assert.match(error.suggestion, /--max-value-bytes/)
        assert.match(error.suggestion, /AGENTVAULT_MAX_VALUE_BYTES/)
        assert.deepEqual((await list('CAP_OVER')).secrets, [])
      })

      it('stops reading an endless source at the cap: --from-file /dev/zero and a stdin that never ends', async () => {
        await expectFailure(
          ['secrets', 'set', 'CAP_ZERO', '--from-file', '/dev/zero'],
          {env: t.env},
          {code: 2, errorCode: 'VALUE_TOO_LARGE'},
        )
        // stdin stays open and keeps flowing: only a reader that stops at the cap can finish.
        const child = startCli(['secrets', 'set', 'CAP_STREAM'], {env: t.env, openStdin: true})
        const chunk = Buffer.alloc(64 * 1024, 0x62)
        let written = 0
        const pump = (): void => {
          while (child.stdin?.writable && child.exitCode === null) {
            written += chunk.length
            if (!child.stdin.write(chunk)) {
              child.stdin.once('drain', pump)
              return
            }
          }
        }

        child.stdin?.on('error', () => {}) // EPIPE once the CLI has stopped reading and exited
        const done = collect(child)
        pump()
        const result = await done
        assert.equal(result.code, 2, result.stderr)
        assert.match(result.stderr, /^Error: .*larger than .*\nTry this: .+$/m)
        assert.ok(written > MIB, 'the writer got past the cap before the CLI gave up')
        assert.deepEqual(
          (await list('CAP_')).secrets.map((s) => s.name),
          ['CAP_EXACT'],
        )
      })

      it('the flag and the env var set the cap for every source: argv, --from-env, --from-file, stdin', async () => {
        const file = join(t.home, 'seventeen.txt')
        await writeFile(file, '12345678901234567')
        const over: Array<[string[], string | undefined, NodeJS.ProcessEnv]> = [
          [['secrets', 'set', 'CAPS=12345678901234567', '--max-value-bytes', '16'], undefined, {}],
          [
            ['secrets', 'set', 'CAPS', '--from-env', 'V17', '--max-value-bytes', '16'],
            undefined,
            {V17: '12345678901234567'},
          ],
          [['secrets', 'set', 'CAPS', '--from-file', file, '--max-value-bytes', '16'], undefined, {}],
          [['secrets', 'set', 'CAPS', '--max-value-bytes', '16'], '12345678901234567', {}],
          [['secrets', 'set', 'CAPS'], '12345678901234567', {AGENTVAULT_MAX_VALUE_BYTES: '16'}],
          [['secrets', 'set', 'CAPS=é234567890123456'], undefined, {AGENTVAULT_MAX_VALUE_BYTES: '16'}],
        ]
        for (const [args, input, env] of over) {
          await expectFailure(
            args,
            {env: {...t.env, ...env}, input},
            {code: 2, errorCode: 'VALUE_TOO_LARGE', message: /16 bytes/},
          )
        }

        assert.deepEqual((await list('CAPS')).secrets, [])
        const fits = await cli(['secrets', 'set', 'CAPS', '--max-value-bytes', '16'], '1234567890123456')
        assert.equal(fits.code, 0, fits.stderr)
        const raised = await cli(['secrets', 'set', 'CAPS_BIG'], Buffer.alloc(MIB + 1, 0x63), {
          AGENTVAULT_MAX_VALUE_BYTES: String(2 * MIB),
        })
        assert.equal(raised.code, 0, raised.stderr)
        for (const bad of ['0', '-1', 'lots']) {
          await expectFailure(
            ['secrets', 'set', 'CAPS', '--max-value-bytes', bad],
            {env: t.env, input: 'x'},
            {code: 2},
          )
        }
      })

      it('--help documents the default', async () => {
        const help = await cli(['secrets', 'set', '--help'])
        assert.match(
          help.stdout.replaceAll(/\s+/g, ' '),
          /--max-value-bytes.*1 MiB.*AGENTVAULT_MAX_VALUE_BYTES|AGENTVAULT_MAX_VALUE_BYTES.*1 MiB/,
        )
      })
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
      assert.match(lines[0] ?? '', /^NAME\s+VERSION\s+UPDATED\s+TAGS\s+ALLOWED DOMAINS\s+DESCRIPTION$/)
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
      assert.match(table.stderr, /No secret names start with NOTHING_ in profile /)
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
