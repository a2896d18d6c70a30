/**
 * The local backend's batch and metadata capabilities (issue 16 §3): `setMany` (secrets import) in
 * one locked write, `exportAll`, `updateMetadata` (secrets edit) and `rename`.
 */
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {Backend} from '../../../src/core/backend.js'
import type {SecretReference} from '../../../src/core/references.js'

import {AgentVaultError} from '../../../src/core/errors.js'
import {LocalBackends} from '../../helpers/local-backends.js'

function ref(name: string): SecretReference {
  return {canonical: `local://${name}`, kind: 'local', path: name, scheme: 'local'}
}

const item = (name: string, value: string) => ({reference: ref(name), value: Buffer.from(value)})

describe('backends/local: import, export, edit, rename', () => {
  const locals = new LocalBackends('agentvault-local-wf-')
  const backend = (): Backend => locals.backend()

  beforeEach(() => locals.setUp())

  afterEach(() => locals.tearDown())

  it('setMany writes every value at once, skips existing names unless overwrite, and counts versions', async () => {
    const b = backend()
    await b.set!(ref('OLD'), Buffer.from('old'), {description: 'kept'})
    const first = await b.setMany!([item('A', 'a'), item('OLD', 'new'), item('B', 'b')], {})
    assert.deepEqual(first, {created: ['local://A', 'local://B'], replaced: [], skipped: ['local://OLD']})
    assert.equal((await b.get!(ref('OLD'))).toString(), 'old')
    const second = await b.setMany!([item('OLD', 'new')], {overwrite: true})
    assert.deepEqual(second, {created: [], replaced: ['local://OLD'], skipped: []})
    const old = await b.describe!(ref('OLD'))
    assert.equal(old.version, 2)
    assert.equal(old.description, 'kept')
    assert.equal((await b.get!(ref('OLD'))).toString(), 'new')
  })

  it('setMany is all or nothing: one invalid name writes nothing (not even a new vault)', async () => {
    const b = backend()
    await assert.rejects(
      b.setMany!([item('GOOD', 'g'), item('bad\u001B[31m', 'x')], {}),
      (error: AgentVaultError) => error.code === 'INVALID_SECRET_NAME',
    )
    await assert.rejects(readFile(join(locals.home, 'vault.json')), {code: 'ENOENT'})
  })

  it('concurrent setMany and set calls from separate backends lose nothing (one locked update each)', async () => {
    const writers = Array.from({length: 6}, (_, index) =>
      index % 2 === 0
        ? backend().setMany!([item(`M${index}a`, 'x'), item(`M${index}b`, 'y')], {})
        : backend().set!(ref(`S${index}`), Buffer.from('z'), {}),
    )
    await Promise.all(writers)
    const names = (await backend().list!()).map(({name}) => name)
    assert.deepEqual(names, ['M0a', 'M0b', 'M2a', 'M2b', 'M4a', 'M4b', 'S1', 'S3', 'S5'])
  })

  it('exportAll returns every value under a prefix, sorted; an empty locals.home exports nothing', async () => {
    const b = backend()
    assert.deepEqual(await b.exportAll!(), [])
    await b.setMany!([item('APP_B', 'b'), item('APP_A', 'a'), item('OTHER', 'o')], {})
    const exported = await b.exportAll!('APP_')
    assert.deepEqual(
      exported.map(({name, value}) => [name, value.toString()]),
      [
        ['APP_A', 'a'],
        ['APP_B', 'b'],
      ],
    )
  })

  it('updateMetadata changes only what is given and keeps value and version', async () => {
    const b = backend()
    await b.set!(ref('K'), Buffer.from('v'), {description: 'd', tags: ['t']})
    const edited = await b.updateMetadata!(ref('K'), {allowedDomains: ['api.example.com']})
    assert.equal(edited.version, 1)
    assert.equal(edited.description, 'd')
    assert.deepEqual(edited.tags, ['t'])
    assert.deepEqual(edited.allowedDomains, ['api.example.com'])
    assert.equal((await b.get!(ref('K'))).toString(), 'v')
    await assert.rejects(
      b.updateMetadata!(ref('NOPE'), {description: 'x'}),
      (error: AgentVaultError) => error.exitCode === 6,
    )
  })

  it('rename moves the entry; refuses an existing target unless overwrite; renaming to itself is a no-op', async () => {
    const b = backend()
    await b.set!(ref('A'), Buffer.from('a1'), {})
    await b.set!(ref('A'), Buffer.from('a2'), {tags: ['x']})
    await b.set!(ref('B'), Buffer.from('b'), {})
    await assert.rejects(
      b.rename!(ref('A'), ref('B'), {}),
      (error: AgentVaultError) => error.code === 'SECRET_EXISTS',
    )
    assert.equal((await b.get!(ref('B'))).toString(), 'b')
    assert.equal((await b.rename!(ref('A'), ref('A'), {})).version, 2)
    const moved = await b.rename!(ref('A'), ref('C'), {})
    assert.equal(moved.version, 2)
    assert.deepEqual(moved.tags, ['x'])
    assert.equal((await b.get!(ref('C'))).toString(), 'a2')
    await assert.rejects(b.get!(ref('A')), (error: AgentVaultError) => error.exitCode === 6)
    await b.rename!(ref('C'), ref('B'), {overwrite: true})
    assert.deepEqual(
      (await b.list!()).map(({name}) => name),
      ['B'],
    )
    await assert.rejects(
      b.rename!(ref('GONE'), ref('X'), {}),
      (error: AgentVaultError) => error.exitCode === 6,
    )
  })
})
