import fc from 'fast-check'
import assert from 'node:assert/strict'
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {
  agentvaultHome,
  listProfiles,
  loadConfig,
  resolveProfile,
  updateConfig,
  validateConfig,
} from '../../../src/core/config.js'
import {AgentVaultError, ConfigError} from '../../../src/core/errors.js'

function invalid(data: unknown): ConfigError {
  try {
    validateConfig(data, '/home/u/.agentvault/config.json')
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error))
    assert.equal(error.exitCode, 3)
    assert.match(error.message, /config\.json/)
    return error
  }

  assert.fail(`expected ${JSON.stringify(data)} to be rejected`)
}

describe('core/config', () => {
  it('validates a full config and keeps its profiles', () => {
    const config = validateConfig(
      {
        version: 1,
        active: 'prod-bao',
        defaults: {openbao: 'prod-bao'},
        profiles: {
          'prod-bao': {
            kind: 'openbao',
            address: 'https://bao:8200',
            allowedMounts: ['secret'],
            tlsSkipVerify: false,
          },
          team: {kind: 'local', allowedDomains: ['api.example.com'], auditPaths: 'ref'},
        },
      },
      'config.json',
    )
    assert.equal(config.profiles['prod-bao']?.kind, 'openbao')
    assert.deepEqual(resolveProfile(config, {kind: 'openbao'}), {
      name: 'prod-bao',
      kind: 'openbao',
      implicit: false,
      settings: {address: 'https://bao:8200', allowedMounts: ['secret'], tlsSkipVerify: false},
    })
    assert.equal(resolveProfile(config, {}).name, 'prod-bao')
    assert.equal(resolveProfile(config, {kind: 'local'}).implicit, true)
    assert.equal(resolveProfile(config, {name: 'team', kind: 'local'}).settings.auditPaths, 'ref')
  })

  it('names the file and key of each invalid setting', () => {
    assert.match(invalid([]).message, /\(root\)/)
    assert.match(invalid({color: 'red'}).message, /color is not a known key/)
    assert.match(invalid({version: 2}).message, /version must be 1/)
    assert.match(invalid({profiles: {x: {kind: 'nope'}}}).message, /profiles\.x\.kind/)
    assert.match(invalid({profiles: {'bad name': {kind: 'local'}}}).message, /profiles\.bad name/)
    assert.match(
      invalid({profiles: {x: {kind: 'openbao', token: 's.abc'}}}).message,
      /profiles\.x\.token looks like a credential/,
    )
    assert.match(
      invalid({profiles: {x: {kind: 'local', allowedDomains: 'a.com'}}}).message,
      /allowedDomains must be a list/,
    )
    assert.match(invalid({profiles: {x: {kind: 'local', auditPaths: 'all'}}}).message, /auditPaths/)
    for (const keepVersions of [-1, 1.5, '10', 1001])
      assert.match(
        invalid({profiles: {x: {kind: 'local', keepVersions}}}).message,
        /profiles\.x\.keepVersions must be a whole number from 0 to 1000/,
      )
    // A misspelt setting is not ignored (a dropped allowlist would go unnoticed): the nearest one.
    const typo = invalid({profiles: {x: {kind: 'local', alowedDomains: ['a.com']}}})
    assert.match(typo.message, /profiles\.x\.alowedDomains is not a setting of local profiles/)
    assert.match(typo.suggestion ?? '', /^Did you mean allowedDomains\?/)
    // Another kind's setting is not this kind's.
    assert.match(
      invalid({profiles: {x: {kind: 'local', namespace: 'team-a'}}}).message,
      /profiles\.x\.namespace is not a setting of local profiles/,
    )
    assert.match(invalid({defaults: {openbao: 'missing'}}).message, /defaults\.openbao/)
    assert.match(invalid({active: 'missing'}).message, /active/)
  })

  it('never echoes a credential-looking value in its error', () => {
    const error = invalid({profiles: {x: {kind: 'openbao', password: 'canary-pw-123'}}})
    assert.ok(!error.message.includes('canary-pw-123'))
  })

  it('rejects hostile JSON values with a ConfigError only (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (data) => {
        try {
          validateConfig(data, 'config.json')
        } catch (error) {
          assert.ok(error instanceof ConfigError, String(error))
        }
      }),
      {numRuns: 500},
    )
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string(),
          fc.record(
            {kind: fc.constantFrom('local', 'openbao', 'x'), extra: fc.jsonValue()},
            {requiredKeys: []},
          ),
        ),
        (profiles) => {
          try {
            validateConfig({profiles}, 'config.json')
          } catch (error) {
            assert.ok(error instanceof ConfigError, String(error))
          }
        },
      ),
    )
  })

  it('unknown profile names are a configuration error (exit 3); a kind mismatch is usage (exit 2)', () => {
    const config = validateConfig({profiles: {a: {kind: 'local'}}}, 'config.json')
    assert.throws(
      () => resolveProfile(config, {name: 'nope'}),
      (error: AgentVaultError) => error.exitCode === 3,
    )
    assert.throws(
      () => resolveProfile(config, {name: 'a', kind: 'openbao'}),
      (error: AgentVaultError) => error.exitCode === 2,
    )
    assert.equal(resolveProfile(config, {name: 'openbao', kind: 'openbao'}).implicit, true)
  })

  it('lists the implicit local profile only when no local profile is configured', () => {
    assert.deepEqual(
      listProfiles(validateConfig({}, 'c')).map((p) => [p.name, p.active]),
      [['local', true]],
    )
    const config = validateConfig(
      {profiles: {mine: {kind: 'local'}}, defaults: {local: 'mine'}, active: 'mine'},
      'c',
    )
    assert.deepEqual(
      listProfiles(config).map((p) => [p.name, p.active, p.default]),
      [['mine', true, true]],
    )
  })

  it('lists the implicit profile of a kind whose native env vars are set, unless one is configured', () => {
    const env = {
      AGENTAUTH_BASE_URL: 'http://127.0.0.1:1',
      AGENTSECRETS_PORT: '8765',
      SANCTUM_SOCKET: '/tmp/sanctum.sock',
      VAULT_ADDR: 'http://127.0.0.1:8200',
    }
    const rows = (config: ReturnType<typeof validateConfig>, vars: NodeJS.ProcessEnv) =>
      listProfiles(config, vars).map((p) => [p.name, p.kind, p.implicit, p.active])
    assert.deepEqual(rows(validateConfig({}, 'c'), env), [
      ['local', 'local', true, true],
      ['sanctum', 'sanctum', true, false],
      ['agentsecrets', 'agentsecrets', true, false],
      ['openbao', 'openbao', true, false],
      ['agentauth', 'agentauth', true, false],
    ])
    // Unset or empty variables list nothing; BAO_ADDR counts like VAULT_ADDR, SANCTUM_HOST like the socket.
    assert.deepEqual(rows(validateConfig({}, 'c'), {BAO_ADDR: '', VAULT_ADDR: undefined}), [
      ['local', 'local', true, true],
    ])
    assert.deepEqual(
      rows(validateConfig({}, 'c'), {BAO_ADDR: 'http://b', SANCTUM_HOST: '127.0.0.1'}).map((r) => r[0]),
      ['local', 'sanctum', 'openbao'],
    )
    // A configured profile of the kind replaces its implicit one; an active implicit one is marked.
    const config = validateConfig(
      {profiles: {team: {kind: 'openbao', address: 'https://bao.example'}}, active: 'agentauth'},
      'c',
    )
    assert.deepEqual(rows(config, env), [
      ['local', 'local', true, false],
      ['team', 'openbao', false, false],
      ['sanctum', 'sanctum', true, false],
      ['agentsecrets', 'agentsecrets', true, false],
      ['agentauth', 'agentauth', true, true],
    ])
  })

  describe('on disk', () => {
    let home: string

    beforeEach(async () => {
      home = join(await mkdtemp(join(tmpdir(), 'agentvault-config-')), 'home')
    })

    afterEach(() => rm(join(home, '..'), {force: true, recursive: true}))

    it('treats a missing file as empty and writes atomically with 0600 / 0700', async () => {
      assert.deepEqual(await loadConfig(home), {
        version: 1,
        defaults: Object.create(null),
        profiles: Object.create(null),
      })
      await updateConfig(home, (config) => {
        config.profiles.a = {kind: 'local'}
      })
      assert.equal((await stat(join(home, 'config.json'))).mode & 0o777, 0o600)
      assert.equal((await stat(home)).mode & 0o777, 0o700)
      assert.deepEqual(JSON.parse(await readFile(join(home, 'config.json'), 'utf8')).profiles, {
        a: {kind: 'local'},
      })
    })

    it('refuses invalid JSON naming the file, and does not overwrite it on update', async () => {
      await updateConfig(home, () => {})
      await writeFile(join(home, 'config.json'), '{"profiles": ')
      await assert.rejects(
        loadConfig(home),
        (error: ConfigError) => error.exitCode === 3 && error.message.includes('config.json'),
      )
      await assert.rejects(updateConfig(home, () => {}))
      assert.equal(await readFile(join(home, 'config.json'), 'utf8'), '{"profiles": ')
    })

    it('resolves the home from AGENTVAULT_HOME', () => {
      assert.equal(agentvaultHome({AGENTVAULT_HOME: '/x/y'}), '/x/y')
      assert.match(agentvaultHome({}), /\.agentvault$/)
    })
  })
})
