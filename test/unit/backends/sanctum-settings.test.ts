import assert from 'node:assert/strict'

import type {Profile} from '../../../src/core/config.js'

import {resolveSanctumSettings} from '../../../src/backends/sanctum/settings.js'
import {ConfigError, UsageError} from '../../../src/core/errors.js'

const HOME = '/home/agent'
const FILE = '/av/config.json'

function profile(settings: Record<string, unknown> = {}, implicit = false): Profile {
  return {implicit, kind: 'sanctum', name: implicit ? 'sanctum' : 'work', settings}
}

describe('sanctum settings (protocols/sanctum.md §1)', () => {
  it('defaults: the ~/.sanctum socket and key directory, auto dialect, 16 MiB frames, 10 s', () => {
    assert.deepEqual(resolveSanctumSettings(profile({}, true), {HOME}, FILE), {
      dialect: 'auto',
      endpoint: {path: `${HOME}/.sanctum/vault.sock`},
      keyDir: `${HOME}/.sanctum/keys`,
      maxFrameBytes: 16_777_216,
      timeoutMs: 10_000,
    })
  })

  it('env builds the implicit profile; ~ expands; host wins over the default socket, port 7600 by default', () => {
    const env = {HOME, SANCTUM_AGENT: 'ci', SANCTUM_KEY_PATH: '~/k/ci.key', SANCTUM_SOCKET: '~/s.sock'}
    const settings = resolveSanctumSettings(profile({}, true), env, FILE)
    assert.equal(settings.agent, 'ci')
    assert.equal(settings.keyPath, `${HOME}/k/ci.key`)
    assert.deepEqual(settings.endpoint, {path: `${HOME}/s.sock`})
    assert.deepEqual(
      resolveSanctumSettings(profile({}, true), {HOME, SANCTUM_HOST: '127.0.0.1'}, FILE).endpoint,
      {
        host: '127.0.0.1',
        port: 7600,
      },
    )
    assert.deepEqual(
      resolveSanctumSettings(profile({}, true), {HOME, SANCTUM_HOST: 'h', SANCTUM_PORT: '7700'}, FILE)
        .endpoint,
      {host: 'h', port: 7700},
    )
  })

  it('a configured profile wins; env fills only what it leaves unset; the profile decides the transport', () => {
    const env = {HOME, SANCTUM_AGENT: 'env-agent', SANCTUM_HOST: 'env-host', SANCTUM_KEY_PATH: '/env.key'}
    const settings = resolveSanctumSettings(profile({agent: 'mine', socket: '/run/s.sock'}), env, FILE)
    assert.equal(settings.agent, 'mine')
    assert.equal(settings.keyPath, '/env.key')
    assert.deepEqual(settings.endpoint, {path: '/run/s.sock'}, 'env host does not override a profile socket')
    assert.deepEqual(
      resolveSanctumSettings(profile({host: 'p-host'}), {HOME, SANCTUM_PORT: '9000'}, FILE).endpoint,
      {host: 'p-host', port: 9000},
      'env fills the port of a profile host',
    )
  })

  it('flags beat both', () => {
    const settings = resolveSanctumSettings(
      profile({agent: 'mine', host: 'p-host', port: 1}),
      {HOME, SANCTUM_AGENT: 'env'},
      FILE,
      {agent: 'flagged', dialect: 'b', socket: '/flag.sock'},
    )
    assert.equal(settings.agent, 'flagged')
    assert.equal(settings.dialect, 'b')
    assert.deepEqual(settings.endpoint, {path: '/flag.sock'})
  })

  it('a port without a host is a config error naming where it came from', () => {
    assert.throws(
      () => resolveSanctumSettings(profile({port: 7600}), {HOME}, FILE),
      (error: unknown) =>
        error instanceof ConfigError &&
        /in \/av\/config\.json: profiles\.work\.port is set without a host/.test(error.message),
    )
    assert.throws(
      () => resolveSanctumSettings(profile({}, true), {HOME, SANCTUM_PORT: '7600'}, FILE),
      (error: unknown) =>
        error instanceof ConfigError && /SANCTUM_PORT is set without a host/.test(error.message),
    )
    assert.throws(
      () => resolveSanctumSettings(profile({socket: '/s'}), {HOME}, FILE, {port: '7600'}),
      (error: unknown) => error instanceof UsageError && /--port/.test(error.message),
    )
  })

  it('invalid values: dialect, port, agent name, limits', () => {
    const bad: Array<[Record<string, unknown>, NodeJS.ProcessEnv, RegExp]> = [
      [{dialect: 'c'}, {}, /dialect must be "a", "b" or "auto"/],
      [{host: 'h', port: 70_000}, {}, /port must be a whole number from 1 to 65535/],
      [{}, {SANCTUM_HOST: 'h', SANCTUM_PORT: 'http'}, /SANCTUM_PORT must be a whole number/],
      [{agent: 'a b'}, {}, /agent must be an agent name/],
      [{timeoutMs: 0}, {}, /timeoutMs must be a whole number/],
      [{maxFrameBytes: 10}, {}, /maxFrameBytes must be a whole number from 1024/],
      [{socket: 5}, {}, /socket must be a string/],
    ]
    for (const [settings, env, message] of bad)
      assert.throws(
        () => resolveSanctumSettings(profile(settings), {HOME, ...env}, FILE),
        (error: unknown) =>
          error instanceof ConfigError && error.exitCode === 3 && message.test(error.message),
        String(message),
      )
  })
})
