/**
 * Copy a child's output to one of our own descriptors through a masker, with as little work per
 * chunk as possible: masking should cost little more than the extra hop through this process
 * (product.md §4; issue 2 sets a throughput target).
 *
 * - The child writes into one end of a Unix socket pair made for it ({@link openOutputChannel});
 *   we read the other end into two reused buffers (net's `onread`), so no Buffer is allocated per
 *   read and reads may be larger than a stream's 64 KiB. Where no such socket can be made (no
 *   writable temp dir), the child gets an ordinary pipe and its stream's chunks are fed instead
 *   ({@link pumpStream}).
 * - Each chunk is masked and written with one `write` (or `writev`) straight to the descriptor: no
 *   Transform or Writable stream in between (their bookkeeping cost more than the masking itself).
 *   Reads land after room for the bytes the masker held back, which it copies there, so a chunk
 *   with no match is one piece: one write of a view, no copy.
 * - The descriptors are made non-blocking. Once one is full (EAGAIN: its reader is slower than the
 *   child), every later write goes through its Node stream, which writes what fits at once and the
 *   rest when the descriptor is writable again, without copying the chunk (and without the cost of
 *   an exception per full pipe); a buffer is not read into again while the stream still holds part
 *   of its chunk, and reading pauses when both are held. Output order is kept, memory stays
 *   bounded, and a stalled reader never blocks the process (signals still forwarded).
 * - A write that fails (EPIPE: a reader that went away; ENOSPC, EIO: a full disk or a failing
 *   device) is reported once, with the descriptor; the rest of the child's output is drained
 *   unread, so the child is never blocked on us.
 * - Bytes the masker holds back (they might begin a value) are written after {@link IDLE_FLUSH_MS}
 *   without new output, so a prompt or a quiet server's last line is never held up.
 */
import type {ChildProcess} from 'node:child_process'
import type {Socket} from 'node:net'
import type {Readable, Writable} from 'node:stream'

import {writeSync, writevSync} from 'node:fs'

/** What the pump needs of a masker (see Masker in mask.ts). */
export interface OutputFilter {
  /** Whatever is still held back; the input ended. */
  end(): Buffer[]
  /** Whatever is still held back, now; more input may follow. */
  flush(): Buffer[]
  /** How many bytes are held back (the possible start of a value). */
  readonly heldBack: number
  /** Output for this chunk; some bytes may be held back (as a copy) until the next call. */
  push(chunk: Buffer): Buffer[]
  /**
   * Optional: as `push(buffer.subarray(start, end))`, but the held-back bytes may be copied into
   * the free room `buffer[0, start)` just before the chunk, so the output is one piece.
   */
  pushAfter?(buffer: Buffer, start: number, end: number): Buffer[]
}

/**
 * Bytes held back as the possible start of a value are written after this many milliseconds
 * without new output (`run --help` states it): a prompt or the last line of a quiet server must
 * not wait for the next output.
 */
export const IDLE_FLUSH_MS = 100

/**
 * The idle time in force: {@link IDLE_FLUSH_MS}, or `AGENTVAULT_MASK_FLUSH_MS` (1–600000) for a
 * program that pauses mid-value on purpose (and for tests that must split a value deterministically).
 */
export function idleFlushMs(env: NodeJS.ProcessEnv = process.env): number {
  const wanted = Number(env.AGENTVAULT_MASK_FLUSH_MS)
  return Number.isInteger(wanted) && wanted >= 1 && wanted <= 600_000 ? wanted : IDLE_FLUSH_MS
}

export interface PumpTarget {
  /** The descriptor to write to (1 or 2). */
  fd: number
  /** Its Node stream, which takes the rest of a chunk when the descriptor is full. */
  stream: () => Writable
}

/** Where the pump reads from: paused while a write to a full descriptor is pending. */
interface Flow {
  pause(): void
  resume(): void
}

/** Skip `count` written bytes of `pieces`. */
function advance(pieces: Buffer[], count: number): Buffer[] {
  let index = 0
  let left = count
  while (index < pieces.length && left >= pieces[index]!.length) left -= pieces[index++]!.length
  const rest = pieces.slice(index)
  if (left > 0) rest[0] = rest[0]!.subarray(left)
  return rest
}

/**
 * Told once per descriptor when writing to it failed (EPIPE, ENOSPC, EIO, …); what is left of the
 * child's output for it is then read and dropped.
 */
export type WriteErrorHandler = (error: NodeJS.ErrnoException, fd: number) => void

