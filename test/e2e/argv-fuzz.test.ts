import fc from 'fast-check'
/**
 * Through the built binary: fast-check writes hostile command lines for every command in the
 * manifest (oclif.manifest.json, written by `npm run build`) — its own flags with hostile values or
 * none, unknown flags, `--`, unicode, control characters, very long arguments — and each one must
 * end in a §9 exit code: never exit 1 ("a bug"), never a hang (a run still going after HANG_MS is
 * killed and fails the property; that bound is the failure signal, not a sleep), and every non-zero
 * exit explains itself: `Error:` and `Try this:` on stderr, or the `--json` error on stdout.
 *
 * The runs are isolated: their own HOME and AGENTVAULT_HOME, a PATH with only `node` on it (so `run`
 * cannot start anything a fuzzed word happens to name), stdin at end of file, no network but the
 * closed one of the machine. Commands that serve until stopped are left out (`proxy start`, `audit
 * --follow`, `proxy logs --follow`). The seed is fixed (FUZZ_SEED=N picks another) so a failure
 * reproduces; a counterexample is shrunk to a short command line.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import {join} from 'node:path'

import {BIN, type CliResult, collectUnlessHung, nodeDir, ROOT, runCli, tempHome} from '../helpers/cli.js'
import {EXIT_BY_CATEGORY, expectFailure} from '../helpers/e2e.js'

/** A run still going after this long has hung. Generous: two cores shared by parallel suites. */
const HANG_MS = 20_000
const RUNS = Number(process.env.FUZZ_RUNS ?? 160)
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_207)

const ENV_RUNS = Number(process.env.FUZZ_ENV_RUNS ?? 60)

/** Variables agentvault or a backend reads (NODE_OPTIONS and PATH are Node's and the shell's). */
const FUZZED_VARIABLES = [
  'AGENTVAULT_PROFILE',
  'AGENTVAULT_MAX_VALUE_BYTES',
  'AGENTVAULT_MAX_RESPONSE_BYTES',
  'AGENTVAULT_MASK',
  'AGENTVAULT_MASK_FLUSH_MS',
  'AGENTVAULT_TIMEOUT',
  'AGENTVAULT_ENV_FILE',
  'AGENTVAULT_PASS_ENV',
  'AGENTVAULT_ALLOW_HOST',
  'AGENTVAULT_ALLOW_DOMAIN',
  'AGENTVAULT_CACERT',
  'AGENTVAULT_NO_PROMPT',
  'AGENTVAULT_NO_KEYCHAIN',
  'AGENTVAULT_PLACEHOLDERS',
  'AGENTVAULT_PASSPHRASE',
  'AGENTVAULT_DATA_DIR',
  'AGENTVAULT_PROXY_PORT',
  'AGENTVAULT_MCP_ALLOW',
  'BAO_ADDR',
  'BAO_TOKEN',
  'BAO_CACERT',
  'BAO_NAMESPACE',
  'VAULT_ADDR',
  'VAULT_SKIP_VERIFY',
  'SANCTUM_SOCKET',
  'SANCTUM_HOST',
  'SANCTUM_PORT',
  'SANCTUM_AGENT',
  'SANCTUM_KEY_PATH',
  'AGENTSECRETS_PORT',
  'AGENTAUTH_BASE_URL',
  'AGENTAUTH_AGENT_ID',
  'CI',
  'NO_COLOR',
]

/** Commands that read those variables. */
const ENV_COMMANDS = [
  ['secrets', 'list'],
  ['secrets', 'get', 'A', '--reveal'],
  ['secrets', 'set', 'B', 'B=value'],
  ['status'],
  ['profiles', 'list'],
  ['audit', '--limit', '2'],
  ['run', '--env', 'K=local://A', '--', 'node', '-e', '0'],
  ['run', '--env', 'K=openbao+kv2://secret/x#f', '--', 'node', '-e', '0'],
  ['use', 'A', 'sign', '--param', 'algorithm=hmac-sha256', '--param', 'data=x'],
  ['call', 'http://127.0.0.1:1/', '--bearer', 'A', '--allow-host', '127.0.0.1'],
  ['secrets', 'list', 'openbao+kv2://secret/'],
  ['secrets', 'get', 'sanctum://a/b', '--reveal'],
  ['agents', 'list'],
]

/** Exits of agentvault's own failures that are not bugs (product.md §9). */
const OWN_CODES = new Set([0, 2, 3, 4, 5, 6, 7, 8, 130])

interface ManifestFlag {
  char?: string
  name: string
  options?: string[]
  type: 'boolean' | 'option'
}

interface ManifestCommand {
  args: Record<string, {name: string}>
  flags: Record<string, ManifestFlag>
  id: string
}

/** Commands that serve until stopped, and flags that make a command do so. */
const LONG_RUNNING = new Set(['proxy:start'])
const LONG_RUNNING_FLAGS = new Set(['follow'])

