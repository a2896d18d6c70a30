// The child of `npm run bench`'s placeholder section: HTTPS requests with K in a header, through
// HTTPS_PROXY (CONNECT, kept alive) when it is set, else straight to the upstream. Prints JSON
// latencies in ms: {sequential: [...], concurrent: [...]} (the first request on each connection excluded).
import {readFileSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'

const [target, caFile, count, concurrency] = process.argv.slice(2)
const url = new URL(target)
const proxy = process.env.HTTPS_PROXY ? new URL(process.env.HTTPS_PROXY) : undefined

class ProxyAgent extends https.Agent {
  createConnection(options, callback) {
    http
      .request({
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
  for (let i = 0; i < Number(count); i++) sequential.push(await once())
  // One request per connection first: opening the other connections (CONNECT, two TLS handshakes
  // through the proxy) is each connection's first request to the host, which the target excludes.
  await Promise.all(Array.from({length: Number(concurrency)}, () => once()))
  const concurrent = []
  let next = 0
  await Promise.all(
    Array.from({length: Number(concurrency)}, async () => {
      while (next++ < Number(count)) concurrent.push(await once())
    }),
  )
  agent.destroy()
  process.stdout.write(JSON.stringify({concurrent, sequential}))
} catch (error) {
  console.error(error)
  process.exitCode = 1
}
