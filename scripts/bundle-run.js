#!/usr/bin/env node
// Bundles the fast `run` path (dist/fast-run.js and everything it imports, lazily loaded parts
// split into chunks) into dist/fast/: CI pays for every module Node resolves on each `run`.
// Dependencies stay external, so tweetnacl & co. are still loaded only when needed.
import {build} from 'esbuild'

await build({
  bundle: true,
  entryPoints: [new URL('../dist/fast-run.js', import.meta.url).pathname],
  format: 'esm',
  logLevel: 'warning',
  outdir: new URL('../dist/fast', import.meta.url).pathname,
  packages: 'external',
  platform: 'node',
  splitting: true,
  target: 'node20',
})
