import assert from 'node:assert/strict'
import {chmod, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {openCredentialStore} from '../../../src/core/credentials.js'
import {AuthError, ConfigError} from '../../../src/core/errors.js'
import {createMemoryKeychain} from '../../../src/core/keychain.js'

const NO_KEYCHAIN = {AGENTVAULT_NO_KEYCHAIN: '1'}

function isCorrupt(error: unknown): boolean {
  return error instanceof ConfigError && error.code === 'CREDENTIALS_CORRUPT' && error.exitCode === 3
}

function mode(stats: {mode: number}): number {
  return stats.mode & 0o777
}

describe('core/credentials', () => {
  let root: string
  let home: string

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'agentvault-credentials-'))
    home = join(root, 'home')
  })

  afterEach(async () => {
    await rm(root, {force: true, recursive: true})
  })

  describe('with a keychain', () => {
    it('prefers the keychain when one is given, and writes no file', async () => {
      const keychain = createMemoryKeychain()
      const store = await openCredentialStore({env: NO_KEYCHAIN, home, keychain})
      assert.equal(store.backend, 'keychain')
      await store.set('openbao:prod-bao', 'hvs.token-1')
      assert.equal(await store.get('openbao:prod-bao'), 'hvs.token-1')
      assert.equal(await store.get('openbao:other'), undefined)
      const [account, value] = [...keychain.entries][0] ?? []
      assert.equal(keychain.entries.size, 1)
      assert.match(account ?? '', /^openbao:prod-bao @ /)
      assert.equal(value, 'hvs.token-1')
      assert.equal(await store.delete('openbao:prod-bao'), true)
      assert.equal(await store.delete('openbao:prod-bao'), false)
      assert.equal(keychain.entries.size, 0)
      await assert.rejects(stat(home), {code: 'ENOENT'})
    })

    it('keeps the tokens of two homes apart in one keychain', async () => {
      const keychain = createMemoryKeychain()
      const a = await openCredentialStore({env: {}, home: join(root, 'a'), keychain})
      const b = await openCredentialStore({env: {}, home: join(root, 'b'), keychain})
      await a.set('openbao:prod', 'token-for-a')
      assert.equal(await b.get('openbao:prod'), undefined)
      await b.set('openbao:prod', 'token-for-b')
      assert.equal(await a.get('openbao:prod'), 'token-for-a')
      assert.equal(await b.get('openbao:prod'), 'token-for-b')
    })
  })

  describe('file fallback', () => {
    it('is used when keychain is null, and round-trips through a fresh store', async () => {
      const warnings: string[] = []
      const store = await openCredentialStore({
        env: {},
        home,
        keychain: null,
        warn: (message) => warnings.push(message),
      })
      assert.equal(store.backend, 'file')
      assert.equal(await store.get('openbao:prod-bao'), undefined)
      await store.set('openbao:prod-bao', 'hvs.first')
      await store.set('agentauth:default', 'eyJ.jwt')
      await store.set('openbao:prod-bao', 'hvs.second')
      assert.equal(await store.get('openbao:prod-bao'), 'hvs.second')

      const again = await openCredentialStore({env: {}, home, keychain: null})
      assert.equal(await again.get('openbao:prod-bao'), 'hvs.second')
      assert.equal(await again.get('agentauth:default'), 'eyJ.jwt')
      assert.equal(await again.delete('agentauth:default'), true)
      assert.equal(await again.delete('agentauth:default'), false)
      assert.equal(await store.get('agentauth:default'), undefined)

      // The key file was created once, with a notice naming it.
      assert.equal(warnings.length, 1)
      assert.match(warnings[0] ?? '', new RegExp(join(home, 'vault.key').replaceAll('/', '\\/')))
      assert.deepEqual((await readdir(home)).sort(), ['credentials.enc', 'vault.key'])
    })

    it('is used when AGENTVAULT_NO_KEYCHAIN=1 and no keychain is injected', async () => {
      const store = await openCredentialStore({env: NO_KEYCHAIN, home})
      assert.equal(store.backend, 'file')
    })

    it('creates the home 0700 and the file 0600, and re-asserts 0600 on write', async () => {
      const store = await openCredentialStore({env: {}, home, keychain: null})
      await store.set('openbao:prod', 'token')
      assert.equal(mode(await stat(home)), 0o700)
      assert.equal(mode(await stat(join(home, 'credentials.enc'))), 0o600)
      assert.equal(mode(await stat(join(home, 'vault.key'))), 0o600)
      await chmod(join(home, 'credentials.enc'), 0o644)
      await chmod(join(home, 'vault.key'), 0o644)
      await store.set('openbao:prod', 'token-2')
      assert.equal(mode(await stat(join(home, 'credentials.enc'))), 0o600)
      assert.equal(mode(await stat(join(home, 'vault.key'))), 0o600)
    })

    it('never holds the plaintext token (canary) in the file', async () => {
      const canary = 'CANARY-credential-7f3a9c1e'
      const store = await openCredentialStore({env: {}, home, keychain: null})
      await store.set('openbao:canary', canary)
      const bytes = await readFile(join(home, 'credentials.enc'))
      for (const form of [
        canary,
        Buffer.from(canary).toString('base64'),
        Buffer.from(canary).toString('hex'),
      ])
        assert.equal(bytes.includes(form), false, `file contains ${form}`)
      assert.equal(bytes.toString('latin1').includes('"format": "agentvault-credentials"'), true)
    })

    it('creates nothing on a read or delete of a missing file', async () => {
      const store = await openCredentialStore({env: {}, home, keychain: null})
      assert.equal(await store.get('openbao:prod'), undefined)
      assert.equal(await store.delete('openbao:prod'), false)
      await assert.rejects(stat(home), {code: 'ENOENT'})
    })

    it('uses AGENTVAULT_PASSPHRASE when set, and refuses a wrong or missing one', async () => {
      const store = await openCredentialStore({
        env: {AGENTVAULT_PASSPHRASE: 'correct horse'},
        home,
        keychain: null,
      })
      await store.set('openbao:prod', 'token')
      assert.deepEqual((await readdir(home)).sort(), ['credentials.enc'])
      const header = JSON.parse(await readFile(join(home, 'credentials.enc'), 'utf8')) as {
        key: {source: string}
      }
      assert.equal(header.key.source, 'passphrase')

      const right = await openCredentialStore({
        env: {AGENTVAULT_PASSPHRASE: 'correct horse'},
        home,
        keychain: null,
      })
      assert.equal(await right.get('openbao:prod'), 'token')
      const wrong = await openCredentialStore({env: {AGENTVAULT_PASSPHRASE: 'wrong'}, home, keychain: null})
      await assert.rejects(
        wrong.get('openbao:prod'),
        (error: unknown) => error instanceof AuthError && error.exitCode === 4,
      )
      const before = await readFile(join(home, 'credentials.enc'))
      await assert.rejects(wrong.set('openbao:prod', 'x'), AuthError)
      const missing = await openCredentialStore({env: {}, home, keychain: null})
      await assert.rejects(
        missing.get('openbao:prod'),
        (error: unknown) => error instanceof AuthError && /AGENTVAULT_PASSPHRASE/.test(error.message),
      )
      assert.deepEqual(await readFile(join(home, 'credentials.enc')), before)
    })

    it('stops with a ConfigError on a damaged file and leaves it untouched', async () => {
      const store = await openCredentialStore({env: {}, home, keychain: null})
      await store.set('openbao:prod', 'token')
      const path = join(home, 'credentials.enc')
      const bytes = await readFile(path)
      const damaged = Buffer.from(bytes)
      damaged[Math.floor(bytes.length / 2)]! ^= 0x04
      await writeFile(path, damaged)
      await assert.rejects(store.get('openbao:prod'), isCorrupt)
      await assert.rejects(store.set('openbao:prod', 'new'), isCorrupt)
      await assert.rejects(store.delete('openbao:prod'), isCorrupt)
      assert.deepEqual(await readFile(path), damaged)
    })
  })
})
