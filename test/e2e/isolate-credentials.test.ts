/**
 * `run --isolate` against the probe: the credentials agentvault itself reads from outside its home
 * — the `vault` CLI's ~/.vault-token (the openbao backend's last token source) and sanctum agent
 * keys (~/.sanctum/keys, SANCTUM_KEY_PATH, a profile's keyPath) — are hidden from the sandboxed
 * command like the home is. Otherwise a command meant to hold only placeholders reads the token
 * and asks the vault for every secret itself.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {runCli, tempHome} from '../helpers/cli.js'
import {CANARY, type SeededTokens, startSeededServer} from '../servers/openbao/harness.js'
import {type OpenBaoTestServer} from '../servers/openbao/server.js'

const SEED = 'c0ffee'.repeat(10) + 'beef'
const PROFILE_SEED = 'facade'.repeat(10) + 'f00d'
const ENV_SEED = 'decade'.repeat(10) + 'cafe'

/** What the command finds: each file's text (or "hidden"), then what the vault answers its token. */
const PROBE = [
  `for f in "$@"; do c=$(cat "$f" 2>/dev/null); echo "\${c:-hidden}"; done`,
  `node -e 'fetch(process.env.BAO_ADDR + "/v1/secret/data/myapp/api", {headers: {"X-Vault-Token": require("fs").readFileSync(process.argv[1], "utf8").trim()}}).then(r => r.text()).then(t => console.log(t.split("").reverse().join("")), () => console.log("no answer"))' "$1" 2>/dev/null || echo "no token"`,
].join('\n')

/** `run` of the probe script (under --placeholders, with a secret of the vault) over `paths`. */
function runArgs(isolate: string[], paths: string[]): string[] {
  return [
    'run',
    ...isolate,
    '--placeholders',
    '--env',
    'U=openbao://secret/myapp/api#user',
    '--',
    'sh',
    '-c',
    PROBE,
    'probe',
    ...paths,
  ]
}

function bubblewrapWorks(): boolean {
  const probe = spawnSync('bwrap', ['--dev-bind', '/', '/', '--unshare-pid', '--proc', '/proc', 'true'], {
    stdio: 'ignore',
  })
  return !probe.error && probe.status === 0
}

describe('e2e: run --isolate hides the credentials agentvault reads outside its home', function () {
  this.timeout(120_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: OpenBaoTestServer
  let tokens: SeededTokens
  let env: NodeJS.ProcessEnv
  let files: {envKey: string; profileKey: string; sanctumKey: string; vaultToken: string}

  before(async function () {
    if (!bubblewrapWorks()) this.skip()
    t = await tempHome()
    ;({server, tokens} = await startSeededServer())
    const user = join(t.home, '..', 'user-home')
    const keys = join(user, '.sanctum', 'keys')
    await mkdir(keys, {recursive: true})
    files = {
      envKey: join(user, 'env-agent.key'),
      profileKey: join(user, 'profile-agent.key'),
      sanctumKey: join(keys, 'ci.key'),
      vaultToken: join(user, '.vault-token'),
    }
    // As `vault login` leaves it: the token agentvault's openbao backend falls back to.
    await writeFile(files.vaultToken, `${tokens.reader}\n`, {mode: 0o600})
    await writeFile(files.sanctumKey, SEED, {mode: 0o600})
    await writeFile(files.profileKey, PROFILE_SEED, {mode: 0o600})
    await writeFile(files.envKey, ENV_SEED, {mode: 0o600})
    env = {...t.env, BAO_ADDR: server.url, HOME: user, SANCTUM_KEY_PATH: files.envKey}
    const added = await runCli(
      [
        'profiles',
        'add',
        'sn',
        '--kind',
        'sanctum',
        '--set',
        'agent=ci',
        '--set',
        `keyPath=${files.profileKey}`,
      ],
      {env},
    )
    assert.equal(added.code, 0, added.stderr)
  })

  after(async () => {
    await server?.close()
    await t?.dispose()
  })

  it('~/.vault-token and the sanctum keys: readable by a plain run, hidden under --isolate', async () => {
    const paths = [files.vaultToken, files.sanctumKey, files.profileKey, files.envKey]
    // The test can fail: without --isolate the command reads them all, and the token opens the vault.
    const plain = await runCli(runArgs([], paths), {env})
    assert.equal(plain.code, 0, plain.stderr)
    for (const secret of [tokens.reader, SEED, PROFILE_SEED, ENV_SEED])
      assert.ok(plain.stdout.includes(secret))
    assert.ok(plain.stdout.includes([...CANARY].reverse().join('')), plain.stdout)

    const isolated = await runCli(runArgs(['--isolate'], paths), {env})
    assert.equal(isolated.code, 0, isolated.stderr)
    for (const secret of [tokens.reader, SEED, PROFILE_SEED, ENV_SEED, [...CANARY].reverse().join('')])
      assert.ok(
        !isolated.stdout.includes(secret),
        `${secret} reached the isolated command: ${isolated.stdout}`,
      )
    assert.match(isolated.stdout, /^hidden\nhidden\nhidden\nhidden\n/)
  })
})
