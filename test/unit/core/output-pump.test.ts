import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {closeSync, createWriteStream, openSync, readdirSync, readFileSync} from 'node:fs'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {connect, createServer, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {PassThrough, Readable, Writable} from 'node:stream'

import {DEFAULT_REPLACEMENT, Masker, maskPatterns} from '../../../src/core/mask.js'
import {
  IDLE_FLUSH_MS,
  openOutputChannel,
  openOutputChannels,
  pumpStream,
  type PumpTarget,
} from '../../../src/core/output-pump.js'

const VALUES = [Buffer.from('s3cr3t-V4LUE'), Buffer.from('p@ss w/"é')]
const PATTERNS = maskPatterns(VALUES)

/** Lines with every value in several forms, repeated; a value is split by most chunkings. */
function sample(repeat: number): Buffer {
  const lines = [
    'start\n',
    `one ${VALUES[0]} two\n`,
    `b64 ${VALUES[1]!.toString('base64')}\n`,
    `json {"p":${JSON.stringify(VALUES[1]!.toString())}}\n`,
    `${randomBytes(40).toString('hex')}\n`,
  ].join('')
  return Buffer.from(lines.repeat(repeat))
}

/** What the masker makes of `data` in one piece: the pump must give the same for any chunking. */
function maskedWhole(data: Buffer): Buffer {
  const masker = new Masker(PATTERNS)
  return Buffer.concat([...masker.push(data), ...masker.end()])
}

function chunksOfSize(data: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = []
  for (let at = 0; at < data.length; at += size) chunks.push(data.subarray(at, at + size))
  return chunks
}

/** A connected pair of Unix sockets through a listener in `dir`; the accepted end starts paused. */
async function socketPair(dir: string): Promise<{accepted: Socket; client: Socket}> {
  const server = createServer({pauseOnConnect: true})
  const path = join(dir, `pair-${randomBytes(4).toString('hex')}`)
  await new Promise<void>((resolve) => {
    server.listen(path, resolve)
  })
  const client = connect(path)
  const [accepted] = await Promise.all([
    new Promise<Socket>((resolve) => {
      server.once('connection', resolve)
    }),
    new Promise<void>((resolve) => {
      client.once('connect', resolve)
    }),
  ])
  server.close()
  return {accepted, client}
}

function noop(): void {}

function collect(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  return new Promise((resolve) => {
    socket.once('end', () => resolve(Buffer.concat(chunks)))
  })
}

describe('core/output-pump', () => {
  let dir: string
  let savedTmpdir: string | undefined

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentvault-pump-'))
    savedTmpdir = process.env.TMPDIR
  })

  afterEach(async () => {
    delete process.env.AGENTVAULT_MASK_FLUSH_MS
    if (savedTmpdir === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = savedTmpdir
    await rm(dir, {force: true, recursive: true})
  })

  /** A file descriptor target (never EAGAIN); returns the target and a reader of what it got. */
  function fileTarget(): {read: () => Buffer; target: PumpTarget} {
    const path = join(dir, `out-${randomBytes(4).toString('hex')}`)
    const fd = openSync(path, 'w')
    return {
      read() {
        closeSync(fd)
        return readFileSync(path)
      },
      target: {fd, stream: () => createWriteStream('', {fd})},
    }
  }

  describe('pumpStream', () => {
    for (const size of [1, 7, 4093, 64 * 1024]) {
      it(`masks across chunk boundaries (chunks of ${size} bytes)`, async () => {
        const data = sample(size === 1 ? 50 : 2000)
        const {read, target} = fileTarget()
        await pumpStream(Readable.from(chunksOfSize(data, size)), target, new Masker(PATTERNS), () => {})
        const out = read()
        assert.ok(out.equals(maskedWhole(data)))
        assert.ok(out.includes(DEFAULT_REPLACEMENT))
        for (const pattern of PATTERNS) assert.ok(!out.includes(pattern), `${pattern} leaked`)
      })
    }

    it('flushes a held-back tail when the stream ends', async () => {
      const {read, target} = fileTarget()
      await pumpStream(
        Readable.from([Buffer.from('ends with s3cr3t-V4')]),
        target,
        new Masker(PATTERNS),
        () => {},
      )
      assert.equal(read().toString(), 'ends with s3cr3t-V4')
    })

    it('hands the rest to the stream when the descriptor is full (EAGAIN), in order, and pauses', async () => {
      const {accepted, client} = await socketPair(dir)
      // 8 MiB: far more than a socket buffer holds while nobody reads.
      const data = sample(60_000)
      let fellBack!: () => void
      const fallback = new Promise<void>((resolve) => {
        fellBack = resolve
      })
      const target: PumpTarget = {
        fd: (client as unknown as {_handle: {fd: number}})._handle.fd,
        stream() {
          fellBack()
          return client
        },
      }
      const source = Readable.from(chunksOfSize(data, 64 * 1024))
      const done = pumpStream(source, target, new Masker(PATTERNS), () => {})
      // Nobody reads yet: the pump must end up waiting on the stream, not spinning or buffering all.
      await fallback
      assert.ok(source.isPaused(), 'reading pauses while the stream holds the rest')
      const received = collect(accepted)
      accepted.resume()
      await done
      client.end()
      assert.ok((await received).equals(maskedWhole(data)))
    })

    it(`writes held-back bytes after ${IDLE_FLUSH_MS} ms without new output, and goes on masking`, async () => {
      const {accepted, client} = await socketPair(dir)
      const source = new PassThrough()
      const target: PumpTarget = {
        fd: (client as unknown as {_handle: {fd: number}})._handle.fd,
        stream: () => client,
      }
      const done = pumpStream(source, target, new Masker(PATTERNS), () => {})
      let received = ''
      const arrived = (text: string): Promise<void> =>
        new Promise((resolve) => {
          const check = (chunk?: Buffer): void => {
            if (chunk) received += chunk.toString()
            if (!received.includes(text)) return
            accepted.off('data', check)
            resolve()
          }

          accepted.on('data', check)
          check()
        })
      accepted.resume()
      // The start of a value, then silence: it must arrive although the value might go on.
      source.write('code: s3cr')
      await arrived('code: s3cr')
      source.write(` and ${VALUES[0]} then s3`)
      await arrived(` and ${DEFAULT_REPLACEMENT} then s3`)
      source.end('!')
      await done
      client.end()
      await arrived('!')
      assert.equal(received, `code: s3cr and ${DEFAULT_REPLACEMENT} then s3!`)
    })

    it('an idle flush while a write to a full descriptor is pending queues behind it (order kept)', async () => {
      const {accepted, client} = await socketPair(dir)
      // One big chunk that fills the socket and ends with the start of a value: held back, with
      // the rest of the chunk pending on the stream when the idle timer fires.
      const data = Buffer.concat([sample(60_000), Buffer.from('tail s3cr')])
      let idleFlush!: () => void
      const flushed = new Promise<void>((resolve) => {
        idleFlush = resolve
      })
      class Watched extends Masker {
        override flush(): Buffer[] {
          idleFlush()
          return super.flush()
        }
      }
      const source = new PassThrough()
      const target: PumpTarget = {
        fd: (client as unknown as {_handle: {fd: number}})._handle.fd,
        stream: () => client,
      }
      const done = pumpStream(source, target, new Watched(PATTERNS), () => {})
      source.write(data)
      await flushed // nobody has read yet
      const received = collect(accepted)
      accepted.resume()
      source.end()
      await done
      client.end()
      assert.ok((await received).equals(maskedWhole(data)))
    })

    it('reports a reader that went away once (EPIPE) and drains the rest', async () => {
      const {accepted, client} = await socketPair(dir)
      accepted.destroy()
      await new Promise<void>((resolve) => {
        client.once('end', resolve)
        client.resume()
      })
      let broken = 0
      const source = Readable.from(chunksOfSize(sample(20_000), 64 * 1024))
      await pumpStream(
        source,
        {fd: (client as unknown as {_handle: {fd: number}})._handle.fd, stream: () => client},
        new Masker(PATTERNS),
        () => broken++,
      )
      assert.equal(broken, 1)
      assert.ok(source.readableEnded, 'the whole source was read')
      client.destroy()
    })
  })

  describe('openOutputChannel', () => {
    it('gives the child a socket whose output is masked into the descriptor, and leaves no file behind', async () => {
      process.env.TMPDIR = join(dir, 'tmp')
      await mkdir(process.env.TMPDIR)
      // However slow the machine, the first part is still held back when the rest comes.
      process.env.AGENTVAULT_MASK_FLUSH_MS = '60000'
      const {read, target} = fileTarget()
      const channel = await openOutputChannel(target)
      assert.deepEqual(readdirSync(process.env.TMPDIR), [], 'the listening socket and its directory are gone')
      // The child writes the value in two writes, split in the middle.
      const script = `const v = ${JSON.stringify(VALUES[0]!.toString())}; process.stdout.write('a ' + v.slice(0, 5)); setTimeout(() => process.stdout.write(v.slice(5) + ' b\\n'), 5)`
      const child = spawn(process.execPath, ['-e', script], {stdio: ['ignore', channel.childEnd, 'inherit']})
      const [code] = await Promise.all([
        new Promise((resolve) => {
          child.once('exit', resolve)
        }),
        channel.start(new Masker(PATTERNS), () => {}),
      ])
      assert.equal(code, 0)
      assert.equal(read().toString(), `a ${DEFAULT_REPLACEMENT} b\n`)
    })

    it('reads nothing before start: output written earlier is masked too', async () => {
      const {read, target} = fileTarget()
      const channel = await openOutputChannel(target)
      const child = spawn(process.execPath, ['-e', `process.stdout.write('x ${VALUES[0]} y')`], {
        stdio: ['ignore', channel.childEnd, 'inherit'],
      })
      await new Promise((resolve) => {
        child.once('exit', resolve)
      })
      await channel.start(new Masker(PATTERNS), () => {})
      assert.equal(read().toString(), `x ${DEFAULT_REPLACEMENT} y`)
    })

    it('a reader slower than the child gets every byte intact although the read buffer is reused', async () => {
      const {accepted, client} = await socketPair(dir)
      let full!: () => void
      const fellBack = new Promise<void>((resolve) => {
        full = resolve
      })
      const channel = await openOutputChannel({
        fd: (client as unknown as {_handle: {fd: number}})._handle.fd,
        stream() {
          full()
          return client
        },
      })
      // 16 MiB of distinct lines, values among them: a read that overwrote bytes the stream still
      // holds would show as lines out of place.
      const lines: string[] = []
      for (let i = 0, length = 0; length < 16 * 1024 * 1024; i++) {
        const value = i % 7 === 0 ? VALUES[0]!.toString() : randomBytes(30).toString('base64')
        lines.push(`${i} ${value} ${i % 11 === 0 ? VALUES[1]!.toString('base64') : ''}\n`)
        length += lines.at(-1)!.length
      }

      const data = Buffer.from(lines.join(''))
      const child = spawn(process.execPath, ['-e', 'process.stdin.pipe(process.stdout)'], {
        stdio: ['pipe', channel.childEnd, 'inherit'],
      })
      child.stdin.end(data)
      const done = channel.start(new Masker(PATTERNS), () => {})
      // Nobody reads until the descriptor has been full: then it is read in small bites.
      await fellBack
      const chunks: Buffer[] = []
      const received = new Promise<Buffer>((resolve) => {
        accepted.on('readable', () => {
          let chunk: Buffer | null
          while ((chunk = accepted.read(4096) as Buffer | null) !== null) chunks.push(chunk)
        })
        accepted.once('end', () => resolve(Buffer.concat(chunks)))
      })
      await done
      client.end()
      assert.ok((await received).equals(maskedWhole(data)))
    })

    it('reads into a buffer again as soon as the stream has written it, while it still holds the other', async () => {
      const {accepted, client} = await socketPair(dir)
      /** A stream that completes each write only when the test says so. */
      class HeldWrites extends Writable {
        auto = false
        callbacks: Array<() => void> = []
        writes = 0
        onWrite: () => void = noop

        override _write(_chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
          if (this.auto) callback()
          else this.callbacks.push(callback)
        }

        override write(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
          this.writes++
          // Passed on as given: Writable sorts out write(chunk, callback) itself.
          const result = super.write(chunk, encoding as BufferEncoding, callback as () => void)
          this.onWrite()
          return result
        }
      }
      const held = new HeldWrites()
      let pushes = 0
      let onPush: () => void = noop
      class Counting extends Masker {
        override pushAfter(buffer: Buffer, start: number, end: number): Buffer[] {
          pushes++
          onPush()
          return super.pushAfter(buffer, start, end)
        }
      }
      // Nobody reads `accepted`: the socket fills, and from then on the pump writes through `held`.
      const channel = await openOutputChannel({
        fd: (client as unknown as {_handle: {fd: number}})._handle.fd,
        stream: () => held,
      })
      const child = spawn(
        process.execPath,
        ['-e', `process.stdout.write(Buffer.alloc(${32 * 1024 * 1024}, 'x'))`],
        {
          stdio: ['ignore', channel.childEnd, 'inherit'],
        },
      )
      const done = channel.start(new Counting(PATTERNS), () => {})
      // Two chunks held by the stream (one written by it, one queued): both buffers are in use.
      await new Promise<void>((resolve) => {
        held.onWrite = () => {
          if (held.writes >= 2) resolve()
        }
      })
      const before = pushes
      const next = new Promise<void>((resolve) => {
        onPush = resolve
      })
      held.callbacks.shift()!() // the first chunk is written: its buffer is free again
      await next
      assert.equal(pushes, before + 1)
      assert.equal(held.writableLength > 0, true, 'the second chunk is still held by the stream')
      held.auto = true
      for (const callback of held.callbacks.splice(0)) callback()
      await Promise.all([
        done,
        new Promise((resolve) => {
          child.once('exit', resolve)
        }),
      ])
      accepted.destroy()
      client.destroy()
    })

    it('makes the channels of stdout and stderr through one listener, each to its own descriptor', async () => {
      process.env.TMPDIR = join(dir, 'tmp-two')
      await mkdir(process.env.TMPDIR)
      const out = fileTarget()
      const err = fileTarget()
      const channels = await openOutputChannels([out.target, err.target])
      assert.equal(channels.length, 2)
      assert.deepEqual(readdirSync(process.env.TMPDIR), [], 'the listening socket and its directory are gone')
      const [stdout, stderr] = channels as [(typeof channels)[0], (typeof channels)[0]]
      const script = `process.stdout.write('to out ${VALUES[0]}\\n'); process.stderr.write('to err ${VALUES[1]}\\n')`
      const child = spawn(process.execPath, ['-e', script], {
        stdio: ['ignore', stdout.childEnd, stderr.childEnd],
      })
      const [code] = await Promise.all([
        new Promise((resolve) => {
          child.once('exit', resolve)
        }),
        stdout.start(new Masker(PATTERNS), () => {}),
        stderr.start(new Masker(PATTERNS), () => {}),
      ])
      assert.equal(code, 0)
      assert.equal(out.read().toString(), `to out ${DEFAULT_REPLACEMENT}\n`)
      assert.equal(err.read().toString(), `to err ${DEFAULT_REPLACEMENT}\n`)
    })

    it('close() releases both ends when nothing is spawned', async () => {
      const {read, target} = fileTarget()
      const channel = await openOutputChannel(target)
      const closed = new Promise((resolve) => {
        channel.childEnd.once('close', resolve)
      })
      channel.close()
      await closed
      assert.ok(channel.childEnd.destroyed)
      read()
    })

    it('rejects when no socket can be made (the caller falls back to a pipe)', async () => {
      process.env.TMPDIR = join(dir, 'missing')
      const {read, target} = fileTarget()
      await assert.rejects(openOutputChannel(target), {code: 'ENOENT'})
      read()
    })
  })
})