function manifest(): ManifestCommand[] {
  const parsed = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {
    commands: Record<string, ManifestCommand>
  }
  return Object.values(parsed.commands).filter((command) => !LONG_RUNNING.has(command.id))
}

/** Words an attacker or an unlucky user types. No NUL: argv cannot carry one. */
const HOSTILE_WORDS = [
  '',
  ' ',
  '-',
  '--',
  '---',
  '-p',
  '--json',
  '--no-prompt',
  '--profile=',
  '--=',
  '-=',
  '=',
  'A',
  'A=B',
  'NAME=VALUE',
  'local://A',
  'local://A?version=0',
  'local://A?version=99999999999999999999',
  'local://A?profile=',
  'local://../../etc/passwd',
  'local://',
  'openbao+kv2://',
  'openbao+kv2://secret/x#f?version=-1',
  'sanctum://',
  'agentsecrets://',
  'agentauth://access-token',
  'locl://X',
  'https://',
  'http://[::1',
  'http://127.0.0.1:1/',
  'https://user:pass@127.0.0.1:1/',
  'ftp://x',
  'file:///etc/passwd',
  '/dev/zero',
  '/dev/tty',
  '/dev/stdin',
  '/proc/self/mem',
  '/',
  '.',
  '..',
  '~',
  // eslint-disable-next-line no-template-curly-in-string -- a shell expansion that must stay text
  '${HOME}',
  '$(id)',
  '`id`',
  '%s%n%x',
  '{{ local://A }}',
  '{"a":',
  '[]',
  'null',
  '-1',
  '0',
  '1e309',
  'NaN',
  '0x10',
  '9007199254740993',
  'a\nb',
  '\r\n',
  '\t',
  '\u001B[31mred\u001B[0m',
  '\u001B]0;title\u0007',
  '\u202Egnp.exe',
  '\uFEFF',
  '\u0085',
  '\u2028',
  'é',
  'e\u0301',
  'ｌｏｃａｌ://A',
  '🔥',
  '\uD800',
  'x'.repeat(4096),
  '-'.repeat(300),
  'a'.repeat(60_000),
]

const hostileWord = fc
  .oneof(
    {arbitrary: fc.constantFrom(...HOSTILE_WORDS), weight: 4},
    {arbitrary: fc.string({maxLength: 12, unit: 'grapheme'}), weight: 2},
    {arbitrary: fc.string({maxLength: 12, unit: 'binary'}), weight: 1},
    {arbitrary: fc.string({maxLength: 6}).map((text) => `--${text}`), weight: 1},
  )
  .map((word) => word.replaceAll('\0', '')) // argv cannot carry NUL (spawn refuses it)

function tokensOf(command: ManifestCommand): fc.Arbitrary<string[]> {
  const flags = Object.values(command.flags).filter((flag) => !LONG_RUNNING_FLAGS.has(flag.name))
  const flagToken: Array<fc.Arbitrary<string[]>> = [
    hostileWord.map((word) => [word]),
    fc.constantFrom('--nope', '-Z', '--json=1', '--no-json', '--help=x').map((word) => [word]),
    fc.constant(['--']),
  ]
  for (const flag of flags) {
    const names = [`--${flag.name}`, ...(flag.char ? [`-${flag.char}`] : [])]
    const name = fc.constantFrom(...names)
    if (flag.type === 'boolean') {
      flagToken.push(
        name.map((n) => [n]),
        fc.constantFrom(`--no-${flag.name}`, `--${flag.name}=`, `--${flag.name}=yes`).map((n) => [n]),
      )
    } else {
      const value = flag.options?.length
        ? fc.oneof(fc.constantFrom(...flag.options), hostileWord)
        : hostileWord
      flagToken.push(
        fc.tuple(name, value).map(([n, v]) => [n, v]),
        fc.tuple(name, value).map(([n, v]) => [`${n}=${v}`]),
        name.map((n) => [n]), // no value (at the end, or followed by another flag)
      )
    }
  }

  return fc.array(fc.oneof(...flagToken), {maxLength: 6}).map((groups) => groups.flat())
}

interface Case {
  argv: string[]
  id: string
}

async function runBounded(
  argv: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<CliResult & {hung: boolean}> {
  const child = spawn(BIN, argv, {cwd, env, stdio: ['pipe', 'pipe', 'pipe']})
  child.stdin.on('error', () => {}) // a command that never reads its stdin
  child.stdin.end()
  return collectUnlessHung(child, HANG_MS)
}

/** Not hung, a §9 exit code, no stack or "bug" text, and a failure that explains itself. */
function meetsTheBar(result: CliResult & {hung: boolean}, shown: string): void {
  assert.ok(!result.hung, `hung (killed after ${HANG_MS} ms): ${shown}`)
  assert.ok(
    result.code !== null && OWN_CODES.has(result.code),
    `exit ${result.code} (signal ${result.signal}) for ${shown}\n${result.stderr.slice(0, 2000)}`,
  )
  assert.doesNotMatch(result.stderr, /bug in agentvault|\n\s+at .+:\d+:\d+\)?\n/, shown)
  const problem = explainsItself(result)
  assert.equal(
    problem,
    undefined,
    `${problem} for ${shown} (exit ${result.code})\n${result.stderr.slice(0, 2000)}`,
  )
}

