/**
 * `run` keeps agentvault's credentials away from the child (issue 11 §2) and never lets the OS's
 * refusal of an environment quote a value (issue 11 §4, issue 12 §3): canary values throughout.
 */
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {credentialVariables} from '../../src/core/child-env.js'
import {type CliResult, ROOT, runCli, tempHome} from '../helpers/cli.js'
import {filesUnder} from '../helpers/e2e.js'

const MASK = '<concealed by agentvault>'
const SECRET = 'canary-hygiene-secret-5b1e'
/** One distinct canary per credential variable. */
const CREDENTIALS: Record<string, string> = {
  AGENTAUTH_API_KEY: 'canary-agentauth-key-91c4',
  AGENTSECRETS_SESSION_TOKEN: 'canary-as-session-77d2',
  AGENTVAULT_PASSPHRASE: 'canary-vault-passphrase-e8a0',
  AGENTVAULT_SECRET_ID: 'canary-approle-secret-id-3f17',
  AS_AGENT_TOKEN: 'canary-as-agent-token-0b9d',
  BAO_TOKEN: 'canary-bao-token-4c62',
  SANCTUM_KEY_PASSPHRASE: 'canary-sanctum-pass-a5e3',
  VAULT_TOKEN: 'canary-vault-token-d714',
}

function assertNoCanary(result: CliResult, canaries: string[], where = 'output'): void {
  for (const canary of canaries) {
    assert.ok(!result.stdout.includes(canary), `${canary} in stdout of ${where}: ${result.stdout}`)
    assert.ok(!result.stderr.includes(canary), `${canary} in stderr of ${where}: ${result.stderr}`)
  }
}

describe('e2e: run withholds credentials from the child', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let env: NodeJS.ProcessEnv
  const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    runCli(['run', ...args], {env: {...env, ...extra}})

  before(async () => {
    t = await tempHome()
    // The vault is sealed with the passphrase, so `run` really consumes AGENTVAULT_PASSPHRASE.
    env = {...t.env, ...CREDENTIALS, BAO_ADDR: 'http://127.0.0.1:8200'}
    const stored = await runCli(['secrets', 'set', 'K'], {env, input: SECRET})
    assert.equal(stored.code, 0, stored.stderr)
  })

  after(async () => {
    // No credential canary was written anywhere under the home (vault, audit log).
    for (const file of await filesUnder(t.home)) {
      const text = await readFile(file, 'latin1')
      for (const canary of [...Object.values(CREDENTIALS), SECRET])
        assert.ok(!text.includes(canary), `${canary} in ${file}`)
    }

    await t.dispose()
  })

  it('declares every credential variable this test plants', () => {
    assert.deepEqual(credentialVariables(), Object.keys(CREDENTIALS).sort())
  })

  it('`env` in the child shows none of them; non-secret settings pass through', async () => {
    const result = await run(['--mask', 'never', '--env', 'K=local://K', '--', 'env'])
    assert.equal(result.code, 0, result.stderr)
    assertNoCanary(result, Object.values(CREDENTIALS), 'env')
    for (const name of Object.keys(CREDENTIALS))
      assert.doesNotMatch(result.stdout, new RegExp(`^${name}=`, 'm'), `${name} reached the child`)
    assert.match(result.stdout, /^BAO_ADDR=http:\/\/127\.0\.0\.1:8200$/m)
    assert.match(result.stdout, new RegExp(`^AGENTVAULT_HOME=${t.env.AGENTVAULT_HOME}$`, 'm'))
    assert.match(result.stdout, new RegExp(`^K=${SECRET}$`, 'm'), 'the secret itself is injected')
  })

  it('--pass-env keeps one, concealed in piped output', async () => {
    // eslint-disable-next-line no-template-curly-in-string -- shell parameter expansion
    const script = 'echo "bao=$BAO_TOKEN vault=${VAULT_TOKEN:-unset}"'
    const result = await run(['--pass-env', 'BAO_TOKEN', '--env', 'K=local://K', '--', 'sh', '-c', script])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, `bao=${MASK} vault=unset\n`)
    assertNoCanary(result, Object.values(CREDENTIALS), '--pass-env')

    const raw = await run(['--mask', 'never', '--pass-env', 'BAO_TOKEN', '--', 'sh', '-c', script])
    assert.equal(raw.stdout, `bao=${CREDENTIALS.BAO_TOKEN} vault=unset\n`, 'kept on purpose, not dropped')
  })

  it('keeps a credential without any secret reference, and masks it', async () => {
    const result = await run([
      '--pass-env',
      'AGENTAUTH_API_KEY',
      '--',
      'sh',
      '-c',
      'echo "k=$AGENTAUTH_API_KEY"',
    ])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, `k=${MASK}\n`)
  })

  for (const separated of ['AGENTAUTH_API_KEY, BAO_TOKEN', 'AGENTAUTH_API_KEY BAO_TOKEN']) {
    it(`AGENTVAULT_PASS_ENV="${separated}" keeps both`, async () => {
      // eslint-disable-next-line no-template-curly-in-string -- shell parameter expansion
      const script = 'echo "$AGENTAUTH_API_KEY|$BAO_TOKEN|${VAULT_TOKEN:-unset}"'
      const result = await run(['--mask', 'never', '--', 'sh', '-c', script], {
        AGENTVAULT_PASS_ENV: separated,
      })
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, `${CREDENTIALS.AGENTAUTH_API_KEY}|${CREDENTIALS.BAO_TOKEN}|unset\n`)
    })
  }

  it('--pass-env refuses a NAME=value without echoing the value (exit 2)', async () => {
    const result = await run(['--pass-env', `BAO_TOKEN=${SECRET}`, '--', 'true'])
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /^Error: .*--pass-env.*\nTry this: /m)
    assertNoCanary(result, [SECRET])
  })

  it('--clean-env still works: minimal environment, secrets, and what --pass-env names', async () => {
    // eslint-disable-next-line no-template-curly-in-string -- shell parameter expansion
    const script = 'echo "[${KEEP:-}][${OTHER:-}][${BAO_ADDR:-}][${BAO_TOKEN:-}]|$K"; test -n "$PATH"'
    const result = await run(
      [
        '--clean-env',
        '--pass-env',
        'KEEP',
        '--pass-env',
        'BAO_TOKEN',
        '--env',
        'K=local://K',
        '--',
        'sh',
        '-c',
        script,
      ],
      {KEEP: 'kept', OTHER: 'dropped'},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, `[kept][][][${MASK}]|${MASK}\n`)
  })

  it('run --help names every withheld variable, --pass-env and why', async () => {
    const result = await runCli(['run', '--help'], {env: t.env})
    assert.equal(result.code, 0, result.stderr)
    const help = result.stdout.replaceAll(/\s+/g, ' ')
    for (const name of credentialVariables())
      assert.ok(help.includes(name), `run --help does not name ${name}`)
    assert.match(help, /--pass-env=?<?NAME/)
    assert.match(help, /AGENTVAULT_PASS_ENV/)
    assert.match(help, /withh(eld|olds)/i)
  })

  it('the README names every withheld variable and --pass-env', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
    for (const name of credentialVariables()) assert.ok(readme.includes(name), `README does not name ${name}`)
    assert.ok(readme.includes('--pass-env'))
    assert.ok(readme.includes('AGENTVAULT_PASS_ENV'))
  })
})