/** Masks chunks into a descriptor; `done` settles when the input ended and all of it is written. */
class Pump {
  readonly done: Promise<void>
  private closed = false
  private ended = false
  private flow: Flow | undefined
  /** The descriptor was full once (EAGAIN): writes go through the stream from then on. */
  private full = false
  /** Chunks that left bytes held back: tells the idle timer whether output came meanwhile. */
  private chunks = 0
  private idle: NodeJS.Timeout | undefined
  private inFlight = 0
  private resolve!: () => void
  /** Reading is paused until the stream has written everything it holds. */
  private waiting = false
  /** A write through the stream is done: reading resumes once nothing it holds is pending. */
  private readonly afterWrite = (error?: Error | null): void => {
    this.inFlight--
    if (error) this.stop(error)
    else if (this.inFlight === 0 && this.waiting) {
      this.waiting = false
      this.flow?.resume()
    }

    this.finish()
  }

  constructor(
    private readonly target: PumpTarget,
    private readonly filter: OutputFilter,
    private readonly onWriteError: WriteErrorHandler,
  ) {
    this.done = new Promise<void>((resolve) => {
      this.resolve = resolve
    })
  }

  /**
   * Mask and write one chunk. `chunk` may be reused by the caller afterwards. Returns false when
   * reading must pause (the source is resumed once the descriptor took the rest).
   */
  chunk(chunk: Buffer): boolean {
    if (this.closed) return true
    const flowing = this.write(this.filter.push(chunk))
    if (this.filter.heldBack > 0) this.flushWhenIdle()
    return flowing
  }

  /**
   * Mask and write `buffer[start, end)`, with `buffer[0, start)` free for the held-back bytes (see
   * OutputFilter.pushAfter). Returns true when all of it is written; otherwise false, and
   * `written` is called once the stream has written the rest: until then `buffer` must not be
   * reused. Reading is not paused here: the caller decides (it may have another buffer).
   */
  chunkIn(buffer: Buffer, start: number, end: number, written: () => void): boolean {
    if (this.closed) return true
    const {filter} = this
    const output = filter.pushAfter
      ? filter.pushAfter(buffer, start, end)
      : filter.push(buffer.subarray(start, end))
    const flowing = this.write(output, written)
    if (filter.heldBack > 0) this.flushWhenIdle()
    return flowing
  }

  /** The input ended (or failed): flush what the masker holds. */
  end(): void {
    if (this.ended) return
    clearTimeout(this.idle)
    if (!this.closed) this.write(this.filter.end())
    this.ended = true
    this.finish()
  }

  from(flow: Flow): this {
    this.flow = flow
    return this
  }

  /** (Re)start the idle timer; unref'd, so it never keeps the process alive. */
  private flushWhenIdle(): void {
    this.chunks++
    if (this.idle) {
      this.idle.refresh()
      return
    }

    this.idle = setTimeout(() => {
      // Timers run before the event loop polls for I/O: output that is already waiting (a busy
      // machine ran this timer late) is read first, in the poll phase before setImmediate's.
      const seen = this.chunks
      setImmediate(() => {
        if (this.chunks === seen) this.flushHeld()
      })
    }, idleFlushMs())
    this.idle.unref()
  }

  private flushHeld(): void {
    if (this.closed || this.ended || this.filter.heldBack === 0) return
    // Behind a write still pending on the stream, this queues there (see write): order is kept.
    if (!this.write(this.filter.flush())) this.flow?.pause()
  }

  private finish(): void {
    if (this.ended && this.inFlight === 0) this.resolve()
  }

  /**
   * Write `pieces` through the target's Node stream, without copying: libuv writes what the
   * descriptor takes now and the rest when it is writable again. Returns false when the stream
   * still holds some of them; they may be views of a buffer the caller reuses for its next read,
   * so reading pauses until they are written.
   */
  private viaStream(pieces: Buffer[], written?: () => void): boolean {
    const stream = this.target.stream()
    if (stream.listenerCount('error') === 0) stream.on('error', (error) => this.stop(error))
    this.inFlight++
    // `written` is for a chunk the stream still holds when we return; the stream calls back
    // asynchronously, by which time that is known.
    let holding = false
    const done = written
      ? (error?: Error | null) => {
          if (holding) written()
          this.afterWrite(error)
        }
      : this.afterWrite
    if (pieces.length === 1) stream.write(pieces[0], done)
    else {
      // One writev for the whole chunk.
      stream.cork()
      for (const [index, piece] of pieces.entries())
        stream.write(piece, index === pieces.length - 1 ? done : undefined)
      stream.uncork()
    }

    if (stream.writableLength === 0 || this.closed) return true
    // A caller that gave `written` pauses (or not) itself; otherwise pause until all is written.
    if (written) holding = true
    else this.waiting = true
    return false
  }

