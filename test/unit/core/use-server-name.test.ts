import assert from 'node:assert/strict'
import {createServer, type Socket} from 'node:net'

import {sendRequest} from '../../../src/core/use/http-client.js'

const CANARY = 'sni-unit-canary-3e9f.example'

describe('core/use http client: the TLS server name', () => {
  it('is the URL’s host, never a Host header’s (SNI travels in clear text)', async () => {
    const received: Buffer[] = []
    const sockets = new Set<Socket>()
    const server = createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.once('data', (chunk: Buffer) => {
        received.push(chunk)
        socket.destroy()
      })
    })
    await new Promise<void>((resolve) => {
      server.listen(0, '127.0.0.1', () => resolve())
    })
    const {port} = server.address() as {port: number}
    try {
      for (const host of ['127.0.0.1', 'localhost']) {
        await assert.rejects(
          sendRequest(
            {
              credentialHeaders: new Set(['host']),
              credentialInBody: false,
              headers: [['Host', CANARY]],
              method: 'GET',
              url: new URL(`https://${host}:${port}/`),
            },
            {
              allowPrivateNetworks: true,
              carriesSecret: () => false,
              checkRedirect() {},
              maxRedirects: 0,
              maxResponseBytes: 1024,
              async resolve() {
                return [{address: '127.0.0.1', family: 4}]
              },
              timeoutMs: 5000,
            },
          ),
        )
      }

      assert.equal(received.length, 2, 'both handshakes reached the listener')
      assert.ok(!Buffer.concat(received).includes(CANARY), 'the Host header went out as the server name')
      assert.ok(received[1]!.includes('localhost'), 'a name is still sent as SNI')
    } finally {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
      })
    }
  })
})
