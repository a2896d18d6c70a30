#!/usr/bin/env node
// Writes V8's code cache for dist/fast/run.cjs (run by scripts/bundle.js, at the end of the
// build): the bundle is loaded exactly as main.ts loads it, runs `run --env K=local://K -- true`
// against a throwaway vault in a temp directory (no user data: its own AGENTVAULT_HOME, HOME and a
// minimal environment), and the cache is taken after that run, so it holds the functions a `run`
// compiles lazily too, not only the top level. The cache is named after this Node's V8 version:
// another Node finds none and loads the ESM chunks instead (main.ts).
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

if (process.argv[2] === '--warm') {
  const {codeCacheFile, loadScriptBundle} = await import(new URL('../dist/main.js', import.meta.url).href)
  const bundle = loadScriptBundle('run', 'ignore')
  if (!bundle) throw new Error('dist/fast/run.cjs is missing')
  const code = await bundle.exports.runFromArgv(['--env', 'K=local://K', '--', 'true'])
  if (code !== 0) throw new Error(`the warm-up run exited ${code}`)
  writeFileSync(codeCacheFile(join(root, 'dist', 'fast', 'run.cjs')), bundle.script.createCachedData())
} else {
  const work = mkdtempSync(join(tmpdir(), 'agentvault-warm-cache-'))
  try {
    const env = {
      AGENTVAULT_HOME: join(work, 'home'),
      HOME: work,
      LANG: 'C',
      PATH: process.env.PATH ?? '/usr/bin:/bin',
    }
    const stored = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), 'secrets', 'set', 'K'], {
      env,
      input: 'warm-up value',
    })
    if (stored.status !== 0) throw new Error(`secrets set failed: ${stored.stderr}`)
    const warmed = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--warm'], {env})
    if (warmed.status !== 0) throw new Error(`the warm-up failed: ${warmed.stderr}`)
  } finally {
    rmSync(work, {force: true, recursive: true})
  }
}
