/**
 * `secrets set` on a terminal naming the version it replaces, `secrets edit`, `secrets rename` and
 * `secrets generate`, through the built binary (issue 16 §3). Values never reach output unless
 * --reveal asks for them.
 */
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {expectFailure, filesUnder, parseJson} from '../helpers/e2e.js'
import {startInPty} from '../helpers/pty.js'

const canary = (label: string): string => `canary-${label}-${randomBytes(12).toString('hex')}`

interface Metadata {
  allowedDomains?: string[]
  description?: string
  name: string
  tags?: string[]
  version?: number
}

describe('e2e: secrets set (terminal), edit, rename, generate', () => {
  let home: Awaited<ReturnType<typeof tempHome>>
  let env: NodeJS.ProcessEnv

  const av = (args: string[], options: {input?: string} = {}): Promise<CliResult> =>
    runCli(args, {env, ...options})
  const reveal = async (name: string): Promise<string> => {
    const result = await av(['secrets', 'get', name, '--reveal'])
    assert.equal(result.code, 0, result.stderr)
    return result.stdout
  }

  const metadata = async (name: string): Promise<Metadata | undefined> =>
    parseJson<{secrets: Metadata[]}>(await av(['secrets', 'list', '--json'])).secrets.find(
      (secret) => secret.name === name,
    )

  beforeEach(async () => {
    home = await tempHome()
    env = home.env
  })

  afterEach(() => home.dispose())

  it('set on a terminal says it is replacing version N; piped, it stays quiet', async () => {
    assert.equal((await av(['secrets', 'set', 'KEY'], {input: 'first'})).code, 0)
    const session = startInPty(['secrets', 'set', 'KEY'], env)
    await session.output.until((text) => /Value for KEY/.test(text), 'the prompt')
    assert.match(session.output.text(), /KEY exists: replacing version 1 \(the new value becomes version 2\)/)
    const typed = canary('typed')
    session.type(`${typed}\r`)
    const result = await session.result
    assert.equal(result.code, 0, result.stdout)
    assert.ok(!result.stdout.includes(typed), 'the prompt hides the value')
    assert.equal(await reveal('KEY'), typed)
    assert.equal((await metadata('KEY'))?.version, 2)

    const fresh = startInPty(['secrets', 'set', 'NEW'], env)
    await fresh.output.until((text) => /Value for NEW/.test(text), 'the prompt')
    fresh.type('x\r')
    assert.doesNotMatch((await fresh.result).stdout, /replacing/)

    const piped = await av(['secrets', 'set', 'KEY'], {input: 'third'})
    assert.equal(piped.code, 0)
    assert.doesNotMatch(piped.stderr, /replacing/)
  })

  it('edit changes metadata only: same value, same version; nothing to change is a usage error', async () => {
    const value = canary('edit')
    assert.equal(
      (await av(['secrets', 'set', 'TOKEN', '--description', 'old', '--tag', 'a'], {input: value})).code,
      0,
    )
    const edited = await av([
      'secrets',
      'edit',
      'TOKEN',
      '--description',
      'rotated monthly',
      '--allow-domain',
      'API.Example.com',
      '--json',
    ])
    assert.ok(!edited.stdout.includes(value) && !edited.stderr.includes(value))
    const result = parseJson<Metadata & {reference: string}>(edited)
    assert.equal(result.reference, 'local://TOKEN')
    assert.equal(result.version, 1)
    assert.equal(result.description, 'rotated monthly')
    assert.deepEqual(result.tags, ['a'], 'what is not given stays')
    assert.deepEqual(result.allowedDomains, ['api.example.com'])
    const tagged = await av(['secrets', 'edit', 'local://TOKEN', '--tag', 'x', '--tag', 'y'])
    assert.equal(tagged.code, 0, tagged.stderr)
    assert.match(tagged.stderr, /Updated local:\/\/TOKEN \(still version 1\)/)
    assert.deepEqual((await metadata('TOKEN'))?.tags, ['x', 'y'])
    assert.equal(await reveal('TOKEN'), value)

    await expectFailure(['secrets', 'edit', 'TOKEN'], {env}, {code: 2, errorCode: 'NOTHING_TO_EDIT'})
    await expectFailure(
      ['secrets', 'edit', 'NOPE', '--description', 'd'],
      {env},
      {code: 6, message: /local:\/\/NOPE/},
    )
  })

  it('rename moves value, version and metadata; refuses an existing name unless --overwrite', async () => {
    const value = canary('rename')
    assert.equal((await av(['secrets', 'set', 'OLD', '--description', 'd'], {input: 'v1'})).code, 0)
    assert.equal((await av(['secrets', 'set', 'OLD'], {input: value})).code, 0)
    assert.equal((await av(['secrets', 'set', 'TAKEN'], {input: 'taken'})).code, 0)

    const renamed = await av(['secrets', 'rename', 'OLD', 'NEW', '--json'])
    assert.ok(!renamed.stdout.includes(value) && !renamed.stderr.includes(value))
    const result = parseJson<Metadata & {from: string; reference: string}>(renamed)
    assert.equal(result.from, 'local://OLD')
    assert.equal(result.reference, 'local://NEW')
    assert.equal(result.version, 2)
    assert.equal(result.description, 'd')
    assert.equal(await reveal('NEW'), value)
    assert.equal(await metadata('OLD'), undefined)

    await expectFailure(
      ['secrets', 'rename', 'NEW', 'TAKEN'],
      {env},
      {code: 2, errorCode: 'SECRET_EXISTS', message: /local:\/\/TAKEN already exists/},
    )
    assert.equal(await reveal('TAKEN'), 'taken')
    await expectFailure(['secrets', 'rename', 'GONE', 'OTHER'], {env}, {code: 6, message: /local:\/\/GONE/})
    // The same name twice is no rename: saying "Renamed" would claim a change that did not happen.
    for (const to of ['NEW', 'local://NEW'])
      await expectFailure(
        ['secrets', 'rename', 'NEW', to, '--overwrite'],
        {env},
        {code: 2, errorCode: 'RENAME_SAME_NAME', message: /local:\/\/NEW is already named so/},
      )
    const forced = await av(['secrets', 'rename', 'local://NEW', 'TAKEN', '--overwrite'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.match(forced.stderr, /Renamed local:\/\/NEW to local:\/\/TAKEN/)
    assert.equal(await reveal('TAKEN'), value)
    assert.deepEqual(
      parseJson<{secrets: Metadata[]}>(await av(['secrets', 'list', '--json'])).secrets.map(({name}) => name),
      ['TAKEN'],
    )
  })

  it('generate stores a random value of the asked length and alphabet, printed only with --reveal', async () => {
    const quiet = await av(['secrets', 'generate', 'SESSION_SECRET', '--json'])
    const result = parseJson<{
      bits: number
      charset: string
      length: number
      reference: string
      value?: string
      version: number
    }>(quiet)
    assert.deepEqual(
      {...result, value: result.value},
      {
        bits: 190,
        charset: 'alnum',
        created: (result as unknown as {created: string}).created,
        length: 32,
        name: 'SESSION_SECRET',
        reference: 'local://SESSION_SECRET',
        updated: (result as unknown as {updated: string}).updated,
        value: undefined,
        version: 1,
      },
    )
    const stored = await reveal('SESSION_SECRET')
    assert.match(stored, /^[A-Za-z0-9]{32}$/)
    assert.ok(
      !quiet.stdout.includes(stored) && !quiet.stderr.includes(stored),
      'not printed without --reveal',
    )
    for (const file of await filesUnder(home.env.AGENTVAULT_HOME as string))
      assert.ok(!(await readFile(file, 'latin1')).includes(stored), `the value appears in ${file}`)

    const plain = await av(['secrets', 'generate', 'HEX', '--charset', 'hex', '--length', '64'])
    assert.equal(plain.code, 0, plain.stderr)
    assert.equal(plain.stdout, '')
    assert.match(plain.stderr, /Generated local:\/\/HEX \(version 1\): 64 hex characters, 256 bits/)
    assert.match(await reveal('HEX'), /^[0-9a-f]{64}$/)

    const shown = await av([
      'secrets',
      'generate',
      'PIN',
      '--charset',
      'numeric',
      '--length',
      '6',
      '--reveal',
    ])
    assert.match(shown.stdout, /^\d{6}$/)
    assert.equal(shown.stdout, await reveal('PIN'))

    await expectFailure(
      ['secrets', 'generate', 'PIN'],
      {env},
      {code: 2, errorCode: 'SECRET_EXISTS', message: /PIN already exists \(version 1\)/},
    )
    const rotated = parseJson<{version: number}>(
      await av(['secrets', 'generate', 'PIN', '--overwrite', '--charset', 'ascii', '--json']),
    )
    assert.equal(rotated.version, 2)
    assert.match(await reveal('PIN'), /^[!-~]{32}$/)
    await expectFailure(['secrets', 'generate', 'X', '--length', '0'], {env}, {code: 2})
    await expectFailure(['secrets', 'generate', 'X', '--charset', 'emoji'], {env}, {code: 2})
  })
})
