#!/usr/bin/env node
// Writes V8's code cache for dist/fast/run.cjs and dist/fast/dispatch/all.cjs (run by
// scripts/bundle.js, at the end of the build): each bundle is loaded exactly as main.ts loads it,
// runs `run --env K=local://K -- true` (or status, secrets list, secrets set, use … sign)
// against a throwaway vault in a temp directory (no user data: its own AGENTVAULT_HOME, HOME and a
// minimal environment), and the cache is taken after that run, so it holds the functions those
// commands compile lazily too, not only the top level. The cache is named after this Node's V8 version:
// another Node finds none and loads the ESM chunks instead (main.ts).
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

/** What each script bundle runs before its cache is taken. */
const warmUps = {
  async 'dispatch/all'({commands, dispatch}) {
    const bin = new URL('../bin/run.js', import.meta.url).href
    const load = (module) => commands[module]()
    for (const argv of [
      ['status'],
      ['secrets', 'list'],
      ['secrets', 'set', 'W=warm-up value'],
      ['use', 'local://SIGN', 'sign', '--param', 'algorithm=hmac-sha256', '--param', 'data=x'],
    ]) {
      if (!(await dispatch(argv, bin, load))) throw new Error(`${argv.join(' ')} went to oclif`)
      if (process.exitCode) throw new Error(`${argv.join(' ')} exited ${process.exitCode}`)
    }
  },
  async run({runFromArgv}) {
    const code = await runFromArgv(['--env', 'K=local://K', '--', 'true'])
    if (code !== 0) throw new Error(`the warm-up run exited ${code}`)
  },
}

if (process.argv[2] === '--warm') {
  const name = process.argv[3]
  const {codeCacheFile, loadScriptBundle} = await import(new URL('../dist/main.js', import.meta.url).href)
  const bundle = loadScriptBundle(name, 'ignore')
  if (!bundle) throw new Error(`dist/fast/${name}.cjs is missing`)
  await warmUps[name](bundle.exports)
  writeFileSync(codeCacheFile(join(root, 'dist', 'fast', `${name}.cjs`)), bundle.script.createCachedData())
} else {
  const work = mkdtempSync(join(tmpdir(), 'agentvault-warm-cache-'))
  try {
    const env = {
      AGENTVAULT_HOME: join(work, 'home'),
      HOME: work,
      LANG: 'C',
      PATH: process.env.PATH ?? '/usr/bin:/bin',
    }
    for (const [name, value] of [
      ['K', 'warm-up value'],
      ['SIGN', 'warm-up hmac key 0000'],
    ]) {
      const stored = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), 'secrets', 'set', name], {
        env,
        input: value,
      })
      if (stored.status !== 0) throw new Error(`secrets set failed: ${stored.stderr}`)
    }

    for (const name of Object.keys(warmUps)) {
      const warmed = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--warm', name], {env})
      if (warmed.status !== 0) throw new Error(`the warm-up of ${name} failed: ${warmed.stderr}`)
    }
  } finally {
    rmSync(work, {force: true, recursive: true})
  }
}
