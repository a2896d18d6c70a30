// `npm run bench` section (g): `run --placeholders` — latency per HTTPS request (p50, p99) through
// the interception, sequential and 20 concurrent, next to direct requests (target p50 overhead
// <= 3 ms after the first request to a host). Needs the openssl CLI for the upstream's certificate.
// Not a test: nothing is asserted.
import {execFileSync, spawn} from 'node:child_process'
import {readFile} from 'node:fs/promises'
import {createServer} from 'node:https'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** bench/placeholders-floor.js started with the floor's leaf and the upstream's CA: {child, port}. */
async function startFloor(work) {
  const floor = fileURLToPath(new URL('placeholders-floor.js', import.meta.url))
  const child = spawn(
    process.execPath,
    [
      // BENCH_FLOOR_NODE_ARGS: Node options for the floor proxy (e.g. `--cpu-prof`), as
      // BENCH_AGENTVAULT_NODE_ARGS for agentvault.
      ...(process.env.BENCH_FLOOR_NODE_ARGS ?? '').split(' ').filter(Boolean),
      floor,
      join(work, 'floor.pem'),
      join(work, 'floor.key'),
      join(work, 'up.pem'),
    ],
    {stdio: ['ignore', 'pipe', 'inherit']},
  )
  const port = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench/placeholders-floor.js exited (${code})`)))
    child.stdout.once('data', (chunk) => resolve(Number(String(chunk).trim())))
  })
  return {child, port}
}

const percentile = (values, p) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]

/** (g): an HTTPS upstream on loopback with its own CA, trusted by a profile through caCert. */
export async function benchPlaceholders({bin, cli, env, quick, requests, root, work}) {
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
  // The floor's own CA and a leaf for 127.0.0.1 that it signed: the floor intercepts as agentvault does.
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1']
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'floor-ca.key',
    '-out',
    'floor-ca.pem',
    '-subj',
    '/CN=bench floor CA',
  )
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'floor.key',
    '-out',
    'floor.pem',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-CA',
    'floor-ca.pem',
    '-CAkey',
    'floor-ca.key',
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
    const count = requests ?? (quick ? 100 : 500)
    // Not spawnSync: the upstream lives in this process and must keep answering.
    const measure = ([command, ...args], childEnv) =>
      new Promise((resolve, reject) => {
        const child = spawn(command, args, {env: childEnv, stdio: ['ignore', 'pipe', 'inherit']})
        const chunks = []
        child.stdout.on('data', (chunk) => chunks.push(chunk))
        child.once('error', reject)
        child.once('close', (code) =>
          code === 0
            ? resolve(JSON.parse(Buffer.concat(chunks).toString()))
            : reject(new Error(`placeholder bench client exited ${code}`)),
        )
      })
    // After the rows the issue asks for, the 20-concurrent row again once every process has run
    // `warmup` more requests: a fresh Node process runs its first few hundred requests mostly
    // unoptimised (the JIT warms up), which the 500-request rows measure as much as the proxy.
    const warmup = quick ? 0 : 3000
    const clientArgs = [client, target, join(work, 'up.pem'), String(count), '20', String(warmup)]
    const clientEnv = {...env, BENCH_UPSTREAM_PID: String(process.pid)}
    // BENCH_AGENTVAULT_NODE_ARGS: Node options for the agentvault process only (e.g. `--cpu-prof`).
    const nodeArgs = (process.env.BENCH_AGENTVAULT_NODE_ARGS ?? '').split(' ').filter(Boolean)
    const agentvault = [
      process.execPath,
      ...nodeArgs,
      bin,
      'run',
      '--placeholders',
      '--env',
      'K=local://K?profile=benchtls',
      '--',
    ]
    // Interleaved rounds (direct, proxied, direct, …): machine noise hits both alike; medians reported.
    const rounds = quick || requests ? 1 : 3
    const runs = {direct: [], floor: [], proxied: []}
    for (let i = 0; i < rounds; i++) {
      runs.direct.push(await measure([process.execPath, ...clientArgs], clientEnv))
      runs.proxied.push(await measure([...agentvault, process.execPath, ...clientArgs], clientEnv))
      // A fresh floor each round, as agentvault is: both start cold.
      const floor = await startFloor(work)
      try {
        runs.floor.push(
          await measure([process.execPath, ...clientArgs], {
            ...clientEnv,
            BENCH_PROXY_PID: String(floor.child.pid),
            HTTPS_PROXY: `http://127.0.0.1:${floor.port}`,
            NODE_EXTRA_CA_CERTS: join(work, 'floor-ca.pem'),
          }),
        )
      } finally {
        floor.child.kill()
      }
    }

    const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
    const ms = (value) => `${value.toFixed(2)} ms`.padStart(9)
    console.log(
      `\nrun --placeholders, HTTPS request latency (${count} requests each, first request on each connection excluded; median of ${rounds} interleaved rounds)`,
    )
    console.log(
      '  (floor: a bare intercepting proxy in Node, bench/placeholders-floor.js, fresh each round: what any Node proxy of the kind costs here)',
    )
    if (warmup > 0)
      console.log(`  ("warm": 20 concurrent again after ${warmup} more requests through the same processes)`)
    const labels = {concurrent: '20 concurrent', sequential: 'sequential   ', warm: '20 conc. warm'}
    for (const kind of warmup > 0 ? ['sequential', 'concurrent', 'warm'] : ['sequential', 'concurrent']) {
      const label = labels[kind]
      const of = (list, p) => median(list.map((run) => percentile(run[kind], p)))
      const [d50, d99, p50, p99, f50] = [
        of(runs.direct, 0.5),
        of(runs.direct, 0.99),
        of(runs.proxied, 0.5),
        of(runs.proxied, 0.99),
        of(runs.floor, 0.5),
      ]
      console.log(
        `  ${label}  direct p50 ${ms(d50)} p99 ${ms(d99)}   placeholders p50 ${ms(p50)} p99 ${ms(p99)}   added p50 ${ms(p50 - d50)}  (target <= 3 ms; the floor's ${ms(f50 - d50).trim()})`,
      )
      // CPU time per request is what each process costs whatever else the machine runs (latency
      // under load is not): with 20 clients in a closed loop, latency ≈ 20 × the bottleneck's share.
      const cpu = (list, name) => median(list.map((run) => run.cpu[kind][name]))
      console.log(
        `  ${''.padEnd(label.length)}  CPU per request: direct client ${ms(cpu(runs.direct, 'client'))}, upstream ${ms(cpu(runs.direct, 'upstream'))};  placeholders client ${ms(cpu(runs.proxied, 'client'))}, upstream ${ms(cpu(runs.proxied, 'upstream'))}, agentvault ${ms(cpu(runs.proxied, 'agentvault'))} (system ${cpu(runs.proxied, 'agentvaultSys').toFixed(2)} ms), floor proxy ${ms(cpu(runs.floor, 'agentvault'))}`,
      )
    }
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => {
      server.close(resolve)
    })
  }
}
