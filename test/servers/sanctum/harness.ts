/**
 * A ready-made Sanctum test daemon for unit and e2e tests: one agent with the §13 key, a few
 * credentials (one a canary), an allow-all policy for that agent, and an HTTP target for
 * `http_request`.
 */
import {chmod, mkdir, writeFile} from 'node:fs/promises'
import {createServer, type IncomingHttpHeaders, type Server} from 'node:http'
import {join} from 'node:path'

import {VECTOR} from './fixtures.js'
import {SanctumTestServer, type ServerConfig, type StoredCredential} from './server.js'

export const AGENT = 'test-agent'
export const CANARY = 'canary-sanctum-5e1f0c9d7b'
export const BULK_COUNT = 20
export const bulkPath = (i: number): string => `bulk/key-${String(i).padStart(2, '0')}`
export const bulkValue = (i: number): string => `${CANARY}-bulk-${i}`

export function standardCredentials(): Record<string, StoredCredential> {
  const credentials: Record<string, StoredCredential> = {
    'openai/api_key': {value: VECTOR.valueText, type: 'api_key', description: 'prod', tags: ['ai']},
    'canary/token': {value: CANARY, type: 'token', description: 'the canary', tags: ['test', 'canary']},
    'denied/secret': {value: `${CANARY}-denied`, type: 'password'},
  }
  for (let i = 0; i < BULK_COUNT; i++) credentials[bulkPath(i)] = {value: bulkValue(i), type: 'api_key'}
  return credentials
}

/** A started server: the §13 agent registered, allowed everything but `denied/*`. */
export async function startStandardServer(config: Partial<ServerConfig> = {}): Promise<SanctumTestServer> {
  const server = new SanctumTestServer({
    agents: {[AGENT]: VECTOR.publicKeyHex},
    credentials: standardCredentials(),
    policies: [{agent: AGENT, paths: ['openai/*', 'canary/*', 'bulk/*', 'missing/*']}],
    ...config,
  })
  await server.listen()
  return server
}

/** Write a key file (hex seed) with `mode` into `dir`; returns its path. */
export async function writeSeedFile(
  dir: string,
  name: string,
  seedHex: string = VECTOR.seedHex,
  mode = 0o600,
): Promise<string> {
  await mkdir(dir, {recursive: true, mode: 0o700})
  const path = join(dir, name)
  await writeFile(path, `${seedHex}\n`, {mode})
  await chmod(path, mode)
  return path
}

export interface HttpTarget {
  close(): Promise<void>
  /** Headers of every request received, in order. */
  received: Array<{body: string; headers: IncomingHttpHeaders; method: string; url: string}>
  url: string
}

/** An HTTP server on 127.0.0.1 that records requests and answers a fixed JSON body. */
export async function startHttpTarget(): Promise<HttpTarget> {
  const received: HttpTarget['received'] = []
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      received.push({
        body: Buffer.concat(chunks).toString('utf8'),
        headers: request.headers,
        method: request.method ?? '',
        url: request.url ?? '',
      })
      response.writeHead(201, {'content-type': 'application/json', 'x-target': 'yes'})
      response.end(JSON.stringify({ok: true, n: received.length}))
    })
  })
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const {port} = server.address() as {port: number}
  return {
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
      })
    },
    received,
    url: `http://127.0.0.1:${port}`,
  }
}
