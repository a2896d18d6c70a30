import type {ChildProcess} from 'node:child_process'

import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {cp, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type CliResult, collect, runCli, startCli, tempHome, waitForOutput} from '../helpers/cli.js'
import {expectFailure, parseJson, watchOutput} from '../helpers/e2e.js'

interface AuditRecord {
  backend?: string
  command: string
  duration_ms: number
  error_code?: string
  exit_code: number
  hash: string
  operation?: string
  outcome: 'denied' | 'error' | 'ok'
  prev: string
  profile?: string
  references?: string[]
  seq: number
  source?: string
  time: string
}

const VALUES = {ALPHA: 'alpha-audit-value', BETA: 'beta-audit-value'}

/** The audit log's line format (src/core/audit.ts): JSON with keys sorted, no whitespace. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`
  return JSON.stringify(value)
}

function parseLines(stdout: string): AuditRecord[] {
  return stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as AuditRecord)
}

/** `audit verify` fails, naming `line` as the first bad entry. */
async function expectBroken(env: NodeJS.ProcessEnv, line: number): Promise<void> {
  const {error, plain} = await expectFailure(
    ['audit', 'verify'],
    {env},
    {code: 3, errorCode: 'AUDIT_CHAIN_BROKEN', message: new RegExp(`line ${line}\\b`)},
  )
  assert.equal((error.details?.firstBad as {line: number}).line, line)
  assert.match(plain.stderr, /hash chain is broken/)
}

const lineCount = (text: string): number => text.split('\n').length - 1

/** The seqs of the complete JSON lines printed so far. */
const printedSeqs = (text: string): number[] =>
  parseLines(text.slice(0, text.lastIndexOf('\n') + 1)).map((record) => record.seq)

