#!/usr/bin/env node
// `npm run bench`: ratios measured side by side in one run, on the built binary.
//   (a) startup: median wall time of `agentvault --version` and `agentvault run --env K=local://K -- true`
//       divided by `node -e 0` (targets ≤ 2.0×);
//   (b) masking: 256 MB through `agentvault run` with 10 masked values vs `--mask never` (target ≥ 0.5×);
//   (c) peak RSS of `agentvault run` for 64 MB vs 512 MB of output (target ≤ 1.2×);
//   (d) openbao fan-out: `run` with 50 references over 10 paths vs 1 reference, against the OpenBao
//       test server (test/servers/openbao, its own process) with 20 ms injected read latency;
//   (e) `run --placeholders`: latency per HTTPS request (p50, p99) through the interception, 500
//       sequential and 500 at 20 concurrent, next to direct requests (target p50 overhead <= 3 ms
//       after the first request to a host). Needs the openssl CLI for the upstream's certificate.
// Runs are interleaved so that machine noise hits every variant alike. Not a test: nothing is asserted.
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {createWriteStream, existsSync} from 'node:fs'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {createServer} from 'node:https'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = join(root, 'bin', 'run.js')
const work = await mkdtemp(join(tmpdir(), 'agentvault-bench-'))
const env = {...process.env, AGENTVAULT_HOME: join(work, 'home'), AGENTVAULT_NO_KEYCHAIN: '1'}
delete env.AGENTVAULT_PASSPHRASE
delete env.CI

const MB = 1024 * 1024
const quick = process.argv.includes('--quick')
/** `node bench/index.js --placeholders-only`: section (e) alone. */
const placeholdersOnly = process.argv.includes('--placeholders-only')
const startupRuns = quick ? 7 : 21
const maskRuns = quick ? 1 : 3

function cli(args, input) {
  const result = spawnSync(process.execPath, [bin, ...args], {env, input})
  if (result.status !== 0) throw new Error(`agentvault ${args.join(' ')} failed: ${result.stderr}`)
}

// stdout is a pipe this process drains, as in CI where a runner reads the job's output.
function timeOnce(command, args) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn(command, args, {env, stdio: ['ignore', 'pipe', 'inherit']})
    child.stdout.resume()
    child.once('error', reject)
    child.once('close', (code) => {
      if (code === 0) resolve(Number(process.hrtime.bigint() - started) / 1e6)
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}`))
    })
  })
}

const mbps = (ms) => (256 / (ms / 1000)).toFixed(0)
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

async function interleaved(variants, runs) {
  const times = variants.map(() => [])
  for (let i = 0; i < runs; i++) {
    for (const [index, variant] of variants.entries()) times[index].push(await timeOnce(...variant))
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
  const result = spawnSync(time, ['-f', '%M', process.execPath, bin, ...args], {
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

const percentile = (values, p) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]

/** (e): an HTTPS upstream on loopback with its own CA, trusted by a profile through caCert. */
async function placeholderLatency() {
  const openssl = (...args) => execFileSync('openssl', args, {cwd: work, stdio: 'ignore'})
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'up.key',
    '-out',
    'up.pem',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  )
  const server = createServer(
    {cert: await readFile(join(work, 'up.pem')), key: await readFile(join(work, 'up.key'))},
    (_request, response) => response.end('ok'),
  )
  await new Promise((resolve) => {
    server.listen(0, '127.0.0.1', resolve)
  })
  const target = `https://127.0.0.1:${server.address().port}/bench`
  try {
    cli([
      'profiles',
      'add',
      'benchtls',
      '--kind',
      'local',
      '--set',
      'allowPrivateNetworks=true',
      '--set',
      'allowedDomains=["127.0.0.1"]',
      '--set',
      `caCert=${join(work, 'up.pem')}`,
    ])
    const client = join(root, 'bench', 'placeholders-client.js')
    const count = quick ? 100 : 500
    // Not spawnSync: the upstream lives in this process and must keep answering.
    const measure = (args) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, args, {env, stdio: ['ignore', 'pipe', 'inherit']})
        const chunks = []
        child.stdout.on('data', (chunk) => chunks.push(chunk))
        child.once('error', reject)
        child.once('close', (code) =>
          code === 0
            ? resolve(JSON.parse(Buffer.concat(chunks).toString()))
            : reject(new Error(`placeholder bench client exited ${code}`)),
        )
      })
    const clientArgs = [client, target, join(work, 'up.pem'), String(count), '20']
    const direct = await measure(clientArgs)
    const proxied = await measure([
      bin,
      'run',
      '--placeholders',
      '--env',
      'K=local://K?profile=benchtls',
      '--',
      process.execPath,
      ...clientArgs,
    ])
    console.log(
      `\nrun --placeholders, HTTPS request latency (${count} requests each, first request to the host excluded)`,
    )
    for (const kind of ['sequential', 'concurrent']) {
      const label = kind === 'sequential' ? 'sequential        ' : '20 concurrent     '
      const [d50, d99, p50, p99] = [
        percentile(direct[kind], 0.5),
        percentile(direct[kind], 0.99),
        percentile(proxied[kind], 0.5),
        percentile(proxied[kind], 0.99),
      ]
      console.log(
        `  ${label} direct p50 ${d50.toFixed(2)} ms p99 ${d99.toFixed(2)} ms   placeholders p50 ${p50.toFixed(2)} ms p99 ${p99.toFixed(2)} ms   added p50 ${(p50 - d50).toFixed(2)} ms  (target <= 3 ms)`,
      )
    }
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => {
      server.close(resolve)
    })
  }
}

