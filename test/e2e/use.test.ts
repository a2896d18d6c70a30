import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {
  BASIC_USER,
  CANARY,
  createUseWorld,
  leakedForms,
  MASK,
  type UseWorld,
} from '../servers/http-upstream/fixture.js'

/** RFC 4231 test case 2 and RFC 8032 §7.1 TEST 1. */
const JEFE = {
  data: 'what do ya want for nothing?',
  sha256: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  sha512:
    '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737',
}
const ED25519_TEST1 = {
  seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
}

describe('e2e: use', () => {
  let world: UseWorld
  const use = async (
    args: string[],
    input?: string,
  ): Promise<{code: null | number; json: Record<string, unknown>; stderr: string; stdout: string}> => {
    const result = await world.cli(['use', ...args, '--json'], {input})
    let json: Record<string, unknown> = {}
    try {
      json = JSON.parse(result.stdout) as Record<string, unknown>
    } catch {
      assert.fail(`not JSON (exit ${result.code}): ${result.stdout} ${result.stderr}`)
    }

    return {code: result.code, json, stderr: result.stderr, stdout: result.stdout}
  }

  before(async () => {
    world = await createUseWorld()
    const store = async (name: string, value: string): Promise<void> => {
      const result = await world.cli(['secrets', 'set', name], {input: value})
      assert.equal(result.code, 0, result.stderr)
    }

    await store('JEFE', 'Jefe')
    await store('SEED', ED25519_TEST1.seed)
    const tc1 = join(world.home, '..', 'tc1.key')
    await writeFile(tc1, Buffer.alloc(20, 0x0b))
    const stored = await world.cli(['secrets', 'set', 'TC1', '--from-file', tc1])
    assert.equal(stored.code, 0, stored.stderr)
  })

  after(() => world.dispose())

  const request = (path: string, ...params: string[]) => [
    'K',
    'http_request',
    '--param',
    `url=${world.upstream.url(path)}`,
    ...params.flatMap((p) => ['--param', p]),
  ]

  describe('http_request: every header_type arrives exactly', () => {
    it('bearer (the default)', async () => {
      const {code, json} = await use(request('/ht-bearer'))
      assert.equal(code, 0)
      assert.equal(json.status, 200)
      assert.equal(json.body, 'ok')
      assert.equal(world.upstream.last('/ht-bearer').headers.authorization, `Bearer ${CANARY}`)
    })

    it('api_key (X-API-Key, or header_name)', async () => {
      await use(request('/ht-api', 'header_type=api_key'))
      assert.equal(world.upstream.last('/ht-api').headers['x-api-key'], CANARY)
      await use(request('/ht-api-named', 'header_type=api_key', 'header_name=X-Goog-Api-Key'))
      assert.equal(world.upstream.last('/ht-api-named').headers['x-goog-api-key'], CANARY)
    })

    it('basic (the secret is user:password)', async () => {
      const {code} = await use([
        'B',
        'http_request',
        '--param',
        `url=${world.upstream.url('/ht-basic')}`,
        '--param',
        'header_type=basic',
      ])
      assert.equal(code, 0)
      assert.equal(
        world.upstream.last('/ht-basic').headers.authorization,
        `Basic ${Buffer.from(`${BASIC_USER}:${CANARY}`).toString('base64')}`,
      )
    })

    it('custom with header_name; method, headers and body from --params on stdin', async () => {
      const params = {
        body: '{"q":1}',
        header_name: 'X-Custom-Auth',
        header_type: 'custom',
        headers: {'Content-Type': 'application/json', 'X-Trace': 'abc'},
        method: 'POST',
        url: world.upstream.url('/ht-custom'),
      }
      const {code} = await use(['K', 'http_request', '--params', '-'], JSON.stringify(params))
      assert.equal(code, 0)
      const received = world.upstream.last('/ht-custom')
      assert.equal(received.method, 'POST')
      assert.equal(received.headers['x-custom-auth'], CANARY)
      assert.equal(received.headers['x-trace'], 'abc')
      assert.equal(received.body.toString(), '{"q":1}')
    })

    it('an echoing upstream is redacted (redacted: true); guards apply as for call', async () => {
      const {json} = await use(request('/echo'))
      assert.equal(json.redacted, true)
      assert.equal((json.headers as Record<string, string>)['x-echo-token'], MASK)
      const denied = await use([
        'local://K?profile=strict',
        'http_request',
        '--param',
        `url=${world.upstream.url('/x')}`,
      ])
      assert.equal(denied.code, 7)
      assert.equal((denied.json.error as {code: string}).code, 'HOST_NOT_ALLOWED')
    })
  })

  describe('http_header', () => {
    it('refuses without --reveal (exit 2), returns the header with it', async () => {
      const refused = await world.cli(['use', 'K', 'http_header'])
      assert.equal(refused.code, 2)
      assert.match(refused.stderr, /without --reveal\nTry this: /)
      assert.equal(refused.stdout, '')
      const {json} = await use(['K', 'http_header', '--reveal', '--param', 'header_type=api_key'])
      assert.deepEqual(json, {header_name: 'X-API-Key', header_value: CANARY})
    })
  })

  describe('sign and verify', () => {
    it('HMAC: RFC 4231 test cases 1 and 2 (sha256, sha512 → base64)', async () => {
      for (const [algorithm, hex] of [
        ['hmac-sha256', JEFE.sha256],
        ['hmac-sha512', JEFE.sha512],
      ] as const) {
        const {json} = await use([
          'JEFE',
          'sign',
          '--param',
          `algorithm=${algorithm}`,
          '--param',
          `data=${JEFE.data}`,
        ])
        assert.deepEqual(json, {algorithm, signature: Buffer.from(hex, 'hex').toString('base64')})
        const verified = await use([
          'JEFE',
          'verify',
          '--param',
          `algorithm=${algorithm}`,
          '--param',
          `data=${JEFE.data}`,
          '--param',
          `signature=${json.signature as string}`,
        ])
        assert.deepEqual(verified.json, {algorithm, valid: true})
      }

      const tc1 = await use([
        'TC1',
        'sign',
        '--param',
        `data=${Buffer.from('Hi There').toString('hex')}`,
        '--param',
        'encoding=hex',
      ])
      assert.equal(
        tc1.json.signature,
        Buffer.from('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7', 'hex').toString(
          'base64',
        ),
      )
      const wrong = await use([
        'JEFE',
        'verify',
        '--param',
        'data=tampered',
        '--param',
        `signature=${tc1.json.signature as string}`,
      ])
      assert.equal(wrong.json.valid, false)
      assert.equal(wrong.code, 7, 'a forgery must not pass `if agentvault use K verify …; then`')
    })

    it('a wrong signature exits 7 (denied): valid: false on stdout, Error and Try this on stderr, audited as denied', async () => {
      const args = ['use', 'JEFE', 'verify', '--param', 'data=forged', '--param', 'signature=AAAA']
      const plain = await world.cli(args)
      assert.equal(plain.code, 7, plain.stderr)
      assert.equal(plain.stdout, 'algorithm: hmac-sha256\nvalid: false\n')
      assert.match(plain.stderr, /^Error: The signature does not match.*\nTry this: .+$/m)

      const json = await world.cli([...args, '--json'])
      assert.equal(json.code, 7)
      assert.deepEqual(JSON.parse(json.stdout), {algorithm: 'hmac-sha256', valid: false})
      assert.doesNotMatch(json.stderr, /^Error:/m, 'with --json the result alone says it')

      const lines = (await readFile(join(world.home, 'audit.log'), 'utf8')).trim().split('\n')
      const last = JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown>
      assert.equal(last.operation, 'verify')
      assert.equal(last.outcome, 'denied')
      assert.equal(last.exit_code, 7)
    })

    it('Ed25519: RFC 8032 test 1 (empty message, hex signature)', async () => {
      const {code, json} = await use(['SEED', 'sign', '--param', 'algorithm=ed25519', '--param', 'data='])
      assert.equal(code, 0)
      assert.deepEqual(json, {
        algorithm: 'ed25519',
        public_key: ED25519_TEST1.publicKey,
        signature: ED25519_TEST1.signature,
      })
      const verified = await use([
        'SEED',
        'verify',
        '--params',
        JSON.stringify({algorithm: 'ed25519', data: '', signature: ED25519_TEST1.signature}),
      ])
      assert.equal(verified.json.valid, true)
      const notSeed = await use(['K', 'sign', '--param', 'algorithm=ed25519', '--param', 'data=x'])
      assert.equal(notSeed.code, 2)
    })
  })

  describe('encrypt and decrypt', () => {
    it('round-trips, and a flipped ciphertext byte fails cleanly (exit 2, Try this)', async () => {
      const encrypted = await use(['K', 'encrypt', '--param', 'plaintext=attack at dawn'])
      const ciphertext = encrypted.json.ciphertext as string
      assert.match(ciphertext, /^[A-Za-z\d+/]+=*$/)
      const decrypted = await use(['K', 'decrypt', '--param', `ciphertext=${ciphertext}`])
      assert.deepEqual(decrypted.json, {encoding: 'utf8', plaintext: 'attack at dawn'})
      const raw = Buffer.from(ciphertext, 'base64')
      raw[30]! ^= 0x01
      const tampered = await world.cli([
        'use',
        'K',
        'decrypt',
        '--param',
        `ciphertext=${raw.toString('base64')}`,
      ])
      assert.equal(tampered.code, 2)
      assert.match(
        tampered.stderr,
        /^Error: The ciphertext could not be decrypted with local:\/\/K: it was altered.*\nTry this: /,
      )
      const otherKey = await use(['JEFE', 'decrypt', '--param', `data=${ciphertext}`])
      assert.equal((otherKey.json.error as {code: string}).code, 'DECRYPT_FAILED')
    })

    it('a plaintext that is the secret itself comes back concealed', async () => {
      const encrypted = await use(['K', 'encrypt', '--param', `plaintext=${CANARY}`])
      const decrypted = await use([
        'K',
        'decrypt',
        '--param',
        `ciphertext=${encrypted.json.ciphertext as string}`,
      ])
      assert.deepEqual(decrypted.json, {encoding: 'utf8', plaintext: MASK, redacted: true})
    })
  })

  it('human output is key: value lines', async () => {
    const result = await world.cli(['use', 'JEFE', 'sign', '--param', `data=${JEFE.data}`])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(
      result.stdout,
      `algorithm: hmac-sha256\nsignature: ${Buffer.from(JEFE.sha256, 'hex').toString('base64')}\n`,
    )
  })

  it('usage errors (exit 2): unknown operation, missing or bad parameters, bad --params', async () => {
    for (const args of [
      ['K', 'transmogrify'],
      ['K', 'sign'],
      ['K', 'sign', '--param', 'data=x', '--param', 'algorithm=md5'],
      ['K', 'http_request'],
      ['K', 'http_request', '--param', 'url=file:///etc/passwd'],
      ['K', 'sign', '--params', '{not json'],
      ['K', 'sign', '--param', 'no-equals-sign'],
    ]) {
      const result = await world.cli(['use', ...args])
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
      assert.match(result.stderr, /Try this: /)
    }
  })

  it('audits the operation and reference (and target host and status for HTTP), never a value', async () => {
    await use(['JEFE', 'sign', '--param', 'data=x'])
    await use(['K', 'http_request', '--param', `url=${world.upstream.url('/audited')}`])
    const lines = (await readFile(join(world.home, 'audit.log'), 'utf8')).trim().split('\n')
    const [sign, http] = lines.slice(-2).map((line) => JSON.parse(line) as Record<string, unknown>)
    assert.equal(sign?.command, 'use')
    assert.equal(sign?.operation, 'sign')
    assert.deepEqual(sign?.references, ['local://JEFE'])
    assert.equal(sign?.target_host, undefined)
    assert.equal(http?.operation, 'http_request')
    assert.match(String(http?.target_host), /^127\.0\.0\.1:\d+$/)
    assert.equal(http?.status, 200)
    assert.equal(http?.outcome, 'ok')
    for (const form of leakedForms(CANARY)) assert.ok(!lines.join('\n').includes(form))
  })
})
