#!/usr/bin/env node
// The mocha suite again on other Node versions, so `engines` is proven rather than hoped:
//
//   node scripts/test-on-nodes.js 22 24      (what `npm test` runs after the suite on this machine's Node)
//
// Each pass puts that version's `node` first on PATH (scripts/node-version.js installs it from the
// npm registry on first use, cached) and runs mocha with it, so the test code, tsx and every
// `bin/run.js` the e2e tests start run on that version. AGENTVAULT_TEST_NODES overrides the list
// (`AGENTVAULT_TEST_NODES= npm test` skips these passes); extra arguments after `--` go to mocha
// (e.g. `-- test/e2e` for the e2e files only). Exit: the first failing pass's code, else 0.
import {spawnSync} from 'node:child_process'
import {readdirSync, rmSync} from 'node:fs'
import {delimiter, dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const dash = process.argv.indexOf('--')
const listed = dash === -1 ? process.argv.slice(2) : process.argv.slice(2, dash)
const mochaArgs = dash === -1 ? [] : process.argv.slice(dash + 1)
const versions =
  process.env.AGENTVAULT_TEST_NODES === undefined
    ? listed
    : process.env.AGENTVAULT_TEST_NODES.split(/[\s,]+/).filter(Boolean)

/** The code cache files under dist/fast (absolute paths). */
function cacheFiles() {
  const fast = join(root, 'dist', 'fast')
  return readdirSync(fast, {recursive: true})
    .filter((name) => name.endsWith('.cache'))
    .map((name) => join(fast, name))
}

/** Write `node`'s code caches of the script bundles; the files it added. */
function warmCaches(node) {
  const before = new Set(cacheFiles())
  const warmed = spawnSync(node, [join(root, 'scripts', 'warm-cache.js')], {cwd: root, stdio: 'inherit'})
  const added = cacheFiles().filter((file) => !before.has(file))
  if (warmed.status !== 0) {
    for (const file of added) rmSync(file, {force: true})
    process.stderr.write(`test-on-nodes: writing the code caches with ${node} failed\n`)
    process.exit(warmed.status ?? 1)
  }

  return added
}

for (const version of versions) {
  const found = spawnSync(process.execPath, [join(root, 'scripts', 'node-version.js'), version], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (found.status !== 0) {
    process.stderr.write(`test-on-nodes: no Node ${version} (see above)\n`)
    process.exit(found.status ?? 1)
  }

  const node = found.stdout.trim()
  // That Node's V8 code caches of the script bundles (dist/fast), as a build on it writes them:
  // without them it would load the ESM chunks, and the bundles users of that Node run would go
  // untested there. Removed after the pass, so dist/ is left as the build made it.
  const caches = warmCaches(node)
  const env = {
    // The exhaustive sweeps (crash points, injected errnos, cut files) and the fuzz suites sample
    // on these passes (their whole matrix runs on this machine's Node, and what they test does not
    // change with the Node version): CI stays in its time. test/helpers/e2e.ts sweepSample.
    SWEEP_STRIDE: '5',
    FUZZ_RUNS: '40',
    ...process.env,
    // test/unit/node-version.test.ts checks that the pass really runs on this version.
    AGENTVAULT_TEST_NODE: version,
    PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}`,
  }
  const started = process.hrtime.bigint()
  process.stdout.write(`\n=== the suite on Node ${version} (${node}) ===\n`)
  let pass
  try {
    pass = spawnSync(node, [join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), ...mochaArgs], {
      cwd: root,
      env,
      stdio: 'inherit',
    })
  } finally {
    for (const file of caches) rmSync(file, {force: true})
  }

  const seconds = Number((process.hrtime.bigint() - started) / 1_000_000n) / 1000
  process.stdout.write(
    `=== Node ${version}: exit ${pass.status ?? pass.signal} after ${seconds.toFixed(0)} s ===\n`,
  )
  if (pass.status !== 0) process.exit(pass.status ?? 1)
}
