/**
 * A mistyped command line must not print a secret back (product.md §10: error messages never
 * carry a secret value). A value typed into argv is already exposed to shell history and `ps`, but
 * stderr and `--json` errors also land in CI logs and agents' transcripts: `--token=VALUE` on a
 * login that only has `--token-stdin`, `secrets set NAME VALUE` (a space for the `=`), `-xVALUE`.
 */
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import {runCli, tempHome} from '../helpers/cli.js'
import {expectFailure, filesUnder} from '../helpers/e2e.js'

const CANARY = `canary-${randomBytes(12).toString('hex')}`

describe('e2e: usage errors never echo a value typed in argv', () => {
  let t: Awaited<ReturnType<typeof tempHome>>

  before(async () => {
    t = await tempHome()
  })

  after(async () => {
    await t.dispose()
  })

  const cases: Array<{args: string[]; code: string; message: RegExp}> = [
    {
      args: ['login', 'openbao', `--token=${CANARY}`],
      code: 'UNKNOWN_FLAG',
      message: /Unknown flag --token\b/,
    },
    {args: ['login', 'sanctum', `--passphrase=${CANARY}`], code: 'UNKNOWN_FLAG', message: /--passphrase\b/},
    {args: ['login', 'openbao', `--secret-id=${CANARY}`], code: 'UNKNOWN_FLAG', message: /--secret-id\b/},
    {args: ['secrets', 'set', 'API_KEY', `--value=${CANARY}`], code: 'UNKNOWN_FLAG', message: /--value\b/},
    {args: ['secrets', 'set', 'API_KEY', `-v${CANARY}`], code: 'UNKNOWN_FLAG', message: /Unknown flag -v\b/},
    {args: [`--token=${CANARY}`], code: 'UNKNOWN_FLAG', message: /Unknown flag --token\b/},
    {args: [`API_KEY=${CANARY}`], code: 'UNKNOWN_COMMAND', message: /Unknown command "API_KEY=…"/},
    {
      args: ['call', 'https://api.example.com/login', '-d', `password=${CANARY}`, '--data-stdin'],
      code: 'USAGE',
      message: /--data cannot also be provided when using --data-stdin/,
    },
    {args: ['secrets', 'set', 'API_KEY', CANARY], code: 'USAGE', message: /Unexpected argument/},
    {args: ['login', 'openbao', '--token-stdin', CANARY], code: 'USAGE', message: /Unexpected argument/},
  ]

  for (const {args, code, message} of cases)
    it(`${args.join(' ').replace(CANARY, 'CANARY')}: exit 2, the value in neither form`, async () => {
      const {json, plain} = await expectFailure(
        args,
        {env: t.env, input: ''},
        {code: 2, errorCode: code, message},
      )
      for (const [where, text] of [
        ['stderr', plain.stderr],
        ['stdout', plain.stdout],
        ['--json stdout', json.stdout],
        ['--json stderr', json.stderr],
      ] as const)
        assert.ok(!text.includes(CANARY), `the value appears in ${where}: ${text}`)
    })

  it('run -xVALUE (its own parser): names -x, never the attached value', async () => {
    const result = await runCli(['run', `-x${CANARY}`, '--', 'true'], {env: t.env})
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /^Error: Unknown flag -x for run\n/)
    assert.ok(!result.stderr.includes(CANARY), result.stderr)
    assert.equal(result.stdout, '')
  })

  it('run --env VALUE (no "="): the word is not repeated (`--env "$TOKEN"` expands to the value)', async () => {
    const result = await runCli(['run', '--env', CANARY, '--', 'true'], {env: t.env})
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /^Error: --env expects NAME=REF/)
    assert.ok(!result.stderr.includes(CANARY), result.stderr)
  })

  it('an unexpected word is counted, not repeated', async () => {
    const result = await runCli(['secrets', 'get', 'API_KEY', 'one', 'two'], {env: t.env})
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /^Error: Unexpected arguments: 2 more than the command takes/)
    assert.doesNotMatch(result.stderr, /one|two/)
  })
})