function explainsItself(result: CliResult): string | undefined {
  if (result.code === 0) return undefined
  const trimmed = result.stdout.trim()
  if (trimmed.startsWith('{"error"') || trimmed.startsWith('{\n  "error"')) {
    try {
      const {error} = JSON.parse(trimmed) as {error: {category: string; message: string; suggestion: string}}
      if (!error.message || !error.suggestion) return 'a --json error without message or suggestion'
      if (EXIT_BY_CATEGORY[error.category] !== result.code)
        return `a --json error of category ${error.category} exited ${result.code}`
      return undefined
    } catch {
      return 'a --json error that is not JSON'
    }
  }

  if (!/^Error: \S/m.test(result.stderr)) return 'no `Error:` line on stderr'
  if (!/^Try this: \S/m.test(result.stderr)) return 'no `Try this:` line on stderr'
  return undefined
}

describe('e2e: fuzzed command lines for every command (fast-check, through the built binary)', function () {
  this.timeout(180_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let env: NodeJS.ProcessEnv
  let cwd: string

  before(async () => {
    t = await tempHome()
    cwd = join(t.home, 'cwd')
    await mkdir(cwd)
    await mkdir(join(t.home, 'user-home'))
    const stored = await runCli(['secrets', 'set', 'A'], {env: t.env, input: 'fuzz-value-a'})
    assert.equal(stored.code, 0, stored.stderr)
    // Not baseEnv(): nothing of this process's environment but what the launcher needs.
    env = {
      ...t.env,
      CI: '1',
      HOME: join(t.home, 'user-home'),
      LANG: 'C.UTF-8',
      PATH: nodeDir(),
      TMPDIR: t.home,
      XDG_CONFIG_HOME: join(t.home, 'user-home', '.config'),
    }
  })

  after(() => t.dispose())

  it(`${RUNS} command lines: a §9 exit code, no hang, Error and Try this on every failure`, async () => {
    const commands = manifest()
    assert.ok(commands.length >= 40, `only ${commands.length} commands in the manifest`)
    const cases: fc.Arbitrary<Case> = fc
      .constantFrom(...commands)
      .chain((command) =>
        tokensOf(command).map((tokens) => ({argv: [...command.id.split(':'), ...tokens], id: command.id})),
      )

    await fc.assert(
      fc.asyncProperty(cases, async ({argv}) => {
        const result = await runBounded(argv, env, cwd)
        const shown = JSON.stringify(argv).slice(0, 400)
        meetsTheBar(result, shown)
      }),
      {numRuns: RUNS, seed: SEED},
    )
  })

  it(`${ENV_RUNS} environments of hostile AGENTVAULT_* and backend variables: the same bar`, async () => {
    const variable = fc.tuple(fc.constantFrom(...FUZZED_VARIABLES), hostileWord)
    const cases = fc.record({
      args: fc.constantFrom(...ENV_COMMANDS),
      variables: fc.uniqueArray(variable, {maxLength: 4, minLength: 1, selector: ([name]) => name}),
    })
    await fc.assert(
      fc.asyncProperty(cases, async ({args, variables}) => {
        const result = await runBounded(args, {...env, ...Object.fromEntries(variables)}, cwd)
        const shown = `${JSON.stringify(variables).slice(0, 400)} ${args.join(' ')}`
        meetsTheBar(result, shown)
      }),
      {numRuns: ENV_RUNS, seed: SEED},
    )
  })

  // Command lines the fuzz found, kept as fixed cases (both forms: Error/Try this, and --json).
  for (const {args, input, message} of [
    // seed 60831: a usage error with no suggestion, and a --json error without "suggestion"
    {
      args: ['secrets', 'delete', '--destroy=', '--versions', ''],
      message: /--versions takes version numbers/,
    },
    {args: ['secrets', 'delete', 'A', '--versions', 'x'], message: /--versions takes version numbers/},
    {
      args: [
        'login',
        'openbao',
        '--address',
        'https://bao.example.com',
        '--auth-mount',
        'a/b',
        '--token-stdin',
      ],
      input: 'token',
      message: /--auth-mount must be one path segment/,
    },
  ])
    it(`found by the fuzz: ${args.join(' ')}`, async () => {
      const {error} = await expectFailure(args, {env, input}, {code: 2, message})
      assert.match(error.suggestion, /agentvault .+ --help/)
    })
})
