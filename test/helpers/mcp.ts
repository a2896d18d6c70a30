/**
 * MCP e2e helpers: the SDK's own Client over a real stdio child (the built binary's `mcp`), started
 * through a recording relay (mcp-relay.mjs) so that every byte of both directions is kept for the
 * canary sweeps, plus a raw line client for malformed messages the SDK would never send.
 */
import type {ChildProcess} from 'node:child_process'

import {Client} from '@modelcontextprotocol/sdk/client/index.js'
import {StdioClientTransport} from '@modelcontextprotocol/sdk/client/stdio.js'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {baseEnv, BIN, ROOT, startCli} from './cli.js'

const RELAY = join(ROOT, 'test', 'helpers', 'mcp-relay.mjs')

/** The audit log of `home`, one object per complete line (a server may be appending one right now). */
export async function auditLines(home: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(join(home, 'audit.log'), 'utf8').catch(() => '')
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

export const CLIENT_INFO = {name: 'agentvault-e2e', version: '1.2.3'}

export interface Transcript {
  /** Client → server bytes. */
  sent: string
  /** Server → client bytes. */
  received: string
  stderr: string
}

export interface McpSession {
  client: Client
  /** Close the client (ending the server's stdin) and return the whole transcript. */
  close(): Promise<Transcript>
}

export async function startMcp(args: string[], env: NodeJS.ProcessEnv): Promise<McpSession> {
  const dir = await mkdtemp(join(tmpdir(), 'agentvault-mcp-'))
  const record = join(dir, 'transcript')
  const transport = new StdioClientTransport({
    args: [RELAY, record, process.execPath, BIN, 'mcp', ...args],
    command: process.execPath,
    cwd: ROOT,
    env: baseEnv(env) as Record<string, string>,
    stderr: 'pipe',
  })
  const exited = new Promise<void>((resolve) => {
    // eslint-disable-next-line unicorn/prefer-add-event-listener -- the SDK transport has only this hook
    transport.onclose = () => resolve()
  })
  const client = new Client(CLIENT_INFO)
  await client.connect(transport)
  const read = async (suffix: string): Promise<string> => {
    try {
      return await readFile(`${record}.${suffix}`, 'utf8')
    } catch {
      return ''
    }
  }

  return {
    client,
    async close() {
      await client.close()
      await exited
      const transcript = {received: await read('out'), sent: await read('in'), stderr: await read('err')}
      await rm(dir, {force: true, recursive: true})
      return transcript
    },
  }
}

export interface RawResponse {
  error?: {code: number; message: string}
  id: null | number | string
  result?: Record<string, unknown>
}

/** A raw JSON-RPC line client over the built binary's `mcp`, for messages no SDK would send. */
export class RawMcp {
  readonly child: ChildProcess
  readonly responses: RawResponse[] = []
  private buffer = ''
  private closed = false
  private readonly waiters = new Set<() => void>()

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.child = startCli(['mcp', ...args], {env, openStdin: true})
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8')
      let newline = this.buffer.indexOf('\n')
      while (newline !== -1) {
        this.responses.push(JSON.parse(this.buffer.slice(0, newline)) as RawResponse)
        this.buffer = this.buffer.slice(newline + 1)
        newline = this.buffer.indexOf('\n')
      }

      for (const wake of this.waiters) wake()
    })
    this.child.once('close', () => {
      this.closed = true
      for (const wake of this.waiters) wake()
    })
  }

  /** Resolve with the first response (from the start) that satisfies `match`: an event, not a sleep. */
  next(match: (response: RawResponse) => boolean, what: string): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.responses.find((response) => match(response))
        if (found) {
          this.waiters.delete(check)
          resolve(found)
        } else if (this.closed) {
          this.waiters.delete(check)
          reject(new Error(`server closed before answering ${what}`))
        }
      }

      this.waiters.add(check)
      check()
    })
  }

  async close(): Promise<number | null> {
    const done = new Promise<number | null>((resolve) => {
      if (this.closed) resolve(this.child.exitCode)
      else this.child.once('close', (code) => resolve(code))
    })
    this.child.stdin?.end()
    return done
  }

  send(line: Buffer | string): void {
    this.child.stdin?.write(typeof line === 'string' ? `${line}\n` : line)
  }

  /** Send a request and await its response. */
  async request(id: number, method: string, params?: unknown): Promise<RawResponse> {
    this.send(JSON.stringify({id, jsonrpc: '2.0', method, ...(params !== undefined && {params})}))
    return this.next((response) => response.id === id, `request ${id} (${method})`)
  }
}