describe('e2e: audit', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let home: string
  let all: AuditRecord[]
  const cli = (args: string[], input?: string, env: NodeJS.ProcessEnv = {}) =>
    runCli(args, {env: {...t.env, ...env}, input})
  const audit = async (...args: string[]): Promise<AuditRecord[]> => {
    const result = await cli(['audit', ...args, '--json'])
    assert.equal(result.code, 0, result.stderr)
    return parseLines(result.stdout)
  }

  const seqs = (records: AuditRecord[]): number[] => records.map((record) => record.seq)

  before(async () => {
    t = await tempHome()
    home = t.env.AGENTVAULT_HOME as string
    const steps: Array<[string[], string | undefined, number]> = [
      [['secrets', 'set', 'ALPHA'], VALUES.ALPHA, 0], // 1
      [['secrets', 'set', 'BETA'], VALUES.BETA, 0], // 2
      [['secrets', 'get', 'ALPHA', '--reveal'], undefined, 0], // 3
      [['secrets', 'get', 'MISSING', '--reveal'], undefined, 6], // 4
      [
        ['run', '--env', 'A=local://ALPHA', '--env', 'B=local://BETA', '--', 'sh', '-c', 'exit 3'],
        undefined,
        3,
      ], // 5
      [['secrets', 'list'], undefined, 0], // 6
      [['secrets', 'delete', 'BETA', '--yes'], undefined, 0], // 7
      // Commands that touch no secret leave no record.
      [['status'], undefined, 0],
      [['profiles', 'list'], undefined, 0],
      [['secrets', 'get', 'ALPHA'], undefined, 2],
      [['audit'], undefined, 0],
      [['audit', 'verify'], undefined, 0],
    ]
    for (const [args, input, code] of steps) {
      const result = await cli(args, input)
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`)
    }

    all = await audit()
  })

  /** Long-running children of the current test: killed if the test fails before they end. */
  const live: ChildProcess[] = []
  const start = (args: string[], options: Parameters<typeof startCli>[1]): ChildProcess => {
    const child = startCli(args, options)
    live.push(child)
    return child
  }

  afterEach(() => {
    for (const child of live.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })

  after(() => t.dispose())

  describe('the trail', () => {
    it('--json: one object per line, one per secret-touching command, with command, references, outcome, exit code', async () => {
      assert.deepEqual(
        all.map((r) => [r.seq, r.command, r.references ?? [], r.operation ?? '', r.outcome, r.exit_code]),
        [
          [1, 'secrets set', ['local://ALPHA'], 'set', 'ok', 0],
          [2, 'secrets set', ['local://BETA'], 'set', 'ok', 0],
          [3, 'secrets get', ['local://ALPHA'], 'get', 'ok', 0],
          [4, 'secrets get', ['local://MISSING'], 'get', 'error', 6],
          [5, 'run', ['local://ALPHA', 'local://BETA'], '', 'ok', 3],
          [6, 'secrets list', [], 'list', 'ok', 0],
          [7, 'secrets delete', ['local://BETA'], 'delete', 'ok', 0],
        ],
      )
      for (const [i, record] of all.entries()) {
        assert.equal(record.profile, 'local')
        assert.equal(record.backend, 'local')
        assert.equal(record.source, 'local')
        assert.ok(Number.isInteger(record.duration_ms) && record.duration_ms >= 0)
        assert.ok(!Number.isNaN(Date.parse(record.time)))
        assert.match(record.hash, /^[\da-f]{64}$/)
        assert.equal(record.prev, i === 0 ? '0'.repeat(64) : all[i - 1]?.hash, 'records form a hash chain')
      }

      const raw = await readFile(join(home, 'audit.log'), 'utf8')
      for (const value of Object.values(VALUES)) assert.ok(!raw.includes(value), 'no value in the log')
    })

    it('a failed `secrets get` of a missing secret is recorded with outcome error, exit 6 and its code', () => {
      const failed = all.find((record) => record.references?.includes('local://MISSING'))
      assert.equal(failed?.outcome, 'error')
      assert.equal(failed?.exit_code, 6)
      assert.equal(failed?.error_code, 'SECRET_NOT_FOUND')
    })

    it('table: a header and one row per event', async () => {
      const result = await cli(['audit'])
      assert.equal(result.code, 0, result.stderr)
      const lines = result.stdout.trimEnd().split('\n')
      assert.match(
        lines[0] ?? '',
        /^TIME\s+COMMAND\s+PROFILE\s+REFERENCES\s+OPERATION\s+HOST\s+OUTCOME\s+EXIT\s+ERROR\s+MS$/,
      )
      assert.equal(lines.length, 1 + all.length)
      assert.match(
        lines[4] ?? '',
        /^\S+\s+secrets get\s+local\s+local:\/\/MISSING\s+get\s+error\s+6\s+SECRET_NOT_FOUND\s+\d+$/,
      )
      assert.match(lines[5] ?? '', /^\S+\s+run\s+local\s+local:\/\/ALPHA,local:\/\/BETA\s+ok\s+3\s+\d+$/)
    })
  })

  describe('filters', () => {
    it('--secret matches reference names (a bare name too)', async () => {
      assert.deepEqual(seqs(await audit('--secret', 'ALPHA')), [1, 3, 5])
      assert.deepEqual(seqs(await audit('--secret', 'local://BETA')), [2, 5, 7])
      assert.deepEqual(seqs(await audit('--secret', 'MISSING')), [4])
    })

    it('--status', async () => {
      assert.deepEqual(seqs(await audit('--status', 'error')), [4])
      assert.deepEqual(seqs(await audit('--status', 'ok')), [1, 2, 3, 5, 6, 7])
      assert.deepEqual(seqs(await audit('--status', 'denied')), [])
    })

    it('--command: a command id or its leading words', async () => {
      assert.deepEqual(seqs(await audit('--command', 'run')), [5])
      assert.deepEqual(seqs(await audit('--command', 'secrets get')), [3, 4])
      assert.deepEqual(seqs(await audit('--command', 'secrets')), [1, 2, 3, 4, 6, 7])
      assert.deepEqual(seqs(await audit('--command', 'secret')), [], 'whole words only')
    })

    it('--limit keeps the most recent N', async () => {
      assert.deepEqual(seqs(await audit('--limit', '2')), [6, 7])
      assert.deepEqual(seqs(await audit('--limit', '1', '--command', 'secrets get')), [4])
    })

    it('--since / --until: durations, ISO times of the records themselves, and `now`', async () => {
      assert.deepEqual(seqs(await audit('--since', '1h')), seqs(all))
      assert.deepEqual(seqs(await audit('--until', 'now')), seqs(all))
      const third = all[2]?.time as string
      const second = all[1]?.time as string
      assert.deepEqual(seqs(await audit('--since', third)), [3, 4, 5, 6, 7], 'inclusive lower bound')
      assert.deepEqual(seqs(await audit('--until', second)), [1, 2], 'inclusive upper bound')
      assert.deepEqual(seqs(await audit('--since', second, '--until', third)), [2, 3])
      assert.deepEqual(seqs(await audit('--since', '2999-01-01')), [])
      assert.deepEqual(seqs(await audit('--until', '2000-01-01T00:00:00Z')), [])
    })

    it('filters combine', async () => {
      assert.deepEqual(
        seqs(await audit('--command', 'secrets get', '--status', 'ok', '--secret', 'ALPHA')),
        [3],
      )
    })

    it('no match: the table form says so on stderr, exit 0', async () => {
      const result = await cli(['audit', '--status', 'denied'])
      assert.equal(result.code, 0)
      assert.equal(result.stdout, '')
      assert.match(result.stderr, /No audit events match/)
    })

    it('bad filter values are usage errors (exit 2)', async () => {
      await expectFailure(
        ['audit', '--since', 'last tuesday'],
        {env: t.env},
        {code: 2, errorCode: 'BAD_TIME'},
      )
      await expectFailure(['audit', '--until', '5 parsecs'], {env: t.env}, {code: 2, errorCode: 'BAD_TIME'})
      await expectFailure(['audit', '--limit', '0'], {env: t.env}, {code: 2})
      await expectFailure(['audit', '--status', 'maybe'], {env: t.env}, {code: 2})
    })
  })

  describe('time is when a command started', () => {
    it('a long `run` sorts before a command that started and ended while it ran', async () => {
      const child = start(
        [
          'run',
          '--env',
          'A=local://ALPHA',
          '--',
          process.execPath,
          '-e',
          'console.log("ready"); process.stdin.resume(); process.stdin.on("end", () => process.exit(0))',
        ],
        {env: t.env, openStdin: true},
      )
      const done = collect(child)
      await waitForOutput(child, 'ready')
      const inner = await cli(['secrets', 'list', 'ALPHA'])
      assert.equal(inner.code, 0, inner.stderr)
      child.stdin?.end()
      assert.equal((await done).code, 0)

      const records = await audit('--since', all.at(-1)?.time as string)
      const outer = records.find((r) => r.command === 'run' && r.seq > 7)
      const during = records.find((r) => r.command === 'secrets list' && r.seq > 7)
      assert.ok(outer && during)
      assert.ok(during.seq < outer.seq, 'the inner command finished (was appended) first')
      assert.ok(
        records.indexOf(outer) < records.indexOf(during),
        '…but the run is listed first: it started first',
      )
      assert.ok(Date.parse(outer.time) <= Date.parse(during.time))
    })
  })

  describe('audit verify', () => {
    let lines: string[]
    let counter = 0

    /** A copy of the home with its audit.log replaced by `edited` lines. */
    const tampered = async (edited: string[]): Promise<NodeJS.ProcessEnv> => {
      const copy = join(t.home, `tampered-${++counter}`)
      await cp(home, copy, {recursive: true})
      await writeFile(join(copy, 'audit.log'), edited.map((line) => `${line}\n`).join(''))
      return {...t.env, AGENTVAULT_HOME: copy}
    }

    before(async () => {
      lines = (await readFile(join(home, 'audit.log'), 'utf8')).trimEnd().split('\n')
      assert.ok(lines.length >= 7)
    })

    it('an intact log verifies (exit 0, with a count)', async () => {
      const plain = await cli(['audit', 'verify'])
      assert.equal(plain.code, 0, plain.stderr)
      assert.match(plain.stderr, new RegExp(`Audit log intact: ${lines.length} entries`))
      assert.deepEqual(parseJson(await cli(['audit', 'verify', '--json'])), {count: lines.length, ok: true})
    })

    it('fails after editing one line, naming it', async () => {
      const edited = [...lines]
      edited[3] = (edited[3] ?? '').replace('"exit_code":6', '"exit_code":0')
      assert.notEqual(edited[3], lines[3])
      await expectBroken(await tampered(edited), 4)
    })

    it('fails after editing one line and recomputing its own hash (the next line names the break)', async () => {
      const edited = [...lines]
      const record = JSON.parse(edited[1] ?? '') as Record<string, unknown>
      record.references = ['local://SOMETHING_ELSE']
      delete record.hash
      record.hash = createHash('sha256').update(canonicalJson(record)).digest('hex')
      edited[1] = canonicalJson(record)
      await expectBroken(await tampered(edited), 3)
    })

    it('fails after deleting one line from the middle', async () => {
      await expectBroken(await tampered(lines.filter((_, i) => i !== 2)), 3)
    })

    it('fails after deleting the last line', async () => {
      await expectBroken(await tampered(lines.slice(0, -1)), lines.length)
    })

    it('fails after swapping two lines', async () => {
      const swapped = [...lines]
      ;[swapped[1], swapped[2]] = [swapped[2] ?? '', swapped[1] ?? '']
      await expectBroken(await tampered(swapped), 2)
    })

    it('fails after duplicating a line', async () => {
      await expectBroken(await tampered([...lines.slice(0, 3), lines[2] ?? '', ...lines.slice(3)]), 4)
    })

    it('the original still verifies (each case worked on a copy)', async () => {
      assert.equal((await cli(['audit', 'verify'])).code, 0)
    })
  })

  describe('audit --follow', () => {
    it('prints the history, then an event appended by another command, and stops on SIGINT', async () => {
      const history = await audit()
      const child = start(['audit', '--follow', '--json'], {env: t.env})
      const output = watchOutput(child)
      const done = collect(child)
      // Following starts before the history is printed: once the last record shows, it is live.
      await output.until((text) => lineCount(text) >= history.length, 'the history')
      const set = await cli(['secrets', 'set', 'FOLLOWED'], 'followed-value')
      assert.equal(set.code, 0, set.stderr)
      await output.until((text) => text.includes('local://FOLLOWED'), 'the new event')
      child.kill('SIGINT')
      const result: CliResult = await done
      assert.equal(result.signal, null, 'it exits by itself on SIGINT')
      assert.equal(result.code, 0, result.stderr)

      const printed = parseLines(result.stdout)
      assert.deepEqual(
        printed.map((r) => r.hash),
        [...history.map((r) => r.hash), printed.at(-1)?.hash],
        'the history, then the new event exactly once',
      )
      const last = printed.at(-1)
      assert.equal(last?.command, 'secrets set')
      assert.deepEqual(last?.references, ['local://FOLLOWED'])
      assert.equal(last?.seq, Math.max(...history.map((r) => r.seq)) + 1)
      assert.ok(!result.stdout.includes('followed-value'))
    })

    it('as a table: the header first, and a later event aligned under it', async () => {
      const child = start(['audit', '--follow'], {env: t.env})
      const output = watchOutput(child)
      const done = collect(child)
      await output.until((text) => text.startsWith('TIME') && text.includes('\n'), 'the header')
      const set = await cli(['secrets', 'set', 'ALIGNED'], 'aligned-value')
      assert.equal(set.code, 0, set.stderr)
      await output.until((text) => text.includes('local://ALIGNED'), 'the new event')
      child.kill('SIGINT')
      const result: CliResult = await done
      assert.equal(result.code, 0, result.stderr)
      const lines = result.stdout.trimEnd().split('\n')
      const header = lines[0] ?? ''
      assert.match(
        header,
        /^TIME\s+COMMAND\s+PROFILE\s+REFERENCES\s+OPERATION\s+HOST\s+OUTCOME\s+EXIT\s+ERROR\s+MS$/,
      )
      const row = lines.find((line) => line.includes('local://ALIGNED')) ?? ''
      for (const [column, value] of [
        ['REFERENCES', 'local://ALIGNED'],
        ['OUTCOME', 'ok'],
      ] as const)
        assert.equal(row.indexOf(` ${value} `) + 1, header.indexOf(column), `${column} in ${row}`)
      assert.equal(lines.filter((line) => line.startsWith('TIME')).length, 1, 'one header')
    })

    it('events appended while it starts are each printed exactly once (none lost between history and follow)', async () => {
      const before = await audit()
      const base = Math.max(...before.map((r) => r.seq))
      const writers = Array.from({length: 8}, (_, i) =>
        collect(startCli(['secrets', 'set', `RACE_${i}`], {env: t.env, input: `race-value-${i}`})),
      )
      // Started while the writers append: some land before its history read, some during, some after.
      const child = start(['audit', '--follow', '--json'], {env: t.env})
      const output = watchOutput(child)
      const done = collect(child)
      for (const result of await Promise.all(writers)) assert.equal(result.code, 0, result.stderr)
      const expected = Array.from({length: base + writers.length}, (_, i) => i + 1)
      await output.until(
        (text) => expected.every((seq) => printedSeqs(text).includes(seq)),
        `every seq up to ${expected.length}`,
      )
      child.kill('SIGINT')
      const result = await done
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(
        printedSeqs(result.stdout).sort((a, b) => a - b),
        expected,
        'each event exactly once',
      )
    })

    it('with filters, prints only matching new events', async () => {
      const history = await audit('--secret', 'ALPHA', '--status', 'ok')
      const child = start(['audit', '--follow', '--json', '--secret', 'ALPHA', '--status', 'ok'], {
        env: t.env,
      })
      const output = watchOutput(child)
      const done = collect(child)
      await output.until((text) => lineCount(text) >= history.length, 'the history')
      assert.equal((await cli(['secrets', 'get', 'BETA', '--reveal'])).code, 6)
      assert.equal((await cli(['secrets', 'set', 'GAMMA'], 'gamma-value')).code, 0)
      assert.equal((await cli(['secrets', 'get', 'ALPHA', '--reveal'])).code, 0)
      await output.until((text) => lineCount(text) > history.length, 'a new event')
      child.kill('SIGINT')
      const result = await done
      assert.equal(result.code, 0, result.stderr)
      const printed = parseLines(result.stdout)
      assert.equal(printed.length, history.length + 1, 'only the matching event was added')
      const last = printed.at(-1)
      assert.equal(last?.command, 'secrets get')
      assert.deepEqual(last?.references, ['local://ALPHA'])
      assert.ok(printed.every((r) => r.outcome === 'ok' && r.references?.includes('local://ALPHA')))
    })
  })
})
