/**
 * What a process of the same OS user could otherwise take from an agentvault process that holds
 * values (`run`, `proxy start`, `mcp`): the command `run` starts, an agent that started `mcp`, any
 * script of the user's. Two doors, closed without native code:
 *
 * - SIGUSR1: Node's default action opens its inspector on 127.0.0.1:9229, and anyone who can
 *   connect (/json/list, then a heap snapshot over the WebSocket) reads the whole heap — the vault
 *   key and every value — whatever kernel.yama.ptrace_scope says. A listener of our own replaces
 *   that action (`run` forwards the signal to its command as well; see runner.ts).
 * - Core dumps: it could raise the core-file limit (`prlimit --pid PID --core=unlimited`, allowed
 *   up to the hard limit, unlimited on most systems) and send SIGSEGV, SIGABRT or another
 *   core-dumping signal: the core file (in the working directory, or kept by systemd-coredump or
 *   apport where that user can read it) holds the same. With the hard limit at 0, raising it
 *   takes CAP_SYS_RESOURCE, which the kernel withholds from an unprivileged process. Node has no
 *   setrlimit, and the way a process says it is not to be dumped (prctl PR_SET_DUMPABLE) takes
 *   native code, so util-linux's prlimit sets the limit from outside. Where it is missing nothing
 *   is changed (README). Children inherit the limit: their cores would hold what they were given.
 *
 * What stays open: the memory itself (/proc/PID/mem, ptrace) where ptrace_scope is 0 or Yama is
 * absent, and for a parent (mcp's agent) where it is 1 — README says so.
 */

/** Installed once; never removed (a removed listener would give SIGUSR1 back to the inspector). */
let guarded: Promise<void> | undefined

/** Close both doors; resolves once the core limit is set (before any child starts or value is held). */
export function guardProcess(): Promise<void> {
  if (!guarded) {
    process.on('SIGUSR1', () => {})
    guarded = forbidCoreDumps()
  }

  return guarded
}

function forbidCoreDumps(): Promise<void> {
  if (process.platform !== 'linux') return Promise.resolve()
  return import('node:child_process').then(
    ({spawn}) =>
      new Promise<void>((resolve) => {
        // Never a value in its environment: PATH to find it, nothing else.
        const child = spawn('prlimit', ['--pid', String(process.pid), '--core=0:0'], {
          env: {PATH: process.env.PATH ?? '/usr/bin:/bin'},
          stdio: 'ignore',
        })
        child.once('error', () => resolve())
        child.once('exit', () => resolve())
      }),
    () => {},
  )
}
