import * as fc from 'fast-check'
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath, pathToFileURL} from 'node:url'

import type {Backend, BackendContext} from '../../../src/core/backend.js'
import type {SecretReference} from '../../../src/core/references.js'

import {createBackend, type LocalBackendOptions} from '../../../src/backends/local/index.js'
import {
  AgentVaultError,
  AuthError,
  BackendUnavailableError,
  ConfigError,
  SecretNotFoundError,
  UsageError,
} from '../../../src/core/errors.js'
import {createMemoryKeychain} from '../../../src/core/keychain.js'
import {encodeEnvelope} from '../../../src/core/sealed-file.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const NO_KEYCHAIN = {AGENTVAULT_NO_KEYCHAIN: '1'}

function ref(name: string): SecretReference {
  return {canonical: `local://${name}`, kind: 'local', path: name, scheme: 'local'}
}

function mode(stats: {mode: number}): number {
  return stats.mode & 0o777
}

function isError(type: new (...args: never[]) => AgentVaultError, code?: string, exitCode?: number) {
  return (error: unknown) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`)
    if (code !== undefined) assert.equal(error.code, code)
    if (exitCode !== undefined) assert.equal(error.exitCode, exitCode)
    return true
  }
}

interface Harness {
  backend(env?: NodeJS.ProcessEnv, options?: LocalBackendOptions): Backend
  context(env?: NodeJS.ProcessEnv): BackendContext
  home: string
  vaultPath: string
  warnings: string[]
}

describe('backends/local', () => {
  let root: string
  let h: Harness
  const open: Backend[] = []

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'agentvault-local-'))
    // A home that does not exist yet: writers must create it, readers must not.
    const home = join(root, 'home')
    const warnings: string[] = []
    const context = (env: NodeJS.ProcessEnv = NO_KEYCHAIN): BackendContext => ({
      env,
      home,
      interactive: false,
      profile: {implicit: true, kind: 'local', name: 'local', settings: {}},
      warn: (message) => warnings.push(message),
    })
    h = {
      backend(env = NO_KEYCHAIN, options = {}) {
        const backend = createBackend(context(env), options)
        open.push(backend)
        return backend
      },
      context,
      home,
      vaultPath: join(home, 'vault.json'),
      warnings,
    }
  })

  afterEach(async () => {
    await Promise.all(open.splice(0).map((backend) => backend.close()))
    await rm(root, {force: true, recursive: true})
  })

  describe('secrets', () => {
    it('declares its kind and capabilities', () => {
      const backend = h.backend()
      assert.equal(backend.kind, 'local')
      assert.deepEqual(
        {...backend.capabilities, useOperations: [...backend.capabilities.useOperations]},
        {
          auditSource: false,
          delete: true,
          get: true,
          list: true,
          login: true,
          runInjection: true,
          set: true,
          useOperations: ['http_request', 'http_header', 'sign', 'verify', 'encrypt', 'decrypt'],
        },
      )
    })

    it('sets, gets, versions, lists and deletes', async () => {
      const backend = h.backend()
      const first = await backend.set!(ref('OPENAI_KEY'), Buffer.from('sk-one'), {
        allowedDomains: ['api.openai.com'],
        description: 'OpenAI',
        tags: ['ai'],
      })
      assert.equal(first.name, 'OPENAI_KEY')
      assert.equal(first.version, 1)
      assert.equal(first.created, first.updated)
      assert.deepEqual(first.allowedDomains, ['api.openai.com'])

      const second = await backend.set!(ref('OPENAI_KEY'), Buffer.from('sk-two'), {})
      assert.equal(second.version, 2)
      assert.equal(second.created, first.created)
      assert.ok(second.updated! >= first.updated!)
      assert.equal(second.description, 'OpenAI', 'metadata is kept when not given again')
      assert.deepEqual(second.tags, ['ai'])
      const third = await backend.set!(ref('OPENAI_KEY'), Buffer.from('sk-three'), {
        description: 'new',
        tags: [],
      })
      assert.equal(third.version, 3)
      assert.equal(third.description, 'new')
      assert.deepEqual(third.tags, [])

      assert.deepEqual(await backend.get!(ref('OPENAI_KEY')), Buffer.from('sk-three'))

      await backend.set!(ref('b'), Buffer.from('1'), {})
      await backend.set!(ref('a/y'), Buffer.from('2'), {})
      await backend.set!(ref('a/x'), Buffer.from('3'), {})
      const listed = await backend.list!()
      assert.deepEqual(
        listed.map((item) => item.name),
        ['OPENAI_KEY', 'a/x', 'a/y', 'b'],
      )
      for (const item of listed) assert.equal('value' in item, false)
      assert.deepEqual(
        (await backend.list!('a/')).map((item) => item.name),
        ['a/x', 'a/y'],
      )
      assert.deepEqual(await backend.list!('zzz'), [])

      // A new instance (another process, in effect) sees the same vault.
      const other = h.backend()
      assert.deepEqual(await other.get!(ref('a/x')), Buffer.from('3'))

      await other.delete!(ref('a/x'))
      await assert.rejects(backend.get!(ref('a/x')), isError(SecretNotFoundError, 'SECRET_NOT_FOUND', 6))
      await assert.rejects(backend.delete!(ref('a/x')), isError(SecretNotFoundError))
      assert.deepEqual(
        (await backend.list!()).map((item) => item.name),
        ['OPENAI_KEY', 'a/y', 'b'],
      )
      // Deleting and setting again starts a new history.
      assert.equal((await backend.set!(ref('a/x'), Buffer.from('4'), {})).version, 1)
    })

    it('resolves many references with one read, and fails on a missing one', async () => {
      const backend = h.backend()
      await backend.set!(ref('A'), Buffer.from('alpha'), {})
      await backend.set!(ref('B'), Buffer.from('beta'), {})
      const resolved = await backend.resolveMany!([ref('A'), ref('B'), ref('A')])
      assert.deepEqual(
        [...resolved].map(([key, value]) => [key, value.toString()]),
        [
          ['local://A', 'alpha'],
          ['local://B', 'beta'],
        ],
      )
      assert.equal((await backend.resolveMany!([])).size, 0)
      await assert.rejects(backend.resolveMany!([ref('A'), ref('MISSING')]), (error: unknown) => {
        assert.ok(error instanceof SecretNotFoundError)
        assert.match(error.message, /local:\/\/MISSING/)
        return true
      })
    })

    it('serves concurrent reads of a fresh process with one key (none wipes the key another uses)', async () => {
      const writer = h.backend()
      await writer.set!(ref('A'), Buffer.from('alpha'), {})
      await writer.set!(ref('B'), Buffer.from('beta'), {})
      // A new backend has no key cached: every read below starts unlocking at once.
      const reader = h.backend()
      const values = await Promise.all([
        reader.get!(ref('A')),
        reader.get!(ref('B')),
        reader.resolveMany!([ref('A'), ref('B')]),
      ])
      assert.equal(values[0].toString(), 'alpha')
      assert.equal(values[1].toString(), 'beta')
      assert.equal(values[2].get('local://B')?.toString(), 'beta')
    })

    it('handles names that are special to JavaScript objects', async () => {
      const backend = h.backend()
      for (const name of ['__proto__', 'constructor', 'hasOwnProperty'])
        await backend.set!(ref(name), Buffer.from(`v-${name}`), {})
      const other = h.backend()
      assert.deepEqual((await other.get!(ref('__proto__'))).toString(), 'v-__proto__')
      assert.deepEqual(
        (await other.list!()).map((item) => item.name),
        ['__proto__', 'constructor', 'hasOwnProperty'],
      )
      await assert.rejects(other.get!(ref('toString')), SecretNotFoundError)
    })

    it('refuses empty names and names with control characters', async () => {
      const backend = h.backend()
      await assert.rejects(
        backend.set!(ref(''), Buffer.from('x'), {}),
        isError(UsageError, 'INVALID_SECRET_NAME', 2),
      )
      await assert.rejects(
        backend.set!(ref('a\u001B[31m'), Buffer.from('x'), {}),
        isError(UsageError, 'INVALID_SECRET_NAME', 2),
      )
      await assert.rejects(stat(h.home), {code: 'ENOENT'})
    })

    it('reads nothing into existence: a missing vault is empty, and reads create no file', async () => {
      const backend = h.backend()
      assert.deepEqual(await backend.list!(), [])
      await assert.rejects(backend.get!(ref('X')), isError(SecretNotFoundError, undefined, 6))
      await assert.rejects(backend.resolveMany!([ref('X')]), SecretNotFoundError)
      await assert.rejects(backend.delete!(ref('X')), SecretNotFoundError)
      const status = await backend.status()
      assert.equal(status.reachable, true)
      assert.equal(status.signedIn, false)
      await assert.rejects(stat(h.home), {code: 'ENOENT'})
    })

    it('reports status: key source, path and secret count', async () => {
      const backend = h.backend()
      await backend.set!(ref('A'), Buffer.from('1'), {})
      await backend.set!(ref('B'), Buffer.from('2'), {})
      const status = await h.backend().status()
      assert.equal(status.reachable, true)
      assert.equal(status.signedIn, true)
      assert.deepEqual(status.details, {keySource: 'file', path: h.vaultPath, secrets: 2})
    })

    it('round-trips arbitrary bytes, including empty and invalid UTF-8 (property)', async () => {
      const writer = h.backend()
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({maxLength: 2048}),
            fc.constantFrom(
              new Uint8Array(0),
              Uint8Array.from({length: 256}, (_, i) => i),
              Uint8Array.of(0xff, 0xfe, 0x00, 0xc3),
            ),
          ),
          fc.constantFrom('P1', 'P2', 'with space', 'ünïcødé/☃'),
          async (bytes, name) => {
            const value = Buffer.from(bytes)
            await writer.set!(ref(name), value, {})
            // Read through a fresh instance so the value really went through the file.
            const reader = h.backend()
            assert.deepEqual(await reader.get!(ref(name)), value)
          },
        ),
        {numRuns: 60},
      )
    })

    it('never writes a value or its metadata in the clear (canary)', async () => {
      const canary = `CANARY-${randomBytes(8).toString('hex')}`
      const backend = h.backend()
      await backend.set!(ref('CANARY_SECRET'), Buffer.from(canary), {description: `${canary}-description`})
      await backend.set!(ref('OTHER'), Buffer.from('other'), {})
      const forms = [
        canary,
        Buffer.from(canary).toString('base64'),
        Buffer.from(canary).toString('hex'),
        'CANARY_SECRET',
      ]
      const files = await readdir(h.home)
      assert.deepEqual(files.sort(), ['vault.json', 'vault.key'])
      for (const file of files) {
        const bytes = await readFile(join(h.home, file))
        for (const form of forms) assert.equal(bytes.includes(form), false, `${file} contains ${form}`)
      }
    })
  })

  describe('key sources', () => {
    it('creates a key file on first use with a one-time notice', async () => {
      const backend = h.backend()
      await backend.set!(ref('A'), Buffer.from('1'), {})
      assert.equal(h.warnings.length, 1)
      assert.ok(h.warnings[0]?.includes(join(h.home, 'vault.key')))
      assert.match(h.warnings[0] ?? '', /back it up/i)
      await backend.set!(ref('B'), Buffer.from('2'), {})
      await h.backend().set!(ref('C'), Buffer.from('3'), {})
      assert.equal(h.warnings.length, 1, 'the notice is shown once')
      const header = JSON.parse(await readFile(h.vaultPath, 'utf8')) as {key: unknown}
      assert.deepEqual(header.key, {file: 'vault.key', source: 'file'})
    })

    it('refuses to open the vault with another key file, and never recreates a missing one', async () => {
      await h.backend().set!(ref('A'), Buffer.from('1'), {})
      const keyPath = join(h.home, 'vault.key')
      const before = await readFile(h.vaultPath)
      await writeFile(keyPath, `${randomBytes(32).toString('base64')}\n`)
      await assert.rejects(h.backend().get!(ref('A')), isError(AuthError, 'VAULT_WRONG_KEY', 4))
      await assert.rejects(
        h.backend().set!(ref('B'), Buffer.from('2'), {}),
        isError(AuthError, 'VAULT_WRONG_KEY', 4),
      )
      await unlink(keyPath)
      await assert.rejects(
        h.backend().set!(ref('B'), Buffer.from('2'), {}),
        isError(AuthError, 'KEY_FILE_MISSING', 4),
      )
      await assert.rejects(stat(keyPath), {code: 'ENOENT'})
      await writeFile(keyPath, 'not a key\n', {mode: 0o600})
      await assert.rejects(h.backend().get!(ref('A')), isError(ConfigError, 'KEY_FILE_INVALID', 3))
      assert.deepEqual(await readFile(h.vaultPath), before)
    })

    it('uses AGENTVAULT_PASSPHRASE first, and needs the right one to open', async () => {
      const env = {...NO_KEYCHAIN, AGENTVAULT_PASSPHRASE: 'correct horse battery staple'}
      const keychain = createMemoryKeychain()
      await h.backend(env, {keychain}).set!(ref('A'), Buffer.from('alpha'), {})
      assert.deepEqual(await readdir(h.home), ['vault.json'], 'no key file with a passphrase')
      assert.equal(keychain.entries.size, 0, 'passphrase wins over the keychain')
      assert.equal(h.warnings.length, 0)
      const header = JSON.parse(await readFile(h.vaultPath, 'utf8')) as {
        key: {kdf: {name: string}; source: string}
      }
      assert.equal(header.key.source, 'passphrase')
      assert.equal(header.key.kdf.name, 'scrypt')

      assert.deepEqual(await h.backend(env).get!(ref('A')), Buffer.from('alpha'))
      const before = await readFile(h.vaultPath)
      const wrong = h.backend({...NO_KEYCHAIN, AGENTVAULT_PASSPHRASE: 'Correct horse battery staple'})
      await assert.rejects(wrong.get!(ref('A')), isError(AuthError, 'PASSPHRASE_WRONG', 4))
      await assert.rejects(
        wrong.set!(ref('A'), Buffer.from('evil'), {}),
        isError(AuthError, 'PASSPHRASE_WRONG', 4),
      )
      await assert.rejects(h.backend(NO_KEYCHAIN).list!(), (error: unknown) => {
        assert.ok(error instanceof AuthError)
        assert.equal(error.code, 'PASSPHRASE_REQUIRED')
        assert.match(`${error.message} ${error.suggestion}`, /AGENTVAULT_PASSPHRASE/)
        return true
      })
      assert.deepEqual(await readFile(h.vaultPath), before)
      const status = await h.backend(NO_KEYCHAIN).status()
      assert.equal(status.signedIn, false)
      assert.equal(status.details?.keySource, 'passphrase')
    })

    it('keeps the vault key in the keychain when one is available, and goes straight to it later', async () => {
      const keychain = createMemoryKeychain()
      await h.backend({}, {keychain}).set!(ref('A'), Buffer.from('alpha'), {})
      assert.deepEqual(await readdir(h.home), ['vault.json'], 'no key file with a keychain')
      assert.equal(keychain.entries.size, 1)
      const [account] = [...keychain.entries.keys()]
      assert.match(account ?? '', /^vault-key:[\da-f]{32}$/)
      const header = JSON.parse(await readFile(h.vaultPath, 'utf8')) as {key: unknown}
      assert.deepEqual(header.key, {account, service: 'memory', source: 'keychain'})

      assert.deepEqual(await h.backend({}, {keychain}).get!(ref('A')), Buffer.from('alpha'))
      // The entry is gone (or the keyring is locked and looks empty): a clear AuthError.
      await assert.rejects(
        h.backend({}, {keychain: createMemoryKeychain()}).get!(ref('A')),
        isError(AuthError, 'KEYCHAIN_KEY_MISSING', 4),
      )
      // No keychain at all: the vault's key is out of reach.
      await assert.rejects(
        h.backend(NO_KEYCHAIN).get!(ref('A')),
        isError(BackendUnavailableError, 'KEYCHAIN_UNAVAILABLE', 5),
      )
      await assert.rejects(
        h.backend({}, {keychain: null}).get!(ref('A')),
        isError(BackendUnavailableError, 'KEYCHAIN_UNAVAILABLE', 5),
      )
      // A key from another vault in the keychain entry is the wrong key.
      keychain.entries.set(account ?? '', randomBytes(32).toString('base64'))
      await assert.rejects(h.backend({}, {keychain}).get!(ref('A')), isError(AuthError, 'VAULT_WRONG_KEY', 4))
    })

    it('login creates a vault with an explicit key source, once', async () => {
      const login = (env: NodeJS.ProcessEnv, options: LocalBackendOptions, keySource: string) =>
        h.backend(env, options).login!({keySource}).then((result) => result.details)
      await assert.rejects(
        login(NO_KEYCHAIN, {}, 'keychain'),
        isError(BackendUnavailableError, 'KEYCHAIN_UNAVAILABLE', 5),
      )
      await assert.rejects(login(NO_KEYCHAIN, {keychain: null}, 'keychain'), BackendUnavailableError)
      await assert.rejects(login(NO_KEYCHAIN, {}, 'passphrase'), isError(AuthError, 'PASSPHRASE_REQUIRED', 4))
      await assert.rejects(login(NO_KEYCHAIN, {}, 'vault'), isError(UsageError, 'BAD_KEY_SOURCE', 2))
      await assert.rejects(stat(h.vaultPath), {code: 'ENOENT'})

      const keychain = createMemoryKeychain()
      // Explicit "file" even though a keychain and nothing else would have been chosen.
      assert.deepEqual(await login({}, {keychain}, 'file'), {
        created: true,
        keySource: 'file',
        path: h.vaultPath,
      })
      assert.equal(keychain.entries.size, 0)
      assert.deepEqual(await h.backend().list!(), [])
      const before = await readFile(h.vaultPath)
      const again = await login({...NO_KEYCHAIN, AGENTVAULT_PASSPHRASE: 'x'}, {}, 'passphrase')
      assert.deepEqual(again, {created: false, keySource: 'file', path: h.vaultPath})
      assert.deepEqual(await readFile(h.vaultPath), before)
    })

    it('login with a keychain stores the key there', async () => {
      const keychain = createMemoryKeychain()
      const result = await h.backend({}, {keychain}).login!({keySource: 'keychain'})
      assert.equal(result.details?.keySource, 'keychain')
      assert.equal(keychain.entries.size, 1)
      await h.backend({}, {keychain}).set!(ref('A'), Buffer.from('1'), {})
      assert.equal((await h.backend({}, {keychain}).status()).details?.keySource, 'keychain')
    })
  })

  describe('files and modes', () => {
    it('creates the home 0700 and its files 0600, re-asserts 0600 on write, and leaves no temp or lock files', async () => {
      const backend = h.backend()
      await backend.set!(ref('A'), Buffer.from('1'), {})
      assert.equal(mode(await stat(h.home)), 0o700)
      assert.equal(mode(await stat(h.vaultPath)), 0o600)
      assert.equal(mode(await stat(join(h.home, 'vault.key'))), 0o600)
      await chmod(h.vaultPath, 0o644)
      await chmod(join(h.home, 'vault.key'), 0o640)
      await backend.set!(ref('B'), Buffer.from('2'), {})
      assert.equal(mode(await stat(h.vaultPath)), 0o600)
      assert.equal(mode(await stat(join(h.home, 'vault.key'))), 0o600)
      assert.deepEqual((await readdir(h.home)).sort(), ['vault.json', 'vault.key'])
    })
  })

  describe('damaged and foreign files', () => {
    let original: Buffer

    beforeEach(async () => {
      const backend = h.backend()
      await backend.set!(ref('A'), Buffer.from('alpha'), {description: 'first'})
      await backend.set!(ref('B'), Buffer.from('beta'), {})
      original = await readFile(h.vaultPath)
    })

    /** Every operation stops with a ConfigError `code` (exit 3) and the file keeps `bytes` exactly. */
    async function expectRefused(bytes: Buffer, code: string): Promise<void> {
      await writeFile(h.vaultPath, bytes)
      const backend = h.backend()
      const check = (error: unknown) => {
        assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`)
        assert.equal(error.exitCode, 3)
        assert.equal(error.code, code)
        assert.ok(error.message.includes(h.vaultPath), 'the message names the file')
        assert.ok(error.suggestion)
        return true
      }

      await assert.rejects(backend.list!(), check)
      await assert.rejects(backend.get!(ref('A')), check)
      await assert.rejects(backend.set!(ref('C'), Buffer.from('gamma'), {}), check)
      await assert.rejects(backend.delete!(ref('A')), check)
      // login reads only the header (it never needs the key): a sealed body that was altered behind
      // a valid header is found by the operations above, not by it.
      if (code === 'VAULT_TAMPERED') assert.equal((await backend.login!({})).details?.created, false)
      else await assert.rejects(backend.login!({}), check)
      assert.equal((await backend.status()).signedIn, false)
      assert.deepEqual(await readFile(h.vaultPath), bytes, 'the file is untouched')
      assert.deepEqual((await readdir(h.home)).sort(), ['vault.json', 'vault.key'])
    }

    it('detects truncation at any length (property)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({max: original.length - 1, min: 0}), async (length) => {
          await expectRefused(original.subarray(0, length), 'VAULT_CORRUPT')
        }),
        {examples: [[0], [1], [original.length - 1], [original.length - 2]], numRuns: 40},
      )
    })

    it('detects a flipped bit at any offset (property)', async () => {
      const checksumAt = original.lastIndexOf('sha256:') + 'sha256:'.length
      const boxAt = original.indexOf('"box"') + 10
      await fc.assert(
        fc.asyncProperty(
          fc.integer({max: original.length - 1, min: 0}),
          fc.integer({max: 7, min: 0}),
          async (offset, bit) => {
            const flipped = Buffer.from(original)
            flipped[offset]! ^= 1 << bit
            await expectRefused(flipped, 'VAULT_CORRUPT')
          },
        ),
        {
          examples: [
            [0, 0],
            [original.length - 1, 0],
            [Math.floor(original.length / 2), 3],
            [checksumAt, 0],
            [checksumAt + 63, 5],
            [boxAt, 1],
            [original.indexOf('agentvault-vault'), 0],
          ],
          numRuns: 60,
        },
      )
    })

    it('still opens the original after all that', async () => {
      await writeFile(h.vaultPath, original)
      assert.deepEqual(await h.backend().get!(ref('B')), Buffer.from('beta'))
    })

    it('detects an altered body even when the checksum was recomputed', async () => {
      const envelope = JSON.parse(original.toString('utf8')) as Record<string, unknown> & {
        body: {box: string; nonce: string}
      }
      const box = Buffer.from(envelope.body.box, 'base64')
      box[box.length - 1]! ^= 0x01 // eslint-disable-line unicorn/prefer-at -- .at() cannot be assigned
      delete envelope.checksum
      await expectRefused(
        encodeEnvelope({...envelope, body: {...envelope.body, box: box.toString('base64')}}),
        'VAULT_TAMPERED',
      )
    })

    it('detects a body moved in from another vault sealed with the same key', async () => {
      // A second home sharing this home's key file: its body opens with the same key.
      const otherHome = join(root, 'other')
      await mkdir(otherHome, {mode: 0o700})
      await copyFile(join(h.home, 'vault.key'), join(otherHome, 'vault.key'))
      const other = createBackend({...h.context(), home: otherHome})
      await other.set!(ref('A'), Buffer.from('from the other vault'), {})
      await other.close()
      const ours = JSON.parse(original.toString('utf8')) as Record<string, unknown>
      const theirs = JSON.parse(await readFile(join(otherHome, 'vault.json'), 'utf8')) as Record<
        string,
        unknown
      >
      delete ours.checksum
      await expectRefused(encodeEnvelope({...ours, body: theirs.body}), 'VAULT_TAMPERED')
    })

    it('refuses foreign files: other JSON, not JSON, a newer format version', async () => {
      await expectRefused(Buffer.from('{"hello": "world"}\n'), 'VAULT_FOREIGN')
      await expectRefused(Buffer.from('hello, world\n'), 'VAULT_FOREIGN')
      await expectRefused(Buffer.from('[1, 2, 3]'), 'VAULT_FOREIGN')
      const envelope = JSON.parse(original.toString('utf8')) as Record<string, unknown>
      delete envelope.checksum
      await expectRefused(encodeEnvelope({...envelope, format: 'agentvault-credentials'}), 'VAULT_FOREIGN')
      await expectRefused(encodeEnvelope({...envelope, version: 2}), 'VAULT_FOREIGN')
      await expectRefused(encodeEnvelope({...envelope, version: 0}), 'VAULT_CORRUPT')
      await expectRefused(
        encodeEnvelope({...envelope, key: {file: '../../etc/passwd', source: 'file'}}),
        'VAULT_CORRUPT',
      )
    })

    it('reports a future version with an upgrade hint', async () => {
      const envelope = JSON.parse(original.toString('utf8')) as Record<string, unknown>
      delete envelope.checksum
      await writeFile(h.vaultPath, encodeEnvelope({...envelope, version: 2}))
      await assert.rejects(
        h.backend().list!(),
        (error: unknown) => error instanceof ConfigError && /upgrade/i.test(error.suggestion ?? ''),
      )
    })
  })

  describe('concurrency', () => {
    it('loses nothing when 20 writer processes start together on a fresh home', async function () {
      this.timeout(180_000)
      const script = join(root, 'writer.mts')
      await writeFile(
        script,
        `import {createBackend} from ${JSON.stringify(pathToFileURL(join(ROOT, 'src/backends/local/index.ts')).href)}
import {createInterface} from 'node:readline'
const name = process.argv[2]
const backend = createBackend({
  env: process.env,
  home: process.env.AGENTVAULT_HOME,
  interactive: false,
  profile: {implicit: true, kind: 'local', name: 'local', settings: {}},
  warn: (message) => process.stderr.write('notice: ' + message + '\\n'),
})
const lines = createInterface({input: process.stdin})
process.stdout.write('ready\\n')
for await (const line of lines) {
  if (line !== 'go') continue
  await backend.set({canonical: 'local://' + name, kind: 'local', path: name, scheme: 'local'}, Buffer.from('value-' + name), {})
  await backend.close()
  process.stdout.write('done\\n')
  lines.close()
}
`,
      )

      const env: NodeJS.ProcessEnv = {...process.env, ...NO_KEYCHAIN, AGENTVAULT_HOME: h.home}
      delete env.AGENTVAULT_PASSPHRASE
      const names = Array.from({length: 20}, (_, i) => `WRITER_${String(i).padStart(2, '0')}`)
      const children = names.map((name) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, name], {
          cwd: ROOT,
          env,
          stdio: ['pipe', 'pipe', 'pipe'],
        })
        let stderr = ''
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString()
        })
        const lines = createInterface({input: child.stdout})
        const ready = new Promise<void>((resolve, reject) => {
          lines.on('line', (line) => line === 'ready' && resolve())
          child.on('error', reject)
          child.on('exit', (code) =>
            reject(new Error(`writer ${name} exited (${code}) before it was ready: ${stderr}`)),
          )
        })
        const exited = new Promise<{code: null | number; stderr: string}>((resolve) => {
          child.on('close', (code) => resolve({code, stderr}))
        })
        return {child, exited, name, ready}
      })

      try {
        await Promise.all(children.map(({ready}) => ready))
        // Everyone is loaded and waiting: release them at once.
        for (const {child} of children) child.stdin.end('go\n')
        const results = await Promise.all(children.map(({exited}) => exited))
        for (const [index, result] of results.entries())
          assert.equal(result.code, 0, `${names[index]}: ${result.stderr}`)
        const notices = results.filter((result) =>
          result.stderr.includes('notice: Created the agentvault key file'),
        )
        assert.equal(notices.length, 1, 'exactly one writer created the key file')
      } finally {
        for (const {child} of children) if (child.exitCode === null) child.kill()
      }

      const backend = h.backend()
      const listed = await backend.list!()
      assert.deepEqual(
        listed.map((item) => item.name),
        names,
      )
      const values = await backend.resolveMany!(names.map((name) => ref(name)))
      for (const name of names) assert.equal(values.get(`local://${name}`)?.toString(), `value-${name}`)
      assert.deepEqual((await readdir(h.home)).sort(), ['vault.json', 'vault.key'])
    })
  })
})
