/**
 * The service behind `agentvault proxy start|status|stop`: run the server in the foreground until
 * SIGINT/SIGTERM, start it detached, report it, stop it. Commands only parse and render.
 */
import {join} from 'node:path'

import type {Session} from '../session.js'
import type {UseLimits} from '../use.js'

import {ConfigError, UsageError} from '../errors.js'
import {DEFAULT_PROXY_PORT} from './server.js'
import {alreadyRunning, type ProxyRecord} from './state.js'

export interface ProxyStartOptions {
  limits: UseLimits
  maxBodyBytes?: number
  port: number
  /** false with `--no-session-token`. */
  sessionToken: boolean
}

export interface ProxyStarted {
  pid: number
  port: number
  profile: string
  /** Whether `/proxy` requires `X-AS-Session-Token` (see `proxy status --show-token`). */
  sessionTokenRequired: boolean
  url: string
}

/** `--port`, else AGENTVAULT_PROXY_PORT, else AGENTSECRETS_PORT, else 8765. */
export function proxyPort(flag: number | undefined, env: NodeJS.ProcessEnv): number {
  if (flag !== undefined) return flag
  for (const name of ['AGENTVAULT_PROXY_PORT', 'AGENTSECRETS_PORT'] as const) {
    const text = env[name]?.trim()
    if (!text) continue
    const port = Number(text)
    if (!/^\d{1,5}$/.test(text) || port > 65_535)
      throw new UsageError('BAD_PORT', `${name} is not a port number`, {
        suggestion: `Set ${name} to a number from 1 to 65535, or pass --port N.`,
      })
    return port
  }

  return DEFAULT_PROXY_PORT
}

function portInUse(port: number): ConfigError {
  return new ConfigError('PORT_IN_USE', `Port ${port} on 127.0.0.1 is already in use`, {
    suggestion: 'Pass another --port (or AGENTVAULT_PROXY_PORT), or stop what listens there.',
  })
}

/**
 * Serve until SIGINT or SIGTERM, then stop cleanly: no new connections, requests in flight
 * answered, their audit events written, backend sessions closed (sanctum leases released), the
 * pid file removed. `ready` is called once listening.
 */
export async function runProxy(
  session: Session,
  options: ProxyStartOptions,
  io: {log(line: string): void; ready(started: ProxyStarted): void},
): Promise<ProxyStarted> {
  const state = await import('./state.js')
  const running = await state.readProxyRecord(session.home)
  if (running) throw alreadyRunning(running)
  const profile = await session.profileFor()
  const token = options.sessionToken ? await state.newSessionToken() : undefined
  const instance = await state.newInstanceId()
  const {startProxyServer} = await import('./server.js')
  let server
  try {
    server = await startProxyServer({
      instance,
      limits: options.limits,
      log: io.log,
      ...(options.maxBodyBytes !== undefined && {maxBodyBytes: options.maxBodyBytes}),
      port: options.port,
      project: profile.name,
      session,
      ...(token !== undefined && {token}),
    })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw portInUse(options.port)
    throw error
  }

  const record: ProxyRecord = {
    instance,
    pid: process.pid,
    port: server.port,
    profile: profile.name,
    started: new Date().toISOString(),
    token: token ?? null,
  }
  // Kept until the proxy has closed: a second Ctrl-C (or SIGTERM) while requests in flight finish
  // (at most 10 s) would otherwise kill it before their audit events are written.
  let resolveStopped: (() => void) | undefined
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve
  })
  const onSignal = (): void => resolveStopped?.()
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    await state.writeProxyRecord(session.home, record)
    const started: ProxyStarted = {
      pid: process.pid,
      port: server.port,
      profile: profile.name,
      sessionTokenRequired: token !== undefined,
      url: `http://127.0.0.1:${server.port}`,
    }
    io.ready(started)
    await stopped
    return started
  } finally {
    try {
      await server.close()
      await state.removeProxyRecord(session.home)
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
}

/**
 * Start `proxy start` again as a detached process (output to `proxy.log` in the home) and return
 * once it listens, or fail with what it reported.
 */
export async function startDetached(home: string, argv: readonly string[]): Promise<ProxyStarted> {
  const state = await import('./state.js')
  const running = await state.readProxyRecord(home)
  if (running) throw alreadyRunning(running)
  const [{spawn}, {open}, {ensureHome}] = await Promise.all([
    import('node:child_process'),
    import('node:fs/promises'),
    import('../file-lock.js'),
  ])
  await ensureHome(home)
  const logPath = join(home, state.LOG_FILE)
  const log = await open(logPath, 'a', 0o600)
  const args = argv.filter((arg) => arg !== '--detach' && arg !== '--json')
  try {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1] ?? '', ...args], {
      detached: true,
      env: {...process.env, AGENTVAULT_PROXY_DETACHED: '1'},
      stdio: ['ignore', log.fd, log.fd, 'ipc'],
    })
    const started = await new Promise<ProxyStarted>((resolve, reject) => {
      child.once('message', (message) => resolve(message as ProxyStarted))
      child.once('error', reject)
      child.once('exit', () =>
        reject(
          new ConfigError('PROXY_START_FAILED', 'The detached proxy exited before it was ready', {
            suggestion: `Read ${logPath} for its error, or run \`agentvault proxy start\` in the foreground.`,
          }),
        ),
      )
    })
    child.removeAllListeners()
    child.disconnect()
    child.unref()
    return started
  } finally {
    await log.close()
  }
}

