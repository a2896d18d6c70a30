/**
 * Drive a started `agentvault proxy start` as AgentSecrets clients do: plain HTTP/1.1 requests on
 * 127.0.0.1 with `X-AS-*` headers, and raw sockets for what a well-behaved client never sends.
 */
import type {ChildProcess} from 'node:child_process'

import assert from 'node:assert/strict'
import {request as httpRequest, type IncomingHttpHeaders} from 'node:http'
import {connect, type Socket} from 'node:net'

import {type CliResult, collect, runCli, startCli, waitForOutput} from './cli.js'

export interface ProxyReply {
  body: Buffer
  headers: IncomingHttpHeaders
  status: number
  text: string
}

export interface StartedProxy {
  child: ChildProcess
  /** Resolves when the process exits (after `stop()`). */
  exited: Promise<CliResult>
  port: number
  /** Every stderr line so far (one per request, plus warnings). */
  stderr(): string
  /** Resolve once stderr holds `count` request lines: each is written after its audit event. */
  untilRequestLines(count: number): Promise<string[]>
  stop(): Promise<CliResult>
  token?: string
}

const REQUEST_LINE = /^\d{4}-\d\d-\d\dT\S+ \d{3} (ok|denied|error) /

/** Start `proxy start --port 0 …` and wait until it listens (its stdout line), then read its token. */
export async function startProxy(env: NodeJS.ProcessEnv, args: string[] = []): Promise<StartedProxy> {
  // --port 0 picks a free port, unless the test names one (a restart on the same port).
  const child = startCli(['proxy', 'start', ...(args.includes('--port') ? [] : ['--port', '0']), ...args], {
    env,
  })
  let err = ''
  const waiters = new Set<() => void>()
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8')
    for (const wake of waiters) wake()
  })
  const exited = collect(child)
  let out = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8')
  })
  await waitForOutput(child, 'Ctrl-C stops it.')
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(out)?.[1])
  assert.ok(port > 0, out)
  const status = await runCli(['proxy', 'status', '--show-token', '--json'], {env})
  const parsed = JSON.parse(status.stdout) as {sessionToken?: null | string}
  const lines = (): string[] => err.split('\n').filter((line) => REQUEST_LINE.test(line))
  return {
    child,
    exited,
    port,
    stderr: () => err,
    async stop() {
      const stopped = await runCli(['proxy', 'stop'], {env})
      assert.equal(stopped.code, 0, stopped.stderr)
      return exited
    },
    ...(parsed.sessionToken ? {token: parsed.sessionToken} : {}),
    untilRequestLines(count) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (lines().length >= count) {
            waiters.delete(check)
            resolve(lines())
          }
        }

        waiters.add(check)
        child.once('close', () => reject(new Error(`the proxy exited; stderr: ${err}`)))
        check()
      })
    },
  }
}

export interface ProxyCall {
  body?: Buffer | string
  headers?: Record<string, string>
  method?: string
  path?: string
}

/** One HTTP request to the proxy (a fresh connection, so one slow test cannot hold another). */
export function proxyCall(port: number, call: ProxyCall = {}): Promise<ProxyReply> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {
        agent: false,
        headers: call.headers,
        host: '127.0.0.1',
        method: call.method ?? 'GET',
        path: call.path ?? '/proxy',
        port,
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => {
          const body = Buffer.concat(chunks)
          resolve({
            body,
            headers: response.headers,
            status: response.statusCode ?? 0,
            text: body.toString('utf8'),
          })
        })
      },
    )
    outgoing.once('error', reject)
    outgoing.end(call.body)
  })
}

/** Send raw bytes on a new connection and collect everything until the server closes it or `done`. */
export function rawExchange(port: number, bytes: Buffer | string, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({host, port})
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      // One response is enough: a complete head plus its Content-Length.
      const text = Buffer.concat(chunks).toString('latin1')
      const head = text.indexOf('\r\n\r\n')
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? Number.NaN)
      if (head !== -1 && Number.isFinite(length) && text.length >= head + 4 + length) socket.end()
    })
    socket.once('error', reject)
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
    socket.write(bytes)
  })
}
