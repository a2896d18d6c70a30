import assert from 'node:assert/strict'
import {readdir, readFile, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {ROOT, runCli, tempHome} from '../helpers/cli.js'
import {EXIT_BY_CATEGORY, expectFailure} from '../helpers/e2e.js'

interface NamedFlag {
  aliases?: string[]
  env?: string
}

/** A command's flag by name or by one of its aliases. */
function flagNamed(
  manifest: {commands: Record<string, {flags: Record<string, NamedFlag>}>},
  id: string,
  name: string,
): NamedFlag | undefined {
  const {flags} = manifest.commands[id] ?? {flags: {}}
  return flags[name] ?? Object.values(flags).find((flag) => flag.aliases?.includes(name))
}

/** Issue 16 §2: the conventions terminal users expect from a CLI. */
describe('e2e: conventions', () => {
  let t: Awaited<ReturnType<typeof tempHome>>

  before(async () => {
    t = await tempHome()
  })

  after(() => t.dispose())

  describe('-h is --help', () => {
    for (const args of [[], ['secrets'], ['secrets', 'list'], ['run'], ['call'], ['audit', 'verify']])
      it(`agentvault ${args.join(' ')} -h prints the same help as --help`, async () => {
        const [short, long] = await Promise.all([
          runCli([...args, '-h'], {env: t.env}),
          runCli([...args, '--help'], {env: t.env}),
        ])
        assert.equal(short.code, 0, short.stderr)
        assert.equal(short.stderr, '')
        assert.match(short.stdout, /USAGE/)
        assert.equal(short.stdout, long.stdout)
      })

    it('-h after `run --` belongs to the child command', async () => {
      const result = await runCli(['run', '--', 'echo', '-h'], {
        env: t.env,
      })
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, '-h\n')
    })
  })

  describe('did you mean', () => {
    it('an unknown command suggests the nearest one, the house way, exit 2', async () => {
      const {error, plain} = await expectFailure(
        ['secrts', 'list'],
        {env: t.env},
        {
          code: 2,
          errorCode: 'UNKNOWN_COMMAND',
          message: /Unknown command "secrts list"/,
        },
      )
      assert.match(error.suggestion, /Did you mean `agentvault secrets list`\?/)
      assert.doesNotMatch(plain.stderr, /secrts:list|›/)
    })

    it('an unknown subcommand of a topic suggests the nearest command of that topic', async () => {
      const {error} = await expectFailure(
        ['secrets', 'lst'],
        {env: t.env},
        {code: 2, errorCode: 'UNKNOWN_COMMAND'},
      )
      assert.match(error.suggestion, /`agentvault secrets list`/)
    })

    it('a command with no near neighbour points to --help', async () => {
      const {error, plain} = await expectFailure(
        ['zzzzqqqq'],
        {env: t.env},
        {code: 2, errorCode: 'UNKNOWN_COMMAND'},
      )
      assert.match(error.suggestion, /agentvault --help/)
      assert.doesNotMatch(plain.stderr, /Did you mean/)
    })

    it('an unknown flag suggests the nearest flag of the command', async () => {
      const {error, plain} = await expectFailure(
        ['secrets', 'get', 'X', '--revael'],
        {env: t.env},
        {
          code: 2,
          errorCode: 'UNKNOWN_FLAG',
          message: /Unknown flag --revael/,
        },
      )
      assert.match(error.suggestion, /Did you mean --reveal\?/)
      assert.doesNotMatch(plain.stderr, /Nonexistent/)
    })

    it('an unknown flag of run suggests the nearest run flag (run has no --json: its output is the child’s)', async () => {
      const result = await runCli(['run', '--env-fil', 'x', '--', 'true'], {env: t.env})
      assert.equal(result.code, 2, result.stderr)
      assert.equal(result.stdout, '')
      assert.match(
        result.stderr,
        /^Error: Unknown flag --env-fil for run\nTry this: Did you mean --env-file\?/,
      )
    })
  })

  describe('status exits non-zero when a profile it shows is unusable', () => {
    const KEYS = [
      'active',
      'details',
      'identity',
      'kind',
      'message',
      'name',
      'problem',
      'reachable',
      'signedIn',
      'tokenExpiry',
    ]
    type Row = Record<string, unknown>

    it('a fresh home: the local profile is usable (the vault comes with the first secret); exit 0, every key present', async () => {
      const home = await tempHome()
      try {
        const result = await runCli(['status', '--json'], {env: home.env})
        assert.equal(result.code, 0, result.stderr)
        const [row] = (JSON.parse(result.stdout) as {profiles: Row[]}).profiles
        assert.deepEqual(Object.keys(row ?? {}).sort(), KEYS)
        assert.equal(row?.problem, null)
        assert.equal(row?.identity, null)
        assert.equal(row?.tokenExpiry, null)
      } finally {
        await home.dispose()
      }
    })

    it('an unreachable backend: exit 5 after the table, Error/Try this on stderr; --json prints the rows and exits 5', async () => {
      // Port 1 on loopback: nothing listens, the connection is refused at once.
      const env = {...t.env, BAO_ADDR: 'http://127.0.0.1:1', BAO_TOKEN: ''}
      const plain = await runCli(['status'], {env})
      assert.equal(plain.code, EXIT_BY_CATEGORY.unavailable, plain.stderr)
      assert.match(plain.stdout, /^\s+openbao\s+openbao\s+no\s+no\b/m)
      assert.match(plain.stderr, /^Error: Profile not usable: openbao \(unreachable\)\nTry this: .+/m)
      const json = await runCli(['status', '--json'], {env})
      assert.equal(json.code, 5)
      const rows = (JSON.parse(json.stdout) as {profiles: Row[]}).profiles
      for (const row of rows) assert.deepEqual(Object.keys(row).sort(), KEYS)
      assert.deepEqual(
        rows.map((row) => [row.name, row.problem]),
        [
          ['local', null],
          ['openbao', 'unavailable'],
        ],
      )
      assert.equal(json.stderr, '')
    })

    it('a local vault whose key file is gone: exit 4 (the worst problem wins: 5 with an unreachable one too)', async () => {
      const home = await tempHome()
      try {
        assert.equal((await runCli(['secrets', 'set', 'A'], {env: home.env, input: 'v'})).code, 0)
        await rm(join(home.env.AGENTVAULT_HOME as string, 'vault.key'))
        const alone = await runCli(['status', '--json'], {env: home.env})
        assert.equal(alone.code, 4, alone.stdout)
        const [row] = (JSON.parse(alone.stdout) as {profiles: Row[]}).profiles
        assert.equal(row?.problem, 'auth')
        const both = await runCli(['status'], {env: {...home.env, BAO_ADDR: 'http://127.0.0.1:1'}})
        assert.equal(both.code, 5)
        assert.match(
          both.stderr,
          /Profiles not usable: local \(not signed in or key unavailable\), openbao \(unreachable\)/,
        )
      } finally {
        await home.dispose()
      }
    })
  })

  describe('errors in human mode say the cause', () => {
    it('openbao: the network error code and the host that failed', async () => {
      const env = {...t.env, BAO_ADDR: 'http://127.0.0.1:1', BAO_TOKEN: 'x'}
      const refused = await expectFailure(
        ['secrets', 'get', 'openbao://secret/app#k', '--reveal'],
        {env},
        {code: 5},
      )
      assert.match(
        refused.plain.stderr,
        /^Error: No OpenBao server answered \(ECONNREFUSED 127\.0\.0\.1:1\)$/m,
      )
      // A name that cannot resolve (.invalid never does): ENOTFOUND, or EAI_AGAIN without a resolver.
      const dns = await runCli(['secrets', 'get', 'openbao://secret/app#k', '--reveal'], {
        env: {...env, BAO_ADDR: 'http://bao.invalid:8200'},
      })
      assert.equal(dns.code, 5, dns.stderr)
      assert.match(dns.stderr, /^Error: No OpenBao server answered \((ENOTFOUND|EAI_AGAIN) bao\.invalid\)$/m)
    })

    it('agentauth: status says why the server is unreachable', async () => {
      const result = await runCli(['status'], {env: {...t.env, AGENTAUTH_BASE_URL: 'http://127.0.0.1:1'}})
      assert.equal(result.code, 5, result.stderr)
      assert.match(result.stdout, /http:\/\/127\.0\.0\.1:1 unreachable \(ECONNREFUSED\)/)
    })
  })

  describe('one spelling per idea', () => {
    interface ManifestFlag {
      aliases?: string[]
      char?: string
      deprecateAliases?: boolean
      description?: string
      env?: string
      hidden?: boolean
      options?: string[]
      summary?: string
      type: string
    }
    let manifest: {commands: Record<string, {flags: Record<string, ManifestFlag>}>}

    before(async () => {
      manifest = JSON.parse(await readFile(join(ROOT, 'oclif.manifest.json'), 'utf8')) as typeof manifest
    })

    it('--cacert everywhere; --ca-cert is a hidden alias of it', async () => {
      const offering = Object.entries(manifest.commands).filter(([, command]) => 'cacert' in command.flags)
      assert.deepEqual(offering.map(([id]) => id).sort(), [
        'call',
        'login:openbao',
        'mcp',
        'proxy:start',
        'use',
      ])
      for (const [id, command] of Object.entries(manifest.commands)) {
        assert.ok(!('ca-cert' in command.flags), `${id} has no --ca-cert of its own`)
        if (command.flags.cacert) assert.deepEqual(command.flags.cacert.aliases, ['ca-cert'], id)
      }

      const help = await runCli(['login', 'openbao', '--help'], {env: t.env})
      assert.match(help.stdout, /--cacert/)
      assert.doesNotMatch(help.stdout, /--ca-cert/)
      // Both spellings reach the same flag: the same error for a missing file.
      const missing = join(t.home, 'missing.pem')
      const [short, long] = await Promise.all(
        ['--cacert', '--ca-cert'].map((flag) =>
          runCli(['call', 'https://example.com/', '--bearer', 'K', flag, missing], {env: t.env}),
        ),
      )
      assert.notEqual(short?.code, 0)
      assert.doesNotMatch(short?.stderr ?? '', /Unknown flag/)
      assert.equal(long?.code, short?.code)
      assert.equal(long?.stderr, short?.stderr)
    })

    it('-p/--profile is not offered where it would be ignored (profiles list/add/set/remove/use, audit verify)', async () => {
      for (const args of [
        ['profiles', 'list'],
        ['profiles', 'add', 'zz', '--kind', 'local'],
        ['profiles', 'set', 'zz', 'keepVersions=3'],
        ['profiles', 'remove', 'zz'],
        ['profiles', 'use', 'zz'],
        ['audit', 'verify'],
      ]) {
        const id = args
          .filter((word) => /^[a-z]+$/.test(word) && word !== 'zz' && word !== 'local')
          .slice(0, 2)
          .join(':')
        assert.ok(manifest.commands[id], id)
        assert.ok(!('profile' in (manifest.commands[id]?.flags ?? {})), `${id} offers no --profile`)
        const help = await runCli([...args.slice(0, 2), '--help'], {env: t.env})
        assert.doesNotMatch(help.stdout, /--profile/)
        await expectFailure([...args, '-p', 'local'], {env: t.env}, {code: 2, errorCode: 'UNKNOWN_FLAG'})
      }
    })

    it('audit -p NAME shows only that profile’s events; AGENTVAULT_PROFILE does not narrow the trail', async () => {
      const home = await tempHome()
      try {
        const cli = (args: string[], input?: string) => runCli(args, {env: home.env, input})
        assert.equal((await cli(['profiles', 'add', 'team', '--kind', 'local'])).code, 0)
        assert.equal((await cli(['profiles', 'add', 'solo', '--kind', 'local'])).code, 0)
        assert.equal((await cli(['secrets', 'set', 'A', '-p', 'team'], 'a')).code, 0)
        assert.equal((await cli(['secrets', 'set', 'B', '-p', 'solo'], 'b')).code, 0)
        const profiles = (result: {stdout: string}) =>
          result.stdout
            .trim()
            .split('\n')
            .map((line) => (JSON.parse(line) as {profile?: string}).profile)
        const team = await cli(['audit', '--json', '-p', 'team'])
        assert.equal(team.code, 0, team.stderr)
        assert.deepEqual(profiles(team), ['team'])
        const all = await runCli(['audit', '--json'], {env: {...home.env, AGENTVAULT_PROFILE: 'team'}})
        assert.deepEqual(profiles(all).sort(), ['solo', 'team'])
      } finally {
        await home.dispose()
      }
    })

    it('audit --source offers only kinds that have an audit source', async () => {
      assert.deepEqual(manifest.commands.audit?.flags.source?.options, [
        'local',
        'agentsecrets',
        'agentauth',
        'all',
      ])
      for (const kind of ['openbao', 'sanctum'])
        await expectFailure(['audit', '--source', kind], {env: t.env}, {code: 2, message: /--source/})
    })

    it('every AGENTVAULT_* variable the README names exists: a flag’s [env] in the manifest, or one the code reads', async () => {
      const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
      const named = new Set(readme.match(/AGENTVAULT_[A-Z0-9_]+/g))
      const flagEnvs = new Set(
        Object.values(manifest.commands).flatMap((command) =>
          Object.values(command.flags).flatMap((flag) => (flag.env ? [flag.env] : [])),
        ),
      )
      const sources: string[] = []
      const walk = async (dir: string): Promise<void> => {
        for (const entry of await readdir(dir, {withFileTypes: true})) {
          const path = join(dir, entry.name)
          if (entry.isDirectory()) await walk(path)
          else if (/\.[jt]s$/.test(entry.name)) sources.push(await readFile(path, 'utf8'))
        }
      }

      await walk(join(ROOT, 'src'))
      await walk(join(ROOT, 'scripts'))
      const code = sources.join('\n')
      for (const name of named)
        assert.ok(
          flagEnvs.has(name) || new RegExp(`\\b${name}\\b`).test(code),
          `${name} is documented but read nowhere`,
        )
      // The README's promise is about flags: each one it pairs with a variable ("--flag … [env: X]") has it.
      for (const match of readme.matchAll(/^\s+(?:-\w, )?--([\w-]+).*\[env: (AGENTVAULT_\w+)\]$/gm)) {
        const [, flag, env] = match
        assert.ok(
          Object.values(manifest.commands).some((command) => command.flags[flag as string]?.env === env),
          `--${flag} [env: ${env}]`,
        )
      }

      assert.doesNotMatch(readme, /every flag has an `AGENTVAULT_\*` env var/)
    })

    it('hosts a secret may go to: --allow-domain everywhere; --allow-host and AGENTVAULT_ALLOW_HOST still work, with a warning', async () => {
      const offering = Object.entries(manifest.commands).filter(
        ([, command]) => 'allow-domain' in command.flags,
      )
      assert.deepEqual(offering.map(([id]) => id).sort(), [
        'call',
        'mcp',
        'mcp:install',
        'proxy:start',
        'run',
        'secrets:edit',
        'secrets:generate',
        'secrets:set',
        'use',
      ])
      for (const [id, command] of Object.entries(manifest.commands)) {
        assert.ok(!('allow-host' in command.flags), `${id} has no --allow-host of its own`)
        const flag = command.flags['allow-domain']
        if (flag?.aliases) assert.deepEqual([flag.aliases, flag.deprecateAliases], [['allow-host'], true], id)
      }

      const help = await runCli(['call', '--help'], {env: t.env})
      assert.match(help.stdout, /--allow-domain/)
      assert.doesNotMatch(help.stdout, /--allow-host/)
      const home = await tempHome()
      try {
        const deprecated =
          /^Warning: The "--allow-host" flag has been deprecated\. Use "--allow-domain" instead\.$/m
        // The old flag reaches the same option: 127.0.0.1 is allowed, so the refusal is the private-address guard's.
        assert.equal((await runCli(['secrets', 'set', 'K'], {env: home.env, input: 'v'})).code, 0)
        const [old, current] = await Promise.all(
          ['--allow-host', '--allow-domain'].map((flag) =>
            runCli(['call', 'http://127.0.0.1:9/x', '--bearer', 'K', flag, '127.0.0.1', '--json'], {
              env: home.env,
            }),
          ),
        )
        assert.equal(old?.code, 7)
        assert.equal(old?.stdout, current?.stdout)
        assert.match(old?.stdout ?? '', /private|loopback/i)
        assert.match(old?.stderr ?? '', deprecated)
        assert.doesNotMatch(current?.stderr ?? '', /deprecated/)
        // run (its own fast parser): the flag and the variable.
        const run = await runCli(['run', '--allow-host', 'a.example', '--', process.execPath, '-e', ''], {
          env: home.env,
        })
        assert.equal(run.code, 0, run.stderr)
        assert.match(run.stderr, deprecated)
        const fromEnv = await runCli(['run', '--', process.execPath, '-e', ''], {
          env: {...home.env, AGENTVAULT_ALLOW_HOST: 'a.example'},
        })
        assert.equal(fromEnv.code, 0, fromEnv.stderr)
        assert.match(
          fromEnv.stderr,
          /AGENTVAULT_ALLOW_HOST has been deprecated\. Use AGENTVAULT_ALLOW_DOMAIN instead/,
        )
        const bad = await runCli(['run', '--placeholders', '--', process.execPath, '-e', ''], {
          env: {...home.env, AGENTVAULT_ALLOW_DOMAIN: 'https://not-a-host/'},
        })
        assert.equal(bad.code, 2, 'AGENTVAULT_ALLOW_DOMAIN is read (a URL is not a host pattern)')
      } finally {
        await home.dispose()
      }
    })

    it('stdin: a flag that reads stdin is a --X-stdin switch, and every --X-stdin switch reads stdin', () => {
      for (const [id, command] of Object.entries(manifest.commands))
        for (const [name, flag] of Object.entries(command.flags)) {
          const text = `${flag.summary ?? ''} ${flag.description ?? ''}`
          if (name.endsWith('-stdin')) {
            assert.equal(flag.type, 'boolean', `${id} --${name} is a switch`)
            assert.match(text, /from stdin/, `${id} --${name} says it reads stdin`)
          } else if (flag.type === 'boolean') {
            assert.doesNotMatch(
              text,
              /\bfrom stdin\b/,
              `${id} --${name} reads stdin but is not named --${name}-stdin`,
            )
          }

          assert.doesNotMatch(name, /^(stdin|read)-|-from-stdin$/, `${id} --${name}: one naming pattern`)
        }
    })

    it('every flag the README pairs with an AGENTVAULT_* variable reads exactly that variable', async () => {
      const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
      // The command reference: each FLAGS line of a command names only its own variable (a
      // --X-stdin switch may name the variable that is the secret's other source).
      let checked = 0
      for (const section of readme.split(/^## `agentvault /m).slice(1)) {
        const id = (section.slice(0, section.indexOf('`')) ?? '').replaceAll(' ', ':')
        const block = /\nFLAGS\n([\s\S]*?)\n\n/.exec(section)?.[1] ?? ''
        for (const line of block.split('\n')) {
          const name = /^\s+(?:-\w, )?--([\w-]+)/.exec(line)?.[1]
          if (name === undefined || name.endsWith('-stdin')) continue
          for (const [variable] of line.matchAll(/AGENTVAULT_[A-Z0-9_]+/g)) {
            checked++
            assert.equal(flagNamed(manifest, id, name)?.env, variable, `${id} --${name} reads ${variable}`)
          }
        }
      }

      assert.ok(checked > 50, `${checked} flag/variable pairs checked`)
      // Prose: "`--flag …` (or `AGENTVAULT_X`" and "`--flag`, `AGENTVAULT_X`".
      const prose = readme.slice(0, readme.indexOf('<!-- commands -->'))
      const pairs = [
        ...prose.matchAll(/`--([\w-]+)[^`]*`\s*(?:\((?:repeatable;\s*)?or\s+|,\s*)`(AGENTVAULT_\w+)`/g),
      ]
      assert.ok(pairs.length >= 2, 'the prose pairs flags with variables')
      for (const [, name, variable] of pairs)
        assert.ok(
          Object.keys(manifest.commands).some(
            (id) => flagNamed(manifest, id, name as string)?.env === variable,
          ),
          `--${name} reads ${variable}`,
        )
    })
  })

  describe('tables fit the terminal', () => {
    it('secrets list and audit: within $COLUMNS, allowed domains shown, the audit’s host and error code too', async () => {
      const home = await tempHome()
      try {
        const env = {...home.env, COLUMNS: '90'}
        const set = await runCli(
          [
            'secrets',
            'set',
            'API_KEY',
            '--allow-domain',
            'api.example.com',
            '--allow-domain',
            '*.internal.example.com',
            '--description',
            'the key of the example API, used by the nightly deploy job and by people',
          ],
          {env, input: 'k'},
        )
        assert.equal(set.code, 0, set.stderr)
        const list = await runCli(['secrets', 'list'], {env})
        assert.equal(list.code, 0, list.stderr)
        const lines = list.stdout.trimEnd().split('\n')
        for (const line of lines) assert.ok(line.length <= 90, `${line.length}: ${line}`)
        assert.match(
          lines[0] ?? '',
          /^NAME\s+VERSION\s+UPDATED\s+TAGS\s+ALLOWED\s+DOMAINS\s+DESCRIPTION$|^NAME\s+VERSION/,
        )
        assert.match(list.stdout, /api\.example\.com,/)
        assert.match(list.stdout, /\*\.internal\.example\.com/)
        assert.match(list.stdout, /nightly/)
        // Without a terminal or $COLUMNS the rows stay whole (data for scripts).
        const piped = await runCli(['secrets', 'list'], {env: home.env})
        assert.match(
          piped.stdout,
          /api\.example\.com,\*\.internal\.example\.com\s+the key of the example API, used by the nightly deploy job and by people$/m,
        )

        const denied = await runCli(['call', 'https://other.example.org/v1', '--bearer', 'API_KEY'], {env})
        assert.equal(denied.code, 7, denied.stderr)
        const audit = await runCli(['audit'], {env: {...home.env, COLUMNS: '200'}})
        assert.equal(audit.code, 0, audit.stderr)
        assert.match(audit.stdout.split('\n')[0] ?? '', /\bHOST\b.*\bERROR\b/)
        const row = audit.stdout.split('\n').find((line) => /\scall\s/.test(line)) ?? ''
        assert.match(row, /other\.example\.org\s+denied\s+7\s+[A-Z_]+\s+\d+$/)
        const narrow = await runCli(['audit'], {env: {...home.env, COLUMNS: '100'}})
        for (const line of narrow.stdout.trimEnd().split('\n')) assert.ok(line.length <= 100, line)
      } finally {
        await home.dispose()
      }
    })
  })
})
