import assert from 'node:assert/strict'
/**
 * The credential store and the local vault against a REAL Secret Service: gnome-keyring on a
 * private D-Bus session (scripts/with-secret-service.sh), with its keyrings in a temp directory.
 * Skipped only when no Secret Service can be installed or started here.
 */
import {spawn} from 'node:child_process'
import {mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const SKIP_STATUS = 77

/** What the child script reports, per phase. */
interface Report {
  available: boolean
  credentialBackend: string
  credentialRoundTrip?: {afterDelete: null | string; deleted: boolean; read: null | string}
  keychainRoundTrip?: {afterDelete: null | string; deleted: boolean; read: null | string}
  vault: {error?: {code: string; exitCode: number}; keySource?: string; value?: string}
}

const childScript = (root: string) => `
import {openKeychain} from ${JSON.stringify(pathToFileURL(join(root, 'src/core/keychain.ts')).href)}
import {openCredentialStore} from ${JSON.stringify(pathToFileURL(join(root, 'src/core/credentials.ts')).href)}
import {createBackend} from ${JSON.stringify(pathToFileURL(join(root, 'src/backends/local/index.ts')).href)}

const phase = process.argv[2]
const home = process.env.AGENTVAULT_HOME
const canary = process.env.CANARY
const report = {}

const keychain = await openKeychain()
report.available = keychain !== undefined
if (keychain && phase === 'create') {
  const account = 'agentvault-test-' + process.pid
  await keychain.set(account, canary)
  const read = (await keychain.get(account)) ?? null
  const deleted = await keychain.delete(account)
  report.keychainRoundTrip = {read, deleted, afterDelete: (await keychain.get(account)) ?? null}
}

const store = await openCredentialStore({env: process.env, home})
report.credentialBackend = store.backend
if (phase === 'create') {
  await store.set('openbao:prod-bao', canary)
  const read = (await store.get('openbao:prod-bao')) ?? null
  const deleted = await store.delete('openbao:prod-bao')
  report.credentialRoundTrip = {read, deleted, afterDelete: (await store.get('openbao:prod-bao')) ?? null}
}

const backend = createBackend({
  env: process.env,
  home,
  interactive: false,
  profile: {implicit: true, kind: 'local', name: 'local', settings: {}},
  warn: (message) => process.stderr.write(message + '\\n'),
})
const ref = {canonical: 'local://SS_SECRET', kind: 'local', path: 'SS_SECRET', scheme: 'local'}
try {
  if (phase === 'create') await backend.set(ref, Buffer.from(canary), {})
  report.vault = {value: (await backend.get(ref)).toString(), keySource: (await backend.status()).details?.keySource}
} catch (error) {
  report.vault = {error: {code: error.code, exitCode: error.exitCode}}
}

await backend.close()
process.stdout.write(JSON.stringify(report) + '\\n')
`

function parse(result: {code: null | number; stderr: string; stdout: string}): Report {
  assert.equal(result.code, 0, `child failed:\n${result.stderr}`)
  const line = result.stdout.trim().split('\n').at(-1) ?? ''
  return JSON.parse(line) as Report
}

describe('core/credentials with a real Secret Service (gnome-keyring)', function () {
  // The first run may install gnome-keyring with apt-get.
  this.timeout(600_000)
  let root: string

  before(async function () {
    if (process.platform !== 'linux') this.skip()
    root = await mkdtemp(join(tmpdir(), 'agentvault-secret-service-'))
    await writeFile(join(root, 'child.mts'), childScript(ROOT))
  })

  after(async () => {
    if (root) await rm(root, {force: true, recursive: true})
  })

  function runPhase(
    phase: 'create' | 'locked' | 'reopen',
    canary: string,
  ): Promise<{code: null | number; stderr: string; stdout: string}> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AGENTVAULT_HOME: join(root, 'home'),
      CANARY: canary,
      HOME: root,
      XDG_DATA_HOME: join(root, 'data'),
    }
    delete env.AGENTVAULT_NO_KEYCHAIN
    delete env.AGENTVAULT_PASSPHRASE
    delete env.DBUS_SESSION_BUS_ADDRESS
    const args = [join(ROOT, 'scripts/with-secret-service.sh'), ...(phase === 'locked' ? ['--locked'] : [])]
    args.push(process.execPath, '--import', 'tsx', join(root, 'child.mts'), phase)
    return new Promise((resolve, reject) => {
      const child = spawn('sh', args, {cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe']})
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString()
      })
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
      })
      child.on('error', reject)
      child.on('close', (code) => resolve({code, stderr, stdout}))
    })
  }

  const canary = `CANARY-secret-service-${process.pid}`

  it('stores, reads and deletes through openKeychain(), and keeps tokens and the vault key there', async function () {
    const result = await runPhase('create', canary)
    if (result.code === SKIP_STATUS) {
      // Say why, in the test output: the script names what is missing.
      console.log(`      skipped: ${result.stderr.trim().split('\n').at(-1)}`)
      this.skip()
    }

    const report = parse(result)
    assert.equal(report.available, true, `openKeychain() found no usable Secret Service:\n${result.stderr}`)
    assert.deepEqual(report.keychainRoundTrip, {afterDelete: null, deleted: true, read: canary})
    assert.equal(report.credentialBackend, 'keychain')
    assert.deepEqual(report.credentialRoundTrip, {afterDelete: null, deleted: true, read: canary})
    assert.deepEqual(report.vault, {keySource: 'keychain', value: canary})
    // Only the vault itself is on disk: no credential file, no key file.
    assert.deepEqual(await readdir(join(root, 'home')), ['vault.json'])
  })

  it('finds the vault key again after the daemon restarts (it persisted in the keyring)', async function () {
    const result = await runPhase('reopen', canary)
    if (result.code === SKIP_STATUS) this.skip()
    const report = parse(result)
    assert.equal(report.available, true)
    assert.deepEqual(report.vault, {keySource: 'keychain', value: canary})
  })

  it('treats a locked keyring as no keychain: credentials fall back to the file, the vault says the keychain is unavailable', async function () {
    const result = await runPhase('locked', canary)
    if (result.code === SKIP_STATUS) this.skip()
    const report = parse(result)
    assert.equal(report.available, false)
    assert.equal(report.credentialBackend, 'file')
    assert.deepEqual(report.vault, {error: {code: 'KEYCHAIN_UNAVAILABLE', exitCode: 5}})
  })
})
