import fc from 'fast-check'
import assert from 'node:assert/strict'

import {UsageError} from '../../../src/core/errors.js'
import {parseRunArgv} from '../../../src/core/run-options.js'

describe('core/run-options', () => {
  it('parses flags, then the command after -- or at the first word', () => {
    assert.deepEqual(
      parseRunArgv(
        ['--env', 'A=local://A', '-e', 'B=local://B', '--env-file=x.env', '--', 'cmd', '--flag'],
        {},
      ),
      {
        allowHosts: [],
        cleanEnv: false,
        command: ['cmd', '--flag'],
        env: ['A=local://A', 'B=local://B'],
        envFiles: ['x.env'],
        isolate: false,
        mask: 'auto',
        passEnv: [],
        placeholders: false,
        profile: undefined,
      },
    )
    const options = parseRunArgv(['--mask', 'never', '--clean-env', '-pteam', 'node', '-e', '0'], {})
    assert.deepEqual(
      [options.mask, options.cleanEnv, options.profile, options.command],
      ['never', true, 'team', ['node', '-e', '0']],
    )
  })

  it('reads AGENTVAULT_* env vars when the flag is absent; flags win', () => {
    const env = {AGENTVAULT_MASK: 'always', AGENTVAULT_PROFILE: 'p', AGENTVAULT_ENV_FILE: 'a.env,b.env'}
    const options = parseRunArgv(['true'], env)
    assert.deepEqual([options.mask, options.profile, options.envFiles], ['always', 'p', ['a.env', 'b.env']])
    assert.equal(parseRunArgv(['--mask', 'never', 'true'], env).mask, 'never')
    assert.throws(() => parseRunArgv(['true'], {AGENTVAULT_MASK: 'sometimes'}), UsageError)
  })

  it('--pass-env is repeatable; AGENTVAULT_PASS_ENV splits at commas and spaces', () => {
    assert.deepEqual(parseRunArgv(['--pass-env', 'A', '--pass-env=B_1', 'x'], {}).passEnv, ['A', 'B_1'])
    const name = fc.stringMatching(/^[A-Za-z_]\w{0,12}$/)
    const separator = fc.stringMatching(/^[ ,\t]*[ ,\t][ ,\t]*$/)
    fc.assert(
      fc.property(fc.array(fc.tuple(name, separator), {maxLength: 6}), separator, (parts, lead) => {
        const text = lead + parts.map(([n, sep]) => n + sep).join('')
        const names = parts.map(([n]) => n)
        const parsed = parseRunArgv(['x'], {AGENTVAULT_PASS_ENV: text}).passEnv
        assert.deepEqual(parsed, names)
      }),
    )
    assert.deepEqual(parseRunArgv(['--pass-env', 'C', 'x'], {AGENTVAULT_PASS_ENV: 'A,B'}).passEnv, ['C'])
  })

  it('--pass-env refuses a non-name without echoing it', () => {
    fc.assert(
      fc.property(fc.string({minLength: 1}), (text) => {
        fc.pre(!/^[A-Za-z_]\w*$/.test(text))
        try {
          parseRunArgv(['--pass-env', `X=${text}`, 'x'], {})
          assert.fail('accepted')
        } catch (error) {
          assert.ok(error instanceof UsageError)
          assert.ok(!error.message.includes(`=${text}`))
        }
      }),
    )
  })

  it('rejects unknown flags, missing values, bad options and a missing command, each with a Try this', () => {
    for (const argv of [
      ['--nope', 'x'],
      ['--env'],
      ['--mask', 'sometimes', 'x'],
      ['--env', 'A=local://A'],
      [],
      ['--clean-env=1', 'x'],
      ['--mask', 'auto', '--mask', 'never', 'x'],
      ['--mask=alway', 'x'],
      ['--clean-env', '--clean-env=yes', 'x'],
    ]) {
      assert.throws(
        () => parseRunArgv(argv, {}),
        (error: UsageError) =>
          error instanceof UsageError && error.exitCode === 2 && (error.suggestion ?? '').length > 0,
        argv.join(' '),
      )
    }

    assert.throws(() => parseRunArgv(['--mask', 'alway', 'x'], {}), {
      message: '--mask must be one of auto, always, never',
      suggestion: 'Did you mean --mask always?',
    })
    assert.throws(() => parseRunArgv(['x'], {AGENTVAULT_MASK: 'nevr'}), {
      suggestion: 'Did you mean AGENTVAULT_MASK=never?',
    })
  })

  it('returns or throws a UsageError for any argv (property)', () => {
    const word = fc.oneof(
      fc.string(),
      fc.constantFrom('--', '-', '-e', '--env', '--env=', '--mask', 'auto', '--clean-env', '-p', '--profile'),
    )
    fc.assert(
      fc.property(fc.array(word, {maxLength: 8}), (argv) => {
        try {
          const options = parseRunArgv(argv, {})
          assert.ok(options.command.length > 0)
        } catch (error) {
          assert.ok(error instanceof UsageError, String(error))
          // Every refusal says what to do instead (the Try this: line).
          assert.ok((error.suggestion ?? '').length > 0, error.message)
        }
      }),
      {numRuns: 1000},
    )
  })
})
