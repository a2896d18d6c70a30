/**
 * The real programs e2e suites run against agentvault: curl, Python `requests` and bubblewrap (the
 * HTTP clients), bash and zsh (completion). scripts/test-tools.sh installs the missing ones (as
 * root, with apt-get) or says what to install: suites that need them fail clearly, never skip.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {join} from 'node:path'

import {ROOT} from './cli.js'

function ensureTools(group: 'clients' | 'compiler' | 'shells'): void {
  const install = spawnSync('sh', [join(ROOT, 'scripts', 'test-tools.sh'), group], {encoding: 'utf8'})
  if (install.status !== 0) throw new Error(install.stderr || `scripts/test-tools.sh ${group} failed`)
}

/** Install (or demand) a C compiler with libc's headers (cc); throws with what is missing. */
export function ensureCompiler(): void {
  ensureTools('compiler')
}

/** Install (or demand) curl, python3-requests and bubblewrap; throws with what is missing. */
export function ensureClients(): void {
  ensureTools('clients')
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
  ensureTools('shells')
}
