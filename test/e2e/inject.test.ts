/**
 * `inject` through the built binary (issue 16 §3): `{{ REF }}` templates rendered into a 0600 file
 * (atomically) or stdout, which on a terminal needs --reveal; a missing secret fails with exit 6
 * naming every one and writes nothing; values reach only the output the user asked for.
 */
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {chmod, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {digestOf, expectFailure, filesUnder, modeOf, parseJson, parseJsonError} from '../helpers/e2e.js'
import {startInPty} from '../helpers/pty.js'

const canary = (label: string): string => `canary-${label}-${randomBytes(12).toString('hex')}`

describe('e2e: inject', () => {
  let home: Awaited<ReturnType<typeof tempHome>>
  let env: NodeJS.ProcessEnv
  let secretA: string
  let secretB: string

  const av = (args: string[], options: {input?: string} = {}): Promise<CliResult> =>
    runCli(args, {env, ...options})

  const assertNoCanary = (result: CliResult, where: string): void => {
    for (const value of [secretA, secretB]) {
      assert.ok(!result.stdout.includes(value), `a value appears on stdout of ${where}`)
      assert.ok(!result.stderr.includes(value), `a value appears on stderr of ${where}`)
    }
  }

  before(async () => {
    home = await tempHome()
    env = home.env
    secretA = canary('a')
    secretB = `${canary('b')}\n"quoted" {{ local://A }}`
    assert.equal((await av(['secrets', 'set', 'A'], {input: secretA})).code, 0)
    const file = join(home.home, 'b.value')
    await writeFile(file, secretB)
    assert.equal((await av(['secrets', 'set', 'B', '--from-file', file])).code, 0)
  })

  after(() => home.dispose())

  it('renders a template into a 0600 file; only names reach stderr and the audit', async () => {
    const template = join(home.home, 'app.tpl')
    const out = join(home.home, 'app.conf')
    await writeFile(
      template,
      'a={{ local://A }}\nb: {{local://B}}\nkeep: {{ .Values.x }} {{ https://x }}\nagain {{\tlocal://A\t}}\n',
    )
    const result = await av(['inject', '-i', template, '-o', out])
    assert.equal(result.code, 0, result.stderr)
    assertNoCanary(result, 'inject -o')
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /Wrote .*app\.conf \(2 references\)/)
    assert.equal(
      await readFile(out, 'utf8'),
      `a=${secretA}\nb: ${secretB}\nkeep: {{ .Values.x }} {{ https://x }}\nagain ${secretA}\n`,
      'a value that itself looks like a placeholder is not rendered again',
    )
    assert.equal(await modeOf(out), 0o600)

    const audit = await av(['audit', '--json', '--command', 'inject'])
    assertNoCanary(audit, 'audit')
    const event = JSON.parse(audit.stdout.trim().split('\n').at(-1) as string) as {
      operation: string
      outcome: string
      references: string[]
    }
    assert.equal(event.operation, 'inject')
    assert.equal(event.outcome, 'ok')
    assert.deepEqual([...event.references].sort(), ['local://A', 'local://B'])
    for (const file of await filesUnder(home.env.AGENTVAULT_HOME as string)) {
      const text = await readFile(file, 'latin1')
      assert.ok(!text.includes(secretA), `the value appears in ${file}`)
    }
  })

  it('replaces an existing output file atomically, mode 0600 whatever it was; --json says what it did', async () => {
    const out = join(home.home, 'existing.conf')
    await writeFile(out, 'old contents')
    await chmod(out, 0o644)
    const result = parseJson<{bytes: number; output: string; references: string[]}>(
      await av(['inject', '-o', out, '--json'], {input: 'key={{ local://A }}'}),
    )
    assert.deepEqual(result, {bytes: `key=${secretA}`.length, output: out, references: ['local://A']})
    assert.equal(await readFile(out, 'utf8'), `key=${secretA}`)
    assert.equal(await modeOf(out), 0o600)
    const noFile = await av(['inject', '-i', '-', '--json'], {input: 'x={{ local://A }}'})
    assert.equal(noFile.code, 2)
    assert.equal(parseJsonError(noFile).code, 'OUTPUT_REQUIRED')
    assertNoCanary(noFile, 'inject --json without -o')
  })

  it('prints to a piped stdout without --reveal (stdin template)', async () => {
    const result = await av(['inject'], {input: 'token: {{ local://A }}\n'})
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, `token: ${secretA}\n`)
    assert.ok(!result.stderr.includes(secretA))
  })

  it('a missing secret: exit 6 naming every missing one, nothing written, an existing file untouched', async () => {
    const template = join(home.home, 'missing.tpl')
    const out = join(home.home, 'missing.conf')
    await writeFile(template, 'a={{ local://A }}\nx={{ local://NOPE_ONE }}\ny={{ local://NOPE_TWO }}\n')
    const {plain} = await expectFailure(
      ['inject', '-i', template, '-o', out],
      {env},
      {code: 6, message: /2 secrets not found: local:\/\/NOPE_ONE, local:\/\/NOPE_TWO/},
    )
    assertNoCanary(plain, 'a failed inject')
    assert.equal(existsSync(out), false)
    await writeFile(out, 'previous')
    const before = await digestOf(out)
    await expectFailure(['inject', '-i', template, '-o', out], {env}, {code: 6})
    assert.equal(await digestOf(out), before)
    // Piped stdout gets nothing either.
    const piped = await av(['inject', '-i', template])
    assert.equal(piped.code, 6)
    assert.equal(piped.stdout, '')
  })

  it('bad input gets its exit code: misspelt scheme, unreadable template, unwritable output', async () => {
    await expectFailure(
      ['inject', '-o', join(home.home, 'o')],
      {env, input: 'a\nb={{ lcoal://A }}'},
      {
        code: 2,
        errorCode: 'INJECT_UNKNOWN_SCHEME',
        message: /stdin:2: "lcoal:\/\/" is not a known reference scheme/,
      },
    )
    await expectFailure(
      ['inject', '-i', join(home.home, 'none.tpl'), '-o', join(home.home, 'o')],
      {env},
      {code: 2, errorCode: 'FILE_UNREADABLE', message: /none\.tpl \(ENOENT\)/},
    )
    const {plain} = await expectFailure(
      ['inject', '-o', join(home.home, 'no-such-dir', 'out')],
      {env, input: '{{ local://A }}'},
      {code: 2, errorCode: 'OUTPUT_UNWRITABLE'},
    )
    assertNoCanary(plain, 'an unwritable output')
    // A hostile template: 17 MiB of unclosed braces is refused after reading 16 MiB, never a hang.
    const huge = join(home.home, 'huge.tpl')
    await writeFile(huge, '{{ local://A '.repeat(Math.ceil((17 * 1024 * 1024) / 13)))
    await expectFailure(
      ['inject', '-i', huge, '-o', join(home.home, 'huge.out')],
      {env},
      {code: 2, errorCode: 'FILE_TOO_LARGE'},
    )
    assert.equal(existsSync(join(home.home, 'huge.out')), false)
  })

  it('on a terminal, printing needs --reveal', async () => {
    const template = join(home.home, 'tty.tpl')
    await writeFile(template, 'v={{ local://A }}\n')
    const refused = await startInPty(['inject', '-i', template], env).result
    assert.equal(refused.code, 2, refused.stdout)
    assert.match(refused.stdout, /Error: Refusing to print secret values to the terminal without --reveal/)
    assert.ok(!refused.stdout.includes(secretA))
    const shown = await startInPty(['inject', '-i', template, '--reveal'], env).result
    assert.equal(shown.code, 0, shown.stdout)
    assert.ok(shown.stdout.includes(`v=${secretA}`))
  })
})
