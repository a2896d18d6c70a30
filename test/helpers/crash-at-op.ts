/**
 * The crash/fault preload (test/fixtures/crash-at-op.c), built once per test process with the C
 * compiler into the git-ignored tmp/ (scripts/test-tools.sh installs cc when it is missing, as
 * root with apt-get, or says what to install: the suites fail clearly, never skip). The
 * environment it needs: {@link crashAtOpEnv}.
 */
import {execFileSync} from 'node:child_process'
import {mkdirSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {ROOT} from './cli.js'
import {ensureCompiler} from './clients.js'

const SOURCE = join(ROOT, 'test', 'fixtures', 'crash-at-op.c')
let built: string | undefined

/** Build the preload library; throws (with what is missing, or the compiler's message) when that is not possible. */
export function buildCrashAtOp(): string {
  if (built) return built
  ensureCompiler()
  const dir = join(ROOT, 'tmp', 'crash-at-op')
  mkdirSync(dir, {recursive: true})
  const library = join(dir, `crash-at-op-${process.pid}.so`)
  execFileSync('cc', ['-shared', '-fPIC', '-O1', '-o', library, SOURCE, '-ldl'], {stdio: 'pipe'})
  process.once('exit', () => rmSync(library, {force: true}))
  built = library
  return library
}

export interface CrashAtOp {
  /** The Nth change under `root` (1-based); unset: count only. */
  at?: number
  /** errno for mode `fail` (default EIO). */
  errno?: number
  /** File to append one line per change to ("<op> <path>"). */
  log?: string
  /** Count only the changes that read exactly "<op> <path>" (e.g. `rename /home/audit.head`). */
  match?: string
  mode?: 'before' | 'fail' | 'torn'
  root: string
}

/** `env` with the preload loaded and told where and when to act. */
export function crashAtOpEnv(env: NodeJS.ProcessEnv, options: CrashAtOp): NodeJS.ProcessEnv {
  return {
    ...env,
    CRASH_AT_OP_ROOT: options.root,
    LD_PRELOAD: buildCrashAtOp(),
    // io_uring submissions would bypass libc's entry points, which the preload wraps.
    UV_USE_IO_URING: '0',
    ...(options.at !== undefined && {CRASH_AT_OP: String(options.at)}),
    ...(options.mode && {CRASH_AT_OP_MODE: options.mode}),
    ...(options.errno !== undefined && {CRASH_AT_OP_ERRNO: String(options.errno)}),
    ...(options.log && {CRASH_AT_OP_LOG: options.log}),
    ...(options.match && {CRASH_AT_OP_MATCH: options.match}),
  }
}
