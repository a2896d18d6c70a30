/**
 * No core dumps of agentvault (Linux). A command `run` starts runs as the same OS user, so it may
 * raise agentvault's core-file limit (`prlimit --pid $PPID --core=unlimited`, allowed up to the
 * hard limit, unlimited on most systems) and send it SIGSEGV, SIGABRT or another core-dumping
 * signal: the core file (in agentvault's working directory, or kept by systemd-coredump or apport
 * where that user can read it) holds the vault key and every value, placeholders' real ones too.
 * Lowering the hard limit to 0 closes that: raising it again takes CAP_SYS_RESOURCE, which the
 * kernel withholds from a process of the same unprivileged user.
 * `proxy start` and `mcp` do the same: any process of the user (the agent is mcp's parent) could.
 *
 * Node has no setrlimit, and the way a process would say it is not to be dumped (prctl
 * PR_SET_DUMPABLE) takes native code; util-linux's prlimit sets the limit of this process from
 * outside. Where it is missing nothing is changed (README: run's limits). The command inherits the
 * limit: its own core files would hold the values it was given.
 */
export function forbidCoreDumps(): Promise<void> {
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
