/**
 * Unit suites over the local backend itself: each test gets a fresh home in a temp folder, and
 * every backend a test opens is closed (and the folder removed) after it:
 * `beforeEach(() => locals.setUp())`, `afterEach(() => locals.tearDown())`.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {Backend} from '../../src/core/backend.js'

import {createBackend} from '../../src/backends/local/index.js'

export class LocalBackends {
  /** The current test's agentvault home (created by the backend's first write). */
  home = ''
  private readonly open: Backend[] = []
  private root = ''

  constructor(private readonly prefix: string) {}

  /** A local backend on the current test's home (no keychain: the key is a file there). */
  backend(): Backend {
    const made = createBackend({
      env: {AGENTVAULT_NO_KEYCHAIN: '1'},
      home: this.home,
      interactive: false,
      profile: {implicit: true, kind: 'local', name: 'local', settings: {}},
      warn() {},
    })
    this.open.push(made)
    return made
  }

  async setUp(): Promise<void> {
    this.root = await mkdtemp(join(tmpdir(), this.prefix))
    this.home = join(this.root, 'home')
  }

  async tearDown(): Promise<void> {
    await Promise.all(this.open.splice(0).map((made) => made.close()))
    await rm(this.root, {force: true, recursive: true})
  }
}
