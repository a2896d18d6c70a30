/**
 * One socket to a Sanctum daemon (protocols/sanctum.md §1–3): pipelined requests matched by id,
 * a connect timeout and a per-request timeout, and fail-closed handling of anything unexpected —
 * once the stream cannot be trusted, the socket is destroyed and every pending request rejected.
 */
import type {Debugger} from 'debug'

import {createConnection, type Socket} from 'node:net'

import type {AgentVaultError} from '../../core/errors.js'

import {concealSent} from '../../core/conceal.js'
import {
  connectionClosedError,
  type RequestLabel,
  SanctumDaemonError,
  SanctumProtocolError,
  timeoutError,
  unreachableError,
} from './errors.js'
import {encodeFrame, FrameDecoder} from './framing.js'

/** Where the daemon listens: a Unix socket path, or TCP host and port. */
export type SanctumEndpoint = {host: string; port: number} | {path: string}

/** `unix:/path` or `host:port`, for messages. */
export function describeEndpoint(endpoint: SanctumEndpoint): string {
  return 'path' in endpoint ? `unix:${endpoint.path}` : `${endpoint.host}:${endpoint.port}`
}

export interface ConnectionOptions {
  log: Debugger
  maxFrameBytes: number
  timeoutMs: number
}

interface Pending {
  label: RequestLabel
  /** The request's value-carrying params (operation params, signature, session and lease ids). */
  sent: unknown[]
  reject(error: Error): void
  resolve(result: unknown): void
  timer: NodeJS.Timeout
}

/** Request params that may carry a value; names such as path, agent and operation stay readable. */
const SENT_PARAMS = ['params', 'signature', 'session_id', 'lease_id'] as const

export class SanctumConnection {
  private readonly decoder: FrameDecoder
  private readonly endpointText: string
  /** Set once the connection is unusable; later requests fail with it. */
  private failure?: AgentVaultError
  private nextId = 1
  private readonly pending = new Map<number, Pending>()

  private constructor(
    private readonly socket: Socket,
    endpoint: SanctumEndpoint,
    private readonly options: ConnectionOptions,
  ) {
    this.endpointText = describeEndpoint(endpoint)
    this.decoder = new FrameDecoder(options.maxFrameBytes)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (error: NodeJS.ErrnoException) =>
      this.fail(connectionClosedError(this.endpointText, error.code)),
    )
    socket.on('end', () => this.fail(connectionClosedError(this.endpointText)))
    socket.on('close', () => this.fail(connectionClosedError(this.endpointText)))
  }

  /** False once closed, failed, or ended by the daemon. */
  get isOpen(): boolean {
    return this.failure === undefined
  }

  /** Connect, or fail with "unreachable" (ENOENT, ECONNREFUSED, …) or a timeout after `timeoutMs`. */
  static open(endpoint: SanctumEndpoint, options: ConnectionOptions): Promise<SanctumConnection> {
    const text = describeEndpoint(endpoint)
    return new Promise((resolve, reject) => {
      const socket = createConnection('path' in endpoint ? {path: endpoint.path} : endpoint)
      const timer = setTimeout(() => {
        socket.destroy()
        reject(timeoutError(text, 'the connection', options.timeoutMs))
      }, options.timeoutMs)
      const onError = (error: NodeJS.ErrnoException): void => {
        clearTimeout(timer)
        reject(unreachableError(text, error.code))
      }

      socket.once('error', onError)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.off('error', onError)
        socket.setNoDelay(true)
        options.log('connected to %s', text)
        resolve(new SanctumConnection(socket, endpoint, options))
      })
    })
  }

  /** End the socket after the daemon has answered what is pending (bounded by `timeoutMs`). */
  async close(): Promise<void> {
    if (this.socket.destroyed) return
    const closed = new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve())
    })
    if (!this.failure) {
      this.failure = connectionClosedError(this.endpointText)
      this.socket.end()
    }

    const timer = setTimeout(() => this.socket.destroy(), this.options.timeoutMs)
    await closed
    clearTimeout(timer)
  }

  /**
   * Send one request and resolve to its `result` (`{}` when absent). A daemon error rejects with a
   * SanctumDaemonError; transport and protocol failures reject with a BackendUnavailableError.
   */
  request(method: string, params: Record<string, unknown>, path?: string): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure)
    const id = this.nextId
    const frame = encodeFrame({id, method, params}, this.options.maxFrameBytes)
    this.nextId += 1
    return new Promise((resolve, reject) => {
      const label = {method, ...(path === undefined ? {} : {path})}
      const timer = setTimeout(() => {
        this.options.log('timeout %s id=%d after %d ms', method, id, this.options.timeoutMs)
        this.fail(timeoutError(this.endpointText, method, this.options.timeoutMs))
      }, this.options.timeoutMs)
      const sent = SENT_PARAMS.map((key) => params[key])
      this.pending.set(id, {label, reject, resolve, sent, timer})
      this.options.log('→ %s id=%d %d bytes', method, id, frame.length)
      this.socket.write(frame)
    })
  }

  /** Reject every pending request with `error` and destroy the socket. Idempotent. */
  private fail(error: AgentVaultError): void {
    const first = this.failure === undefined
    this.failure ??= error
    if (this.pending.size > 0 || (first && this.decoder.bufferedBytes > 0))
      this.options.log(
        'connection failed (%s) with %d pending, %d bytes buffered',
        error.code,
        this.pending.size,
        this.decoder.bufferedBytes,
      )
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer)
      pending.reject(error)
    }

    this.pending.clear()
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    if (this.socket.destroyed) return
    let frames
    try {
      frames = this.decoder.push(chunk)
    } catch (error) {
      this.fail(error as SanctumProtocolError)
      return
    }

    for (const {message, size} of frames) {
      const {id} = message
      const pending = typeof id === 'number' && Number.isInteger(id) ? this.pending.get(id) : undefined
      if (!pending) {
        const what = typeof id === 'number' && Number.isInteger(id) ? `id ${id}, which` : 'an id that'
        this.fail(new SanctumProtocolError(`a response has ${what} matches no pending request`))
        return
      }

      this.pending.delete(id as number)
      clearTimeout(pending.timer)
      this.options.log('← %s id=%d %d bytes', pending.label.method, id, size)
      const {error, result} = message
      // The daemon's message may quote the request: what it carried never comes back in an error.
      if (error !== undefined && error !== null)
        pending.reject(new SanctumDaemonError(concealSent(error, pending.sent), pending.label))
      else pending.resolve(result === undefined ? {} : result)
    }
  }
}
