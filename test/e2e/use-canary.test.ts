import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {
  BASIC_USER,
  CANARY,
  createUseWorld,
  leakedForms,
  type UseWorld,
} from '../servers/http-upstream/fixture.js'

/**
 * The agent-facing output never contains the value: every `use` operation and every `call` style,
 * successes and refusals, with DEBUG=* on, stdout and stderr and the audit log searched for the
 * canary in every form the masker knows. The one exception is `use … http_header --reveal`, whose
 * whole point is to print the credential: it runs too (its audit line is checked), its stdout is not.
 */
describe('e2e: use/call never reveal the value (canary sweep)', () => {
  let world: UseWorld

  before(async () => {
    world = await createUseWorld()
  })

  after(() => world.dispose())

  it('no canary in any stdout, stderr or the audit log, across all operations and failures', async function () {
    this.timeout(240_000)
    const url = (path: string, host?: string) => world.upstream.url(path, {host})
    const secure = world.upstream.url('/tls', {secure: true})
    const metadata = url('/redirect?to=http://169.254.169.254/latest/meta-data/')
    const elsewhere = url(`/redirect?to=${encodeURIComponent(url('/stolen', 'localhost'))}`)
    const encrypt = async (plaintext: string): Promise<string> => {
      // On stdin: a caller's own argv is its business (oclif's DEBUG output echoes argv).
      const result = await world.cli(['use', 'K', 'encrypt', '--params', '-', '--json'], {
        input: JSON.stringify({plaintext}),
      })
      return (JSON.parse(result.stdout) as {ciphertext: string}).ciphertext
    }

    const ciphertext = await encrypt('hello')
    const ofTheSecret = await encrypt(CANARY)
    const commands: string[][] = [
      // use: every operation, success and failure
      ['use', 'K', 'http_request', '--param', `url=${url('/echo')}`],
      ['use', 'K', 'http_request', '--param', `url=${url('/echo')}`, '--param', 'header_type=api_key'],
      ['use', 'B', 'http_request', '--param', `url=${url('/echo')}`, '--param', 'header_type=basic'],
      [
        'use',
        'K',
        'http_request',
        '--param',
        `url=${url('/gzip')}`,
        '--param',
        'header_type=custom',
        '--param',
        'header_name=X-C',
      ],
      ['use', 'K', 'http_request', '--param', `url=${metadata}`, '--allow-host', '169.254.169.254'],
      ['use', 'K', 'http_header'],
      ['use', 'K', 'sign', '--param', 'data=payload'],
      ['use', 'K', 'sign', '--param', 'data=payload', '--param', 'algorithm=hmac-sha512'],
      ['use', 'K', 'sign', '--param', 'data=payload', '--param', 'algorithm=ed25519'],
      ['use', 'K', 'verify', '--param', 'data=payload', '--param', 'signature=AAAA'],
      ['use', 'K', 'encrypt', '--param', 'plaintext=hello'],
      ['use', 'K', 'decrypt', '--param', `ciphertext=${ciphertext}`],
      ['use', 'K', 'decrypt', '--param', `ciphertext=${ofTheSecret}`],
      ['use', 'K', 'decrypt', '--param', `ciphertext=${ciphertext.slice(0, -4)}AAA=`],
      ['use', 'B', 'http_request', '--param', `url=${url('/echo')}`, '--param', 'header_type=custom'],
      // call: every style, echoed back
      ['call', url('/echo'), '--bearer', 'K', '-i'],
      ['call', url('/echo'), '--basic', 'B'],
      ['call', url('/echo'), '--secret-header', 'X-K: K'],
      ['call', url('/echo'), '--query', 'k=K'],
      ['call', url('/echo'), '--body-field', 'a.b=K'],
      ['call', url('/echo'), '--form-field', 'f=K'],
      ['call', url('/gzip'), '--bearer', 'K', '--query', 'k=B'],
      // call: refusals and failures
      ['call', url('/x'), '--bearer', 'local://K?profile=strict'],
      ['call', url('/x', 'localhost'), '--bearer', 'local://K?profile=noprivate'],
      ['call', metadata, '--bearer', 'K', '--allow-host', '169.254.169.254'],
      ['call', elsewhere, '--bearer', 'K'],
      [
        'call',
        url(`/redirect?keep_query=1&to=${encodeURIComponent(url('/stolen', '127.0.0.2'))}`),
        '--query',
        'k=K',
        '--allow-host',
        '127.0.0.2',
      ],
      ['call', secure, '--bearer', 'K'],
      ['call', url('/slow?ms=3000'), '--bearer', 'K', '--timeout', '1'],
      ['call', url('/big?bytes=4096'), '--bearer', 'K', '--max-response-bytes', '100'],
      ['call', url('/status?code=500'), '--bearer', 'K'],
      ['call', url('/echo'), '--basic', 'K'],
    ]
    const forms = [...leakedForms(CANARY), ...leakedForms(`${BASIC_USER}:${CANARY}`)]
    const exits = new Set<null | number>()
    for (const args of commands) {
      for (const json of [false, true]) {
        const full = json ? [...args, '--json'] : args
        const result = await world.cli(full, {env: {DEBUG: '*'}})
        exits.add(result.code)
        for (const form of forms) {
          assert.ok(!result.stdout.includes(form), `stdout of ${full.join(' ')} holds ${form}`)
          assert.ok(!result.stderr.includes(form), `stderr of ${full.join(' ')} holds ${form}`)
        }
      }
    }

    // The sweep covered successes and every failure class it meant to.
    for (const code of [0, 2, 3, 5, 7, 22]) assert.ok(exits.has(code), `no command exited ${code}`)
    const revealed = await world.cli(['use', 'K', 'http_header', '--reveal', '--json'])
    assert.equal((JSON.parse(revealed.stdout) as {header_value: string}).header_value, `Bearer ${CANARY}`)
    for (const file of ['audit.log', 'config.json']) {
      const text = await readFile(join(world.home, file), 'utf8')
      for (const form of forms) assert.ok(!text.includes(form), `${file} holds ${form}`)
    }
  })
})
