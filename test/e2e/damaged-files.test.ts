import fc from 'fast-check'
/**
 * Through the built binary: every file of a real home — vault.json, vault.key, config.json,
 * credentials.enc, audit.log, audit.head — cut short at many lengths (the empty file, each of the
 * first bytes, spread lengths up to one byte short) and with bits flipped by fast-check. Whatever the
 * damage, a reader and a writer each end with a §9 code (never exit 1, never a hang) and `Error:` /
 * `Try this:` when they fail; no writer ever replaces a damaged vault, key or credential file with a
 * new empty one; a damaged audit log is never rewritten (only appended to).
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {cp, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {
  baseEnv,
  BIN,
  type CliResult,
  collectUnlessHung,
  ROOT,
  runCli,
  tempHome,
  withNodeOnPath,
} from '../helpers/cli.js'
import {EXIT_BY_CATEGORY, sweepSample} from '../helpers/e2e.js'
import {startSeededServer} from '../servers/openbao/harness.js'
import {type OpenBaoTestServer} from '../servers/openbao/server.js'

const HANG_MS = 20_000
const OWN_CODES = new Set([0, 2, 3, 4, 5, 6, 7, 8])
const SEED = Number(process.env.FUZZ_SEED ?? 7_122_026)

interface Probe {
  args: string[]
  input?: string
}

interface Damage {
  /** The file as damaged. */
  bytes: Buffer
  label: string
}

/** Lengths to cut a file of `size` bytes to: 0, the first 8, 12 spread over the rest, size - 1. */
function cutLengths(size: number): number[] {
  const lengths = new Set<number>()
  for (let n = 0; n <= Math.min(8, size - 1); n++) lengths.add(n)
  for (let i = 1; i <= 12; i++) lengths.add(Math.floor((size * i) / 13))
  lengths.add(size - 1)
  return [...lengths].filter((n) => n >= 0 && n < size).sort((a, b) => a - b)
}

