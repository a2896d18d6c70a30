/**
 * openbao profile settings (protocols/openbao.md §4): BAO_* over VAULT_* (a defined but empty
 * BAO_X still hides VAULT_X), the profile's address winning over env, TLS verification off only
 * for exactly "true"/"1", and invalid values named with where they came from.
 */
import assert from 'node:assert/strict'

import type {Profile} from '../../../src/core/config.js'

import {
  envValue,
  isLoopbackAddress,
  normaliseAddress,
  resolveOpenBaoSettings,
  settingsWarnings,
} from '../../../src/backends/openbao/settings.js'

const profile = (settings: Record<string, unknown> = {}, name = 'prod-bao'): Profile => ({
  implicit: false,
  kind: 'openbao',
  name,
  settings,
})
const resolve = (settings: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
  resolveOpenBaoSettings(profile(settings), env, '/home/av')

function throwsCode(fn: () => unknown, code: string, exitCode: number): void {
  assert.throws(fn, (error: unknown) => {
    const typed = error as {code: string; exitCode: number; message: string}
    assert.equal(typed.code, code, typed.message)
    assert.equal(typed.exitCode, exitCode)
    return true
  })
}

describe('openbao settings', () => {
  it('env X is BAO_X when defined (even empty), else VAULT_X; empty counts as not given', () => {
    assert.equal(envValue({BAO_ADDR: 'b', VAULT_ADDR: 'v'}, 'ADDR'), 'b')
    assert.equal(envValue({VAULT_ADDR: 'v'}, 'ADDR'), 'v')
    assert.equal(envValue({BAO_ADDR: '', VAULT_ADDR: 'v'}, 'ADDR'), undefined)
    assert.equal(envValue({}, 'ADDR'), undefined)
  })

  it('addresses: flag, then the profile (it wins over env), then env, then the default', () => {
    const env = {BAO_ADDR: 'https://stray.example.com:8200'}
    assert.deepEqual(resolve({address: 'https://bao.example.com:8200/'}, env).addresses, [
      'https://bao.example.com:8200',
    ])
    assert.equal(resolve({address: 'https://bao.example.com:8200'}, env).addressSource, 'profile')
    assert.deepEqual(resolve({}, env).addresses, ['https://stray.example.com:8200'])
    assert.deepEqual(resolve({}, {VAULT_ADDR: 'http://127.0.0.1:9'}).addresses, ['http://127.0.0.1:9'])
    assert.deepEqual(resolve({}).addresses, ['http://127.0.0.1:8200'])
    const flagged = resolveOpenBaoSettings(profile({address: 'https://a.example.com'}), env, '/h', {
      addresses: ['https://b.example.com:1', 'https://c.example.com:2'],
    })
    assert.deepEqual(flagged.addresses, ['https://b.example.com:1', 'https://c.example.com:2'])
    assert.deepEqual(
      resolve({addresses: ['https://a.example.com:1', 'https://a.example.com:1/']}).addresses,
      ['https://a.example.com:1'],
    )
  })

  it('an address is only scheme, host and port', () => {
    assert.equal(normaliseAddress('HTTPS://Bao.Example.com:443/', 'x'), 'https://bao.example.com')
    for (const bad of [
      'bao.example.com',
      'ftp://x',
      'https://u:p@x',
      'https://x/v1/',
      'https://x/?a=1',
      'https://x/#f',
    ])
      throwsCode(() => normaliseAddress(bad, 'x'), 'CONFIG_INVALID', 3)
    throwsCode(() => resolve({address: 'https://a', addresses: ['https://b']}), 'CONFIG_INVALID', 3)
    throwsCode(() => resolve({}, {BAO_ADDR: 'not a url'}), 'CONFIG_INVALID', 3)
  })

  it('TLS verification is off only for tlsSkipVerify: true or SKIP_VERIFY exactly "true" / "1"', () => {
    assert.equal(resolve({}).tlsSkipVerify, false)
    for (const value of ['true', '1'])
      assert.equal(resolve({}, {VAULT_SKIP_VERIFY: value}).tlsSkipVerify, true, value)
    for (const value of ['false', '0', 'yes', 'TRUE', ' true', ''])
      assert.equal(resolve({}, {VAULT_SKIP_VERIFY: value}).tlsSkipVerify, false, value)
    assert.equal(resolve({}, {BAO_SKIP_VERIFY: 'false', VAULT_SKIP_VERIFY: 'true'}).tlsSkipVerify, false)
    assert.equal(resolve({tlsSkipVerify: true}).tlsSkipVerify, true)
    assert.equal(
      resolve({tlsSkipVerify: false}, {BAO_SKIP_VERIFY: 'true'}).tlsSkipVerify,
      false,
      'profile wins',
    )
  })

  it('namespace, auth method and mount, CA file and timeout', () => {
    const settings = resolve({
      authMethod: 'userpass',
      caCert: 'certs/ca.pem',
      namespace: 'team-a/dev/',
      timeoutMs: 500,
    })
    assert.equal(settings.namespace, 'team-a/dev')
    assert.equal(settings.authMethod, 'userpass')
    assert.equal(settings.authMount, 'userpass')
    assert.equal(settings.caCertFile, '/home/av/certs/ca.pem', 'relative to the agentvault home')
    assert.equal(settings.timeoutMs, 500)
    assert.equal(resolve({}, {BAO_NAMESPACE: 'ns1'}).namespace, 'ns1')
    assert.equal(resolve({namespace: 'mine'}, {BAO_NAMESPACE: 'ns1'}).namespace, 'mine')
    assert.equal(resolve({}, {VAULT_CACERT: '/etc/ca.pem'}).caCertFile, '/etc/ca.pem')
    assert.equal(resolve({}).timeoutMs, 10_000)
    throwsCode(() => resolve({namespace: 'a b'}), 'CONFIG_INVALID', 3)
    throwsCode(() => resolve({authMethod: 'ldap'}), 'CONFIG_INVALID', 3)
    throwsCode(() => resolveOpenBaoSettings(profile(), {}, '/h', {authMethod: 'ldap'}), 'BAD_AUTH_METHOD', 2)
    throwsCode(() => resolveOpenBaoSettings(profile(), {}, '/h', {authMount: 'a/b'}), 'BAD_AUTH_MOUNT', 2)
  })

  it('warns about plain HTTP off loopback, TLS verification off, and an ignored BAO_ADDR', () => {
    assert.ok(
      isLoopbackAddress('http://127.0.0.1:8200') &&
        isLoopbackAddress('http://localhost:1') &&
        isLoopbackAddress('http://[::1]:1'),
    )
    const plain = resolve({address: 'http://bao.example.com:8200'})
    assert.match(settingsWarnings(plain, {}, 'p').join('\n'), /plain HTTP/)
    assert.deepEqual(settingsWarnings(resolve({address: 'http://127.0.0.1:8200'}), {}, 'p'), [])
    const skip = resolve({address: 'https://bao.example.com'}, {BAO_SKIP_VERIFY: '1'})
    assert.match(settingsWarnings(skip, {BAO_SKIP_VERIFY: '1'}, 'p').join('\n'), /verification is OFF/)
    const env = {BAO_ADDR: 'https://other.example.com'}
    assert.match(
      settingsWarnings(resolve({address: 'https://bao.example.com'}, env), env, 'p').join('\n'),
      /BAO_ADDR is ignored/,
    )
  })
})
