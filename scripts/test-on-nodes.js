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
  const env = {
    ...process.env,
    // test/unit/node-version.test.ts checks that the pass really runs on this version.
    AGENTVAULT_TEST_NODE: version,
    PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}`,
  }
  const started = process.hrtime.bigint()
  process.stdout.write(`\n=== the suite on Node ${version} (${node}) ===\n`)
  const pass = spawnSync(node, [join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), ...mochaArgs], {
    cwd: root,
    env,
    stdio: 'inherit',
  })
  const seconds = Number((process.hrtime.bigint() - started) / 1_000_000n) / 1000
  process.stdout.write(
    `=== Node ${version}: exit ${pass.status ?? pass.signal} after ${seconds.toFixed(0)} s ===\n`,
  )
  if (pass.status !== 0) process.exit(pass.status ?? 1)
}