describe('e2e: run refuses an environment the OS would refuse, naming the variable only', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const CANARY = 'sk_live_canary_nul_6e2d'

  before(async () => {
    t = await tempHome()
  })

  after(() => t.dispose())

  const runWithFile = async (content: Buffer | string, extra: string[] = []): Promise<CliResult> => {
    const file = join(t.home, 'plain.env')
    await writeFile(file, content)
    return runCli(['run', '--env-file', file, ...extra, '--', 'sh', '-c', 'echo started'], {env: t.env})
  }

  it('a NUL byte in a plain env-file value: exit 2 naming the variable, never the value', async () => {
    const result = await runWithFile(Buffer.from(`OK=1\nAPI_KEY=${CANARY}\u0000${CANARY}tail\n`))
    assert.equal(result.code, 2, result.stderr)
    assert.equal(result.stdout, '', 'the command did not start')
    assert.match(result.stderr, /^Error: .*API_KEY.*NUL/m)
    assert.match(result.stderr, /^Try this: /m)
    assertNoCanary(result, [CANARY, 'sk_live'])
  })

  it('a value bigger than one NAME=value may be (128 KiB on Linux): exit 2 naming it and the limit', async function () {
    if (process.platform !== 'linux') this.skip()
    const result = await runWithFile(`BIG=${CANARY}${'x'.repeat(200 * 1024)}\n`)
    assert.equal(result.code, 2, result.stderr)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /^Error: BIG is too big .*128 KiB/m)
    assert.match(result.stderr, /^Try this: /m)
    assertNoCanary(result, [CANARY])
    assert.doesNotMatch(result.stderr, /E2BIG|This is a bug/)
  })

  it('a value just under the per-string limit still runs', async function () {
    if (process.platform !== 'linux') this.skip()
    const result = await runWithFile(`BIG=${'x'.repeat(128 * 1024 - 'BIG='.length - 1)}\n`)
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'started\n')
  })

  it('an environment bigger in total than ARG_MAX: exit 2 naming the biggest variables', async function () {
    if (process.platform !== 'linux') this.skip()
    // 80 × 120 KiB: every string fits; the total (9.6 MiB) exceeds ARG_MAX even with an unlimited
    // stack (Linux then allows at most 6 MiB). Four files: each stays under the 4 MiB env-file cap.
    const lines = Array.from({length: 80}, (_, i) => `V${i}=${CANARY}${'y'.repeat(120 * 1024)}`)
    const files: string[] = []
    for (let part = 0; part < 4; part++) {
      const file = join(t.home, `part${part}.env`)
      await writeFile(file, `${lines.slice(part * 20, part * 20 + 20).join('\n')}\n`)
      files.push('--env-file', file)
    }

    const result = await runWithFile('', files)
    assert.equal(result.code, 2, result.stderr)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /^Error: .*exceed.*ARG_MAX.*V\d+/m)
    assert.match(result.stderr, /^Try this: /m)
    assertNoCanary(result, [CANARY])
    assert.doesNotMatch(result.stderr, /This is a bug/)
  })
})
