/**
 * The OpenBao test server as its own process, for benchmarks and manual runs (tests run it
 * in-process instead):
 *
 *   node --import tsx test/servers/openbao/cli.ts [--tls] [--latency MS] [--jitter MS]
 *
 * It seeds the standard state (harness.ts) and prints one line, `ready {"url":…,"tokens":{…}}`,
 * once it listens on 127.0.0.1. It stops on SIGINT, SIGTERM or when stdin closes. Test-only:
 * the tokens it prints are throw-away values of an in-memory server.
 */
import {parseArgs} from 'node:util'

import {startSeededServer} from './harness.js'

const {values} = parseArgs({
  options: {
    jitter: {default: '0', type: 'string'},
    latency: {default: '0', type: 'string'},
    tls: {default: false, type: 'boolean'},
  },
})
const {server, tokens} = await startSeededServer({tls: values.tls})
const latency = Number(values.latency)
if (latency > 0) server.faults = {delay: {jitterMs: Number(values.jitter), ms: latency, route: /\/data\//}}
process.stdout.write(`ready ${JSON.stringify({tokens, url: server.url})}\n`)

let stopping = false
const stop = async (): Promise<void> => {
  if (stopping) return
  stopping = true
  await server.close()
  process.exit(0)
}

process.once('SIGINT', stop)
process.once('SIGTERM', stop)
process.stdin.once('end', stop)
process.stdin.resume()
