import assert from 'node:assert/strict'

import {runCli, tempHome} from '../helpers/cli.js'
import {expectFailure} from '../helpers/e2e.js'

/** Issue 16 §2: the conventions terminal users expect from a CLI. */
describe('e2e: conventions', () => {
  let t: Awaited<ReturnType<typeof tempHome>>

  before(async () => {
    t = await tempHome()
  })

  after(() => t.dispose())

  describe('-h is --help', () => {
    for (const args of [[], ['secrets'], ['secrets', 'list'], ['run'], ['call'], ['audit', 'verify']])
      it(`agentvault ${args.join(' ')} -h prints the same help as --help`, async () => {
        const [short, long] = await Promise.all([
          runCli([...args, '-h'], {env: t.env}),
          runCli([...args, '--help'], {env: t.env}),
        ])
        assert.equal(short.code, 0, short.stderr)
        assert.equal(short.stderr, '')
        assert.match(short.stdout, /USAGE/)
        assert.equal(short.stdout, long.stdout)
      })

    it('-h after `run --` belongs to the child command', async () => {
      const result = await runCli(['run', '--', 'echo', '-h'], {
        env: t.env,
      })
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, '-h\n')
    })
  })

  describe('did you mean', () => {
    it('an unknown command suggests the nearest one, the house way, exit 2', async () => {
      const {error, plain} = await expectFailure(
        ['secrts', 'list'],
        {env: t.env},
        {
          code: 2,
          errorCode: 'UNKNOWN_COMMAND',
          message: /Unknown command "secrts list"/,
        },
      )
      assert.match(error.suggestion, /Did you mean `agentvault secrets list`\?/)
      assert.doesNotMatch(plain.stderr, /secrts:list|›/)
    })

    it('an unknown subcommand of a topic suggests the nearest command of that topic', async () => {
      const {error} = await expectFailure(
        ['secrets', 'lst'],
        {env: t.env},
        {code: 2, errorCode: 'UNKNOWN_COMMAND'},
      )
      assert.match(error.suggestion, /`agentvault secrets list`/)
    })

    it('a command with no near neighbour points to --help', async () => {
      const {error, plain} = await expectFailure(
        ['zzzzqqqq'],
        {env: t.env},
        {code: 2, errorCode: 'UNKNOWN_COMMAND'},
      )
      assert.match(error.suggestion, /agentvault --help/)
      assert.doesNotMatch(plain.stderr, /Did you mean/)
    })

    it('an unknown flag suggests the nearest flag of the command', async () => {
      const {error, plain} = await expectFailure(
        ['secrets', 'get', 'X', '--revael'],
        {env: t.env},
        {
          code: 2,
          errorCode: 'UNKNOWN_FLAG',
          message: /Unknown flag --revael/,
        },
      )
      assert.match(error.suggestion, /Did you mean --reveal\?/)
      assert.doesNotMatch(plain.stderr, /Nonexistent/)
    })

    it('an unknown flag of run suggests the nearest run flag (run has no --json: its output is the child’s)', async () => {
      const result = await runCli(['run', '--env-fil', 'x', '--', 'true'], {env: t.env})
      assert.equal(result.code, 2, result.stderr)
      assert.equal(result.stdout, '')
      assert.match(
        result.stderr,
        /^Error: Unknown flag --env-fil for run\nTry this: Did you mean --env-file\?/,
      )
    })
  })
})
