#!/bin/sh
':' // ; if [ -n "${NODE_DEBUG+x}" ]; then export AGENTVAULT_NODE_DEBUG="$NODE_DEBUG"; unset NODE_DEBUG; else unset AGENTVAULT_NODE_DEBUG; fi; i=0; for a in "$@"; do export "AGENTVAULT_ARGV_$i=$a"; i=$((i + 1)); done; export AGENTVAULT_ARGC=$i; exec node "$0" || exit 127
// The line above is POSIX sh, and in JavaScript a string followed by a comment. Node reads the
// script's own arguments for `--env-file` (and reads that file) before any JavaScript runs, so
// `agentvault run --env-file F` would never reach us intact. Run as a program (npm's bin link,
// npx, ./bin/run.cjs), the kernel hands this file to sh, which puts the arguments into numbered
// environment variables and replaces itself with `node bin/run.cjs` (exec: same process, same
// stdin/TTY, process group and signals), so Node sees no arguments at all. Here they are taken
// back, and removed from the environment before anything else runs, so no child inherits them.
// `node bin/run.cjs ARGS` (tests, the bench) still works, with Node's own reading of ARGS.
// NODE_DEBUG is kept from Node the same way: its debug output (child_process, http, net) prints
// the environments and headers agentvault builds, secrets included. Node reads it only while
// starting, so putting it back here leaves agentvault quiet and hands it to the commands it runs.
// CommonJS (.cjs): the usual commands then run without Node's ES module loader (dist/launch.cjs).
// bin/run.js, the same launcher as an ES module, hands over to this file.
const {argv, env} = process
if (env.AGENTVAULT_ARGC !== undefined) {
  const count = Number(env.AGENTVAULT_ARGC)
  const args = []
  for (let i = 0; i < count; i++) {
    args.push(env[`AGENTVAULT_ARGV_${i}`] ?? '')
    delete env[`AGENTVAULT_ARGV_${i}`]
  }

  delete env.AGENTVAULT_ARGC
  if (env.AGENTVAULT_NODE_DEBUG !== undefined) {
    env.NODE_DEBUG = env.AGENTVAULT_NODE_DEBUG
    delete env.AGENTVAULT_NODE_DEBUG
  }

  // Arguments given to node directly win over stale variables a caller happened to pass on.
  if (argv.length === 2) argv.push(...args)
}

require('../dist/launch.cjs').launch(argv.slice(2), require('node:url').pathToFileURL(__filename).href)
