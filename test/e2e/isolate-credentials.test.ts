/**
 * `run --isolate` against the probe: the credentials agentvault itself reads from outside its home
 * — the `vault` CLI's ~/.vault-token (the openbao backend's last token source) and sanctum agent
 * keys (~/.sanctum/keys, SANCTUM_KEY_PATH, a profile's keyPath) — are hidden from the sandboxed
 * command like the home is. Otherwise a command meant to hold only placeholders reads the token
 * and asks the vault for every secret itself.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {ROOT, runCli, tempHome} from '../helpers/cli.js'
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

function has(command: string, ...args: string[]): boolean {
  const probe = spawnSync(command, args, {stdio: 'ignore'})
  return !probe.error && probe.status === 0
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
    const user = join(t.home, 'user-home')
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
        'keyPath=~/profile-agent.key',
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

/** Start a process and resolve with its first line of stdout (an address it prints once ready). */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8')
      if (text.includes('\n')) resolve(text.split('\n')[0]!)
    })
    child.once('error', reject)
    child.once('exit', () => reject(new Error(`exited before printing a line: ${text}`)))
  })
}

describe('e2e: run --isolate with the keychain on an abstract D-Bus socket', function () {
  this.timeout(120_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let bus: ChildProcess | undefined
  let keyring: ChildProcess | undefined
  let env: NodeJS.ProcessEnv

  before(async function () {
    if (!bubblewrapWorks() || !has('dbus-daemon', '--version') || !has('gnome-keyring-daemon', '--version'))
      this.skip()
    t = await tempHome()
    const user = join(t.home, 'user-home')
    await mkdir(user, {recursive: true})
    // As dbus-launch and dbus-run-session before dbus 1.15.2 (Ubuntu 22.04) set the session bus up:
    // an abstract socket, which lives in the network namespace rather than on the file system.
    bus = spawn(
      'dbus-daemon',
      ['--session', `--address=unix:abstract=${join(t.home, 'bus')}`, '--nofork', '--print-address=1'],
      {stdio: ['ignore', 'pipe', 'ignore']},
    )
    const address = await firstLine(bus)
    env = {...t.env, DBUS_SESSION_BUS_ADDRESS: address, HOME: user, XDG_DATA_HOME: join(user, 'data')}
    delete env.AGENTVAULT_NO_KEYCHAIN
    keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
      env: {...process.env, ...env},
      stdio: ['pipe', 'pipe', 'ignore'],
    })
    keyring.stdin?.end('pw')
    // gnome-keyring-daemon closes its stdout once it serves.
    await new Promise<void>((resolve) => {
      keyring!.stdout?.once('end', resolve).resume()
    })
    const stored = await runCli(['secrets', 'set', 'K'], {env, input: 'canary-keychain-5d0b'})
    assert.equal(stored.code, 0, stored.stderr)
    const status = await runCli(['status', '--json'], {env})
    if (!status.stdout.includes('"keySource": "keychain"')) this.skip()
  })

  after(async () => {
    keyring?.kill()
    bus?.kill()
    await t?.dispose()
  })

  it('is refused before anything starts (exit 2): bubblewrap cannot hide an abstract socket', async () => {
    // What the command would do: find the bus in /proc/net/unix and read agentvault's keychain entries.
    const script = `a=$(grep -o '@${join(t.home, 'bus')}' /proc/net/unix | head -1); DBUS_SESSION_BUS_ADDRESS="unix:abstract=\${a#@}" node -e 'require(process.argv[1]).findCredentialsAsync("agentvault").then((c) => console.log(c.length > 0 ? "entries: " + c.map((e) => e.account).join(",") : "none"), () => console.log("no keychain"))' "${join(ROOT, 'node_modules', '@napi-rs', 'keyring')}"`
    const plain = await runCli(['run', '--env', 'K=local://K', '--', 'sh', '-c', script], {env})
    assert.equal(plain.code, 0, plain.stderr)
    assert.match(plain.stdout, /^entries: vault-key/, 'a command reaches the keychain (the test can fail)')
    const isolated = await runCli(
      [
        'run',
        '--isolate',
        '--placeholders',
        '--env',
        'K=local://K',
        '--',
        'sh',
        '-c',
        `echo started; ${script}`,
      ],
      {env},
    )
    assert.equal(isolated.code, 2, isolated.stdout)
    assert.equal(isolated.stdout, '')
    assert.match(isolated.stderr, /^Error: --isolate is not available here: .*abstract.*\nTry this: .+/m)
  })
})
