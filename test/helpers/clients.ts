/**
 * The real HTTP clients e2e suites put in front of agentvault: curl and Python `requests` (Debian's
 * curl and python3-requests). scripts/placeholder-clients.sh installs the missing ones (as root,
 * with apt-get) or says what to install: suites that need them fail clearly, never skip silently.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {join} from 'node:path'

import {ROOT} from './cli.js'

/** Install (or demand) curl, python3-requests and bubblewrap; throws with what is missing. */
export function ensureClients(): void {
  const install = spawnSync('sh', [join(ROOT, 'scripts', 'placeholder-clients.sh')], {encoding: 'utf8'})
  if (install.status !== 0) throw new Error(install.stderr || 'scripts/placeholder-clients.sh failed')
}

/** A python3 that has `requests`: the one on PATH, else Debian's (what the script installs into). */
export function pythonWithRequests(): string {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(candidate, ['-c', 'import requests'], {stdio: 'ignore'})
      return candidate
    } catch {
      // try the next
    }
  }

  throw new Error('No python3 with the requests module: install it (apt-get install -y python3-requests)')
}

/** Install (or demand) bash and zsh, for the completion suite; throws with what is missing. */
export function ensureShells(): void {
  const install = spawnSync('sh', [join(ROOT, 'scripts', 'completion-shells.sh')], {encoding: 'utf8'})
  if (install.status !== 0) throw new Error(install.stderr || 'scripts/completion-shells.sh failed')
}
