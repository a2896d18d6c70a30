/**
 * Leaks and rough edges a security probe found in `run` and the launcher, through the built binary
 * with canary values: what a child can read of agentvault's own environment (/proc/PPID/environ),
 * NODE_DEBUG's output, non-UTF-8 and hex-encoded values, and bad input that must end in exit 2.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {open, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import {join} from 'node:path'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {LOOPBACK_PROFILE} from '../helpers/e2e.js'

const MASK = '<concealed by agentvault>'
const SECRET = 'canary-probe-secret-7d41c9'
const PASSPHRASE = 'canary-probe-passphrase-PASS123'
const BAO_TOKEN = 'canary-probe-bao-token-BAO456'
const ARGUMENT = 'canary-probe-argument-ARG789'

function assertNoCanary(result: CliResult, canaries: string[]): void {
  for (const canary of canaries) {
    assert.ok(!result.stdout.includes(canary), `${canary} in stdout: ${result.stdout}`)
    assert.ok(!result.stderr.includes(canary), `${canary} in stderr: ${result.stderr}`)
  }
}

function assertUsageError(result: CliResult): void {
  assert.equal(result.code, 2, result.stderr)
  assert.match(result.stderr, /^Error: /m)
  assert.match(result.stderr, /^Try this: /m)
  assert.doesNotMatch(result.stderr, /Unexpected error|This is a bug|undefined/)
}

const hasCommand = (name: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

describe('e2e: run and the launcher against the security probe', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let env: NodeJS.ProcessEnv
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}, input?: Buffer | string) =>
    runCli(args, {env: {...env, ...extra}, input})

  before(async () => {
    t = await tempHome()
    // The vault is sealed with the passphrase: `run` must still read it after the scrubbing.
    env = {...t.env, AGENTVAULT_PASSPHRASE: PASSPHRASE, BAO_TOKEN}
    const stored = await cli(['secrets', 'set', 'K'], {}, SECRET)
    assert.equal(stored.code, 0, stored.stderr)
    // `call` to the loopback test server below.
    const added = await cli(LOOPBACK_PROFILE)
    assert.equal(added.code, 0, added.stderr)
  })

  after(() => t.dispose())

  describe('the initial environment region (/proc/PID/environ) holds no withheld value', () => {
    const readParent = 'tr "\\0" "\\n" < /proc/$PPID/environ; echo "K=$K"'

    it('neither credentials nor the launcher’s argument variables', async function () {
      if (process.platform !== 'linux') this.skip()
      const result = await cli([
        'run',
        '--mask',
        'never',
        '--env',
        'K=local://K',
        '--',
        'sh',
        '-c',
        readParent,
        'sh',
        ARGUMENT,
      ])
      assert.equal(result.code, 0, result.stderr)
      // The child did read agentvault's environment region, and the secret still reached it.
      assert.match(result.stdout, /^AGENTVAULT_HOME=/m)
      assert.match(result.stdout, new RegExp(`^K=${SECRET}$`, 'm'))
      assertNoCanary(result, [PASSPHRASE, BAO_TOKEN, ARGUMENT])
    })

    it('--pass-env still hands the real credential to the child', async function () {
      if (process.platform !== 'linux') this.skip()
      const script = 'tr "\\0" "\\n" < /proc/$PPID/environ | grep -c PROBE; echo "token=$BAO_TOKEN"'
      const result = await cli([
        'run',
        '--mask',
        'never',
        '--pass-env',
        'BAO_TOKEN',
        '--env',
        'K=local://K',
        '--',
        'sh',
        '-c',
        script,
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stdout, new RegExp(`^token=${BAO_TOKEN}$`, 'm'))
      assert.match(result.stdout, /^0$/m, 'no canary left in the region')
    })
  })

  describe('NODE_DEBUG', () => {
    it('shows no value on agentvault’s stderr; the child still gets NODE_DEBUG', async () => {
      const result = await cli(
        ['run', '--env', 'K=local://K', '--', 'sh', '-c', 'echo "debug=$NODE_DEBUG"'],
        {NODE_DEBUG: 'child_process,net,stream'},
      )
      assert.equal(result.code, 0, result.stderr)
      assertNoCanary(result, [SECRET, PASSPHRASE])
      assert.equal(result.stdout, 'debug=child_process,net,stream\n')
    })

    it('unset NODE_DEBUG stays unset for the child', async () => {
      // eslint-disable-next-line no-template-curly-in-string -- shell parameter expansion
      const script = 'echo "debug=${NODE_DEBUG-unset}"'
      const result = await cli(['run', '--env', 'K=local://K', '--', 'sh', '-c', script])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, 'debug=unset\n')
    })

    it('NODE_DEBUG=http shows no credential `call` sends', async () => {
      let received: string | undefined
      const server: Server = createServer((request, response) => {
        received = request.headers.authorization
        response.end('ok')
      })
      await new Promise<void>((resolve) => {
        server.listen(0, '127.0.0.1', resolve)
      })
      try {
        const {port} = server.address() as {port: number}
        const result = await cli(
          ['call', `http://127.0.0.1:${port}/x`, '--bearer', 'K', '--allow-host', '127.0.0.1'],
          {
            NODE_DEBUG: 'http,net',
          },
        )
        assert.equal(result.code, 0, result.stderr)
        assert.equal(received, `Bearer ${SECRET}`)
        assertNoCanary(result, [SECRET, PASSPHRASE])
        assert.doesNotMatch(result.stderr, /^HTTP \d+:/m, 'Node printed its http debug lines')
      } finally {
        await new Promise((resolve) => {
          server.close(resolve)
        })
      }
    })
  })

  describe('values', () => {
    it('a value that is not valid UTF-8 is masked as the child receives it, with a warning', async () => {
      const raw = Buffer.concat([Buffer.from('latin'), Buffer.of(0xe9), Buffer.from('CANARY999')])
      const stored = await cli(['secrets', 'set', 'LAT'], {}, raw)
      assert.equal(stored.code, 0, stored.stderr)
      const result = await cli(['run', '--env', 'L=local://LAT', '--', 'sh', '-c', 'echo "[$L]"'])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, `[${MASK}]\n`)
      assert.ok(!result.stdout.includes('CANARY999'))
      assert.match(result.stderr, /L.*not valid UTF-8/)
    })

    it('hex (xxd -p, lower and upper case) is masked', async function () {
      if (!hasCommand('xxd')) this.skip()
      const script =
        'printf %s "$K" | xxd -p; printf %s "$K" | xxd -p -u; printf %s "$K" | xxd -p | tr a-f A-F'
      const result = await cli(['run', '--env', 'K=local://K', '--', 'sh', '-c', script])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, `${MASK}\n${MASK}\n${MASK}\n`)
    })
  })

  describe('bad input ends in exit 2', () => {
    it('an empty command name', async () => {
      const result = await cli(['run', '--env', 'K=local://K', '--', ''])
      assertUsageError(result)
    })

    it('an endless env file (/dev/zero) and one over the cap, named with the limit', async () => {
      const zero = await cli(['run', '--env-file', '/dev/zero', '--', 'true'])
      assertUsageError(zero)
      assert.match(zero.stderr, /\/dev\/zero/)
      assert.match(zero.stderr, /4 MiB/)
      const big = join(t.home, 'big.env')
      const handle = await open(big, 'w')
      await handle.truncate(5 * 1024 * 1024)
      await handle.close()
      const over = await cli(['run', '--env-file', big, '--', 'true'])
      assertUsageError(over)
      assert.match(over.stderr, /big\.env/)
      assert.match(over.stderr, /4 MiB/)
    })

    it('an env file that is a directory says so', async () => {
      const result = await cli(['run', '--env-file', t.home, '--', 'true'])
      assertUsageError(result)
    })
  })

  describe('inherited values that look like references but are not', () => {
    const bad = [
      'vault://admin:canary-pw-REF1@db:5432/app',
      'openbao://canary-REF2',
      'local://u:canary-REF3@h',
    ]

    it('pass through unchanged, with a warning naming the variable but not the value', async () => {
      const extra = {X1: bad[0], X2: bad[1], X3: bad[2]}
      const result = await cli(
        ['run', '--mask', 'never', '--env', 'K=local://K', '--', 'sh', '-c', 'echo "$X1|$X2|$X3"'],
        extra,
      )
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, `${bad.join('|')}\n`)
      for (const name of ['X1', 'X2', 'X3']) assert.match(result.stderr, new RegExp(`\\b${name}\\b`))
      assert.ok(!result.stderr.includes('canary'), result.stderr)
    })

    it('--env and env files still fail, naming the variable and where it came from', async () => {
      const flag = await cli(['run', '--env', `DB=${bad[0]}`, '--', 'true'])
      assertUsageError(flag)
      assert.match(flag.stderr, /DB/)
      assert.match(flag.stderr, /--env/)
      assert.ok(!flag.stderr.includes('canary'), flag.stderr)
      const file = join(t.home, 'refs.env')
      await writeFile(file, `A=plain\nDB=${bad[0]}\n`)
      const fromFile = await cli(['run', '--env-file', file, '--', 'true'])
      assertUsageError(fromFile)
      assert.match(fromFile.stderr, /refs\.env:2/)
      assert.match(fromFile.stderr, /DB/)
      assert.ok(!fromFile.stderr.includes('canary'), fromFile.stderr)
    })
  })

  describe('the value size cap', () => {
    it('names the documented limit, 1 MiB (1048576 bytes), from stdin and from a file', async () => {
      const big = Buffer.alloc(1024 * 1024 + 10, 'a')
      const piped = await cli(['secrets', 'set', 'BIG'], {}, big)
      assert.equal(piped.code, 2, piped.stderr)
      assert.match(piped.stderr, /1 MiB \(1048576 bytes\)/)
      const file = join(t.home, 'big.value')
      await writeFile(file, big)
      const fromFile = await cli(['secrets', 'set', 'BIG', '--from-file', file])
      assert.equal(fromFile.code, 2, fromFile.stderr)
      assert.match(fromFile.stderr, /1 MiB \(1048576 bytes\)/)
    })
  })
})
