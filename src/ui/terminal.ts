/**
 * The standard streams without `process.stdin`, `process.stdout` and `process.stderr` where they
 * are not needed: Node builds each on first use (for a pipe a socket, with the net and stream
 * modules behind it: about 2 ms), which a command that only prints a line or two (`secrets set`
 * in a script) need not pay. Once a stream exists, everything goes through it, in order.
 */
import {fstatSync, writeSync} from 'node:fs'
import {createRequire} from 'node:module'

/** The major number of /dev/null, /dev/zero, /dev/urandom… on Linux (never a terminal). */
const LINUX_MEMORY_DEVICES = 1

/** Whether `fd` is a terminal, as `process.stdin.isTTY` (0), `process.stdout.isTTY` (1) would say. */
export function isTerminal(fd: 0 | 1 | 2): boolean {
  try {
    // A terminal is a character device: a pipe, socket or file is known without the tty module,
    // and so, on Linux, are /dev/null and its kin (major number 1), stdin in many CI jobs.
    const info = fstatSync(fd)
    if (!info.isCharacterDevice()) return false
    if (process.platform === 'linux' && ((info.rdev >> 8) & 0xf_ff) === LINUX_MEMORY_DEVICES) return false
  } catch {
    return false // closed: Node would give /dev/null, not a terminal
  }

  const {isatty} = createRequire(import.meta.url)('node:tty') as typeof import('node:tty')
  return isatty(fd)
}

/** Whether Node has made process.stdout (1) / process.stderr (2) since {@link watchOutputStreams}. */
const made: Record<1 | 2, boolean> = {1: true, 2: true}

/**
 * From now on, note when Node makes process.stdout or process.stderr (until then
 * {@link writeOutput} writes to the descriptor itself), and give stdout's errors to
 * `onStdoutError` from the moment it exists. Call it before anything is printed.
 */
export function watchOutputStreams(onStdoutError: (error: NodeJS.ErrnoException) => void): void {
  for (const [fd, name] of [
    [1, 'stdout'],
    [2, 'stderr'],
  ] as const) {
    const descriptor = Object.getOwnPropertyDescriptor(process, name)
    const getter = descriptor?.get
    if (!getter || !descriptor.configurable) {
      if (fd === 1) process.stdout.on('error', onStdoutError)
      continue
    }

    made[fd] = false
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: descriptor.enumerable,
      get() {
        // Node's own getter again (it keeps the stream it makes); the listener on that stream.
        Object.defineProperty(process, name, descriptor)
        made[fd] = true
        const stream = getter.call(process) as NodeJS.WriteStream
        if (fd === 1) stream.on('error', onStdoutError)
        return stream
      },
    })
  }
}

/**
 * Write `text` to stdout (1) or stderr (2): with write(2) while Node has no stream there, else
 * through the stream. Whatever write(2) does not take (a full non-blocking pipe, a closed one) goes
 * to the stream, which queues it or reports the error as it always has.
 */
export function writeOutput(fd: 1 | 2, text: string): void {
  const stream = (): NodeJS.WriteStream => (fd === 1 ? process.stdout : process.stderr)
  if (made[fd]) {
    stream().write(text)
    return
  }

  const bytes = Buffer.from(text, 'utf8')
  let offset = 0
  try {
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset)
  } catch {
    stream().write(bytes.subarray(offset))
  }
}
