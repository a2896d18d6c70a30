/**
 * `profiles add/set` check settings against what the kind declares (backends/<kind>/declaration.ts):
 * a typo is exit 2 with the nearest real setting; `profiles set` edits a profile in place.
 */
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {runCli, tempHome} from '../helpers/cli.js'
import {digestOf, expectFailure, parseJson} from '../helpers/e2e.js'

describe('e2e: profile settings', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const config = async () =>
    (
      JSON.parse(await readFile(join(t.env.AGENTVAULT_HOME as string, 'config.json'), 'utf8')) as {
        profiles: Record<string, Record<string, unknown>>
      }
    ).profiles
  const cli = (args: string[]) => runCli(args, {env: t.env})

  beforeEach(async () => {
    t = await tempHome()
  })

  afterEach(async () => {
    await t.dispose()
  })

  it('profiles add: a typo is exit 2 with "did you mean"; nothing is written', async () => {
    const {error} = await expectFailure(
      ['profiles', 'add', 'bao', '--kind', 'openbao', '--set', 'adress=https://bao.example.com:8200'],
      {env: t.env},
      {code: 2, errorCode: 'UNKNOWN_SETTING', message: /adress/},
    )
    assert.match(error.suggestion, /^Did you mean address\?/)
    // A setting of another kind is not one of this kind's.
    const other = await expectFailure(
      ['profiles', 'add', 'team', '--kind', 'local', '--set', 'namespace=team-a'],
      {env: t.env},
      {code: 2, errorCode: 'UNKNOWN_SETTING'},
    )
    assert.match(other.error.suggestion, /Settings of local profiles: keepVersions, allowedDomains/)
    await assert.rejects(readFile(join(t.env.AGENTVAULT_HOME as string, 'config.json')), {code: 'ENOENT'})
  })

  it('values are read as the kind declares them: text stays text, numbers, booleans, comma-separated lists', async () => {
    const added = await cli([
      'profiles',
      'add',
      'daemon',
      '--kind',
      'sanctum',
      '--set',
      'agent=007',
      '--set',
      'timeoutMs=2500',
      '--set',
      'allowedDomains=api.example.com, *.internal.example.com',
      '--set',
      'allowPrivateNetworks=true',
    ])
    assert.equal(added.code, 0, added.stderr)
    assert.deepEqual((await config()).daemon, {
      agent: '007',
      allowPrivateNetworks: true,
      allowedDomains: ['api.example.com', '*.internal.example.com'],
      kind: 'sanctum',
      timeoutMs: 2500,
    })
    await expectFailure(
      ['profiles', 'add', 'x', '--kind', 'sanctum', '--set', 'timeoutMs=soon'],
      {env: t.env},
      {code: 2, errorCode: 'BAD_SETTING', message: /whole number/},
    )
  })

  it('profiles set NAME key=value… edits in place; --unset removes; typos and bad values change nothing', async () => {
    assert.equal(
      (
        await cli([
          'profiles',
          'add',
          'bao',
          '--kind',
          'openbao',
          '--set',
          'address=https://a.example.com:8200',
        ])
      ).code,
      0,
    )
    const set = parseJson<Record<string, unknown>>(
      await cli([
        'profiles',
        'set',
        'bao',
        'namespace=team-a',
        'address=https://b.example.com:8200',
        '--json',
      ]),
    )
    assert.deepEqual(set, {
      address: 'https://b.example.com:8200',
      kind: 'openbao',
      name: 'bao',
      namespace: 'team-a',
    })
    assert.deepEqual((await config()).bao, {
      address: 'https://b.example.com:8200',
      kind: 'openbao',
      namespace: 'team-a',
    })
    assert.equal(
      (await cli(['profiles', 'set', 'bao', '--unset', 'namespace', '--set', 'authMethod=approle'])).code,
      0,
    )
    assert.deepEqual((await config()).bao, {
      address: 'https://b.example.com:8200',
      authMethod: 'approle',
      kind: 'openbao',
    })

    const file = join(t.env.AGENTVAULT_HOME as string, 'config.json')
    const before = await digestOf(file)
    const typo = await expectFailure(
      ['profiles', 'set', 'bao', 'namespace=x', 'adress=https://c.example.com:8200'],
      {env: t.env},
      {code: 2, errorCode: 'UNKNOWN_SETTING'},
    )
    assert.match(typo.error.suggestion, /^Did you mean address\?/)
    await expectFailure(
      ['profiles', 'set', 'bao', '--unset', 'namespce'],
      {env: t.env},
      {code: 2, errorCode: 'UNKNOWN_SETTING'},
    )
    await expectFailure(
      ['profiles', 'set', 'bao', 'address=ftp://x'],
      {env: t.env},
      {code: 2, errorCode: 'BAD_SETTING'},
    )
    const leaky = await expectFailure(
      ['profiles', 'set', 'bao', 'token=s.canary-9d1e'],
      {env: t.env},
      {code: 2},
    )
    assert.ok(!JSON.stringify(leaky.error).includes('s.canary-9d1e'))
    await expectFailure(
      ['profiles', 'set', 'bao', 'novalue'],
      {env: t.env},
      {code: 2, errorCode: 'BAD_SETTING'},
    )
    await expectFailure(['profiles', 'set', 'bao'], {env: t.env}, {code: 2, errorCode: 'NOTHING_TO_SET'})
    await expectFailure(
      ['profiles', 'set', 'ghost', 'a=b'],
      {env: t.env},
      {code: 3, errorCode: 'PROFILE_NOT_FOUND'},
    )
    assert.equal(await digestOf(file), before)
  })

  it('profiles set KIND key=value configures the implicit profile a fresh home lists; it stays the default', async () => {
    type Listed = {profiles: Array<{default: boolean; implicit: boolean; name: string; settings: object}>}
    const local = async () =>
      parseJson<Listed>(await cli(['profiles', 'list', '--json'])).profiles.find(
        (profile) => profile.name === 'local',
      )
    assert.equal((await local())?.implicit, true)
    assert.equal(
      (await cli(['profiles', 'set', 'local', 'allowedDomains=api.example.com', 'keepVersions=3'])).code,
      0,
    )
    assert.deepEqual((await config()).local, {
      allowedDomains: ['api.example.com'],
      keepVersions: 3,
      kind: 'local',
    })
    assert.deepEqual(await local(), {
      active: true,
      default: true,
      implicit: false,
      kind: 'local',
      name: 'local',
      settings: {allowedDomains: ['api.example.com'], keepVersions: 3},
    })
    // Still the default local profile: a bare local:// reference takes its settings.
    const defaults = JSON.parse(
      await readFile(join(t.env.AGENTVAULT_HOME as string, 'config.json'), 'utf8'),
    ) as {defaults: Record<string, string>}
    assert.equal(defaults.defaults.local, 'local')
    // A typo on another kind's implicit profile writes nothing.
    await expectFailure(
      ['profiles', 'set', 'openbao', 'adress=https://x.example.com'],
      {env: t.env},
      {code: 2, errorCode: 'UNKNOWN_SETTING'},
    )
    assert.equal((await config()).openbao, undefined)
  })

  it('a misspelt setting written into config.json by hand is an error naming the nearest setting (exit 3)', async () => {
    assert.equal(
      (await cli(['profiles', 'add', 'team', '--kind', 'local', '--set', 'allowedDomains=a.example.com']))
        .code,
      0,
    )
    const file = join(t.env.AGENTVAULT_HOME as string, 'config.json')
    const written = JSON.parse(await readFile(file, 'utf8')) as {
      profiles: Record<string, Record<string, unknown>>
    }
    written.profiles.team = {alowedDomains: ['a.example.com'], kind: 'local'}
    await writeFile(file, JSON.stringify(written))
    const {error} = await expectFailure(
      ['status'],
      {env: t.env},
      {
        code: 3,
        errorCode: 'CONFIG_INVALID',
        message: /profiles\.team\.alowedDomains is not a setting of local profiles/,
      },
    )
    assert.match(error.suggestion, /^Did you mean allowedDomains\?/)
  })

  it('profiles add/set --help list the settings of each kind', async () => {
    for (const command of ['add', 'set']) {
      const help = await cli(['profiles', command, '--help'])
      assert.equal(help.code, 0, help.stderr)
      assert.match(help.stdout, /openbao: address, addresses, namespace/)
      assert.match(
        help.stdout,
        /every kind: allowedDomains, allowPlainHttp, allowPrivateNetworks, auditPaths,\s+caCert/,
      )
    }
  })
})