describe('e2e: piped stdin is never read as a missing argument', () => {
  // oclif fills a missing argument from piped stdin. Here stdin carries secrets (`secrets set`,
  // `login --token-stdin`, `secrets import -`): a forgotten NAME or KIND (`secrets set "$UNSET"`)
  // turned the value into the name — echoed in the error, written to the audit log.
  let t: Awaited<ReturnType<typeof tempHome>>

  before(async () => {
    t = await tempHome()
  })

  after(async () => {
    await t.dispose()
  })

  const cases: Array<{args: string[]; input: string}> = [
    {args: ['secrets', 'set'], input: CANARY},
    {args: ['secrets', 'import'], input: `API_KEY=${CANARY}\n`},
    {args: ['login', '--token-stdin'], input: CANARY},
  ]

  for (const {args, input} of cases)
    for (const dispatch of ['fast', 'oclif'])
      it(`${args.join(' ')} with the value piped (${dispatch} dispatch): exit 2, the value nowhere`, async () => {
        const env = {
          ...t.env,
          AGENTVAULT_PASSPHRASE: 'pw',
          ...(dispatch === 'oclif' && {AGENTVAULT_DISPATCH: 'oclif'}),
        }
        for (const extra of [[], ['--json']]) {
          const result = await runCli([...args, ...extra], {env, input})
          assert.equal(result.code, 2, result.stderr)
          for (const [where, text] of [
            ['stderr', result.stderr],
            ['stdout', result.stdout],
          ] as const)
            assert.ok(!text.includes(CANARY), `the value appears in ${where}: ${text}`)
        }

        for (const file of await filesUnder(t.home))
          assert.ok(!(await readFile(file, 'utf8')).includes(CANARY), `the value is in ${file}`)
      })
})

describe('e2e: a token given where a name or reference belongs', () => {
  // `call URL --bearer "$TOKEN"` (curl habits) or `use "$KEY" sign`: a bare word is a secret's
  // name, so the token became `local://<token>`: "Secret not found: local://ghp_…" on stderr and
  // the token in the audit log's references.
  const GITHUB_TOKEN = `ghp_${randomBytes(18).toString('hex')}`
  const STRIPE_KEY = `sk_live_${randomBytes(12).toString('hex')}`
  let t: Awaited<ReturnType<typeof tempHome>>

  before(async () => {
    t = await tempHome()
  })

  after(async () => {
    await t.dispose()
  })

  const cases: Array<{args: string[]; token: string}> = [
    {args: ['call', 'https://api.example.com/user', '--bearer', GITHUB_TOKEN], token: GITHUB_TOKEN},
    {args: ['use', STRIPE_KEY, 'sign', '--param', 'data=x'], token: STRIPE_KEY},
    {args: ['secrets', 'get', GITHUB_TOKEN, '--reveal'], token: GITHUB_TOKEN},
  ]

  for (const {args, token} of cases)
    it(`${args[0]}: exit 2, the token in no output, no file of the home`, async () => {
      const env = {...t.env, AGENTVAULT_PASSPHRASE: 'pw'}
      const {json, plain} = await expectFailure(args, {env}, {code: 2, errorCode: 'VALUE_NOT_REFERENCE'})
      for (const text of [plain.stdout, plain.stderr, json.stdout, json.stderr])
        assert.ok(!text.includes(token), text)
      for (const file of await filesUnder(t.home))
        assert.ok(!(await readFile(file, 'utf8')).includes(token), `the token is in ${file}`)
    })

  it('a name that is not a token still reads as one: exit 6 naming it', async () => {
    const result = await runCli(['secrets', 'get', 'sk-prod', '--reveal'], {
      env: {...t.env, AGENTVAULT_PASSPHRASE: 'pw'},
    })
    assert.equal(result.code, 6, result.stderr)
    assert.match(result.stderr, /local:\/\/sk-prod/)
  })
})
