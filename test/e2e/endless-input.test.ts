/**
 * Input without end (`< /dev/zero`, `yes |`, a stuck pipe that keeps writing) is read no further
 * than what the command can use, whether stdin is a device (read as a stream) or a pipe (read with
 * read(2)): each reader stops at its cap and fails with exit 2 naming the
 * limit — never a hang, never an out-of-memory crash (exit 1 or a signal), never the bytes read.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'

import {baseEnv, BIN, collect, runCli, tempHome, withNodeOnPath} from '../helpers/cli.js'

describe('e2e: endless input ends in a clear error', () => {
  let t: Awaited<ReturnType<typeof tempHome>>

  before(async () => {
    t = await tempHome()
    const set = await runCli(['secrets', 'set', 'K', '--allow-domain', 'api.example.com'], {
      env: t.env,
      input: 'k-value-123',
    })
    assert.equal(set.code, 0, set.stderr)
  })

  after(async () => {
    await t.dispose()
  })

  /** The binary with /dev/zero as its stdin (an endless stream of NUL bytes). */
  async function fromZero(args: string[]) {
    const zero = openSync('/dev/zero', 'r')
    try {
      const child = spawn(BIN, [...args, '--json'], {
        env: withNodeOnPath(baseEnv(t.env)),
        stdio: [zero, 'pipe', 'pipe'],
      })
      return await collect(child)
    } finally {
      closeSync(zero)
    }
  }

  const cases: Array<{args: string[]; code: string; what: RegExp}> = [
    {
      args: ['call', 'https://api.example.com/upload', '--bearer', 'K', '--data-file', '/dev/zero'],
      code: 'INPUT_TOO_LARGE',
      what: /^--data-file is larger than the limit of 50 MiB/,
    },
    {
      args: ['call', 'https://api.example.com/upload', '--bearer', 'K', '--data-stdin'],
      code: 'INPUT_TOO_LARGE',
      what: /^The request body on stdin is larger than the limit of 50 MiB/,
    },
    {
      args: ['use', 'K', 'sign', '--params', '-'],
      code: 'INPUT_TOO_LARGE',
      what: /^The JSON object on stdin \(--params -\) is larger than the limit of 1 MiB/,
    },
    {
      args: ['login', 'openbao', '--address', 'https://bao.example.com', '--token-stdin'],
      code: 'INPUT_TOO_LARGE',
      what: /on stdin is larger than the limit of 1 MiB/,
    },
    {
      args: ['secrets', 'unwrap', '--reveal'],
      code: 'INPUT_TOO_LARGE',
      what: /^The wrapping token on stdin is larger than the limit of 64 KiB/,
    },
    {
      args: ['agents', 'webhooks', 'verify', '--secret-stdin', '--signature', 'a'.repeat(64)],
      code: 'INPUT_TOO_LARGE',
      what: /is larger than the limit of 16 MiB/,
    },
    {
      args: ['secrets', 'set', 'BIG'],
      code: 'VALUE_TOO_LARGE',
      what: /^The value is larger than the limit of 1 MiB/,
    },
  ]

  /** The binary reading `yes`'s endless lines from a pipe (read with read(2), not a stream). */
  function fromYes(args: string[]) {
    const child = spawn('sh', ['-c', 'yes | "$0" "$@"', BIN, ...args, '--json'], {
      env: withNodeOnPath(baseEnv(t.env)),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    return collect(child)
  }

  for (const [source, read] of [
    ['< /dev/zero', fromZero],
    ['yes |', fromYes],
  ] as const)
    for (const {args, code, what} of cases)
      it(`${source} ${args.join(' ')}: exit 2 ${code}`, async () => {
        const result = await read(args)
        assert.equal(result.code, 2, result.stderr)
        const {error} = JSON.parse(result.stdout) as {
          error: {code: string; message: string; suggestion: string}
        }
        assert.equal(error.code, code)
        assert.match(error.message, what)
        assert.ok(error.suggestion.length > 0)
        // Nothing of what was read comes back.
        for (const echo of ['\u0000', 'y\ny'])
          assert.ok(!result.stdout.includes(echo) && !result.stderr.includes(echo))
      })

  // A CA file that never ends (or is huge) is read no further than a CA bundle can be.
  for (const {args, code, env} of [
    {
      args: ['call', 'https://api.example.com/x', '--bearer', 'K', '--cacert', '/dev/zero'],
      code: 3,
    },
    {
      args: [
        'login',
        'openbao',
        '--address',
        'https://bao.example.com',
        '--cacert',
        '/dev/zero',
        '--token-stdin',
      ],
      code: 2,
    },
    {
      args: ['secrets', 'list', 'openbao+kv2://secret/'],
      code: 3,
      env: {BAO_ADDR: 'https://bao.example.com', BAO_CACERT: '/dev/zero', BAO_TOKEN: 't'},
    },
  ] as Array<{args: string[]; code: number; env?: NodeJS.ProcessEnv}>)
    it(`${args.join(' ')}: exit ${code} naming the CA file's size limit`, async () => {
      const result = await runCli([...args, '--json'], {env: {...t.env, ...env}, input: 'token'})
      assert.equal(result.code, code, result.stdout + result.stderr)
      const {error} = JSON.parse(result.stdout) as {error: {message: string; suggestion: string}}
      assert.match(error.message, /\/dev\/zero.*larger than 16 MiB/)
      assert.ok(error.suggestion.length > 0)
    })
})
