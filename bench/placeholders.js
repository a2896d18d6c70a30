// `npm run bench` section (g): `run --placeholders` — latency per HTTPS request (p50, p99) through
// the interception, sequential and 20 concurrent, next to direct requests (target p50 overhead
// <= 3 ms after the first request to a host). Needs the openssl CLI for the upstream's certificate.
// Not a test: nothing is asserted.
import {execFileSync, spawn} from 'node:child_process'
import {readFile} from 'node:fs/promises'
import {createServer} from 'node:https'
import {join} from 'node:path'

const percentile = (values, p) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]

/** (g): an HTTPS upstream on loopback with its own CA, trusted by a profile through caCert. */
export async function benchPlaceholders({bin, cli, env, quick, root, work}) {
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
      `\nrun --placeholders, HTTPS request latency (${count} requests each, first request on each connection excluded)`,
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
