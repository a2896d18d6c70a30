/**
 * The Canary suite (product.md §10): one unique value goes into the vault, every user-facing
 * command runs with it (plainly and with DEBUG=*), and the value — in clear, base64 at any
 * alignment, or hex — must never appear anywhere but where the user explicitly asked for it:
 * `secrets get --reveal` and `run --mask never` on stdout.
 */
import assert from 'node:assert/strict'
import {type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type CliResult, collect, runCli, startCli, tempHome, waitForOutput} from '../helpers/cli.js'
import {filesUnder} from '../helpers/e2e.js'

const CANARY = `canary-${randomBytes(16).toString('hex')}`
const MASK = '<concealed by agentvault>'

/**
 * Every form in which the canary could leak: clear text, hex, and base64 at each of the three byte
 * alignments (only the characters that depend on the canary's bytes alone, so an encoding of a
 * larger buffer that contains it is caught too).
 */
function leakForms(value: string): Array<[string, string]> {
  const bytes = Buffer.from(value)
  const forms: Array<[string, string]> = [
    ['clear', value],
    ['hex', bytes.toString('hex')],
    ['base64', bytes.toString('base64')],
    ['base64url', bytes.toString('base64url')],
  ]
  for (const shift of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes])
      .toString('base64')
      .replace(/=+$/, '')
    const firstClean = shift === 0 ? 0 : 4
    const lastClean = Math.floor((shift + bytes.length) / 3) * 4
    forms.push([`base64 core at offset ${shift}`, encoded.slice(firstClean, lastClean)])
  }

  return forms
}

const FORMS = leakForms(CANARY)

function assertNoCanary(text: Buffer | string, where: string): void {
  const haystack = typeof text === 'string' ? text : text.toString('latin1')
  for (const [form, needle] of FORMS)
    assert.ok(!haystack.includes(needle), `the canary (${form}) appears in ${where}`)
}

interface Check {
  /** Expected exit code (default 0). */
  code?: number
  env?: NodeJS.ProcessEnv
  input?: string
  /** stdout is the explicit reveal: it must be exactly this (and is exempt from the scan). */
  revealedStdout?: string
  /** Not an oclif command (the `run` fast path), so DEBUG=* has no oclif namespaces to print. */
  withoutOclif?: boolean
}

/** A command printing $CAN in clear, base64, URL- and JSON-encoded, split across writes, on stdout and stderr. */
const printer = (exitCode: number): string[] => [
  process.execPath,
  '-e',
  `const v = process.env.CAN
   console.log('plain', v)
   console.log('base64', Buffer.from(v).toString('base64'))
   console.log('url', encodeURIComponent(v))
   console.log('json', JSON.stringify({v}))
   console.error('stderr', v, Buffer.from(v).toString('base64'))
   process.stdout.write(v.slice(0, 10))
   setTimeout(() => { process.stdout.write(v.slice(10) + '\\n'); process.exitCode = ${exitCode} }, 20)`,
]

