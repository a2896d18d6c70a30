/**
 * The package as npm users get it: `npm pack` the built repository, then install the tarball
 * (dependencies from the npm cache that `npm ci` filled, else from the registry).
 */
import {execFile} from 'node:child_process'
import {mkdir} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {baseEnv, ROOT} from './cli.js'

const run = promisify(execFile)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

/**
 * Environment for a nested npm. When the suite itself runs under `npm test`/`npx`, npm exports the
 * outer invocation's settings (prefix, command, package); the nested npm must not inherit those.
 */
export function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(
      baseEnv({npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false'}),
    ).filter(
      ([key]) =>
        !/^npm_(config_(call|prefix|global_prefix|local_prefix|yes)$|command$|lifecycle_|package_)/i.test(
          key,
        ),
    ),
  )
}

export interface Packed {
  /** The paths inside the tarball. */
  files: string[]
  tarball: string
}

/** `npm pack` the repository (built: `npm test` builds first) into `dir`. */
export async function pack(dir: string): Promise<Packed> {
  const packed = await run(npm, ['pack', '--pack-destination', dir, '--json'], {cwd: ROOT, env: npmEnv()})
  const [info] = JSON.parse(packed.stdout) as Array<{files: Array<{path: string}>; filename: string}>
  if (!info) throw new Error(`npm pack printed no package: ${packed.stdout}`)
  return {files: info.files.map((file) => file.path), tarball: join(dir, info.filename)}
}

/**
 * Install `tarball` under `prefix`: globally (`npm i -g`, the command in `prefix/bin`) or as a
 * project dependency (`npm i`, the command in `prefix/node_modules/.bin`, as npx runs it).
 * Returns the path of the `agentvault` command.
 */
export async function install(tarball: string, prefix: string, options: {global: boolean}): Promise<string> {
  await mkdir(prefix, {recursive: true})
  await run(
    npm,
    [
      'install',
      ...(options.global ? ['--global'] : []),
      '--prefix',
      prefix,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      tarball,
    ],
    {cwd: prefix, env: npmEnv()},
  )
  if (process.platform === 'win32')
    return join(prefix, options.global ? '' : join('node_modules', '.bin'), 'agentvault.cmd')
  return join(prefix, options.global ? 'bin' : join('node_modules', '.bin'), 'agentvault')
}
