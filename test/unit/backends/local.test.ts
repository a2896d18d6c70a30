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
import {createRequire, syncBuiltinESMExports} from 'node:module'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath, pathToFileURL} from 'node:url'

import type {Backend, BackendContext} from '../../../src/core/backend.js'
import type {SecretReference} from '../../../src/core/references.js'

import {createBackend, type LocalBackendOptions} from '../../../src/backends/local/index.js'
import {VaultStore} from '../../../src/backends/local/vault-store.js'
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
          versionHistory: true,
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

    it('a long-lived reader (proxy) sees every write of another process at its next read', async () => {
      const writer = h.backend()
      await writer.set!(ref('A'), Buffer.from('alpha'), {})
      const reader = h.backend()
      // The reader has the file, A's slot and A's metadata in hand.
      assert.equal((await reader.get!(ref('A'))).toString(), 'alpha')
      assert.equal((await reader.describe!(ref('A'))).allowedDomains, undefined)
      await assert.rejects(reader.describe!(ref('B')), isError(SecretNotFoundError))

      await writer.set!(ref('A'), Buffer.from('alpha-2'), {})
      assert.equal((await reader.get!(ref('A'))).toString(), 'alpha-2')
      // Same value and version, new metadata only.
      await writer.updateMetadata!(ref('A'), {allowedDomains: ['api.example.com']})
      assert.deepEqual((await reader.describe!(ref('A'))).allowedDomains, ['api.example.com'])
      assert.deepEqual(
        (await reader.list!()).map((item) => [item.name, item.allowedDomains]),
        [['A', ['api.example.com']]],
      )
      await writer.set!(ref('B'), Buffer.from('beta'), {})
      assert.equal((await reader.get!(ref('B'))).toString(), 'beta')
      assert.equal((await reader.describe!(ref('B'))).version, 1)
      await writer.delete!(ref('A'))
      await assert.rejects(reader.get!(ref('A')), isError(SecretNotFoundError))
      await assert.rejects(reader.describe!(ref('A')), isError(SecretNotFoundError))
      // A kept metadata object is not the caller's to change.
      const described = await reader.describe!(ref('B'))
      described.allowedDomains = ['evil.example']
      assert.equal((await reader.describe!(ref('B'))).allowedDomains, undefined)
      // The vault removed behind its back: nothing left to read, nothing created.
      await unlink(h.vaultPath)
      await assert.rejects(reader.get!(ref('B')), isError(SecretNotFoundError))
      assert.deepEqual(await reader.list!(), [])
    })

    it('a long-lived reader checks the file once per turn of the event loop, and again in the next', async () => {
      const writer = h.backend()
      await writer.set!(ref('A'), Buffer.from('alpha'), {})
      const reader = h.backend()
      assert.equal((await reader.get!(ref('A'))).toString(), 'alpha')
      await new Promise((resolve) => {
        setImmediate(resolve)
      })
      const fs = createRequire(import.meta.url)('node:fs') as {lstatSync: (...args: unknown[]) => unknown}
      const original = fs.lstatSync
      let checks = 0
      fs.lstatSync = (...args: unknown[]) => {
        if (String(args[0]) === h.vaultPath) checks++
        return original(...args)
      }

      syncBuiltinESMExports()
      try {
        // Two requests' metadata and value reads in one turn: the file is looked at once.
        await reader.describe!(ref('A'))
        assert.equal((await reader.get!(ref('A'))).toString(), 'alpha')
        await reader.describe!(ref('A'))
        assert.equal((await reader.get!(ref('A'))).toString(), 'alpha')
        assert.equal(checks, 1)
        // The next turn looks again, and so sees what was written meanwhile.
        await writer.set!(ref('A'), Buffer.from('alpha-2'), {})
        const before = checks
        assert.equal((await reader.get!(ref('A'))).toString(), 'alpha-2')
        assert.equal(checks, before + 1)
        await writer.updateMetadata!(ref('A'), {allowedDomains: ['api.example.com']})
        assert.deepEqual((await reader.describe!(ref('A'))).allowedDomains, ['api.example.com'])
      } finally {
        fs.lstatSync = original
        syncBuiltinESMExports()
      }
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
      // Counted from the authenticated entry table: kept versions and deleted names do not count.
      await backend.set!(ref('A'), Buffer.from('3'), {})
      await backend.set!(ref('C'), Buffer.from('4'), {})
      await backend.delete!(ref('B'))
      assert.equal((await h.backend().status()).details?.secrets, 2)
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

  describe('per-secret sealing and kept versions', () => {
    const nacl = createRequire(import.meta.url)('tweetnacl') as typeof import('tweetnacl')

    /** Count the boxes opened and sealed (and the bytes opened) while `action` runs. */
    async function counting<T>(
      action: () => Promise<T>,
    ): Promise<{opened: number; openedBytes: number; result: T; sealed: number}> {
      const realSeal = nacl.secretbox
      const realOpen = realSeal.open
      const counts = {opened: 0, openedBytes: 0, sealed: 0}
      const wrapped = Object.assign(
        (message: Uint8Array, nonce: Uint8Array, key: Uint8Array) => {
          counts.sealed++
          return realSeal(message, nonce, key)
        },
        realSeal,
        {
          open(box: Uint8Array, nonce: Uint8Array, key: Uint8Array) {
            counts.opened++
            counts.openedBytes += box.length
            return realOpen(box, nonce, key)
          },
        },
      )
      nacl.secretbox = wrapped
      try {
        const result = await action()
        return {...counts, result}
      } finally {
        nacl.secretbox = realSeal
      }
    }

    // eslint-disable-next-line unicorn/consistent-function-scoping -- uses this suite's harness `h`
    const fill = async (count: number): Promise<void> => {
      const backend = h.backend()
      for (let index = 0; index < count; index++)
        await backend.set!(ref(`S${index}`), Buffer.from(`value-${index}-${'x'.repeat(40)}`), {
          description: `d${index}`,
        })
      await backend.close()
    }

    it('reading one reference in a 200-secret vault opens that secret only', async () => {
      await fill(200)
      const {size} = await stat(h.vaultPath)
      const {opened, openedBytes, result} = await counting(() => h.backend().get!(ref('S123')))
      assert.equal(result.toString(), `value-123-${'x'.repeat(40)}`)
      assert.equal(opened, 1, 'one box opened')
      assert.ok(openedBytes < 400, `${openedBytes} bytes opened of a ${size}-byte vault`)
      const many = await counting(() => h.backend().resolveMany!([ref('S1'), ref('S2')]))
      assert.equal(many.opened, 2)
    })

    it('a write re-seals only the entry it changes; the others stay byte-identical', async () => {
      await fill(30)
      type File = {entries: Record<string, unknown>}
      const before = JSON.parse(await readFile(h.vaultPath, 'utf8')) as File
      const {sealed} = await counting(() => h.backend().set!(ref('S7'), Buffer.from('new'), {}))
      assert.equal(sealed, 2, 'the metadata and the value of S7')
      const after = JSON.parse(await readFile(h.vaultPath, 'utf8')) as File
      const changed = Object.keys(after.entries).filter(
        (slot) => JSON.stringify(after.entries[slot]) !== JSON.stringify(before.entries[slot]),
      )
      assert.equal(changed.length, 1)
      assert.deepEqual(Object.keys(after.entries).sort(), Object.keys(before.entries).sort())
    })

    it('update (the whole-map API) re-seals only what changed: metadata edits and renames keep values and history', async () => {
      const backend = h.backend()
      for (const value of ['one', 'two']) await backend.set!(ref('OLD'), Buffer.from(value), {})
      await backend.set!(ref('OTHER'), Buffer.from('other'), {})
      const store = new VaultStore({env: NO_KEYCHAIN, home: h.home, keychain: null, warn() {}})
      type File = {entries: Record<string, {value: unknown}>}
      const before = JSON.parse(await readFile(h.vaultPath, 'utf8')) as File
      // A metadata-only edit: one entry's metadata box changes, its value box does not.
      const {sealed} = await counting(() =>
        store.update(
          (entries) => {
            const entry = entries.get('OLD')!
            entries.set('OLD', {...entry, description: 'edited'})
          },
          {createIfMissing: false},
        ),
      )
      assert.equal(sealed, 1, 'only the metadata box')
      const after = JSON.parse(await readFile(h.vaultPath, 'utf8')) as File
      assert.deepEqual(
        Object.values(after.entries).map((record) => record.value),
        Object.values(before.entries).map((record) => record.value),
      )
      assert.equal((await backend.describe!(ref('OLD'))).description, 'edited')
      // A rename: the entry and its kept versions move to the new name.
      await store.update(
        (entries) => {
          const entry = entries.get('OLD')!
          entries.delete('OLD')
          entries.set('NEW', {...entry})
        },
        {createIfMissing: false},
      )
      store.close()
      const reopened = h.backend()
      assert.deepEqual(await reopened.get!(ref('NEW')), Buffer.from('two'))
      const v1 = {...ref('NEW'), canonical: 'local://NEW?version=1', version: 1}
      assert.deepEqual(await reopened.get!(v1), Buffer.from('one'))
      await assert.rejects(reopened.get!(ref('OLD')), isError(SecretNotFoundError))
      assert.deepEqual(await reopened.get!(ref('OTHER')), Buffer.from('other'))
    })

    it('keeps previous values: versions, ?version=N, rollback', async () => {
      const backend = h.backend()
      for (const value of ['one', 'two', 'three']) await backend.set!(ref('K'), Buffer.from(value), {})
      const versions = await backend.versions!(ref('K'))
      assert.equal(versions.current_version, 3)
      assert.equal(versions.oldest_version, 1)
      assert.deepEqual(
        versions.versions.map((v) => v.version),
        [1, 2, 3],
      )
      const at = (version: number): SecretReference => ({
        ...ref('K'),
        canonical: `local://K?version=${version}`,
        version,
      })
      assert.deepEqual(await backend.get!(at(1)), Buffer.from('one'))
      assert.deepEqual(await backend.get!(at(3)), Buffer.from('three'))
      await assert.rejects(backend.get!(at(4)), isError(SecretNotFoundError))
      const many = await backend.resolveMany!([at(2), ref('K')])
      assert.deepEqual(many.get('local://K?version=2'), Buffer.from('two'))
      assert.deepEqual(many.get('local://K'), Buffer.from('three'))
      // Writes never take ?version: it would be ambiguous.
      await assert.rejects(
        backend.set!(at(1), Buffer.from('x'), {}),
        isError(UsageError, 'VERSION_READ_ONLY', 2),
      )
      await assert.rejects(backend.delete!(at(1)), isError(UsageError, 'VERSION_READ_ONLY', 2))

      const rolled = await backend.rollback!(ref('K'), 1)
      assert.equal(rolled.version, 4)
      assert.deepEqual(await backend.get!(ref('K')), Buffer.from('one'))
      assert.deepEqual(await backend.get!(at(3)), Buffer.from('three'), 'the replaced value is kept')
      await assert.rejects(backend.rollback!(ref('K'), 4), isError(UsageError, 'VERSION_NOT_KEPT', 2))
      // A version that is not kept is not found (product.md §9: exit 6), as reading it is.
      await assert.rejects(backend.rollback!(ref('K'), 9), isError(AgentVaultError, 'VERSION_NOT_KEPT', 6))
      await assert.rejects(backend.rollback!(ref('NOPE'), 1), isError(SecretNotFoundError))
      assert.equal((await backend.describe!(ref('K'))).version, 4)
    })

    it('keeps at most keepVersions previous values (default 10)', async () => {
      const backend = h.backend()
      for (let index = 1; index <= 13; index++) await backend.set!(ref('K'), Buffer.from(`v${index}`), {})
      const kept = async (b: Backend) => (await b.versions!(ref('K'))).versions.map((v) => v.version)
      assert.deepEqual(await kept(backend), [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])
      const context = h.context()
      const two = createBackend({...context, profile: {...context.profile, settings: {keepVersions: 2}}})
      open.push(two)
      await two.set!(ref('K'), Buffer.from('v14'), {})
      assert.deepEqual(await kept(two), [12, 13, 14])
      const none = createBackend({...context, profile: {...context.profile, settings: {keepVersions: 0}}})
      open.push(none)
      await none.set!(ref('K'), Buffer.from('v15'), {})
      assert.deepEqual(await kept(none), [15])
      const file = JSON.parse(await readFile(h.vaultPath, 'utf8')) as {entries: Record<string, {history: []}>}
      assert.deepEqual(
        Object.values(file.entries).map((record) => record.history.length),
        [0],
      )
    })

    it('opens a vault written in format version 1 and rewrites it as version 2 on the next write only', async () => {
      const fixture = join(ROOT, 'test/fixtures/vault-v1')
      await mkdir(h.home, {mode: 0o700})
      for (const file of ['vault.json', 'vault.key']) {
        await copyFile(join(fixture, file), join(h.home, file))
        await chmod(join(h.home, file), 0o600)
      }

      const bytes = await readFile(h.vaultPath)
      assert.equal((JSON.parse(bytes.toString('utf8')) as {version: number}).version, 1)
      const backend = h.backend()
      assert.equal((await backend.status()).details?.secrets, (await backend.list!()).length)
      assert.deepEqual(await backend.get!(ref('FIXTURE_CANARY')), Buffer.from('v1-fixture-canary-7f3a9c1e'))
      const listed = await backend.list!()
      assert.deepEqual(
        listed.map(({allowedDomains, description, name, tags, version}) => ({
          allowedDomains,
          description,
          name,
          tags,
          version,
        })),
        [
          {
            allowedDomains: undefined,
            description: 'test data: a dummy canary',
            name: 'FIXTURE_CANARY',
            tags: ['fixture'],
            version: 2,
          },
          {
            allowedDomains: ['api.example.com'],
            description: undefined,
            name: 'OTHER',
            tags: undefined,
            version: 1,
          },
        ],
      )
      assert.equal(
        (await backend.versions!(ref('FIXTURE_CANARY'))).versions.length,
        1,
        'version 1 kept no history',
      )
      assert.deepEqual(await readFile(h.vaultPath), bytes, 'reads never rewrite the vault')

      await backend.set!(ref('NEW'), Buffer.from('new-value'), {})
      const rewritten = await readFile(h.vaultPath, 'utf8')
      assert.equal((JSON.parse(rewritten) as {version: number}).version, 2)
      for (const form of ['v1-fixture-canary-7f3a9c1e', 'FIXTURE_CANARY', 'dummy canary'])
        assert.equal(rewritten.includes(form), false, `${form} is not in the clear`)
      const reopened = h.backend()
      assert.deepEqual(await reopened.get!(ref('FIXTURE_CANARY')), Buffer.from('v1-fixture-canary-7f3a9c1e'))
      assert.deepEqual(await reopened.get!(ref('OTHER')), Buffer.from('other-dummy-value'))
      assert.deepEqual(await reopened.describe!(ref('OTHER')), listed[1])
      await reopened.set!(ref('FIXTURE_CANARY'), Buffer.from('after'), {})
      const canaryV2 = {...ref('FIXTURE_CANARY'), canonical: 'local://FIXTURE_CANARY?version=2', version: 2}
      assert.deepEqual(await reopened.get!(canaryV2), Buffer.from('v1-fixture-canary-7f3a9c1e'))
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
      await backend.set!(ref('A'), Buffer.from('alpha-1'), {description: 'first'})
      await backend.set!(ref('A'), Buffer.from('alpha'), {})
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

    it('detects an altered, removed or replayed entry even when the checksum was recomputed', async () => {
      type Envelope = Record<string, unknown> & {entries: Record<string, Record<string, {box: string}>>}
      const fresh = (): Envelope => {
        const envelope = JSON.parse(original.toString('utf8')) as Envelope
        delete envelope.checksum
        return envelope
      }

      for (const part of ['meta', 'value'] as const) {
        const envelope = fresh()
        for (const record of Object.values(envelope.entries)) {
          const box = Buffer.from(record[part]!.box, 'base64')
          box[box.length - 1]! ^= 0x01 // eslint-disable-line unicorn/prefer-at -- .at() cannot be assigned
          record[part]!.box = box.toString('base64')
        }

        await expectRefused(encodeEnvelope(envelope), 'VAULT_TAMPERED')
      }

      const removed = fresh()
      const slots = Object.keys(removed.entries)
      assert.equal(slots.length, 2)
      delete removed.entries[slots[0]!]
      await expectRefused(encodeEnvelope(removed), 'VAULT_TAMPERED')

      // A's version 1, kept as history, put back in place of its current value.
      const replayed = fresh()
      const withHistory = Object.values(replayed.entries).find(
        (record) => (record.history as unknown as unknown[]).length > 0,
      )
      assert.ok(withHistory, 'A keeps its first value')
      const [old] = withHistory.history as unknown as Array<{box: string; nonce: string; version: number}>
      withHistory.value = {box: old!.box, nonce: old!.nonce} as never
      await expectRefused(encodeEnvelope(replayed), 'VAULT_TAMPERED')
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
      // The whole entry table with its MAC, and one entry of the same name (same key, same slot).
      await expectRefused(
        encodeEnvelope({...ours, entries: theirs.entries, mac: theirs.mac}),
        'VAULT_TAMPERED',
      )
      const [slot, record] = Object.entries(theirs.entries as Record<string, unknown>)[0]!
      assert.ok(slot in (ours.entries as Record<string, unknown>), 'both vaults hold A in the same slot')
      await expectRefused(
        encodeEnvelope({...ours, entries: {...(ours.entries as Record<string, unknown>), [slot]: record}}),
        'VAULT_TAMPERED',
      )
    })

    it('refuses foreign files: other JSON, not JSON, a newer format version', async () => {
      await expectRefused(Buffer.from('{"hello": "world"}\n'), 'VAULT_FOREIGN')
      await expectRefused(Buffer.from('hello, world\n'), 'VAULT_FOREIGN')
      await expectRefused(Buffer.from('[1, 2, 3]'), 'VAULT_FOREIGN')
      const envelope = JSON.parse(original.toString('utf8')) as Record<string, unknown>
      delete envelope.checksum
      await expectRefused(encodeEnvelope({...envelope, format: 'agentvault-credentials'}), 'VAULT_FOREIGN')
      await expectRefused(encodeEnvelope({...envelope, version: 3}), 'VAULT_FOREIGN')
      await expectRefused(encodeEnvelope({...envelope, version: 0}), 'VAULT_CORRUPT')
      await expectRefused(encodeEnvelope({...envelope, version: 1}), 'VAULT_CORRUPT')
      await expectRefused(
        encodeEnvelope({...envelope, key: {file: '../../etc/passwd', source: 'file'}}),
        'VAULT_CORRUPT',
      )
    })

    it('reports a future version with an upgrade hint', async () => {
      const envelope = JSON.parse(original.toString('utf8')) as Record<string, unknown>
      delete envelope.checksum
      await writeFile(h.vaultPath, encodeEnvelope({...envelope, version: 3}))
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