  private stop(error: unknown): void {
    if (this.closed) return
    this.closed = true
    this.flow?.resume() // drain the rest unread
    this.onWriteError(error as NodeJS.ErrnoException, this.target.fd)
  }

  private write(output: Buffer[], whenWritten?: () => void): boolean {
    let pieces = output.length === 1 ? output : output.filter((piece) => piece.length > 0)
    if (this.closed || pieces.length === 0 || pieces[0]!.length === 0) return true
    if (this.full) return this.viaStream(pieces, whenWritten)
    while (pieces.length > 0) {
      let written: number
      try {
        written =
          pieces.length === 1 ? writeSync(this.target.fd, pieces[0]!) : writevSync(this.target.fd, pieces)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') {
          this.stop(error)
          return true
        }

        // The reader is slower than the child: from now on every write goes through the stream,
        // which waits for the descriptor without an exception per full pipe or a copy.
        this.full = true
        return this.viaStream(pieces, whenWritten)
      }

      pieces = advance(pieces, written)
    }

    return true
  }
}

/** Pump a child's output stream (an ordinary pipe) through `filter` into `target`. */
export function pumpStream(
  source: Readable,
  target: PumpTarget,
  filter: OutputFilter,
  onWriteError: WriteErrorHandler,
): Promise<void> {
  const pump = new Pump(target, filter, onWriteError).from(source)
  source.on('data', (chunk: Buffer) => {
    if (!pump.chunk(chunk)) source.pause()
  })
  source.once('end', () => pump.end())
  source.once('error', () => pump.end())
  return pump.done
}

/** A socket pair for one of the child's output streams; ours is read by the pump once started. */
export interface OutputChannel {
  /** Give this to the child (`stdio`), then call `start`. */
  childEnd: Socket
  /** Nothing to pump after all (no child, nothing to mask): close both ends. */
  close(): void
  /**
   * Close our copy of the child's end (so its closing ends our reading) and pump what the child
   * writes through `filter`; settles when the child's end is closed everywhere and all is written.
   */
  start(filter: OutputFilter, onWriteError: WriteErrorHandler): Promise<void>
}

const READ_BUFFER = 1024 * 1024
/**
 * Room before each read for the bytes the masker holds back (see OutputFilter.pushAfter); a
 * masker holding more (a pattern over 16 KiB) falls back to two pieces per chunk.
 */
const HELD_ROOM = 16 * 1024

/**
 * A connected Unix socket pair for one output stream of the child (see {@link openOutputChannels}).
 */
export async function openOutputChannel(target: PumpTarget): Promise<OutputChannel> {
  const [channel] = await openOutputChannels([target])
  return channel as OutputChannel
}

/**
 * A connected Unix socket pair for each of the child's output streams `targets`, made through one
 * listening socket in a fresh 0700 temp directory that is removed as soon as all are connected.
 * Rejects when that is not possible; the caller then falls back to ordinary pipes.
 */
export async function openOutputChannels(targets: readonly PumpTarget[]): Promise<OutputChannel[]> {
  const [net, {mkdtempSync, rmdirSync, rmSync}, {tmpdir}] = await Promise.all([
    import('node:net'),
    import('node:fs'),
    import('node:os'),
  ])
  const {join} = await import('node:path')
  // Synchronous: making and removing a private directory are local metadata calls, cheaper than
  // trips through the thread pool.
  const dir = mkdtempSync(join(tmpdir(), 'agentvault-'))
  const server = net.createServer({pauseOnConnect: true})
  const channels: OutputChannel[] = []
  try {
    const address = join(dir, 'out')
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(address, resolve)
    })
    // One connection at a time, so the socket the server accepts is the peer of the one just made.
    for (const target of targets) channels.push(await connectOutputChannel(net, server, address, target))
    return channels
  } catch (error) {
    for (const channel of channels) channel.close()
    throw error
  } finally {
    // Closing the listening socket removes its file (libuv), leaving the directory empty.
    server.close()
    try {
      rmdirSync(dir)
    } catch {
      rmSync(dir, {force: true, recursive: true})
    }
  }
}

