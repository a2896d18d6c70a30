import {homedir} from 'node:os'
import {join, resolve} from 'node:path'

/**
 * `run --isolate`: start the child under bubblewrap with the agentvault home and the OS keychain's
 * sockets hidden (an empty tmpfs over the home, /dev/null over the D-Bus session socket, the
 * keyring directory emptied), in its own PID namespace with its own /proc and /dev, and without a
 * controlling terminal. The rest of the file system stays as it is. Linux with `bwrap` only;
 * elsewhere the run fails before anything starts.
 */
import type {PreparedRun} from '../runner.js'

import {UsageError} from '../errors.js'
import {keychainDisabled} from '../keychain.js'

function unavailable(why: string): UsageError {
  return new UsageError('ISOLATE_UNAVAILABLE', `--isolate is not available here: ${why}`, {
    suggestion:
      'On Linux install bubblewrap (apt-get install bubblewrap, dnf install bubblewrap); elsewhere run without --isolate.',
  })
}

async function findOnPath(command: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const {access, constants} = await import('node:fs/promises')
  const {delimiter, join} = await import('node:path')
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, command)
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }

  return undefined
}

/**
 * Refuse a session bus the sandbox cannot hide: an abstract socket (`unix:abstract=`, as
 * dbus-launch and dbus-run-session before dbus 1.15.2 make it) lives in the network namespace,
 * which the child shares to reach the placeholder proxy, and TCP is the network itself. Through it
 * the child reads agentvault's keychain entries (the vault key, stored tokens). Unless agentvault
 * leaves the keychain alone (AGENTVAULT_NO_KEYCHAIN).
 */
function checkBusHideable(env: NodeJS.ProcessEnv): void {
  if (keychainDisabled(env)) return
  const entries = (env.DBUS_SESSION_BUS_ADDRESS ?? '').split(';')
  const open = entries.find(
    (entry) => /^unix:(?:.*,)?abstract=/.test(entry) || /^(?:nonce-)?tcp:/.test(entry),
  )
  if (open === undefined) return
  throw new UsageError(
    'ISOLATE_UNAVAILABLE',
    `--isolate is not available here: the D-Bus session bus (the OS keychain) is ${open.startsWith('unix:') ? 'an abstract socket' : 'on TCP'}, which bubblewrap cannot hide from a command that keeps the network`,
    {
      suggestion:
        'Use a session bus at a path (unix:path=…, as systemd’s user bus and dbus 1.15.2+ make it), or set AGENTVAULT_NO_KEYCHAIN=1 if agentvault keeps nothing in the keychain here.',
    },
  )
}

/** Paths of the session bus and keyring sockets that the child must not reach. */
function keychainPaths(env: NodeJS.ProcessEnv): string[] {
  const paths: string[] = []
  const bus = /(?:^|;)unix:(?:[^;]*,)?path=([^,;]+)/.exec(env.DBUS_SESSION_BUS_ADDRESS ?? '')
  if (bus?.[1]) paths.push(bus[1])
  if (env.XDG_RUNTIME_DIR) paths.push(`${env.XDG_RUNTIME_DIR}/bus`, `${env.XDG_RUNTIME_DIR}/keyring`)
  return paths
}

/**
 * Credentials agentvault itself reads from outside its home, which the child must not reach either:
 * the `vault` CLI's token file (the openbao backend's last token source), sanctum agent keys (the
 * default key folder, SANCTUM_KEY_PATH, and the `keyPath` of each configured profile). With one of
 * them the child could ask the backend for every secret itself.
 */
function credentialPaths(env: NodeJS.ProcessEnv, keyPaths: readonly string[]): string[] {
  const user = env.HOME && env.HOME !== '' ? env.HOME : homedir()
  // As agentvault reads them: ~/ from the user's home, a relative path from the working directory.
  const expand = (path: string): string => resolve(path.startsWith('~/') ? join(user, path.slice(2)) : path)
  return [
    join(user, '.vault-token'),
    join(user, '.sanctum', 'keys'),
    ...(env.SANCTUM_KEY_PATH ? [env.SANCTUM_KEY_PATH] : []),
    ...keyPaths,
  ].map((path) => expand(path))
}

/**
 * Wrap `prepared.command` in bubblewrap; the child environment loses the session-bus address.
 * `keyPaths`: the key files configured profiles name (their `keyPath` settings).
 */
export async function isolate(
  prepared: PreparedRun,
  home: string,
  env: NodeJS.ProcessEnv,
  keyPaths: readonly string[] = [],
): Promise<void> {
  if (process.platform !== 'linux')
    throw unavailable(`it needs Linux with bubblewrap (this is ${process.platform})`)
  const bwrap = await findOnPath('bwrap', env)
  if (!bwrap) throw unavailable('bubblewrap (bwrap) is not installed')
  checkBusHideable(env)
  const {stat} = await import('node:fs/promises')
  const kindOf = async (path: string): Promise<'dir' | 'file' | undefined> => {
    try {
      return (await stat(path)).isDirectory() ? 'dir' : 'file'
    } catch {
      return undefined
    }
  }

  // A PID namespace with its own /proc: no process outside the sandbox is visible, so neither
  // /proc/<agentvault>/root (the home through another root), /mem (the values) nor /environ (its
  // credentials) can be reached. A fresh /dev leaves out the host's devices (memory, disks).
  // --new-session: the child gets no controlling terminal, so it cannot push keystrokes into the
  // user's shell (TIOCSTI); the price is terminal job control (Ctrl-Z stops agentvault, not the
  // child; Ctrl-C ends the sandbox with 130). Signals sent to agentvault still end the child.
  const args = [
    '--dev-bind',
    '/',
    '/',
    '--unshare-pid',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--new-session',
    '--die-with-parent',
  ]
  if ((await kindOf(home)) === 'dir') args.push('--tmpfs', home)
  for (const path of [...keychainPaths(env), ...credentialPaths(env, keyPaths)]) {
    const kind = await kindOf(path)
    if (kind === 'dir') args.push('--tmpfs', path)
    else if (kind === 'file') args.push('--ro-bind', '/dev/null', path)
  }

  delete prepared.env.DBUS_SESSION_BUS_ADDRESS
  prepared.command = [bwrap, ...args, '--', ...prepared.command]
}
