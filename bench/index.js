#!/usr/bin/env node
// `npm run bench`: ratios measured side by side in one run, on the built binary.
//   (a) startup: median wall time of `agentvault --version`, `run --env K=local://K -- true` (≤ 1.3×),
//       `secrets list`, `status`, `use … sign` and `--help` (≤ 1.6×) divided by `node -e 0`, and
//       the floor of `run` (bench/run-floor.cjs); with and without NODE_EXTRA_CA_CERTS when set;
//   (b) masking: 256 MB through `agentvault run` with 10 masked values vs `--mask never` (target ≥ 0.85×),
//       with the CPU time of each (under /usr/bin/time: less disturbed by load), and the masker alone (in this process) with today's pattern set vs the smaller set it had
//       before issue 11 (raw, base64 ×3, encodeURIComponent, JSON.stringify), interleaved, medians;
//   (c) peak RSS of `agentvault run` for 64 MB vs 512 MB of output (target ≤ 1.1×);
//   (d) openbao fan-out: `run` with 50 references over 10 paths vs 1 reference, against the OpenBao
//       test server (test/servers/openbao, its own process) with 20 ms injected read latency;
//   (e) `agentvault mcp` (bench/mcp.js): start → `initialize` response, `list_secrets` latency;
//   (f) `agentvault proxy` under load next to direct requests (bench/proxy.js);
//   (g) `run --placeholders`: added latency per HTTPS request (bench/placeholders.js);
//   (h) the local vault: one reference in a 200- vs a 1-secret vault, `secrets set` (bench/vault.js);
//   (i) shell completion: one TAB in bash and zsh, sourcing the script, next to `node -e 0` (bench/completion.js).
// `--quick` takes fewer samples; `--only NAME` (startup, masking, rss, openbao, mcp, proxy,
// placeholders, vault, completion) runs one section.
// agentvault runs as users run it: bin/run.js executed as a program (its launcher execs the `node`
// first on PATH, here this Node). Runs are interleaved so that machine noise hits every variant
// alike. Not a test: nothing is asserted.
import {spawn, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {createWriteStream, existsSync, mkdirSync, readFileSync, symlinkSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {benchCompletion} from './completion.js'
import {benchMcp} from './mcp.js'
import {benchPlaceholders} from './placeholders.js'
import {benchProxy} from './proxy.js'
import {benchVault} from './vault.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = join(root, 'bin', 'run.js')
const work = await mkdtemp(join(tmpdir(), 'agentvault-bench-'))
// Variables that make every Node process start slower or differently are removed, for `node -e 0`
// as for agentvault: NODE_EXTRA_CA_CERTS (set on some machines to the system's whole CA bundle)
// makes Node 20 parse it before any script runs — 36 ms of every start on this kind of machine,
// which hides most of agentvault's own start-up cost in the ratios. The start-up table is printed
// both ways when the environment had them (issue 17's figures were taken with it set).
const NODE_START_VARIABLES = [
  'NODE_EXTRA_CA_CERTS',
  'NODE_OPTIONS',
  'NODE_COMPILE_CACHE',
  'NODE_REPL_EXTERNAL_MODULE',
]
const removedNodeVariables = Object.fromEntries(
  NODE_START_VARIABLES.filter((name) => process.env[name] !== undefined).map((name) => [
    name,
    process.env[name],
  ]),
)
for (const name of NODE_START_VARIABLES) delete process.env[name]
const env = {...process.env, AGENTVAULT_HOME: join(work, 'home'), AGENTVAULT_NO_KEYCHAIN: '1'}
delete env.AGENTVAULT_PASSPHRASE
delete env.CI
// A directory holding only `node` (this one), first on PATH: the launcher execs it.
const nodeDir = join(work, 'node-bin')
mkdirSync(nodeDir)
symlinkSync(process.execPath, join(nodeDir, 'node'))
env.PATH = `${nodeDir}${delimiter}${env.PATH ?? ''}`

const MB = 1024 * 1024
const quick = process.argv.includes('--quick')
const onlyAt = process.argv.indexOf('--only')
const only = onlyAt === -1 ? undefined : process.argv[onlyAt + 1]
/** Whether section NAME runs in this invocation. */
const wants = (name) => only === undefined || only === name
const startupRuns = quick ? 7 : 21
const maskRuns = quick ? 1 : 5

function cli(args, input) {
  const result = spawnSync(bin, args, {env, input})
  if (result.status !== 0) throw new Error(`agentvault ${args.join(' ')} failed: ${result.stderr}`)
}

// stdout is a pipe this process drains, as in CI where a runner reads the job's output.
function timeOnce(command, args, environment = env) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn(command, args, {env: environment, stdio: ['ignore', 'pipe', 'inherit']})
    child.stdout.resume()
    child.once('error', reject)
    child.once('close', (code) => {
      if (code === 0) resolve(Number(process.hrtime.bigint() - started) / 1e6)
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}`))
    })
  })
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

/**
 * Like timeOnce, under /usr/bin/time when there is one: also the CPU time (user + system, ms) of
 * the process and the children it waited for, which load on the machine disturbs less than wall time.
 */
async function timeWithCpu(command, args) {
  const time = '/usr/bin/time'
  if (!existsSync(time)) return {cpu: undefined, ms: await timeOnce(command, args)}
  const report = join(work, 'cpu-time')
  const ms = await timeOnce(time, ['-f', '%U %S', '-o', report, command, ...args])
  const [user, system] = readFileSync(report, 'utf8').trim().split('\n').at(-1).split(' ').map(Number)
  return {cpu: (user + system) * 1000, ms}
}

/** As interleaved, with the median CPU time too (undefined without /usr/bin/time): [[ms, cpu], …]. */
async function interleavedWithCpu(variants, runs) {
  const samples = variants.map(() => [])
  for (let i = 0; i < runs; i++) {
    for (const [index, variant] of variants.entries()) samples[index].push(await timeWithCpu(...variant))
  }

  return samples.map((all) => [
    median(all.map((sample) => sample.ms)),
    all[0].cpu === undefined ? undefined : median(all.map((sample) => sample.cpu)),
  ])
}

async function interleaved(variants, runs, environment = env) {
  const times = variants.map(() => [])
  for (let i = 0; i < runs; i++) {
    for (const [index, variant] of variants.entries())
      times[index].push(await timeOnce(...variant, environment))
  }

  return times.map((samples) => median(samples))
}

// A text-like payload (base64 of random bytes, in lines), written once and `cat`-ed.
async function payload(bytes) {
  const file = join(work, `payload-${bytes}`)
  if (existsSync(file)) return file
  const out = createWriteStream(file)
  const block = Buffer.from(
    randomBytes(48 * 1024)
      .toString('base64')
      .replaceAll(/(.{76})/g, '$1\n'),
  )
  for (let written = 0; written < bytes; written += block.length) {
    const chunk = written + block.length > bytes ? block.subarray(0, bytes - written) : block
    if (!out.write(chunk))
      await new Promise((resolve) => {
        out.once('drain', resolve)
      })
  }

  await new Promise((resolve) => {
    out.end(resolve)
  })
  return file
}

function peakRss(args) {
  const time = '/usr/bin/time'
  if (!existsSync(time)) return
  const result = spawnSync(time, ['-f', '%M', bin, ...args], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const lines = result.stderr.toString().trim().split('\n')
  return Number(lines.at(-1)) / 1024
}

/** Start the OpenBao test server with `latency` ms on KV reads; resolves to {url, tokens, stop}. */
async function startOpenBao(latency) {
  const server = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'test', 'servers', 'openbao', 'cli.ts'), '--latency', String(latency)],
    {cwd: root, stdio: ['pipe', 'pipe', 'inherit']},
  )
  const lines = createInterface({input: server.stdout})
  const ready = await new Promise((resolve, reject) => {
    server.once('exit', (code) => reject(new Error(`the OpenBao test server exited (${code})`)))
    lines.on('line', (line) => {
      if (line.startsWith('ready ')) resolve(JSON.parse(line.slice(6)))
    })
  })
  const stopped = new Promise((resolve) => {
    server.once('exit', resolve)
  })
  return {
    ...ready,
    async stop() {
      server.stdin.end()
      await stopped
    },
  }
}

/** The pattern set before issue 11 §3, for comparison only: raw, base64 ×3, URL and JSON forms. */
function legacyPatterns(values) {
  const all = values.flatMap((value) => {
    const base64 = value.toString('base64')
    const text = value.toString('utf8')
    return [
      value,
      Buffer.from(base64),
      Buffer.from(base64.replace(/=+$/, '')),
      Buffer.from(value.toString('base64url')),
      Buffer.from(encodeURIComponent(text)),
      Buffer.from(JSON.stringify(text).slice(1, -1)),
    ]
  })
  return [...new Map(all.map((pattern) => [pattern.toString('latin1'), pattern])).values()]
}

/** Milliseconds to push `chunks` 16 times through `masker` (256 MB for 16 chunks of 1 MiB). */
function timeMasker(masker, chunks) {
  const started = process.hrtime.bigint()
  let bytes = 0
  for (let round = 0; round < 16; round++)
    for (const chunk of chunks) for (const piece of masker.push(chunk)) bytes += piece.length
  for (const piece of masker.end()) bytes += piece.length
  if (bytes !== 256 * MB) throw new Error('the masker changed output that holds no value')
  return Number(process.hrtime.bigint() - started) / 1e6
}

/**
 * The masker alone on 256 MB of base64 lines in 1 MiB chunks (as the pump reads them), with
 * `count` values like the run above: today's pattern set vs the legacy one, runs interleaved.
 */
async function maskerAlone(count, runs) {
  const {Masker, maskPatterns} = await import(pathToFileURL(join(root, 'dist', 'core', 'mask.js')).href)
  const values = Array.from({length: count}, () => Buffer.from(randomBytes(18).toString('base64')))
  const sets = [
    ['legacy set', legacyPatterns(values)],
    ['current set', maskPatterns(values)],
  ]
  const corpus = Buffer.from(
    randomBytes(12 * MB)
      .toString('base64')
      .replaceAll(/(.{76})/g, '$1\n'),
  ).subarray(0, 16 * MB)
  const chunks = Array.from({length: 16}, (_, i) => corpus.subarray(i * MB, (i + 1) * MB))
  const times = sets.map(() => [])
  for (let run = 0; run < runs * 2 + 1; run++) {
    for (const [index, [, patterns]] of sets.entries())
      times[index].push(timeMasker(new Masker(patterns), chunks))
  }

  console.log(`\nmasker alone, 256 MB in 1 MiB chunks, ${count} values (median of ${runs * 2 + 1})`)
  const medians = times.map((samples) => median(samples))
  for (const [index, [name, patterns]] of sets.entries()) {
    const ms = medians[index]
    console.log(
      `  ${name.padEnd(12)} ${String(patterns.length).padStart(4)} patterns   ${(256 / (ms / 1000)).toFixed(0).padStart(6)} MB/s`,
    )
  }

  console.log(`  current / legacy throughput ${(medians[0] / medians[1]).toFixed(2)}x`)
}

try {
  cli(['secrets', 'set', 'K'], 'bench-value-0000')
  cli(['secrets', 'set', 'SIGN'], 'bench-hmac-key-0000')
  const names = []
  for (let i = 0; i < 10; i++) {
    names.push(`V${i}`)
    cli(['secrets', 'set', `V${i}`], randomBytes(18).toString('base64'))
  }

  const mappings = names.flatMap((name) => ['--env', `${name}=local://${name}`])

  console.log(
    `agentvault bench — node ${process.version}, ${process.platform}-${process.arch}${quick ? ' (quick)' : ''}`,
  )
  const removedNames = Object.keys(removedNodeVariables)
  if (removedNames.length > 0)
    console.log(
      `(removed from the environment of every process measured, except in the first start-up table: ${removedNames.join(', ')})`,
    )
  console.log('')
  if (wants('startup')) {
    // Each row next to `node -e 0` in the same interleaved loop (issue 17's table).
    const rows = [
      ['agentvault --version', ['--version'], 2],
      ['agentvault run --env K=local://K -- true', ['run', '--env', 'K=local://K', '--', 'true'], 1.3],
      ['agentvault secrets list', ['secrets', 'list'], 1.6],
      ['agentvault status', ['status'], 1.6],
      [
        'agentvault use SIGN sign',
        ['use', 'local://SIGN', 'sign', '--param', 'algorithm=hmac-sha256', '--param', 'data=x'],
        1.6,
      ],
      ['agentvault --help', ['--help'], 1.6],
      // Not in issue 17's table: the run's CA and proxy on top of `run` (issue 15).
      [
        'agentvault run --placeholders … -- true',
        ['run', '--placeholders', '--env', 'K=local://K', '--', 'true'],
        undefined,
      ],
    ]
    // The floor of `run` (bench/run-floor.cjs): key, vault, one box opened, `true` spawned.
    const floorScript = fileURLToPath(new URL('run-floor.cjs', import.meta.url))
    const sealed = spawnSync(process.execPath, [floorScript, '--seal'], {env})
    if (sealed.status !== 0) throw new Error(`bench/run-floor.cjs --seal failed: ${sealed.stderr}`)
    const table = async (heading, environment) => {
      const [node, floor, ...times] = await interleaved(
        [
          [process.execPath, ['-e', '0']],
          [process.execPath, [floorScript]],
          ...rows.map(([, args]) => [bin, args]),
        ],
        startupRuns,
        environment,
      )
      console.log(`startup (median of ${startupRuns}, interleaved)${heading}`)
      console.log(`  ${'node -e 0'.padEnd(44)} ${node.toFixed(1).padStart(6)} ms`)
      for (const [index, [label, , target]] of rows.entries()) {
        console.log(
          `  ${label.padEnd(44)} ${times[index].toFixed(1).padStart(6)} ms   ratio ${(times[index] / node).toFixed(2)}x  ${target === undefined ? '(no target)' : `(target <= ${target}x)`}`,
        )
        if (index === 1)
          console.log(
            `    its floor: bench/run-floor.cjs           ${floor.toFixed(1).padStart(6)} ms   ratio ${(floor / node).toFixed(2)}x  (key, vault, one box, \`true\`; nothing of agentvault)`,
          )
      }
    }

    if (removedNames.length > 0) {
      await table(`, with ${removedNames.join(', ')} as this machine sets it`, {
        ...env,
        ...removedNodeVariables,
      })
      console.log('')
      await table(`, without ${removedNames.join(', ')}`, env)
    } else await table('', env)
  }

  if (wants('masking')) {
    const big = await payload(256 * MB)
    // The floor: the same unmasked run with one more process in the pipe, a C `cat` copying
    // everything once more (`sh -c 'cat big | cat'`): what any masking that reads the child's
    // output in another process costs here before it looks at a byte.
    const [[masked, maskedCpu], [unmasked, unmaskedCpu], [hop, hopCpu]] = await interleavedWithCpu(
      [
        [bin, ['run', ...mappings, '--mask', 'always', '--', 'cat', big]],
        [bin, ['run', ...mappings, '--mask', 'never', '--', 'cat', big]],
        [bin, ['run', ...mappings, '--mask', 'never', '--', 'sh', '-c', 'cat "$0" | cat', big]],
      ],
      maskRuns,
    )
    const mbps = (ms) => (256 / (ms / 1000)).toFixed(0)
    const cpu = (ms) => (ms === undefined ? '' : `   CPU ${ms.toFixed(0)} ms (with cat's)`)
    console.log(`\nmasking 256 MB with 10 values, full pattern set (median of ${maskRuns})`)
    console.log(`  --mask never    ${unmasked.toFixed(0)} ms   ${mbps(unmasked)} MB/s${cpu(unmaskedCpu)}`)
    console.log(
      `  --mask always   ${masked.toFixed(0)} ms   ${mbps(masked)} MB/s${cpu(maskedCpu)}   throughput ratio ${(unmasked / masked).toFixed(2)}x  (target >= 0.85x)`,
    )
    console.log(
      `  never, | cat   ${hop.toFixed(0)} ms   ${mbps(hop)} MB/s${cpu(hopCpu)}   throughput ratio ${(unmasked / hop).toFixed(2)}x  (the floor: one more hop, in C)`,
    )
    if (maskedCpu !== undefined)
      console.log(
        `  masking costs ${((maskedCpu - unmaskedCpu) / 256).toFixed(2)} ms of CPU per MiB (start-up included)`,
      )

    await maskerAlone(names.length, maskRuns)
  }

  if (wants('rss')) {
    const small = await payload(64 * MB)
    const large = await payload(512 * MB)
    const rssSmall = peakRss(['run', ...mappings, '--mask', 'always', '--', 'cat', small])
    const rssLarge = peakRss(['run', ...mappings, '--mask', 'always', '--', 'cat', large])
    if (rssSmall === undefined || rssLarge === undefined) {
      console.log('\npeak RSS: skipped (needs /usr/bin/time: apt-get install time)')
    } else {
      console.log('\npeak RSS of agentvault run (masked)')
      console.log(`  64 MB output    ${rssSmall.toFixed(1)} MB`)
      console.log(
        `  512 MB output   ${rssLarge.toFixed(1)} MB   ratio ${(rssLarge / rssSmall).toFixed(2)}x  (target <= 1.1x)`,
      )
    }
  }

  if (wants('openbao')) {
    const bao = await startOpenBao(20)
    try {
      env.BAO_ADDR = bao.url
      env.BAO_TOKEN = bao.tokens.reader
      const refs = []
      for (let i = 0; i < 10; i++)
        for (let f = 0; f < 5; f++)
          refs.push('--env', `K${i}_${f}=openbao://secret/bulk/key-${String(i).padStart(2, '0')}#f${f}`)
      const [one, fifty] = await interleaved(
        [
          [bin, ['run', '--env', 'K=openbao://secret/bulk/key-00#f0', '--', 'true']],
          [bin, ['run', ...refs, '--', 'true']],
        ],
        startupRuns,
      )
      console.log(`\nopenbao fan-out, 20 ms per KV read (median of ${startupRuns})`)
      console.log(`  run with 1 reference (one round trip)       ${one.toFixed(1)} ms`)
      console.log(
        `  run with 50 references over 10 paths        ${fifty.toFixed(1)} ms   +${(fifty - one).toFixed(1)} ms  (10 concurrent reads: about one round trip)`,
      )
    } finally {
      delete env.BAO_ADDR
      delete env.BAO_TOKEN
      await bao.stop()
    }
  }

  if (wants('mcp')) await benchMcp({bin, env, quick, startupRuns})
  if (wants('proxy')) await benchProxy({bin, cli, env})
  if (wants('placeholders')) await benchPlaceholders({bin, cli, env, quick, root, work})
  if (wants('vault'))
    await benchVault({
      bin,
      env,
      environments:
        removedNames.length > 0
          ? [
              [`with ${removedNames.join(', ')} as this machine sets it`, {...env, ...removedNodeVariables}],
              [`without ${removedNames.join(', ')}`, env],
            ]
          : [['', env]],
      quick,
      root,
      work,
    })
  if (wants('completion')) await benchCompletion({bin, env, quick, work})
} finally {
  await rm(work, {force: true, recursive: true})
}
