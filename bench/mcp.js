// `npm run bench` section (e): `agentvault mcp` — wall time from spawning the server to its
// `initialize` response, and the median round trip of a `list_secrets` call on `local` after warm-up
// (target <= 15 ms). Not a test: nothing is asserted.
import {spawn} from 'node:child_process'
import {createInterface} from 'node:readline'

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
let bin
let env

/** Start `agentvault mcp` and speak raw JSON-RPC to it; `request` resolves to the response. */
function startMcp() {
  const child = spawn(bin, ['mcp', '--allow', 'local://*'], {
    env,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const waiting = new Map()
  createInterface({input: child.stdout}).on('line', (line) => {
    const message = JSON.parse(line)
    waiting.get(message.id)?.(message)
    waiting.delete(message.id)
  })
  let next = 1
  const closed = new Promise((resolve) => {
    child.once('close', resolve)
  })
  return {
    async close() {
      child.stdin.end()
      await closed
    },
    request(method, params) {
      const id = next++
      return new Promise((resolve) => {
        waiting.set(id, resolve)
        child.stdin.write(`${JSON.stringify({id, jsonrpc: '2.0', method, ...(params && {params})})}\n`)
      })
    },
  }
}

const INITIALIZE = {
  capabilities: {},
  clientInfo: {name: 'bench', version: '1'},
  protocolVersion: '2025-06-18',
}

/** Milliseconds from spawning `agentvault mcp` to its `initialize` response. */
async function mcpStartup() {
  const started = process.hrtime.bigint()
  const server = startMcp()
  await server.request('initialize', INITIALIZE)
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6
  await server.close()
  return elapsed
}

/** Median round trip of list_secrets over one server, after `warmup` calls. */
async function mcpListLatency(warmup, calls) {
  const server = startMcp()
  await server.request('initialize', INITIALIZE)
  const list = {arguments: {}, name: 'list_secrets'}
  for (let i = 0; i < warmup; i++) await server.request('tools/call', list)
  const samples = []
  for (let i = 0; i < calls; i++) {
    const started = process.hrtime.bigint()
    const response = await server.request('tools/call', list)
    samples.push(Number(process.hrtime.bigint() - started) / 1e6)
    if (response.result?.isError) throw new Error(`list_secrets failed: ${JSON.stringify(response.result)}`)
  }

  await server.close()
  return median(samples)
}

/** Print section (e). */
export async function benchMcp(options) {
  ;({bin, env} = options)
  const {quick, startupRuns} = options
  const starts = []
  for (let i = 0; i < startupRuns; i++) starts.push(await mcpStartup())
  const listLatency = await mcpListLatency(20, quick ? 50 : 200)
  console.log(`\nagentvault mcp --allow 'local://*'`)
  console.log(`  start → initialize response (median of ${startupRuns})   ${median(starts).toFixed(1)} ms`)
  console.log(
    `  list_secrets after warm-up (median of ${quick ? 50 : 200})       ${listLatency.toFixed(2)} ms   (target <= 15 ms)`,
  )
}
