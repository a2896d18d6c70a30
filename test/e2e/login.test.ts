/**
 * `login` per backend through the built binary: one command per kind whose flags and help come from
 * the backend's declaration (src/backends/<kind>/declaration.ts), and a bare `login` for the active
 * profile. The backends' own sign-in flows are tested against their servers in their suites.
 */
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {LOGIN_DECLARATIONS} from '../../src/core/backend-declarations.js'
import {BACKEND_KINDS} from '../../src/core/backend.js'
import {ROOT, runCli, tempHome} from '../helpers/cli.js'
import {expectFailure, parseJson} from '../helpers/e2e.js'

interface ManifestCommand {
  args?: Record<string, {options?: string[]}>
  flags: Record<string, {aliases?: string[]; hidden?: boolean; type: string}>
}

const GLOBAL = ['json', 'profile', 'no-prompt']

/** The flags a kind's declaration makes: a secret's as --X-stdin. */
function declaredFlags(kind: (typeof BACKEND_KINDS)[number]): string[] {
  return LOGIN_DECLARATIONS[kind].inputs.map((input) => (input.secret ? `${input.flag}-stdin` : input.flag))
}

describe('e2e: login per backend', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let manifest: {commands: Record<string, ManifestCommand>}

  before(async () => {
    t = await tempHome()
    manifest = JSON.parse(await readFile(join(ROOT, 'oclif.manifest.json'), 'utf8')) as typeof manifest
  })

  after(async () => {
    await t.dispose()
  })

  it('the login commands are login and login:<kind> for every kind; no shared command carries all flags', () => {
    const ids = Object.keys(manifest.commands).filter((id) => id === 'login' || id.startsWith('login:'))
    assert.deepEqual(ids.sort(), ['login', ...BACKEND_KINDS.map((kind) => `login:${kind}`)].sort())
    assert.deepEqual(Object.keys(manifest.commands.login?.flags ?? {}).sort(), [...GLOBAL].sort())
    assert.deepEqual(manifest.commands.login?.args?.kind?.options, [...BACKEND_KINDS])
  })

  for (const kind of BACKEND_KINDS) {
    it(`login ${kind} --help lists its own flags and no other kind's`, async () => {
      const own = declaredFlags(kind)
      const flags = manifest.commands[`login:${kind}`]?.flags ?? {}
      assert.deepEqual(Object.keys(flags).sort(), [...own, ...GLOBAL].sort())
      const help = await runCli(['login', kind, '--help'], {env: t.env})
      assert.equal(help.code, 0, help.stderr)
      for (const flag of own) assert.match(help.stdout, new RegExp(`--${flag}(?![\\w-])`), `--${flag}`)
      const others = BACKEND_KINDS.filter((other) => other !== kind)
        .flatMap((other) => declaredFlags(other))
        .filter((flag) => !own.includes(flag))
      for (const flag of others)
        assert.doesNotMatch(help.stdout, new RegExp(`--${flag}(?![\\w-])`), `--${flag}`)
      assert.match(help.stdout, /^DESCRIPTION$/m)
      assert.match(help.stdout, /^EXAMPLES$/m)
      // Secrets are read from stdin, never taken in argv.
      for (const input of LOGIN_DECLARATIONS[kind].inputs.filter((i) => i.secret))
        assert.ok(!(input.flag in flags), `--${input.flag} takes no value in argv`)
    })
  }

  it('login --help lists the kinds', async () => {
    const help = await runCli(['login', '--help'], {env: t.env})
    assert.equal(help.code, 0, help.stderr)
    for (const kind of BACKEND_KINDS) assert.match(help.stdout, new RegExp(`^  login ${kind} +\\S`, 'm'))
  })

  it('bare login signs in to the active profile, and login -p NAME to that one', async () => {
    const home = await tempHome()
    try {
      const cli = (args: string[]) => runCli(args, {env: home.env})
      const first = parseJson<{kind: string; profile: string}>(await cli(['login', '--json']))
      assert.deepEqual([first.kind, first.profile], ['local', 'local'])
      assert.equal((await cli(['profiles', 'add', 'team', '--kind', 'local'])).code, 0)
      const named = parseJson<{kind: string; profile: string}>(await cli(['login', '-p', 'team', '--json']))
      assert.deepEqual([named.kind, named.profile], ['local', 'team'])
      // Flags before the kind reach the bare command with the kind as its argument: same result.
      const reordered = parseJson<{kind: string; profile: string}>(
        await cli(['login', '-p', 'team', 'local', '--json']),
      )
      assert.deepEqual([reordered.kind, reordered.profile], ['local', 'team'])
    } finally {
      await home.dispose()
    }
  })

  it('an unknown kind, a secret in argv, or two values on stdin: usage errors (2)', async () => {
    await expectFailure(['login', 'mystery'], {env: t.env}, {code: 2})
    const typo = await expectFailure(['login', 'opnbao'], {env: t.env}, {code: 2})
    assert.match(typo.error.suggestion, /^Did you mean openbao\?/)
    const argv = await expectFailure(
      ['login', 'openbao', '--token', 's.canary'],
      {env: t.env},
      {code: 2, errorCode: 'UNKNOWN_FLAG'},
    )
    assert.match(argv.plain.stderr, /--token-stdin/)
    await expectFailure(
      ['login', 'openbao', '--method', 'userpass', '--username', 'u', '--password-stdin', '--token-stdin'],
      {env: t.env, input: 'x\n'},
      {code: 2, errorCode: 'ONE_STDIN'},
    )
  })

  it('without a terminal a missing input names its flag and variable; the variable is read', async () => {
    const missing = await expectFailure(
      ['login', 'openbao', '--method', 'approle', '--address', 'http://127.0.0.1:9'],
      {env: t.env},
      {code: 2, errorCode: 'VALUE_REQUIRED', message: /role ID/},
    )
    assert.match(missing.plain.stderr, /agentvault login openbao --role-id VALUE or set AGENTVAULT_ROLE_ID/)
    // The role ID from its variable: the next missing input is the secret ID.
    const secret = await expectFailure(
      ['login', 'openbao', '--method', 'approle', '--address', 'http://127.0.0.1:9'],
      {env: {...t.env, AGENTVAULT_ROLE_ID: 'r'}},
      {code: 2, errorCode: 'VALUE_REQUIRED', message: /secret ID/},
    )
    assert.match(
      secret.plain.stderr,
      /agentvault login openbao --secret-id-stdin or set AGENTVAULT_SECRET_ID; never put it in argv/,
    )
  })
})
