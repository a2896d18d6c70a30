import fc from 'fast-check'
import assert from 'node:assert/strict'
// The project imports fast-check's default export (`fc.string()`, …) as its docs do.
import {type ChildProcess, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {once} from 'node:events'
import {mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {
  appendAudit,
  appendAuditBatch,
  AUDIT_HEAD_FILE,
  AUDIT_LOG_FILE,
  AUDIT_SALT_FILE,
  type AuditEvent,
  type AuditFilter,
  type AuditRecord,
  auditSalt,
  followAudit,
  GENESIS_HASH,
  matchesAuditFilter,
  parseTimeBound,
  readAudit,
  verifyAudit,
} from '../../../src/core/audit.js'
import {ConfigError, InternalError, UsageError} from '../../../src/core/errors.js'

const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const AUDIT_MODULE = pathToFileURL(join(PROJECT_ROOT, 'src/core/audit.ts')).href

/** An independent implementation of the documented canonical form: keys sorted, no whitespace. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonical(item)).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>
    const keys = Object.keys(object)
      .filter((key) => object[key] !== undefined)
      .sort()
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(object[key])}`).join(',')}}`
  }

  return JSON.stringify(value)
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

function event(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    command: 'secrets get',

    duration_ms: 12.5,

    exit_code: 0,
    outcome: 'ok',
    time: '2024-05-01T10:00:00.000Z',
    ...overrides,
  }
}

/** Append one batch of `extras` to a fresh home; every line must be canonical and verify. */
async function appendAndCheckCanonical(extras: ReadonlyArray<Partial<AuditEvent>>): Promise<void> {
  await inFreshHome(async (home) => checkCanonicalAppend(home, extras))
}

async function checkCanonicalAppend(home: string, extras: ReadonlyArray<Partial<AuditEvent>>): Promise<void> {
  const records = await appendAuditBatch(
    home,
    extras.map((extra) => event({...extra, command: 'proxy'})),
  )
  const lines = splitLog(await readFile(join(home, AUDIT_LOG_FILE)))
  assert.equal(lines.length, extras.length)
  for (const [index, bytes] of lines.entries()) {
    const record = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
    assert.equal(bytes.toString('utf8'), canonical(record))
    const {hash, ...unhashed} = record
    assert.equal(hash, sha256(canonical(unhashed)))
    assert.deepEqual(record, records[index])
  }

  assert.deepEqual(await verifyAudit(home), {count: extras.length, ok: true})
}

async function makeRoot(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'agentvault-audit-'))
}

/** Run `fn` in a fresh home (not yet created) and remove it afterwards. */
async function inFreshHome<T>(fn: (home: string) => Promise<T>): Promise<T> {
  const root = await makeRoot()
  try {
    return await fn(join(root, 'home'))
  } finally {
    await rm(root, {force: true, recursive: true})
  }
}

async function writeHome(home: string, log: Buffer, head?: Buffer): Promise<void> {
  await mkdir(home, {mode: 0o700, recursive: true})
  await writeFile(join(home, AUDIT_LOG_FILE), log, {mode: 0o600})
  if (head !== undefined) await writeFile(join(home, AUDIT_HEAD_FILE), head, {mode: 0o600})
}

function splitLog(log: Buffer): Buffer[] {
  const lines: Buffer[] = []
  let start = 0
  for (let newline = log.indexOf(10); newline !== -1; newline = log.indexOf(10, start)) {
    lines.push(log.subarray(start, newline))
    start = newline + 1
  }

  return lines
}

function joinLog(lines: Buffer[]): Buffer {
  return Buffer.concat(lines.flatMap((line) => [line, Buffer.from('\n')]))
}

function replaceLine(lines: Buffer[], index: number, replacement: Buffer): Buffer[] {
  const copy = [...lines]
  copy[index] = replacement
  return copy
}

/** Append `item` in a home and return the stored record and the whole log text. */
function appendAndRead(item: AuditEvent): (home: string) => Promise<{log: string; record: AuditRecord}> {
  return async (home) => {
    const record = await appendAudit(home, item)
    return {log: await readFile(join(home, AUDIT_LOG_FILE), 'utf8'), record}
  }
}

