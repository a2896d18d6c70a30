/**
 * A file a command writes for the user outside its home (`inject -o`): mode 0600, replaced
 * atomically (a reader sees the old file or the new one, never half), never through a symlink.
 */
import {lstatSync} from 'node:fs'

import {AgentVaultError, UsageError} from './errors.js'
import {writeFileAtomic} from './file-lock.js'

/**
 * Throw UsageError OUTPUT_NOT_REGULAR when `path` exists and is a device, a FIFO, a socket or a
 * directory. A file written for the user is replaced by renaming a new one over it, which would
 * replace such a node itself (run as root, `-o /dev/null` made /dev/null a regular file holding
 * the output); and opening a FIFO to read or write it waits for the other end. Missing paths,
 * regular files and links (refused later, by the write) pass.
 */
export function refuseSpecialOutput(path: string, what: string, suggestion: string): void {
  let info
  try {
    info = lstatSync(path)
  } catch {
    return
  }

  if (info.isFile() || info.isSymbolicLink()) return
  const kind = info.isDirectory()
    ? 'a directory'
    : info.isFIFO()
      ? 'a FIFO (named pipe)'
      : info.isSocket()
        ? 'a socket'
        : 'a device'
  throw new UsageError(
    'OUTPUT_NOT_REGULAR',
    `${path} is ${kind}, not a regular file: agentvault writes ${what} by renaming a new file over it, which would replace ${kind} itself`,
    {details: {path}, suggestion},
  )
}

/** @throws UsageError OUTPUT_UNWRITABLE naming the path and the errno code (never the data). */
export async function writeOutputFile(path: string, data: Buffer): Promise<void> {
  refuseSpecialOutput(
    path,
    '-o FILE',
    'Leave out -o to print to stdout (and redirect that where you like), or give -o a regular file.',
  )
  try {
    await writeFileAtomic(path, data, 0o600)
    // A file created by rename keeps the temp file's 0600; say it again in case of a wide umask race.
    await (await import('node:fs/promises')).chmod(path, 0o600)
  } catch (error) {
    if (error instanceof AgentVaultError) throw error
    const code = (error as NodeJS.ErrnoException).code ?? 'error'
    throw new UsageError('OUTPUT_UNWRITABLE', `Cannot write ${path} (${code})`, {
      suggestion:
        'Check that the directory of -o FILE exists and is writable, and that FILE is not a directory.',
    })
  }
}