try {
  cli(['secrets', 'set', 'K'], 'bench-value-0000')
  if (!placeholdersOnly) await otherSections()
  await placeholderLatency()
} finally {
  await rm(work, {force: true, recursive: true})
}

async function otherSections() {
  const names = []
  for (let i = 0; i < 10; i++) {
    names.push(`V${i}`)
    cli(['secrets', 'set', `V${i}`], randomBytes(18).toString('base64'))
  }

  const mappings = names.flatMap((name) => ['--env', `${name}=local://${name}`])

  console.log(
    `agentvault bench — node ${process.version}, ${process.platform}-${process.arch}${quick ? ' (quick)' : ''}\n`,
  )
  const [node, version, run] = await interleaved(
    [
      [process.execPath, ['-e', '0']],
      [process.execPath, [bin, '--version']],
      [process.execPath, [bin, 'run', '--env', 'K=local://K', '--', 'true']],
    ],
    startupRuns,
  )
  console.log(`startup (median of ${startupRuns})`)
  console.log(`  node -e 0                                  ${node.toFixed(1)} ms`)
  console.log(
    `  agentvault --version                       ${version.toFixed(1)} ms   ratio ${(version / node).toFixed(2)}x  (target <= 2.0x)`,
  )
  console.log(
    `  agentvault run --env K=local://K -- true    ${run.toFixed(1)} ms   ratio ${(run / node).toFixed(2)}x  (target <= 2.0x)`,
  )

  const big = await payload(256 * MB)
  const [masked, unmasked] = await interleaved(
    [
      [process.execPath, [bin, 'run', ...mappings, '--mask', 'always', '--', 'cat', big]],
      [process.execPath, [bin, 'run', ...mappings, '--mask', 'never', '--', 'cat', big]],
    ],
    maskRuns,
  )
  console.log(`\nmasking 256 MB with 10 values (median of ${maskRuns})`)
  console.log(`  --mask never    ${unmasked.toFixed(0)} ms   ${mbps(unmasked)} MB/s`)
  console.log(
    `  --mask always   ${masked.toFixed(0)} ms   ${mbps(masked)} MB/s   throughput ratio ${(unmasked / masked).toFixed(2)}x  (target >= 0.5x)`,
  )

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
      `  512 MB output   ${rssLarge.toFixed(1)} MB   ratio ${(rssLarge / rssSmall).toFixed(2)}x  (target <= 1.2x)`,
    )
  }

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
        [process.execPath, [bin, 'run', '--env', 'K=openbao://secret/bulk/key-00#f0', '--', 'true']],
        [process.execPath, [bin, 'run', ...refs, '--', 'true']],
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
