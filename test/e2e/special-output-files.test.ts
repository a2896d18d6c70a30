/**
 * Through the built binary: files agentvault writes for the user outside its home (`inject -o`,
 * `mcp install --config-file … --write`) are replaced atomically — a new file renamed over the old
 * one. When the path names a device, a FIFO or a socket, that rename would swap the node itself for
 * a regular file: run as root, `inject -o /dev/null` turned /dev/null into a 0600 file holding the
 * rendered secrets (seen here on a private copy: a node made with mknod, never the real one). Such a
 * path is refused with exit 2, `Error:` and `Try this:`, the node left as it was, and nothing hangs
 * (a FIFO without a reader is never opened).
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {lstat, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:net'
import {join} from 'node:path'

import {runCli, tempHome} from '../helpers/cli.js'

async function kindOf(path: string): Promise<string> {
  const info = await lstat(path)
  if (info.isFIFO()) return 'FIFO'
  if (info.isSocket()) return 'socket'
  if (info.isCharacterDevice()) return 'character device'
  return info.isFile() ? 'regular file' : 'other'
}

describe('e2e: -o FILE / --config-file naming a device, a FIFO or a socket', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let template: string
  let socketServer: Server | undefined
  const nodes: Array<{kind: string; path: string}> = []

  before(async () => {
    t = await tempHome()
    const stored = await runCli(['secrets', 'set', 'A'], {env: t.env, input: 'a-value-7f3e'})
    assert.equal(stored.code, 0, stored.stderr)
    template = join(t.home, 'template.txt')
    await writeFile(template, 'key={{ local://A }}\n')

    const fifo = join(t.home, 'a-fifo')
    execFileSync('mkfifo', [fifo])
    nodes.push({kind: 'FIFO', path: fifo})
    const socket = join(t.home, 'a-socket')
    socketServer = createServer()
    await new Promise<void>((resolve) => {
      socketServer?.listen(socket, resolve)
    })
    nodes.push({kind: 'socket', path: socket})
    if (process.getuid?.() === 0) {
      // A private character device with the numbers of /dev/null (root only; CI runs as root).
      const device = join(t.home, 'a-device')
      execFileSync('mknod', [device, 'c', '1', '3'])
      nodes.push({kind: 'character device', path: device})
    }
  })

  after(async () => {
    await new Promise<void>((resolve) => {
      if (socketServer) socketServer.close(() => resolve())
      else resolve()
    })
    await t?.dispose()
  })

  it('inject -o: exit 2, the node is still what it was', async () => {
    for (const {kind, path} of nodes) {
      const result = await runCli(['inject', '-i', template, '-o', path], {env: t.env})
      assert.equal(result.code, 2, `${kind}: ${result.stderr}`)
      assert.match(result.stderr, /^Error: .+not a regular file.+\nTry this: .+/m)
      assert.doesNotMatch(result.stderr + result.stdout, /a-value-7f3e/)

      assert.equal(await kindOf(path), kind, `${path} was replaced`)
    }
  })

  it('mcp install --config-file … --write: exit 2, the node is still what it was', async () => {
    for (const {kind, path} of nodes) {
      const result = await runCli(
        [
          'mcp',
          'install',
          '--client',
          'cursor',
          '--config-file',
          path,
          '--write',
          '--yes',
          '--allow',
          'local://*',
        ],
        {env: {...t.env, HOME: t.home}},
      )
      assert.equal(result.code, 2, `${kind}: ${result.stderr}${result.stdout}`)
      assert.match(result.stderr, /^Error: .+not a regular file.+\nTry this: .+/m)

      assert.equal(await kindOf(path), kind, `${path} was replaced`)
    }
  })
})
