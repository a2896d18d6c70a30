/**
 * `DEBUG=*` output (oclif's argv dumps, agentvault's own namespaces) never carries a value given
 * in argv: `NAME=VALUE` arguments and the values of flags (issue 11 §4).
 */
import assert from 'node:assert/strict'
import {createServer} from 'node:http'
import {type AddressInfo} from 'node:net'

import {type CliResult, runCli, tempHome} from '../helpers/cli.js'
import {LOOPBACK_PROFILE} from '../helpers/e2e.js'

const SECRET = 'canary-debug-stored-8c21'
const ARGV_VALUE = 'canary-debug-argv-value-1f7e'
const PARAM = 'canary-debug-param-d40b'
const BODY = 'canary-debug-body-9a3c'
const HEADER = 'canary-debug-header-5e6f'
const MASK = '<concealed by agentvault>'

function assertAbsent(result: CliResult, canaries: string[]): void {
  for (const canary of canaries) {
    assert.ok(!result.stdout.includes(canary), `${canary} on stdout`)
    assert.ok(!result.stderr.includes(canary), `${canary} in the debug output`)
  }
}

describe('e2e: DEBUG=* never prints a value from argv', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const debug = (args: string[], input?: string) => runCli(args, {env: {...t.env, DEBUG: '*'}, input})

  before(async () => {
    t = await tempHome()
    const stored = await runCli(['secrets', 'set', 'K'], {env: t.env, input: SECRET})
    assert.equal(stored.code, 0, stored.stderr)
    const added = await runCli(LOOPBACK_PROFILE, {env: t.env})
    assert.equal(added.code, 0, added.stderr)
  })

  after(() => t.dispose())

  it('secrets set NAME=VALUE: stored, and VALUE is in no debug line', async () => {
    const result = await debug(['secrets', 'set', `ARGV=${ARGV_VALUE}`])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /oclif/, 'debug output was on')
    assertAbsent(result, [ARGV_VALUE])
    const read = await runCli(['secrets', 'get', 'ARGV', '--reveal'], {env: t.env})
    assert.equal(read.stdout.trim(), ARGV_VALUE, read.stderr)
  })

  it('secrets set --json NAME=VALUE as the second word after a flag', async () => {
    const result = await debug(['secrets', 'set', '--json', `ARGV2=${ARGV_VALUE}`])
    assert.equal(result.code, 0, result.stderr)
    assertAbsent(result, [ARGV_VALUE])
  })

  it('run --env: neither the mapping nor the resolved value is printed', async () => {
    const result = await debug(['run', '--env', 'K=local://K', '--', 'sh', '-c', 'echo "v=$K"'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, `v=${MASK}\n`)
    assertAbsent(result, [SECRET])
  })

  it('use … --param: parameter values are redacted', async () => {
    const result = await debug([
      'use',
      'K',
      'sign',
      '--param',
      'algorithm=hmac-sha256',
      '--param',
      `data=${PARAM}`,
    ])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /oclif/)
    assertAbsent(result, [PARAM, SECRET])
  })

  it('call -d / -H / --param-like values: redacted', async () => {
    const server = createServer((request, response) => {
      request.resume()
      request.on('end', () => response.end('ok'))
    })
    await new Promise<void>((resolve) => {
      server.listen(0, '127.0.0.1', resolve)
    })
    try {
      const {port} = server.address() as AddressInfo
      const result = await debug([
        'call',
        `http://127.0.0.1:${port}/x`,
        '--bearer',
        'K',
        '--allow-host',
        '127.0.0.1',
        '-d',
        BODY,
        '-H',
        `X-Plain: ${HEADER}`,
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stderr, /oclif/)
      assertAbsent(result, [BODY, HEADER, SECRET])
    } finally {
      await new Promise((resolve) => {
        server.close(resolve)
      })
    }
  })

  it('a mistyped secrets set (NAME VALUE, -vVALUE) and login --token=VALUE: the value is in no debug line', async () => {
    for (const args of [
      ['secrets', 'set', 'TYPO', ARGV_VALUE],
      ['secrets', 'set', 'TYPO', `-v${ARGV_VALUE}`],
      ['login', 'openbao', '--token-stdin', ARGV_VALUE],
    ]) {
      const result = await debug(args, '')
      assert.equal(result.code, 2, result.stderr)
      assert.match(result.stderr, /oclif/, 'debug output was on')
      assertAbsent(result, [ARGV_VALUE])
    }
  })
})