/** Connect to `server` at `address`: our end (read by the pump once started) and the child's. */
async function connectOutputChannel(
  net: typeof import('node:net'),
  server: import('node:net').Server,
  address: string,
  target: PumpTarget,
): Promise<OutputChannel> {
  let pump: Pump | undefined
  // Two read buffers: while the stream still holds (views of) one chunk, the next is read and
  // masked into the other, so the descriptor has output waiting when the reader drains it.
  // Reading pauses only when both are held, and goes on as soon as one is written. Each has
  // room before the read for the bytes the masker held back, so that a chunk's output is
  // usually one piece: one write, no copy.
  const buffers = [Buffer.allocUnsafe(HELD_ROOM + READ_BUFFER), Buffer.allocUnsafe(HELD_ROOM + READ_BUFFER)]
  const reads = buffers.map((buffer) => buffer.subarray(HELD_ROOM))
  const held = [false, false]
  let current = 0
  let paused = false
  // Node asks for the next read's buffer right after each read: when both are held, it is the
  // older one, which the stream finishes first (in order), and reading resumes once it is free.
  const release = (index: number): void => {
    held[index] = false
    if (!paused || held[current]!) return
    paused = false
    ours.resume()
  }

  const read = (size: number): boolean => {
    if (!pump) return false
    const index = current
    if (pump.chunkIn(buffers[index]!, HELD_ROOM, HELD_ROOM + size, () => release(index))) return true
    held[index] = true
    current = 1 - index
    if (!held[current]) return true
    paused = true
    return false
  }

  const ours = net.connect({
    // Paused until `start` gives the pump: nothing is read before.
    onread: {buffer: () => reads[current]!, callback: read},
    path: address,
  })
  ours.pause()
  let accepted: Socket | undefined
  const [childEnd] = await Promise.all([
    new Promise<Socket>((resolve) => {
      server.once('connection', (socket: Socket) => {
        accepted = socket
        resolve(socket)
      })
    }),
    new Promise<void>((resolve, reject) => {
      ours.once('connect', resolve)
      ours.once('error', reject)
    }),
  ]).catch((error: unknown) => {
    // Nothing half-made may keep the process alive: the caller falls back to a pipe.
    accepted?.destroy()
    ours.destroy()
    throw error
  })
  return {
    childEnd,
    close() {
      childEnd.destroy()
      ours.destroy()
    },
    start(filter, onWriteError) {
      childEnd.destroy()
      const started = new Pump(target, filter, onWriteError).from({
        pause: () => ours.pause(),
        resume() {
          // Everything written (or the rest is drained unread): neither buffer is held.
          held.fill(false)
          paused = false
          ours.resume()
        },
      })
      pump = started
      ours.once('end', () => started.end())
      ours.once('error', () => started.end())
      ours.resume()
      return started.done
    },
  }
}

/** The child's masked outputs: what to give it as stdio, then the pumps to wait for. */
export interface MaskedOutputs {
  /** Right after spawning (before yielding): pump each stream through a fresh `filter()`. */
  attach(
    child: ChildProcess,
    filter: () => OutputFilter,
    onWriteError: WriteErrorHandler,
  ): Array<Promise<void>>
  /** Nothing to mask after all, or no child: release the sockets. */
  close(): void
  /** stdio entry for descriptor 1 or 2. */
  stdio(fd: number): 'inherit' | 'pipe' | Socket
}

/**
 * Prepare masking of the given descriptors of the child (1 and/or 2): a socket pair each, or an
 * ordinary pipe where that cannot be made. Cheap enough to start before it is known whether
 * anything needs masking (`close()` then), so it can overlap with resolving the secrets.
 */
export async function openMaskedOutputs(fds: readonly number[]): Promise<MaskedOutputs> {
  const targets = fds.map((fd): PumpTarget => ({
    fd,
    stream: () => (fd === 1 ? process.stdout : process.stderr),
  }))
  const channels: Array<null | OutputChannel> = await openOutputChannels(targets).catch(
    async (error: NodeJS.ErrnoException) => {
      if (process.env.DEBUG) {
        const {default: createDebug} = await import('debug')
        const debug = createDebug('agentvault:run')
        for (const fd of fds) debug('masking fd %d through a pipe: no socket (%s)', fd, error.code)
      }

      return targets.map(() => null)
    },
  )
  return {
    attach(child, filter, onWriteError) {
      // Touching the Node streams makes the descriptors non-blocking, so a reader that stops
      // reading pauses the child's output (the EAGAIN path) instead of blocking this process in
      // write(2): signals are still forwarded at once. It costs about 5% of throughput.
      for (const target of targets) target.stream()
      return targets.map((target, index) => {
        const channel = channels[index]
        if (channel) return channel.start(filter(), onWriteError)
        const source = target.fd === 1 ? child.stdout : child.stderr
        return source ? pumpStream(source, target, filter(), onWriteError) : Promise.resolve()
      })
    },
    close() {
      for (const channel of channels) channel?.close()
    },
    stdio(fd) {
      const index = fds.indexOf(fd)
      if (index === -1) return 'inherit'
      return channels[index]?.childEnd ?? 'pipe'
    },
  }
}