async function runBounded(
  args: string[],
  env: NodeJS.ProcessEnv,
  input = '',
): Promise<CliResult & {hung: boolean}> {
  const child = spawn(BIN, args, {
    cwd: ROOT,
    env: withNodeOnPath(baseEnv(env)),
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  child.stdin.on('error', () => {})
  child.stdin.end(input)
  return collectUnlessHung(child, HANG_MS)
}

function checkOutcome(result: CliResult & {hung: boolean}, what: string): void {
  assert.ok(!result.hung, `${what}: hung`)
  assert.ok(
    result.code !== null && OWN_CODES.has(result.code),
    `${what}: exit ${result.code}\n${result.stderr}`,
  )
  assert.doesNotMatch(result.stderr, /bug in agentvault|\n\s+at .+:\d+:\d+\)?\n/, what)
  if (result.code === 0) return
  if (result.stdout.trimStart().startsWith('{')) {
    const {error} = JSON.parse(result.stdout) as {error: {category: string; suggestion: string}}
    assert.equal(EXIT_BY_CATEGORY[error.category], result.code, what)
    assert.ok(error.suggestion, what)
  } else {
    assert.match(result.stderr, /^Error: \S/m, `${what}: ${result.stderr}`)
    assert.match(result.stderr, /^Try this: \S/m, `${what}: ${result.stderr}`)
  }
}

describe('e2e: damaged files in the home (cut short, bits flipped)', function () {
  this.timeout(240_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let server: OpenBaoTestServer
  let tokens: Awaited<ReturnType<typeof startSeededServer>>['tokens']
  let template: string
  let copies = 0

  before(async () => {
    t = await tempHome()
    template = t.env.AGENTVAULT_HOME as string
    ;({server, tokens} = await startSeededServer())
    for (const [args, input] of [
      [['secrets', 'set', 'A', '--description', 'first', '--tag', 'x'], 'a-1'],
      [['secrets', 'set', 'A'], 'a-2'],
      [['secrets', 'set', 'B'], 'b-1'],
      [['profiles', 'add', 'bao', '--kind', 'openbao', '--set', `address=${server.url}`], ''],
      [['login', 'openbao', '--profile', 'bao', '--token-stdin'], tokens.reader],
      [['secrets', 'get', 'B', '--reveal'], ''],
    ] as const) {
      const result = await runCli([...args], {env: t.env, input})
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
    }
  })

  after(async () => {
    await server?.close()
    await t?.dispose()
  })

  /** What to run against a damaged `file`: a reader, then writers. */
  function probesFor(file: string): Probe[] {
    const set: Probe = {args: ['secrets', 'set', 'NEW'], input: 'new-value'}
    switch (file) {
      case 'audit.head':
      case 'audit.log': {
        return [{args: ['audit', 'verify']}, {args: ['secrets', 'get', 'A', '--reveal']}, set]
      }

      case 'config.json': {
        return [
          {args: ['profiles', 'list']},
          {args: ['profiles', 'add', 'more', '--kind', 'openbao', '--set', `address=${server.url}`]},
          set,
        ]
      }

      case 'credentials.enc': {
        return [
          {args: ['status']},
          {args: ['login', 'openbao', '--profile', 'bao', '--token-stdin'], input: tokens.writer},
          {args: ['logout', 'openbao', '--profile', 'bao']},
        ]
      }

      default: {
        return [{args: ['secrets', 'list']}, set, {args: ['secrets', 'delete', 'B', '--yes']}]
      }
    }
  }

  async function tryDamage(file: string, damage: Damage): Promise<void> {
    copies += 1
    const home = join(t.home, `copy-${copies}`)
    await cp(template, home, {recursive: true})
    const path = join(home, file)
    await writeFile(path, damage.bytes)
    const env = {...t.env, AGENTVAULT_HOME: home}
    for (const probe of probesFor(file)) {
      const what = `${file} ${damage.label}: ${probe.args.join(' ')}`

      const result = await runBounded(probe.args, env, probe.input)
      checkOutcome(result, what)

      const now = await readFile(path).catch(() => Buffer.alloc(0))
      if (file.startsWith('audit.log')) {
        // Appends only: whatever was there stays (a cut-short last line may be completed or dropped).
        const kept = damage.bytes.subarray(0, damage.bytes.lastIndexOf(0x0a) + 1)
        assert.deepEqual(now.subarray(0, kept.length), kept, `${what}: the audit log was rewritten`)
      } else if (file !== 'audit.head' && result.code !== 0) {
        assert.deepEqual(now, damage.bytes, `${what}: failed, yet changed the damaged file`)
      } else if (['credentials.enc', 'vault.json', 'vault.key'].includes(file) && damage.bytes.length > 0) {
        // A success on a damaged sealed file is only possible when the damage was harmless (e.g. a
        // key file whose trailing newline was cut): the secrets must all still be there.

        const list = await runBounded(['secrets', 'list', '--json'], env)
        if (file !== 'credentials.enc') assert.match(list.stdout, /"name": "A"/, `${what}: a secret was lost`)
      }
    }

    await rm(home, {force: true, recursive: true})
  }

  for (const file of [
    'vault.json',
    'vault.key',
    'config.json',
    'credentials.enc',
    'audit.log',
    'audit.head',
  ]) {
    it(`${file}: cut short at many lengths`, async () => {
      const original = await readFile(join(template, file))
      for (const length of sweepSample(cutLengths(original.length)))
        await tryDamage(file, {
          bytes: original.subarray(0, length),
          label: `cut to ${length} of ${original.length} bytes`,
        })
    })

    it(`${file}: bits flipped (fast-check)`, async () => {
      const original = await readFile(join(template, file))
      await fc.assert(
        fc.asyncProperty(
          fc.uniqueArray(fc.nat({max: original.length * 8 - 1}), {maxLength: 3, minLength: 1}),
          async (bits) => {
            const bytes = Buffer.from(original)
            for (const bit of bits) bytes[bit >> 3]! ^= 1 << (bit & 7)
            await tryDamage(file, {bytes, label: `bits ${bits.join(',')} flipped`})
          },
        ),
        {numRuns: 8, seed: SEED},
      )
    })
  }
})
