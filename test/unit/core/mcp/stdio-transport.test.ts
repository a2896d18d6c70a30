/* eslint-disable unicorn/prefer-add-event-listener -- the MCP Transport interface has only on* hooks */
// The project imports fast-check's default export (`fc.string()`, …) as its docs do.

import {JSONRPCMessageSchema} from '@modelcontextprotocol/sdk/types.js'
import fc from 'fast-check'
import assert from 'node:assert/strict'
import {PassThrough, Writable} from 'node:stream'

import {LineTransport} from '../../../../src/core/mcp/stdio-transport.js'

interface Wire {
  input: PassThrough
  messages: unknown[]
  replies(): Array<{error?: {code: number; message?: string}; id: unknown}>
  transport: LineTransport
}

async function wire(maxBytes = 1024): Promise<Wire> {
  const input = new PassThrough()
  const output = new PassThrough()
  let written = ''
  output.on('data', (chunk: Buffer) => {
    written += chunk.toString('utf8')
  })
  const transport = new LineTransport(JSONRPCMessageSchema, input, output, maxBytes)
  const messages: unknown[] = []
  transport.onmessage = (message) => messages.push(message)
  await transport.start()
  return {
    input,
    messages,
    replies: () =>
      written
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as {error?: {code: number; message?: string}; id: unknown}),
    transport,
  }
}

/** Let the PassThrough deliver what was written (one turn of the event loop). */
const settle = () =>
  new Promise<void>((resolve) => {
    setImmediate(resolve)
  })

describe('mcp stdio transport', () => {
  it('delivers one message per line, whatever the chunking', async () => {
    const lines = [
      JSON.stringify({id: 1, jsonrpc: '2.0', method: 'ping'}),
      JSON.stringify({jsonrpc: '2.0', method: 'notifications/initialized'}),
      JSON.stringify({id: 'x', jsonrpc: '2.0', method: 'tools/list', params: {}}),
    ]
    const bytes = Buffer.from(`${lines.join('\r\n')}\n`)
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({max: bytes.length, min: 0}), {maxLength: 8}), async (cuts) => {
        const {input, messages, replies} = await wire()
        const points = [...new Set([0, bytes.length, ...cuts])].sort((a, b) => a - b)
        for (let i = 1; i < points.length; i++) input.write(bytes.subarray(points[i - 1], points[i]))
        await settle()
        assert.equal(messages.length, 3)
        assert.deepEqual(replies(), [])
      }),
      {numRuns: 50},
    )
  })

  it('answers garbage with protocol errors and keeps reading', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({maxLength: 200}).filter((text) => !text.includes('\n')),
        async (garbage) => {
          const {input, messages, replies} = await wire()
          input.write(`${garbage}\n${JSON.stringify({id: 9, jsonrpc: '2.0', method: 'ping'})}\n`)
          await settle()
          assert.ok(messages.length > 0, 'the good message still arrives')
          for (const reply of replies()) assert.ok([-32_700, -32_600].includes(reply.error?.code ?? 0))
        },
      ),
      {numRuns: 200},
    )
  })

  it('skips an oversized line without buffering it, answers once with id null, then serves again', async () => {
    const {input, messages, replies} = await wire(64)
    input.write('x'.repeat(50))
    input.write('y'.repeat(50))
    input.write('z'.repeat(5000))
    input.write(`\n${JSON.stringify({id: 2, jsonrpc: '2.0', method: 'ping'})}\n`)
    await settle()
    assert.deepEqual(replies(), [
      {
        error: {code: -32_600, message: 'Invalid Request: the message is larger than 64 bytes'},
        id: null,
        jsonrpc: '2.0',
      },
    ])
    assert.equal(messages.length, 1)
  })

  it('keeps the id of an invalid request it can read', async () => {
    const {input, replies} = await wire()
    input.write(`${JSON.stringify({id: 7, method: 'ping'})}\n[1,2]\n`)
    await settle()
    assert.deepEqual(
      replies().map((reply) => [reply.id, reply.error?.code]),
      [
        [7, -32_600],
        [null, -32_600],
      ],
    )
  })

  it('waits for the owner at end of input when asked, else closes', async () => {
    const first = await wire()
    let ended = false
    first.transport.oninputend = () => {
      ended = true
    }

    let closed = false
    first.transport.onclose = () => {
      closed = true
    }

    first.input.end()
    await settle()
    assert.deepEqual([ended, closed], [true, false])
    const second = await wire()
    second.transport.onclose = () => {
      closed = true
    }

    second.input.end()
    await settle()
    assert.equal(closed, true)
  })

  it('an error goes out as its sentence, without the SDK McpError\'s "MCP error CODE: " prefix', async () => {
    const {replies, transport} = await wire()
    await transport.send({
      error: {code: -32_602, message: 'MCP error -32602: Unknown tool: "x"'},
      id: 1,
      jsonrpc: '2.0',
    })
    assert.equal(replies()[0]?.error?.message, 'Unknown tool: "x"')
  })

  it('reads nothing more while its answers wait for the client, whatever the chunking; then every message, in order, and the end', async () => {
    /** stdout of a client that reads only when told: each write completes at open(). */
    class Gate extends Writable {
      private readonly waiting: Array<() => void> = []

      constructor() {
        super({highWaterMark: 16})
      }

      open(): void {
        for (const done of this.waiting.splice(0)) done()
      }

      override _write(_chunk: Buffer, _encoding: string, done: () => void): void {
        this.waiting.push(done)
      }
    }

    const count = 12
    const bytes = Buffer.from(
      Array.from(
        {length: count},
        (_, id) => `${JSON.stringify({id, jsonrpc: '2.0', method: 'ping'})}\n`,
      ).join(''),
    )
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({max: bytes.length, min: 0}), {maxLength: 8}),
        fc.boolean(),
        async (cuts, endEarly) => {
          const input = new PassThrough()
          const output = new Gate()
          const transport = new LineTransport(JSONRPCMessageSchema, input, output)
          const seen: unknown[] = []
          const state = {ended: 0}
          transport.onmessage = (message) => {
            seen.push((message as {id: unknown}).id)
            transport.send({id: (message as {id: number}).id, jsonrpc: '2.0', result: {}}).catch(() => {})
          }

          transport.oninputend = () => {
            state.ended++
          }

          await transport.start()
          const points = [...new Set([0, bytes.length, ...cuts])].sort((a, b) => a - b)
          for (let i = 1; i < points.length; i++) input.write(bytes.subarray(points[i - 1], points[i]))
          if (endEarly) input.end()
          await settle()
          // The first answer filled the client's pipe: the rest of what was sent waits.
          assert.ok(seen.length < count, `${seen.length} messages handled while the client read nothing`)
          for (let round = 0; round < 4 * count && seen.length < count; round++) {
            output.open()
            await settle()
          }

          assert.deepEqual(
            seen,
            Array.from({length: count}, (_, id) => id),
          )
          if (!endEarly) input.end()
          for (let round = 0; round < 4 && state.ended === 0; round++) {
            output.open()
            await settle()
          }

          assert.equal(state.ended, 1)
        },
      ),
      {numRuns: 50},
    )
  })
})
