import fc from 'fast-check'
import assert from 'node:assert/strict'
import {format, inspect} from 'node:util'

import {argvSecrets, redactDebugText} from '../../../src/core/debug-redaction.js'

describe('core/debug-redaction', () => {
  it('conceals a NAME=VALUE value however debug formats argv (property)', () => {
    fc.assert(
      fc.property(fc.string({minLength: 4}), fc.constantFrom('%o', '%O', '%s', '%j'), (value, spec) => {
        const argv = ['secrets', 'set', `NAME=${value}`]
        const line = format(`argv: ${spec}`, spec === '%s' ? argv.join(' ') : argv)
        const redacted = redactDebugText(line, argvSecrets(argv))
        for (const form of [value, inspect(value).slice(1, -1), JSON.stringify(value).slice(1, -1)])
          assert.ok(!redacted.includes(form), `${JSON.stringify(form)} in ${redacted}`)
      }),
    )
  })

  it('takes the values of flags, except the harmless ones', () => {
    const secrets = argvSecrets([
      'call',
      'https://h/x',
      '-d',
      'body-text',
      '--profile',
      'team',
      '--json',
      '-H',
      'X: y',
    ])
    assert.ok(secrets.includes('body-text'))
    assert.ok(secrets.includes('X: y'))
    assert.ok(!secrets.includes('team'))
    assert.ok(!secrets.includes('https://h/x'))
  })

  it('takes a short flag’s attached value and any word after a command’s first argument (property)', () => {
    fc.assert(
      fc.property(
        fc.string({minLength: 4}).filter((value) => !value.startsWith('-')),
        fc.constantFrom<(value: string) => string[]>(
          (value) => ['secrets', 'set', 'NAME', value],
          (value) => ['secrets', 'set', 'NAME', '--json', value],
          (value) => ['secrets', 'set', 'NAME', `-v${value}`],
          (value) => ['login', 'openbao', `-t${value}`],
        ),
        (value, line) => {
          assert.ok(argvSecrets(line(value)).includes(value), JSON.stringify(line(value)))
        },
      ),
    )
    assert.deepEqual(argvSecrets(['secrets', 'get', 'NAME']), [])
  })
})
