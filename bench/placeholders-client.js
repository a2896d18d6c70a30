// The child of `npm run bench`'s placeholder section: HTTPS requests with K in a header, through
// HTTPS_PROXY (CONNECT, kept alive) when it is set, else straight to the upstream. Prints JSON:
// latencies in ms, {sequential: [...], concurrent: [...]} (the first request on each connection
// excluded; with WARMUP > 0 also `warm`: concurrent again after WARMUP more requests), and `cpu`, the CPU time per request (ms) of each phase spent by this client, by its
// parent (agentvault, when proxied) and by the upstream's process (BENCH_UPSTREAM_PID), from
// /proc (Linux; NaN elsewhere).
import {readFileSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'

const [target, caFile, count, concurrency, warmup = '0'] = process.argv.slice(2)
const url = new URL(target)
const proxy = process.env.HTTPS_PROXY ? new URL(process.env.HTTPS_PROXY) : undefined

class ProxyAgent extends https.Agent {
  createConnection(options, callback) {
    http
      .request({
        // Not the global agent: where Node honours NODE_USE_ENV_PROXY (22.21+, 24.5+) that one
        // would send this CONNECT through HTTPS_PROXY itself, i.e. ask the proxy to tunnel to itself.
        agent: false,
        host: proxy.hostname,
        method: 'CONNECT',
        path: `${options.host}:${options.port}`,
        port: proxy.port,
      })
      .on('connect', (_response, socket) => callback(null, tls.connect({...options, socket})))
      .on('error', callback)
      .end()
  }
}

const agent = proxy
  ? new ProxyAgent({keepAlive: true, maxSockets: Number(concurrency)})
  : new https.Agent({ca: readFileSync(caFile), keepAlive: true, maxSockets: Number(concurrency)})

/** A process's CPU time so far in ms, user and system; NaN when /proc cannot tell. */
function cpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks.
    return {sys: Number(fields[12]) * 10, user: Number(fields[11]) * 10}
  } catch {
    return {sys: Number.NaN, user: Number.NaN}
  }
}

const pids = {
  client: process.pid,
  // The proxy's process: agentvault, this client's parent, or the floor (BENCH_PROXY_PID).
  ...(proxy && {agentvault: Number(process.env.BENCH_PROXY_PID ?? process.ppid)}),
  upstream: Number(process.env.BENCH_UPSTREAM_PID),
}
const cpuNow = () => Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMs(pid)]))
/** CPU per request (ms) of each process since `before`: user + system, and system alone. */
const cpuSince = (before, requests) => {
  const result = {}
  for (const [name, {sys, user}] of Object.entries(cpuNow())) {
    result[name] = (user + sys - before[name].user - before[name].sys) / requests
    result[`${name}Sys`] = (sys - before[name].sys) / requests
  }

  return result
}

function once() {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    https
      .request(
        {
          agent,
          headers: {authorization: `Bearer ${process.env.K}`},
          host: url.hostname,
          path: '/bench',
          port: url.port,
          servername: '',
        },
        (response) => {
          response.resume()
          response.on('end', () => resolve(Number(process.hrtime.bigint() - started) / 1e6))
        },
      )
      .on('error', reject)
      .end()
  })
}

try {
  await once()
  const sequential = []
  let before = cpuNow()
  for (let i = 0; i < Number(count); i++) sequential.push(await once())
  const cpu = {sequential: cpuSince(before, Number(count))}
  // One request per connection first: opening the other connections (CONNECT, two TLS handshakes
  // through the proxy) is each connection's first request to the host, which the target excludes.
  await Promise.all(Array.from({length: Number(concurrency)}, () => once()))
  /** `total` requests, `concurrency` at a time in a closed loop: their latencies. */
  const closedLoop = async (total) => {
    const latencies = []
    let next = 0
    await Promise.all(
      Array.from({length: Number(concurrency)}, async () => {
        while (next++ < total) latencies.push(await once())
      }),
    )
    return latencies
  }

  before = cpuNow()
  const concurrent = await closedLoop(Number(count))
  cpu.concurrent = cpuSince(before, Number(count))
  const result = {concurrent, cpu, sequential}
  if (Number(warmup) > 0) {
    // The same again once every process has run `warmup` more requests (its JIT warm).
    await closedLoop(Number(warmup))
    before = cpuNow()
    result.warm = await closedLoop(Number(count))
    cpu.warm = cpuSince(before, Number(count))
  }

  agent.destroy()
  process.stdout.write(JSON.stringify(result))
} catch (error) {
  console.error(error)
  process.exitCode = 1
}