/** Tell the process that started this one detached that it is ready. */
export function announceDetached(started: ProxyStarted): void {
  if (process.env.AGENTVAULT_PROXY_DETACHED !== '1' || !process.send) return
  process.send(started, () => process.disconnect())
}

export interface ProxyStatus {
  healthy?: boolean
  pid?: number
  port?: number
  profile?: string
  running: boolean
  /** Only with `--show-token`. */
  sessionToken?: null | string
  sessionTokenRequired?: boolean
  started?: string
  url?: string
}

/**
 * Whether this home's proxy answers on the recorded port: `/health` with 200 and the instance id of
 * the pid file (another proxy there, or none, is not ours).
 */
async function healthy(record: ProxyRecord): Promise<boolean> {
  const {request} = await import('node:http')
  const {INSTANCE_HEADER} = await import('./server.js')
  return new Promise((resolve) => {
    const probe = request(
      {host: '127.0.0.1', path: '/health', port: record.port, timeout: 2000},
      (response) => {
        response.resume()
        resolve(
          response.statusCode === 200 &&
            record.instance !== undefined &&
            response.headers[INSTANCE_HEADER.toLowerCase()] === record.instance,
        )
      },
    )
    probe.once('timeout', () => probe.destroy())
    probe.once('error', () => resolve(false))
    probe.end()
  })
}

export async function proxyStatus(home: string, showToken: boolean): Promise<ProxyStatus> {
  const {readProxyRecord} = await import('./state.js')
  const record = await readProxyRecord(home)
  if (!record) return {running: false}
  return {
    healthy: await healthy(record),
    pid: record.pid,
    port: record.port,
    profile: record.profile,
    running: true,
    ...(showToken && {sessionToken: record.token}),
    sessionTokenRequired: record.token !== null,
    started: record.started,
    url: `http://127.0.0.1:${record.port}`,
  }
}

/** SIGTERM the running proxy and wait until it is gone. */
export async function stopProxy(home: string): Promise<{pid?: number; stopped: boolean}> {
  const state = await import('./state.js')
  const record = await state.readProxyRecord(home)
  if (!record) return {stopped: false}
  // A pid file outliving its proxy (a crash) may name a pid the system gave to another process
  // since: signal it only once it proves to be this home's proxy — by answering, or, when it does
  // not answer (stopped with SIGSTOP or Ctrl-Z, or hung), by having started before its record.
  const answers = await healthy(record)
  if (!answers && !state.isProcessOf(record)) {
    await state.removeStaleProxyRecord(home)
    throw new ConfigError(
      'PROXY_PID_STALE',
      `proxy.pid names pid ${record.pid}, but that is not this home's proxy (nothing answers as it on port ${record.port}): the stale pid file was removed and nothing was signalled`,
      {
        suggestion: `If a proxy of this home still runs but does not answer, stop it by hand (check \`ps -p ${record.pid}\` first).`,
      },
    )
  }

  process.kill(record.pid, 'SIGTERM')
  // A stopped proxy acts on the SIGTERM only once it runs again (as a shell's `kill` does for a
  // stopped job); to a running one SIGCONT is nothing.
  if (!answers) process.kill(record.pid, 'SIGCONT')
  const {setTimeout: delay} = await import('node:timers/promises')
  const deadline = Date.now() + 20_000
  while (state.isAlive(record.pid)) {
    if (Date.now() > deadline)
      throw new ConfigError('PROXY_STOP_TIMEOUT', `The proxy (pid ${record.pid}) did not stop within 20 s`, {
        suggestion: `Stop it by hand: kill ${record.pid}.`,
      })
    await delay(25)
  }

  await state.removeProxyRecord(home, record.pid)
  return {pid: record.pid, stopped: true}
}
