/**
 * The MCP stdio transport of `agentvault mcp`: newline-delimited JSON-RPC on stdin/stdout, as the
 * SDK's own StdioServerTransport, but answering what that one drops or dies of, so that a broken
 * client message never stops the server:
 * - a line that is not JSON gets a JSON-RPC parse error (-32700, id null);
 * - JSON that is not a JSON-RPC message (a batch, a missing `jsonrpc`, …) gets an invalid-request
 *   error (-32600) with the request's id when one can be read;
 * - a line longer than {@link MAX_MESSAGE_BYTES} is skipped to its end (never buffered) and gets
 *   an invalid-request error (id null): the SDK's transport would close the connection instead;
 * - a client that stops reading stdout is not read from either: while the answers already written
 *   wait for it (stdout needs a drain), no further line is handled and stdin is paused, so the
 *   server's memory stays bounded by what it had already taken on (the SDK's transport reads on
 *   and queues every answer);
 * - an error message goes out as the sentence it is: the SDK's McpError prefixes `MCP error CODE: `,
 *   which the client's McpError would then prefix again.
 */
import type {Transport} from '@modelcontextprotocol/sdk/shared/transport.js'
import type {JSONRPCMessage} from '@modelcontextprotocol/sdk/types.js'
import type {Readable, Writable} from 'node:stream'

/** The longest request line read (16 MiB): tool arguments have their own, smaller limit. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024

const NEWLINE = 0x0a

type Id = null | number | string

interface Validator {
  safeParse(value: unknown): {data?: unknown; success: boolean}
}

/** `message` with an error's message freed of the SDK's `MCP error CODE: ` prefix. */
function withoutPrefix(message: JSONRPCMessage): JSONRPCMessage {
  if (!('error' in message) || typeof message.error?.message !== 'string') return message
  const text = message.error.message.replace(/^MCP error -?\d+: /, '')
  return text === message.error.message ? message : {...message, error: {...message.error, message: text}}
}

function idOf(value: unknown): Id {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null
  const {id} = value as {id?: unknown}
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : null
}

export class LineTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  /** stdin is paused because stdout waits for the client to read (for `DEBUG=agentvault:mcp`). */
  onhold?: () => void
  onmessage?: (message: JSONRPCMessage) => void
  /**
   * stdin ended: the client sends no more, but may still await answers. Set it to finish pending
   * requests before `close()`; unset, the transport closes at once.
   */
  oninputend?: () => void
  private chunks: Buffer[] = []
  private closed = false
  private readonly onData = (chunk: Buffer): void => this.receive(chunk)
  private readonly onEnd = (): void => {
    if (this.held) {
      this.ended = true
      return
    }

    if (this.oninputend) this.oninputend()
    else this.close().catch(() => {})
  }
  /** Resolves when stdout drains, while answers wait for it (see send). */
  private drained: Promise<void> | undefined
  /** stdin ended while lines were held back: end once they are handled. */
  private ended = false
  /** Bytes read but not yet handled, kept while stdout waits for the client to read (see hold). */
  private held: Buffer | undefined
  private size = 0
  /** Inside a line that was too long: drop bytes until its newline. */
  private skipping = false

  constructor(
    private readonly validator: Validator,
    private readonly input: Readable = process.stdin,
    private readonly output: Writable = process.stdout,
    private readonly maxMessageBytes = MAX_MESSAGE_BYTES,
  ) {}

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.input.off('data', this.onData)
    this.input.off('end', this.onEnd)
    this.input.pause()
    this.chunks = []
    this.held = undefined
    this.onclose?.()
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.closed || this.output.destroyed) return Promise.resolve()
    if (this.output.write(`${JSON.stringify(withoutPrefix(message))}\n`)) return Promise.resolve()
    // Every answer written while stdout is full waits for the same drain: one listener, not one
    // per answer (hundreds of calls finishing at once).
    this.drained ??= new Promise((resolve) => {
      this.output.once('drain', () => {
        this.drained = undefined
        resolve()
      })
    })
    return this.drained
  }

  async start(): Promise<void> {
    this.input.on('data', this.onData)
    this.input.once('end', this.onEnd)
    this.input.on('error', (error: Error) => this.onerror?.(error))
    this.output.on('error', (error: Error) => {
      // The client went away: nothing more can be said to it.
      this.onerror?.(error)
      this.close().catch(() => {})
    })
  }

  private fail(id: Id, code: number, message: string): void {
    this.send({error: {code, message}, id, jsonrpc: '2.0'} as unknown as JSONRPCMessage).catch(() => {})
  }

  private handleLine(line: Buffer): void {
    const text = line.toString('utf8').replace(/\r$/, '')
    if (text.trim() === '') return
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      this.fail(null, -32_700, 'Parse error: the message is not valid JSON')
      return
    }

    const checked = this.validator.safeParse(parsed)
    if (!checked.success) {
      this.fail(
        idOf(parsed),
        -32_600,
        Array.isArray(parsed)
          ? 'Invalid Request: batches are not supported; send one JSON-RPC message per line'
          : 'Invalid Request: not a JSON-RPC 2.0 request, notification or response',
      )
      return
    }

    this.onmessage?.(checked.data as JSONRPCMessage)
  }

  /**
   * Keep `rest` unhandled and stop reading stdin until stdout has drained: a client that does not
   * read the answers gets no more of them, and its further requests wait in the pipe, not here.
   */
  private hold(rest: Buffer): void {
    this.held = rest
    this.input.pause()
    this.onhold?.()
    this.output.once('drain', () => {
      const {held} = this
      this.held = undefined
      if (this.closed) return
      if (held) this.receive(held)
      if (this.held) return
      if (this.ended) this.onEnd()
      else this.input.resume()
    })
  }

  private receive(chunk: Buffer): void {
    if (this.held) {
      this.held = Buffer.concat([this.held, chunk])
      return
    }

    let start = 0
    while (start < chunk.length && !this.closed) {
      if (this.output.writableNeedDrain) {
        this.hold(chunk.subarray(start))
        return
      }

      const newline = chunk.indexOf(NEWLINE, start)
      const end = newline === -1 ? chunk.length : newline
      const piece = chunk.subarray(start, end)
      if (!this.skipping) {
        if (this.size + piece.length > this.maxMessageBytes) {
          this.chunks = []
          this.size = 0
          this.skipping = true
          this.fail(
            null,
            -32_600,
            `Invalid Request: the message is larger than ${this.maxMessageBytes} bytes`,
          )
        } else {
          this.chunks.push(piece)
          this.size += piece.length
        }
      }

      if (newline === -1) break
      if (!this.skipping) {
        const line = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks)
        this.chunks = []
        this.size = 0
        this.handleLine(line)
      }

      this.skipping = false
      start = newline + 1
    }
  }
}
