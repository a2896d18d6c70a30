import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {createMemoryKeychain, keychainDisabled, openKeychain} from '../../../src/core/keychain.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** Run a TypeScript module in a child `node --import tsx`; resolve its exit code and output. */
function runTsx(
  script: string,
  env: NodeJS.ProcessEnv,
): Promise<{code: null | number; stderr: string; stdout: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
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

describe('core/keychain', () => {
  let home: string

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'agentvault-keychain-'))
  })

  afterEach(async () => {
    await rm(home, {force: true, recursive: true})
  })

  describe('createMemoryKeychain', () => {
    it('stores, reads and deletes by account', async () => {
      const keychain = createMemoryKeychain()
      assert.equal(await keychain.get('openbao:prod'), undefined)
      await keychain.set('openbao:prod', 'token-1')
      await keychain.set('openbao:dev', 'token-2')
      assert.equal(await keychain.get('openbao:prod'), 'token-1')
      await keychain.set('openbao:prod', 'token-3')
      assert.equal(await keychain.get('openbao:prod'), 'token-3')
      assert.equal(await keychain.delete('openbao:prod'), true)
      assert.equal(await keychain.delete('openbao:prod'), false)
      assert.equal(await keychain.get('openbao:prod'), undefined)
      assert.equal(await keychain.get('openbao:dev'), 'token-2')
      assert.deepEqual([...keychain.entries.keys()], ['openbao:dev'])
    })

    it('keeps separate instances separate', async () => {
      const a = createMemoryKeychain()
      const b = createMemoryKeychain()
      await a.set('x', '1')
      assert.equal(await b.get('x'), undefined)
    })
  })

  describe('openKeychain', () => {
    it('returns undefined when AGENTVAULT_NO_KEYCHAIN asks for it, without touching the OS keychain', async () => {
      assert.equal(await openKeychain({env: {AGENTVAULT_NO_KEYCHAIN: '1'}}), undefined)
      assert.equal(await openKeychain({env: {AGENTVAULT_NO_KEYCHAIN: 'true'}, probe: false}), undefined)
    })

    it('reads AGENTVAULT_NO_KEYCHAIN strictly', () => {
      assert.equal(keychainDisabled({AGENTVAULT_NO_KEYCHAIN: '1'}), true)
      assert.equal(keychainDisabled({AGENTVAULT_NO_KEYCHAIN: ' TRUE '}), true)
      assert.equal(keychainDisabled({AGENTVAULT_NO_KEYCHAIN: '0'}), false)
      assert.equal(keychainDisabled({AGENTVAULT_NO_KEYCHAIN: ''}), false)
      assert.equal(keychainDisabled({}), false)
    })

    it('returns undefined (and does not throw) when the platform has no reachable Secret Service', async function () {
      if (process.platform !== 'linux') this.skip()
      // A session bus address that leads nowhere: @napi-rs/keyring fails as on a headless box.
      const script = join(home, 'probe.mts')
      await writeFile(
        script,
        `import {openKeychain} from ${JSON.stringify(pathToFileURL(join(ROOT, 'src/core/keychain.ts')).href)}\n` +
          `const keychain = await openKeychain({env: {}})\n` +
          `process.stdout.write(JSON.stringify({available: keychain !== undefined}))\n`,
      )
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(home, 'no-bus')}`,
      }
      delete env.AGENTVAULT_NO_KEYCHAIN
      const {code, stderr, stdout} = await runTsx(script, env)
      assert.equal(code, 0, stderr)
      assert.deepEqual(JSON.parse(stdout), {available: false})
    })
  })
})