async function seqsOf(home: string, filter: AuditFilter): Promise<number[]> {
  return (await readAudit(home, filter)).map((record) => record.seq)
}

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777
}

describe('core/audit', () => {
  let root: string
  let home: string

  beforeEach(async () => {
    root = await makeRoot()
    home = join(root, 'home')
  })

  afterEach(async () => {
    await rm(root, {force: true, recursive: true})
  })

  describe('appendAudit', () => {
    it('writes a hash chain that verifies, with a head and private modes', async () => {
      const n = 7
      for (let i = 0; i < n; i++)
        await appendAudit(
          home,
          event({command: `cmd ${i}`, references: [`local://NAME_${i}`, 'sanctum://é/ü']}),
        )

      assert.deepEqual(await verifyAudit(home), {count: n, ok: true})
      const lines = splitLog(await readFile(join(home, AUDIT_LOG_FILE)))
      assert.equal(lines.length, n)
      let previous = GENESIS_HASH
      for (const [index, bytes] of lines.entries()) {
        const record = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
        assert.equal(bytes.toString('utf8'), canonical(record), 'lines are canonical JSON')
        const {hash, ...unhashed} = record
        assert.equal(record.seq, index + 1)
        assert.equal(record.prev, previous)
        assert.equal(hash, sha256(canonical(unhashed)))
        assert.equal(record.source, undefined, 'source is a read-time field')
        previous = hash as string
      }

      const head = JSON.parse(await readFile(join(home, AUDIT_HEAD_FILE), 'utf8')) as unknown
      assert.deepEqual(head, {hash: previous, seq: n})
      assert.equal(await modeOf(home), 0o700)
      assert.equal(await modeOf(join(home, AUDIT_LOG_FILE)), 0o600)
      assert.equal(await modeOf(join(home, AUDIT_HEAD_FILE)), 0o600)
    })

    it('writes every line in the canonical form, hash in its sorted place, whatever fields an event has', async () => {
      const text = fc.string({unit: 'binary', maxLength: 12})
      const optional = {
        agent_id: text,
        backend: text,
        client: text,
        error_code: text,
        operation: text,
        profile: text,
        references: fc.array(text, {maxLength: 3}),
        resource_refs: fc.array(text, {maxLength: 2}),
        status: fc.integer({max: 999, min: 100}),
        target_host: text,
        tool: text,
      }
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record(optional, {requiredKeys: []}), {maxLength: 4, minLength: 1}),
          async (extras) => appendAndCheckCanonical(extras),
        ),
        {numRuns: 40},
      )
    })

    it('appendAuditBatch: one write of N events is the same chain as N appends, interleaving safely', async () => {
      const other = join(root, 'other')
      const events = Array.from({length: 5}, (_, i) => event({command: `proxy`, status: 200 + i}))
      await appendAudit(home, event({command: 'before'}))
      await appendAudit(other, event({command: 'before'}))
      const batch = await appendAuditBatch(home, events)
      const single = []
      for (const item of events) single.push(await appendAudit(other, item))
      assert.deepEqual(batch, single, 'same records, same hashes')
      assert.deepEqual(await appendAuditBatch(home, []), [], 'an empty batch writes nothing')
      assert.deepEqual(
        await readFile(join(home, AUDIT_LOG_FILE), 'utf8'),
        await readFile(join(other, AUDIT_LOG_FILE), 'utf8'),
      )
      assert.deepEqual(JSON.parse(await readFile(join(home, AUDIT_HEAD_FILE), 'utf8')), {
        hash: batch.at(-1)?.hash,
        seq: 6,
      })
      // Batches and single appends racing each other keep one chain, nothing lost.
      await Promise.all([
        appendAuditBatch(home, events),
        appendAudit(home, event({command: 'racing'})),
        appendAuditBatch(home, events.slice(0, 2)),
      ])
      assert.deepEqual(await verifyAudit(home), {count: 14, ok: true})
    })

    it('returns the stored record', async () => {
      const first = await appendAudit(home, event({status: 200, target_host: 'api.example.com'}))
      const second = await appendAudit(home, event())
      assert.equal(first.seq, 1)
      assert.equal(first.prev, GENESIS_HASH)
      assert.equal(first.status, 200)
      assert.equal(second.seq, 2)
      assert.equal(second.prev, first.hash)
      const [stored] = await readAudit(home, {limit: 1})
      assert.deepEqual(stored, {...second, source: 'local'})
    })

    it('stores only the known fields, whatever else the event object carries', async () => {
      const known = new Set(['backend', 'profile', 'references', 'resource_refs', ...Object.keys(event())])
      await fc.assert(
        fc.asyncProperty(
          fc.string({minLength: 1}).filter((key) => !known.has(key) && key !== '__proto__'),
          fc.stringMatching(/^[A-Z\d]{16}$/),
          async (key, secret) => {
            const canary = `canary-${secret}`
            const carrier = {...event(), [key]: canary, nested: {value: canary}} as AuditEvent
            const {log, record} = await inFreshHome(appendAndRead(carrier))
            assert.ok(!log.includes(canary))
            assert.ok(!JSON.stringify(record).includes(canary))
          },
        ),
        {numRuns: 25},
      )
    })

    it('refuses an invalid event and writes nothing', async () => {
      await assert.rejects(appendAudit(home, event({duration_ms: Number.NaN})), InternalError)
      await assert.rejects(appendAudit(home, event({time: 'yesterday'})), InternalError)
      assert.deepEqual(await readAudit(home), [])
      assert.deepEqual(await verifyAudit(home), {count: 0, ok: true})
    })

    it('finds the previous record behind a record larger than one read chunk', async () => {
      await appendAudit(home, event({references: [`local://${'X'.repeat(200_000)}`]}))
      await appendAudit(home, event())
      assert.deepEqual(await verifyAudit(home), {count: 2, ok: true})
    })

    it('an interrupted line at the end is reported as such, and the next append replaces it', async () => {
      await appendAudit(home, event())
      await writeFile(join(home, AUDIT_LOG_FILE), '{"half":', {flag: 'a'})
      assert.deepEqual(await verifyAudit(home), {
        count: 1,
        interrupted: {
          line: 2,
          reason: 'incomplete last line: an append was interrupted (killed, or the disk was full)',
        },
        ok: true,
      })
      const record = await appendAudit(home, event({command: 'after'}))
      assert.equal(record.seq, 2)
      assert.deepEqual(
        (await readAudit(home)).map((r) => r.command),
        ['secrets get', 'after'],
      )
      assert.doesNotMatch(await readFile(join(home, AUDIT_LOG_FILE), 'utf8'), /half/)
      assert.deepEqual(await verifyAudit(home), {count: 2, ok: true})
    })

    it('a whole record whose newline is missing is kept, and the next record goes on its own line', async () => {
      await appendAudit(home, event())
      const log = join(home, AUDIT_LOG_FILE)
      await writeFile(log, (await readFile(log, 'utf8')).trimEnd())
      await appendAudit(home, event({command: 'after'}))
      assert.deepEqual(await verifyAudit(home), {count: 2, ok: true})
    })

    it('keeps one valid chain under concurrent appends from several processes', async () => {
      const workers = 5
      const perWorker = 20
      await mkdir(home, {mode: 0o700, recursive: true})
      const script = join(root, 'append-worker.mts')
      await writeFile(
        script,
        [
          `import {appendAudit} from ${JSON.stringify(AUDIT_MODULE)}`,
          'const [home, id, count] = process.argv.slice(2)',
          // Wait for the parent's start signal (stdin closing) so that all workers start together.
          "process.stdin.on('data', () => {})",
          "process.stdin.on('end', async () => {",
          '  for (let i = 0; i < Number(count); i++)',
          "    await appendAudit(home, {time: new Date().toISOString(), command: 'worker', outcome: 'ok', exit_code: 0, duration_ms: i, operation: id + ':' + i})",
          '})',
          "process.stdout.write('ready\\n')",
        ].join('\n'),
      )

      const children: ChildProcess[] = []
      for (let id = 0; id < workers; id++)
        children.push(
          spawn(process.execPath, ['--import', 'tsx', script, home, String(id), String(perWorker)], {
            cwd: PROJECT_ROOT,
            stdio: ['pipe', 'pipe', 'inherit'],
          }),
        )
      const exits = children.map(async (child) => {
        const [code] = (await once(child, 'exit')) as [null | number]
        return code
      })
      await Promise.all(children.map(async (child) => once(child.stdout!, 'data')))
      for (const child of children) child.stdin!.end()
      assert.deepEqual(
        await Promise.all(exits),
        Array.from({length: workers}, () => 0),
      )

      assert.deepEqual(await verifyAudit(home), {count: workers * perWorker, ok: true})
      const records = await readAudit(home)
      const operations = records.map((record) => record.operation ?? '')
      assert.equal(new Set(operations).size, workers * perWorker)
      assert.deepEqual(
        records.map((record) => record.seq).sort((a, b) => a - b),
        Array.from({length: workers * perWorker}, (_, i) => i + 1),
      )
      // Each worker's own records keep their order in the chain.
      for (let id = 0; id < workers; id++) {
        const seqs = records
          .filter((record) => record.operation?.startsWith(`${id}:`))
          .sort((a, b) => Number(a.operation!.split(':')[1]) - Number(b.operation!.split(':')[1]))
          .map((record) => record.seq)
        assert.deepEqual(
          seqs,
          [...seqs].sort((a, b) => a - b),
        )
      }
    })
  })

  describe('verifyAudit', () => {
    const n = 8
    let log: Buffer
    let lines: Buffer[]
    let head: Buffer

    before(async () => {
      await inFreshHome(async (baseHome) => {
        for (let i = 0; i < n; i++)
          await appendAudit(
            baseHome,
            event({
              backend: i % 2 ? 'openbao' : 'local',
              command: `cmd ${i}`,
              outcome: i % 3 ? 'ok' : 'denied',
              references: i % 2 ? [`openbao+kv2://secret/app${i}#token?version=${i}`] : [`local://K${i}`],
              status: 200 + i,
            }),
          )
        log = await readFile(join(baseHome, AUDIT_LOG_FILE))
        head = await readFile(join(baseHome, AUDIT_HEAD_FILE))
      })
      lines = splitLog(log)
    })

    /** Verify `tampered` in a fresh home, with the original head unless told otherwise (null: none). */
    async function verifyTampered(tampered: Buffer, tamperedHead: Buffer | null = head) {
      return inFreshHome(async (tamperedHome) => {
        await writeHome(tamperedHome, tampered, tamperedHead ?? undefined)
        return verifyAudit(tamperedHome)
      })
    }

    it('accepts an empty or missing log', async () => {
      assert.deepEqual(await verifyAudit(home), {count: 0, ok: true})
      await mkdir(home, {recursive: true})
      await writeFile(join(home, AUDIT_LOG_FILE), '')
      assert.deepEqual(await verifyAudit(home), {count: 0, ok: true})
    })

    it('accepts the untouched log', async () => {
      assert.deepEqual(await verifyTampered(log), {count: n, ok: true})
    })

    it('names the line of any single-field edit', async () => {
      const edit = fc.record({
        index: fc.integer({max: n - 1, min: 0}),
        key: fc.constantFrom(
          'time',
          'command',
          'outcome',
          'exit_code',
          'duration_ms',
          'seq',
          'prev',
          'hash',
          'references',
          'status',
          'backend',
          'profile',
          'extra',
        ),
        remove: fc.boolean(),
        value: fc.jsonValue(),
      })
      await fc.assert(
        fc.asyncProperty(edit, async ({index, key, remove, value}) => {
          const record = JSON.parse(lines[index]!.toString('utf8')) as Record<string, unknown>
          if (remove) delete record[key]
          else record[key] = value
          const edited = Buffer.from(canonical(record))
          fc.pre(!edited.equals(lines[index]!))
          const result = await verifyTampered(joinLog(replaceLine(lines, index, edited)))
          assert.equal(result.ok, false)
          assert.equal(result.firstBad?.line, index + 1, result.firstBad?.reason)
          assert.equal(result.count, index)
        }),
        {numRuns: 150},
      )
    })

    it('names the line of any single-byte change', async () => {
      const edit = fc.record({
        byte: fc.integer({max: 255, min: 0}),
        index: fc.integer({max: n - 1, min: 0}),
        position: fc.nat(),
      })
      await fc.assert(
        fc.asyncProperty(edit, async ({byte, index, position}) => {
          const line = Buffer.from(lines[index]!)
          const at = position % line.length
          fc.pre(line[at] !== byte)
          line[at] = byte
          const result = await verifyTampered(joinLog(replaceLine(lines, index, line)))
          assert.equal(result.ok, false)
          assert.equal(result.firstBad?.line, index + 1, result.firstBad?.reason)
        }),
        {numRuns: 300},
      )
    })

    it('names the deleted line: first, middle, last and any', async () => {
      const check = async (index: number) => {
        const result = await verifyTampered(joinLog(lines.filter((_, i) => i !== index)))
        assert.equal(result.ok, false)
        assert.equal(result.firstBad?.line, index + 1, result.firstBad?.reason)
        assert.equal(result.firstBad?.seq, index === n - 1 ? n : index + 2)
      }

      await check(0)
      await check(Math.floor(n / 2))
      await check(n - 1)
      await fc.assert(fc.asyncProperty(fc.integer({max: n - 1, min: 0}), check), {numRuns: 30})
    })

    it('names the first of two swapped lines', async () => {
      const pair = fc
        .uniqueArray(fc.integer({max: n - 1, min: 0}), {maxLength: 2, minLength: 2})
        .map(([a, b]) => [Math.min(a!, b!), Math.max(a!, b!)] as const)
      await fc.assert(
        fc.asyncProperty(pair, async ([first, second]) => {
          const swapped = [...lines]
          swapped[first] = lines[second]!
          swapped[second] = lines[first]!
          const result = await verifyTampered(joinLog(swapped))
          assert.equal(result.ok, false)
          assert.equal(result.firstBad?.line, first + 1, result.firstBad?.reason)
          assert.equal(result.firstBad?.seq, second + 1)
        }),
        {numRuns: 40},
      )
    })

    it('names the first missing or cut line after truncation at any byte', async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({max: log.length - 1, min: 0}), async (length) => {
          const kept = log.subarray(0, length)
          const completeLines = splitLog(kept).length
          const result = await verifyTampered(kept)
          assert.equal(result.ok, false)
          assert.equal(result.firstBad?.line, completeLines + 1, result.firstBad?.reason)
        }),
        {numRuns: 100},
      )
    })

    it('names an inserted garbage line', async () => {
      const insertion = fc.record({
        garbage: fc.string({unit: 'binary'}).filter((text) => !text.includes('\n')),
        index: fc.integer({max: n, min: 0}),
      })
      await fc.assert(
        fc.asyncProperty(insertion, async ({garbage, index}) => {
          const tampered = [...lines]
          tampered.splice(index, 0, Buffer.from(garbage))
          const result = await verifyTampered(joinLog(tampered))
          assert.equal(result.ok, false)
          assert.equal(result.firstBad?.line, index + 1, result.firstBad?.reason)
        }),
        {numRuns: 50},
      )
    })

    it('detects a cut end even after later appends', async () => {
      await writeHome(home, joinLog(lines.slice(0, n - 2)), head)
      const record = await appendAudit(home, event())
      assert.equal(record.seq, n + 1, 'the chain continues from the head, leaving the gap visible')
      const result = await verifyAudit(home)
      assert.equal(result.ok, false)
      assert.equal(result.firstBad?.line, n - 1)
    })

    it('detects a replaced last record through the head', async () => {
      await writeHome(home, joinLog(lines.slice(0, n - 1)))
      await appendAudit(home, event({command: 'forged'})) // a valid record n with another hash
      await writeFile(join(home, AUDIT_HEAD_FILE), head)
      const result = await verifyAudit(home)
      assert.equal(result.ok, false)
      assert.equal(result.firstBad?.line, n)
      assert.equal(result.firstBad?.seq, n)
    })

    it('accepts a head one record behind (crash between line and head), and the next append repairs it', async () => {
      const previousHead = Buffer.from(
        JSON.stringify({hash: JSON.parse(lines[n - 2]!.toString()).hash, seq: n - 1}),
      )
      await writeHome(home, log, previousHead)
      assert.deepEqual(await verifyAudit(home), {count: n, ok: true})
      await appendAudit(home, event())
      assert.deepEqual(await verifyAudit(home), {count: n + 1, ok: true})
      assert.equal(JSON.parse(await readFile(join(home, AUDIT_HEAD_FILE), 'utf8')).seq, n + 1)
    })

    it('fails on a missing or unreadable head once there is more than one record', async () => {
      assert.equal((await verifyTampered(log, null)).ok, false)
      assert.equal((await verifyTampered(log, Buffer.from('not json'))).ok, false)
      assert.equal((await verifyTampered(joinLog(lines.slice(0, 1)), null)).ok, true)
      const allGone = await verifyTampered(Buffer.alloc(0))
      assert.deepEqual(allGone.firstBad?.line, 1)
      assert.deepEqual(allGone.firstBad?.seq, 1)
    })
  })

  describe('readAudit and filters', () => {
    const t0 = Date.parse('2024-05-01T10:00:00.000Z')
    const at = (minutes: number) => new Date(t0 + minutes * 60_000).toISOString()

    beforeEach(async () => {
      const events: AuditEvent[] = [
        event({backend: 'local', profile: 'default', references: ['local://OPENAI_KEY'], time: at(0)}),
        event({
          backend: 'openbao',
          command: 'run',

          exit_code: 6,
          outcome: 'error',
          profile: 'prod-bao',
          references: ['openbao+kv2://secret/app#token'],
          time: at(60),
        }),
        event({
          backend: 'sanctum',
          command: 'call',
          outcome: 'denied',
          profile: 'default',
          references: ['sanctum://openai/api_key'],
          time: at(120),
        }),
        event({backend: 'local', command: 'secrets list', profile: 'default', time: at(180)}),
        // Appended last but started earlier, as a long command finishing late would be.
        event({
          backend: 'local',
          command: 'secrets set',
          profile: 'default',
          references: ['local://GITHUB_TOKEN'],

          resource_refs: ['fa8719a726a6ad64'],
          time: at(30),
        }),
      ]
      for (const item of events) await appendAudit(home, item)
    })

    it('returns records in time order, marked as local', async () => {
      const records = await readAudit(home)
      assert.deepEqual(
        records.map((r) => r.seq),
        [1, 5, 2, 3, 4],
      )
      assert.ok(records.every((r) => r.source === 'local'))
    })

    it('filters by time bounds, inclusive', async () => {
      assert.deepEqual(await seqsOf(home, {since: new Date(at(60))}), [2, 3, 4])
      assert.deepEqual(await seqsOf(home, {until: new Date(at(60))}), [1, 5, 2])
      assert.deepEqual(await seqsOf(home, {since: new Date(at(30)), until: new Date(at(120))}), [5, 2, 3])
      assert.deepEqual(await seqsOf(home, {since: new Date(at(181))}), [])
    })

    it('filters by secret name, reference or resource_ref (case-sensitive substring)', async () => {
      assert.deepEqual(await seqsOf(home, {secret: 'OPENAI_KEY'}), [1])
      assert.deepEqual(await seqsOf(home, {secret: 'local://OPENAI_KEY'}), [1])
      assert.deepEqual(await seqsOf(home, {secret: 'api_key'}), [3])
      assert.deepEqual(await seqsOf(home, {secret: 'secret/app'}), [2])
      assert.deepEqual(await seqsOf(home, {secret: 'token'}), [2])
      assert.deepEqual(await seqsOf(home, {secret: 'fa8719a726a6ad64'}), [5])
      assert.deepEqual(await seqsOf(home, {secret: 'NOPE'}), [])
    })

    it('filters by status, command, backend and profile', async () => {
      assert.deepEqual(await seqsOf(home, {status: 'error'}), [2])
      assert.deepEqual(await seqsOf(home, {status: 'denied'}), [3])
      assert.deepEqual(await seqsOf(home, {status: 'ok'}), [1, 5, 4])
      assert.deepEqual(await seqsOf(home, {command: 'secrets'}), [1, 5, 4])
      assert.deepEqual(await seqsOf(home, {command: 'secrets get'}), [1])
      assert.deepEqual(await seqsOf(home, {command: 'sec'}), [])
      assert.deepEqual(await seqsOf(home, {backend: 'local'}), [1, 5, 4])
      assert.deepEqual(await seqsOf(home, {profile: 'prod-bao'}), [2])
      assert.deepEqual(await seqsOf(home, {backend: 'local', command: 'secrets', secret: 'GITHUB'}), [5])
    })

    it('keeps the most recent N with limit', async () => {
      assert.deepEqual(await seqsOf(home, {limit: 2}), [3, 4])
      assert.deepEqual(await seqsOf(home, {backend: 'local', limit: 2}), [5, 4])
      assert.deepEqual(await seqsOf(home, {limit: 100}), [1, 5, 2, 3, 4])
      assert.deepEqual(await seqsOf(home, {limit: 0}), [])
    })

    it('skips lines that are not records', async () => {
      await writeFile(join(home, AUDIT_LOG_FILE), 'garbage\n\n{"seq":1}\n{"half":', {flag: 'a'})
      assert.deepEqual(await seqsOf(home, {}), [1, 5, 2, 3, 4])
      assert.equal((await verifyAudit(home)).firstBad?.line, 6)
    })

    it('matchesAuditFilter agrees with readAudit', async () => {
      const all = await readAudit(home)
      const filter = {backend: 'local', since: new Date(at(10))}
      assert.deepEqual(
        all.filter((record) => matchesAuditFilter(record, filter)).map((r) => r.seq),
        await seqsOf(home, filter),
      )
      assert.ok(all.every((record) => matchesAuditFilter(record, {})))
    })
  })

  describe('parseTimeBound', () => {
    const now = new Date('2024-06-15T12:00:00.000Z')
    const ago = (ms: number) => new Date(now.getTime() - ms)

    it('reads durations, ISO dates and times', () => {
      const table: Array<[string, Date]> = [
        ['30s', ago(30_000)],
        ['15m', ago(15 * 60_000)],
        ['2h', ago(2 * 3_600_000)],
        ['7d', ago(7 * 86_400_000)],
        ['1w', ago(7 * 86_400_000)],
        ['500ms', ago(500)],
        ['1h30m', ago(90 * 60_000)],
        ['0s', now],
        [' 2h ', ago(2 * 3_600_000)],
        ['now', now],
        ['2024-05-01T10:00:00Z', new Date('2024-05-01T10:00:00.000Z')],
        ['2024-05-01T10:00:00.5+02:00', new Date('2024-05-01T08:00:00.500Z')],
        ['2024-05-01T10:00+0530', new Date('2024-05-01T04:30:00.000Z')],
        ['2024-05-01t10:00:00.123456z', new Date('2024-05-01T10:00:00.123Z')],
        ['2024-02-29T00:00:00Z', new Date('2024-02-29T00:00:00.000Z')],
        ['2024-05-01', new Date(2024, 4, 1)],
        ['2024-05-01 10:15', new Date(2024, 4, 1, 10, 15)],
      ]
      for (const [input, expected] of table) assert.deepEqual(parseTimeBound(input, now), expected, input)
    })

    it('refuses anything else with BAD_TIME and a suggestion', () => {
      const bad = [
        '',
        'yesterday',
        '5',
        'm',
        '5x',
        '-5m',
        '1.5h',
        '1e3s',
        '2h ago',
        '2024-13-01',
        '2023-02-29',
        '2024-04-31',
        '2024-05-01T24:00Z',
        '2024-05-01T10:60Z',
        '2024-05-01T10:00+25:00',
        '2024-05-01Z',
        `${'9'.repeat(400)}d`,
      ]
      for (const input of bad)
        assert.throws(
          () => parseTimeBound(input, now),
          (error: unknown) =>
            error instanceof UsageError && error.code === 'BAD_TIME' && Boolean(error.suggestion),
          input,
        )
    })

    it('returns a valid Date or throws UsageError for any string', () => {
      fc.assert(
        fc.property(
          fc.oneof(fc.string({unit: 'binary'}), fc.stringMatching(/^[\d :.TZ+-]{0,30}$/)),
          (input) => {
            try {
              const date = parseTimeBound(input, now)
              assert.ok(date instanceof Date && !Number.isNaN(date.getTime()))
            } catch (error) {
              assert.ok(error instanceof UsageError, String(error))
              assert.equal(error.code, 'BAD_TIME')
            }
          },
        ),
        {numRuns: 2000},
      )
    })

    it('subtracts any duration from now', () => {
      const units = {d: 86_400_000, h: 3_600_000, m: 60_000, ms: 1, s: 1000, w: 604_800_000}
      fc.assert(
        fc.property(
          fc.integer({max: 100_000, min: 0}),
          fc.constantFrom(...(Object.keys(units) as Array<keyof typeof units>)),
          (amount, unit) => {
            assert.deepEqual(parseTimeBound(`${amount}${unit}`, now), ago(amount * units[unit]))
          },
        ),
      )
    })

    it('round-trips any ISO timestamp', () => {
      const dates = fc.date({
        max: new Date('9999-12-31T23:59:59.999Z'),
        min: new Date('0000-01-01T00:00:00.000Z'),
        noInvalidDate: true,
      })
      fc.assert(
        fc.property(dates, (date) => {
          assert.deepEqual(parseTimeBound(date.toISOString(), now), date)
        }),
      )
    })
  })

  describe('followAudit', () => {
    it('yields matching records appended after it starts, and stops on abort', async () => {
      await appendAudit(home, event({command: 'wanted'}))
      const controller = new AbortController()
      const follow = followAudit(home, {command: 'wanted'}, controller.signal)
      const first = follow.next() // fixes the starting point
      await appendAudit(home, event({command: 'other'}))
      await appendAudit(home, event({command: 'wanted', operation: 'sign'}))
      const result = await first
      assert.equal(result.done, false)
      assert.equal(result.value?.seq, 3)
      assert.equal(result.value?.operation, 'sign')
      assert.equal(result.value?.source, 'local')

      const second = follow.next()
      controller.abort()
      assert.deepEqual(await second, {done: true, value: undefined})
      assert.deepEqual(await follow.next(), {done: true, value: undefined})
    })

    it('sees the log being created', async () => {
      const controller = new AbortController()
      const follow = followAudit(home, {}, controller.signal)
      const first = follow.next()
      await appendAudit(home, event())
      await appendAudit(home, event())
      assert.equal((await first).value?.seq, 1)
      assert.equal((await follow.next()).value?.seq, 2)
      controller.abort()
      assert.equal((await follow.next()).done, true)
    })

    it('yields the record an append writes over a line left unfinished', async () => {
      await appendAudit(home, event())
      // An append killed in its write: the start of a line (longer than the next record's line).
      await writeFile(join(home, AUDIT_LOG_FILE), `{"command":"half${'x'.repeat(600)}`, {flag: 'a'})
      const controller = new AbortController()
      const follow = followAudit(home, {}, controller.signal)
      const first = follow.next()
      await appendAudit(home, event({command: 'after'}))
      const result = await first
      assert.equal(result.value?.command, 'after')
      assert.equal(result.value?.seq, 2)
      controller.abort()
      // Resumed after the abort, it ends and closes its watcher (left suspended, the watcher kept
      // the test process alive).
      assert.equal((await follow.next()).done, true)
    })

    it('ends at once when already aborted', async () => {
      const controller = new AbortController()
      controller.abort()
      assert.deepEqual(await followAudit(home, {}, controller.signal).next(), {done: true, value: undefined})
    })
  })

  describe('auditSalt', () => {
    it('creates 64 hex characters once, 0600, stable across calls', async () => {
      const salts = await Promise.all(Array.from({length: 8}, async () => auditSalt(home)))
      const [salt] = salts
      assert.match(salt!, /^[\da-f]{64}$/)
      assert.ok(salts.every((other) => other === salt))
      assert.equal(await auditSalt(home), salt)
      assert.equal(await modeOf(join(home, AUDIT_SALT_FILE)), 0o600)
      assert.equal((await readFile(join(home, AUDIT_SALT_FILE), 'utf8')).trim(), salt)
    })

    it('differs between installations', async () => {
      const other = join(root, 'other')
      assert.notEqual(await auditSalt(home), await auditSalt(other))
    })

    it('never replaces a salt file with other content', async () => {
      await mkdir(home, {recursive: true})
      await writeFile(join(home, AUDIT_SALT_FILE), 'not-a-salt\n')
      await assert.rejects(
        auditSalt(home),
        (error: unknown) => error instanceof ConfigError && error.code === 'AUDIT_SALT_INVALID',
      )
      assert.equal(await readFile(join(home, AUDIT_SALT_FILE), 'utf8'), 'not-a-salt\n')
    })
  })
})
