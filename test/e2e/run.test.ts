import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {
  BIN,
  collect,
  ROOT,
  runCli,
  startCli,
  tempHome,
  waitForOutput,
  withNodeOnPath,
} from '../helpers/cli.js'

const CANARY = 'canary-run-7f3a9c2e'
const CHILD = join(ROOT, 'test', 'fixtures', 'signal-child.cjs')
const MASK = '<concealed by agentvault>'

describe('e2e: run', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const run = (args: string[], input?: string, env: NodeJS.ProcessEnv = {}) =>
    runCli(['run', ...args], {env: {...t.env, ...env}, input})

  before(async () => {
    t = await tempHome()
    const stored = await runCli(['secrets', 'set', 'K'], {env: t.env, input: CANARY})
    assert.equal(stored.code, 0, stored.stderr)
  })

  after(() => t.dispose())

  it('injects the value and masks it in piped stdout and stderr', async () => {
    const result = await run(['--env', 'K=local://K', '--', 'sh', '-c', 'echo "out $K"; echo "err $K" >&2'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, `out ${MASK}\n`)
    assert.match(result.stderr, new RegExp(`err ${MASK}`))
    assert.ok(!result.stderr.includes(CANARY))
  })

  it('masks through an ordinary pipe when no socket can be made in the temp dir', async () => {
    const script = 'echo "out $K"; echo "err $K" >&2; printf %s "$K" | base64'
    const result = await run(['--env', 'K=local://K', '--', 'sh', '-c', script], undefined, {
      DEBUG: 'agentvault:run',
      TMPDIR: join(t.home, 'no-such-dir'),
    })
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /masking fd 1 through a pipe: no socket \(ENOENT\)/)
    assert.equal(result.stdout, `out ${MASK}\n${MASK}\n`)
    assert.match(result.stderr, new RegExp(`err ${MASK}`))
    assert.ok(!result.stderr.includes(CANARY))
  })

  it('--mask never passes the value through', async () => {
    const result = await run(['--mask', 'never', '--env', 'K=local://K', '--', 'sh', '-c', 'echo "$K"'])
    assert.equal(result.stdout, `${CANARY}\n`)
  })

  it('masks base64, URL-encoded and JSON-escaped forms', async () => {
    const script = `printf '%s\\n' "$(printf %s "$K" | base64)"; node -e 'console.log(encodeURIComponent(process.env.K)); console.log(JSON.stringify(process.env.K))'`
    const result = await run(['--env', 'K=local://K', '--', 'sh', '-c', script])
    assert.equal(result.code, 0, result.stderr)
    assert.ok(!result.stdout.includes(CANARY))
    assert.ok(!result.stdout.includes(Buffer.from(CANARY).toString('base64')))
    assert.equal(result.stdout.split(MASK).length - 1, 3, result.stdout)
  })

  for (const code of [0, 3, 255]) {
    it(`passes exit code ${code} through`, async () => {
      const result = await run(['--env', 'K=local://K', '--', 'sh', '-c', `exit ${code}`])
      assert.equal(result.code, code)
    })
  }

  it('reports death by SIGTERM as 143', async () => {
    const result = await run(['--env', 'K=local://K', '--', 'sh', '-c', 'kill -TERM $$'])
    assert.equal(result.code, 143)
  })

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) {
    it(`forwards ${signal} to the child exactly once; stdin reaches the child`, async () => {
      const child = startCli(['run', '--env', 'K=local://K', '--', process.execPath, CHILD], {
        env: {...t.env, EXIT_CODE: '7'},
        openStdin: true,
      })
      const done = collect(child)
      await waitForOutput(child, 'ready')
      child.kill(signal)
      await waitForOutput(child, `got ${signal}`)
      child.stdin?.write('hello\n')
      await waitForOutput(child, 'stdin hello')
      child.stdin?.end('report\n')
      const result = await done
      assert.equal(result.code, 7, result.stderr)
      const counts = JSON.parse(/counts (.*)/.exec(result.stdout)?.[1] ?? '{}') as Record<string, number>
      assert.deepEqual(counts, {[signal]: 1})
    })
  }

  it('reads --env-file references and plain values; --env wins; env-var references resolve', async () => {
    const file = join(t.home, 'app.env')
    await writeFile(
      file,
      '# comment\nexport FROM_FILE=local://K\nPLAIN="plain value"\nOVERRIDE=plain-from-file\n',
    )
    const result = await run(
      [
        '--env-file',
        file,
        '--env',
        'OVERRIDE=local://K',
        '--',
        'sh',
        '-c',
        'echo "$FROM_FILE|$PLAIN|$OVERRIDE|$IN_ENV|$KEEP"',
      ],
      undefined,
      {IN_ENV: 'local://K', KEEP: 'kept'},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, `${MASK}|plain value|${MASK}|${MASK}|kept\n`)
  })

  it('--clean-env drops unrelated variables but keeps PATH', async () => {
    const result = await run(
      ['--clean-env', '--env', 'K=local://K', '--', 'sh', '-c', 'echo "[$KEEP]|$K"'],
      undefined,
      {
        KEEP: 'kept',
      },
    )
    assert.equal(result.stdout, `[]|${MASK}\n`)
  })

  it('passes binary output (all 256 byte values) unchanged', async () => {
    const script = 'process.stdout.write(Buffer.from(Array.from({length: 256}, (_, i) => i)))'
    const result = await run(['--env', 'K=local://K', '--', process.execPath, '-e', script])
    assert.deepEqual(result.stdoutBytes, Buffer.from(Array.from({length: 256}, (_, i) => i)))
  })

  it('masks a value split across two writes', async () => {
    const script = `const v = process.env.K; process.stdout.write(v.slice(0, 5)); setTimeout(() => process.stdout.write(v.slice(5) + '\\n'), 10)`
    // A long idle flush: however slow the machine, the first part is still held when the rest comes.
    const result = await run(['--env', 'K=local://K', '--', process.execPath, '-e', script], undefined, {
      AGENTVAULT_MASK_FLUSH_MS: '60000',
    })
    assert.equal(result.stdout, `${MASK}\n`)
  })

  it('a reader that goes away gives the child SIGPIPE (141), as in a shell pipeline', async () => {
    const child = startCli(['run', '--env', 'K=local://K', '--', 'yes'], {env: t.env})
    const exited = new Promise<null | number>((resolve) => {
      child.once('close', (code) => resolve(code))
    })
    child.stdout?.once('data', () => child.stdout?.destroy())
    assert.equal(await exited, 141)
  })

  // As users run it (the launcher execs node in the same process) and as `node bin/run.js`.
  for (const launcher of [BIN, `${process.execPath} ${BIN}`]) {
    it(`a Ctrl-C typed on the terminal reaches the child once, not twice (under script(1), ${launcher.includes(' ') ? 'node bin/run.js' : 'bin/run.js'})`, async function () {
      if (spawnSync('script', ['--version']).error) this.skip()
      const command = `${launcher} run --env K=local://K -- ${process.execPath} ${CHILD}`
      const pty = spawn('script', ['-qec', command, '/dev/null'], {
        env: withNodeOnPath({...process.env, ...t.env, EXIT_CODE: '7'}),
      })
      const done = collect(pty)
      await waitForOutput(pty, 'ready')
      pty.stdin?.write('\u0003')
      await waitForOutput(pty, 'got SIGINT')
      pty.stdin?.write('report\n')
      await waitForOutput(pty, 'counts')
      pty.stdin?.end()
      const result = await done
      const counts = JSON.parse(/counts (\{.*\})/.exec(result.stdout)?.[1] ?? '{}') as Record<string, number>
      assert.deepEqual(counts, {SIGINT: 1})
    })
  }

  it('own failures: exit codes per the table and nothing on stdout', async () => {
    const missing = await run(['--env', 'X=local://MISSING', '--', 'true'])
    assert.equal(missing.code, 6)
    assert.equal(missing.stdout, '')
    assert.match(missing.stderr, /Error: .*\nTry this: /)
    const syntax = await run(['--env', 'X=local://a/../b', '--', 'true'])
    assert.equal(syntax.code, 2)
    assert.equal(syntax.stdout, '')
    const noCommand = await run(['--env', 'X=local://K'])
    assert.equal(noCommand.code, 2)
    const notFound = await run(['--env', 'K=local://K', '--', 'definitely-not-a-command-xyz'])
    assert.equal(notFound.code, 2)
    assert.match(notFound.stderr, /command not found/)
    // A mistyped option value: the nearest option, in the Try this: line.
    const typo = await run(['--mask', 'alway', '--', 'true'])
    assert.equal(typo.code, 2)
    assert.equal(typo.stdout, '')
    assert.equal(
      typo.stderr,
      'Error: --mask must be one of auto, always, never\nTry this: Did you mean --mask always?\n',
    )
  })

  it('names every missing reference in one error (exit 6), and starts nothing', async () => {
    const file = join(t.home, 'missing.env')
    await writeFile(file, 'FROM_FILE=local://MISSING_IN_FILE\nPRESENT=local://K\n')
    const marker = join(t.home, 'started')
    const result = await run([
      '--env-file',
      file,
      '--env',
      'A=local://MISSING_A',
      '--env',
      'B=local://MISSING_B',
      '--',
      'sh',
      '-c',
      `touch ${marker}`,
    ])
    assert.equal(result.code, 6, result.stderr)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /^Error: .+\nTry this: .+$/m)
    for (const name of ['MISSING_A', 'MISSING_B', 'MISSING_IN_FILE'])
      assert.match(result.stderr, new RegExp(`local://${name}\\b`), `${name} is named: ${result.stderr}`)
    assert.doesNotMatch(result.stderr, /local:\/\/K\b/, 'the reference that resolved is not blamed')
    assert.ok(!result.stderr.includes(CANARY))
    const {existsSync} = await import('node:fs')
    assert.equal(existsSync(marker), false, 'the command never started')
  })

  it('warns about an env-file value with a misspelt reference scheme; ordinary URLs stay quiet', async () => {
    const file = join(t.home, 'typo.env')
    await writeFile(
      file,
      [
        'TYPO=locl://PATH_PART_NOT_ECHOED',
        'BAO=bao+kv2://secret/app#token',
        'WEB=https://example.com/x',
        'DB=postgres://user:pw@db.internal:5432/app',
        'CACHE=redis://cache:6379/0',
        'QUEUE=amqp://mq',
        'BUCKET=s3://bucket/key',
        'PLAIN=plain value',
        '',
      ].join('\n'),
    )
    const result = await run(['--env-file', file, '--', 'sh', '-c', 'echo "$TYPO|$WEB"'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(
      result.stdout,
      'locl://PATH_PART_NOT_ECHOED|https://example.com/x\n',
      'passed through unchanged',
    )
    const warnings = result.stderr.split('\n').filter((line) => line.startsWith('Warning: '))
    assert.equal(warnings.length, 2, result.stderr)
    assert.match(warnings[0] ?? '', /typo\.env:1: TYPO .*"locl:\/\/" is not a known scheme.*local:\/\//)
    assert.match(warnings[1] ?? '', /typo\.env:2: BAO .*"bao\+kv2:\/\/".*openbao\+kv2:\/\//)
    assert.doesNotMatch(
      result.stderr,
      /PATH_PART_NOT_ECHOED|secret\/app/,
      'the warning never quotes the value',
    )
  })

  it('--mask auto leaves a TTY child unmasked and attached (under script(1))', async function () {
    const probe = spawnSync('script', ['--version'])
    if (probe.error) this.skip()
    const command = `${BIN} run --env K=local://K -- ${process.execPath} -e "console.log(String(process.stdout.isTTY) + ':' + process.env.K)"`
    const result = spawnSync('script', ['-qec', command, '/dev/null'], {
      env: withNodeOnPath({...process.env, ...t.env}),
      input: '',
    })
    const output = result.stdout.toString()
    assert.match(output, new RegExp(`true:${CANARY}`))
  })
})
