/**
 * A file a command writes for the user outside its home (`inject -o`): mode 0600, replaced
 * atomically (a reader sees the old file or the new one, never half), never through a symlink.
 */
import {AgentVaultError, UsageError} from './errors.js'
import {writeFileAtomic} from './file-lock.js'

/** @throws UsageError OUTPUT_UNWRITABLE naming the path and the errno code (never the data). */
export async function writeOutputFile(path: string, data: Buffer): Promise<void> {
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