describe('e2e: canary — a secret value never leaks', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let home: string
  const live: ChildProcess[] = []

  /** Run a command twice — plainly and with DEBUG=* — and scan its stdout and stderr. */
  const check = async (
    command: ((debug: boolean) => string[]) | string[],
    options: Check = {},
  ): Promise<CliResult[]> => {
    const results: CliResult[] = []
    for (const debug of [false, true]) {
      const args = typeof command === 'function' ? command(debug) : command
      const label = `${debug ? 'DEBUG=* ' : ''}agentvault ${args.join(' ')}`
      const env = {...t.env, ...options.env, ...(debug ? {DEBUG: '*'} : {})}
      const result = await runCli(args, {env, input: options.input})
      assert.equal(
        result.code,
        options.code ?? 0,
        `${label}: exit ${result.code}; stderr ${result.stderr.slice(-2000)}`,
      )
      assertNoCanary(result.stderr, `stderr of ${label}`)
      if (options.revealedStdout === undefined) assertNoCanary(result.stdoutBytes, `stdout of ${label}`)
      else assert.equal(result.stdout, options.revealedStdout, `stdout of ${label}`)
      if (debug && !options.withoutOclif)
        assert.match(result.stderr, /oclif/, `${label} printed debug output`)
      results.push(result)
    }

    return results
  }

  before(async () => {
    t = await tempHome()
    home = t.env.AGENTVAULT_HOME as string
    // A configured profile, so that config.json exists and is scanned too.
    await check((debug) => [
      'profiles',
      'add',
      debug ? 'team-debug' : 'team',
      '--kind',
      'local',
      '--set',
      'allowedDomains=["api.example.com"]',
    ])
  })

  afterEach(() => {
    for (const child of live.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })

  after(() => t.dispose())

  describe('secrets', () => {
    it('set from stdin, --from-env and --from-file', async () => {
      await check(['secrets', 'set', 'CANARY', '--description', 'the canary', '--tag', 'canary'], {
        input: `${CANARY}\n`,
      })
      await check(['secrets', 'set', 'CANARY_ENV', '--from-env', 'CANARY_SOURCE'], {
        env: {CANARY_SOURCE: CANARY},
      })
      const file = join(t.home, 'canary-source.txt')
      await writeFile(file, CANARY)
      await check(['secrets', 'set', 'CANARY_FILE', '--from-file', file])
      await rm(file)
      // Both forms above ran twice: each secret is now at version 2.
      const listed = JSON.parse(
        (await runCli(['secrets', 'list', 'CANARY', '--json'], {env: t.env})).stdout,
      ) as {
        secrets: Array<{name: string; version: number}>
      }
      assert.deepEqual(
        listed.secrets.map((s) => [s.name, s.version]),
        [
          ['CANARY', 2],
          ['CANARY_ENV', 2],
          ['CANARY_FILE', 2],
        ],
      )
    })

    it('list, list --json, list PREFIX', async () => {
      await check(['secrets', 'list'])
      await check(['secrets', 'list', '--json'])
      await check(['secrets', 'list', 'CANARY_'])
    })

    it('get without --reveal refuses and says nothing of the value', async () => {
      await check(['secrets', 'get', 'CANARY'], {code: 2})
      await check(['secrets', 'get', 'CANARY', '--json'], {code: 2})
    })

    it('get --reveal: stdout is the one place the value appears (exactly)', async () => {
      await check(['secrets', 'get', 'CANARY', '--reveal'], {revealedStdout: CANARY})
      await check(['secrets', 'get', 'local://CANARY_FILE', '--reveal'], {revealedStdout: CANARY})
      await check(['secrets', 'get', 'CANARY_ENV', '--reveal', '--json'], {
        revealedStdout: `${JSON.stringify({reference: 'local://CANARY_ENV', encoding: 'utf8', value: CANARY}, null, 2)}\n`,
      })
    })

    it('errors around the secret: missing names, bad references, refused deletes', async () => {
      await check(['secrets', 'get', 'CANARY_MISSING', '--reveal'], {code: 6})
      await check(['secrets', 'get', 'local://CANARY/../x', '--reveal'], {code: 2})
      await check(['secrets', 'delete', 'CANARY'], {code: 2})
      await check(['secrets', 'set', 'CANARY_EMPTY'], {code: 2, input: ''})
    })
  })

  describe('workflows: import, export, inject, edit, rename, generate', () => {
    it('import names secrets and never prints a value; edit and rename touch no value', async () => {
      const file = join(t.home, 'canary-import.env')
      await writeFile(file, `CANARY_IMPORTED="${CANARY}"\nCANARY_REF=local://CANARY\n`)
      await check(['secrets', 'import', file])
      await check(['secrets', 'import', file, '--overwrite', '--json'])
      await check(['secrets', 'import', '-'], {input: `CANARY_STDIN=${CANARY}\nbad line\n`, code: 2})
      await rm(file)
      await check(['secrets', 'edit', 'CANARY_IMPORTED', '--description', 'imported canary'])
      await check((debug) => [
        'secrets',
        'rename',
        debug ? 'CANARY_MOVED' : 'CANARY_IMPORTED',
        debug ? 'CANARY_IMPORTED' : 'CANARY_MOVED',
      ])
      await check(['secrets', 'generate', 'CANARY_GENERATED', '--overwrite'])
    })

    it('export: refused without --reveal; with it, stdout is the one place the value appears', async () => {
      await check(['secrets', 'export'], {code: 2})
      await check(['secrets', 'export', 'CANARY_ENV', '--reveal'], {
        revealedStdout: `CANARY_ENV="${CANARY}"\n`,
      })
    })

    it('inject: piped stdout and the -o file get the value; nothing else does', async () => {
      await check(['inject'], {input: 'k={{ local://CANARY }}', revealedStdout: `k=${CANARY}`})
      const out = join(t.home, 'canary-inject.out')
      await check(['inject', '-o', out, '--json'], {input: 'k={{ local://CANARY }}'})
      assert.equal(await readFile(out, 'utf8'), `k=${CANARY}`)
      await rm(out)
      await check(['inject', '-o', out], {input: 'k={{ local://CANARY }} {{ local://CANARY_NOPE }}', code: 6})
      assert.equal(existsSync(out), false)
    })
  })

  describe('run', () => {
    it('masks stdout and stderr (auto: pipes; always)', async () => {
      for (const mask of ['auto', 'always']) {
        const results = await check(
          ['run', '--mask', mask, '--env', 'CAN=local://CANARY', '--', ...printer(0)],
          {
            withoutOclif: true,
          },
        )
        for (const result of results) {
          assert.equal(result.stdout.split(MASK).length - 1, 5, result.stdout)
          assert.ok(result.stderr.includes(`stderr ${MASK} ${MASK}`), result.stderr)
        }
      }
    })

    it('a failing command: its exit code, still masked', async () => {
      await check(['run', '--env', 'CAN=local://CANARY', '--', ...printer(3)], {code: 3, withoutOclif: true})
    })

    it('agentvault’s own failure with the canary resolved alongside a missing secret', async () => {
      await check(
        ['run', '--env', 'CAN=local://CANARY', '--env', 'NOPE=local://CANARY_MISSING', '--', ...printer(0)],
        {
          code: 6,
          withoutOclif: true,
        },
      )
    })

    it('references from an env file and from the environment', async () => {
      const file = join(t.home, 'canary.env')
      await writeFile(file, 'CAN=local://CANARY_FILE\n')
      await check(['run', '--env-file', file, '--', ...printer(0)], {withoutOclif: true})
      await check(['run', '--', ...printer(0)], {env: {CAN: 'local://CANARY_ENV'}, withoutOclif: true})
    })

    it('--mask never: the value reaches stdout as asked, and still not stderr', async () => {
      await check(
        [
          'run',
          '--mask',
          'never',
          '--env',
          'CAN=local://CANARY',
          '--',
          process.execPath,
          '-e',
          'console.log(process.env.CAN)',
        ],
        {revealedStdout: `${CANARY}\n`, withoutOclif: true},
      )
    })

    it('no process has the value in its argv while `run` executes', async function () {
      if (!existsSync('/proc/self/cmdline')) this.skip()
      const script = join(t.home, 'wait-for-stdin.cjs')
      await writeFile(
        script,
        "process.stdout.write('ready\\n'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0))\n",
      )
      for (const debug of [false, true]) {
        const child = startCli(['run', '--env', 'CAN=local://CANARY', '--', process.execPath, script], {
          env: {...t.env, ...(debug ? {DEBUG: '*'} : {})},
          openStdin: true,
        })
        live.push(child)
        const done = collect(child)
        await waitForOutput(child, 'ready')

        let scanned = 0
        let sawChild = false
        let childEnviron = ''
        for (const pid of (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry))) {
          let argv: Buffer
          try {
            argv = await readFile(`/proc/${pid}/cmdline`)
          } catch {
            continue // the process ended while we looked
          }

          scanned++
          assertNoCanary(argv, `argv of pid ${pid} (${argv.toString().replaceAll('\0', ' ').slice(0, 200)})`)
          if (argv.includes(script) && !argv.includes('bin/run.js')) {
            sawChild = true
            childEnviron = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '')
          }
        }

        assert.ok(scanned > 2, 'the scan saw the processes')
        assert.ok(sawChild, 'the scan saw the command agentvault started')
        // The command did get the value — in its environment, which is where it belongs.
        assert.ok(childEnviron.split('\0').includes(`CAN=${CANARY}`), 'the command received the value')

        child.stdin?.end()
        const result = await done
        assert.equal(result.code, 0, result.stderr)
        assertNoCanary(result.stderr, 'stderr of run')
        assertNoCanary(result.stdoutBytes, 'stdout of run')
      }
    })
  })

  describe('everything else', () => {
    it('status, whoami (and --json)', async () => {
      await check(['status'])
      await check(['status', '--json'])
      await check(['whoami'])
    })

    it('profiles list/use (and --json)', async () => {
      await check(['profiles', 'list'])
      await check(['profiles', 'list', '--json'])
      await check(['profiles', 'use', 'local'])
    })

    it('audit, audit --json, audit filters, audit verify', async () => {
      const [table] = await check(['audit'])
      assert.match(table?.stdout ?? '', /local:\/\/CANARY/, 'the audit trail names the secret')
      await check(['audit', '--json'])
      await check(['audit', '--secret', 'CANARY', '--json'])
      await check(['audit', 'verify'])
      await check(['audit', 'verify', '--json'])
    })

    it('login local, logout', async () => {
      await check(['login', 'local'])
      await check(['login', 'local', '--json'])
      await check(['logout'])
      await check(['logout', '--json'])
    })

    it('secrets delete --yes', async () => {
      await check(['secrets', 'set', 'CANARY_DOOMED'], {input: CANARY})
      await check(['secrets', 'set', 'CANARY_DOOMED_TOO'], {input: CANARY})
      await check((debug) => ['secrets', 'delete', debug ? 'CANARY_DOOMED_TOO' : 'CANARY_DOOMED', '--yes'])
      await check(['secrets', 'delete', 'CANARY_DOOMED', '--yes'], {code: 6})
    })
  })

  describe('files', () => {
    it('no file in the home holds the value — config.json, audit.log, the sealed vault or anything else', async () => {
      const files = await filesUnder(home)
      const names = new Set(files.map((file) => file.slice(home.length + 1)))
      for (const expected of ['config.json', 'audit.log', 'vault.json', 'vault.key'])
        assert.ok(names.has(expected), `${expected} exists, so the scan covers it`)
      for (const file of files) assertNoCanary(await readFile(file), file)
      // Nothing outside the home either (the suite's own files were removed after use).
      for (const file of await filesUnder(t.home)) {
        if (file.endsWith('canary.env') || file.endsWith('wait-for-stdin.cjs')) continue
        assertNoCanary(await readFile(file), file)
      }
    })
  })
})
