/**
 * `agentvault autocomplete`: the completion files in agentvault's cache folder, and the one line a
 * shell's startup file needs to load them. The file layout is the one @oclif/plugin-autocomplete
 * used (`<cache>/autocomplete/bash_setup`, `functions/bash/agentvault.bash`, `zsh_setup`,
 * `functions/zsh/_agentvault`), so a line appended by an earlier version keeps working.
 */
import {chmod, mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {CompletionSpec} from './spec.js'

import {bashScript, zshScript} from './script.js'

export const SHELLS = ['bash', 'zsh', 'powershell'] as const
export type Shell = (typeof SHELLS)[number]

export interface CompletionFiles {
  /** The completion function files written (bash, zsh). */
  functions: string[]
  /** What the shell's startup file sources (bash_setup, zsh_setup). */
  setup: string[]
}

/** Double-quoted for sh: $, `, " and \ escaped. */
function quoted(path: string): string {
  return `"${path.replaceAll(/(["$`\\])/g, '\\$1')}"`
}

export function autocompleteDir(cacheDir: string): string {
  return join(cacheDir, 'autocomplete')
}

/** Write the bash and zsh completion files for `spec` under `<cacheDir>/autocomplete/`. */
export async function writeCompletionFiles(
  cacheDir: string,
  spec: CompletionSpec,
  bin = 'agentvault',
): Promise<CompletionFiles> {
  const dir = autocompleteDir(cacheDir)
  const bashDir = join(dir, 'functions', 'bash')
  const zshDir = join(dir, 'functions', 'zsh')
  // Never group- or world-writable, whatever the umask: zsh's compinit refuses (and asks about)
  // completion files that others could change.
  await Promise.all([
    mkdir(bashDir, {mode: 0o755, recursive: true}),
    mkdir(zshDir, {mode: 0o755, recursive: true}),
  ])
  const bashFunction = join(bashDir, `${bin}.bash`)
  const zshFunction = join(zshDir, `_${bin}`)
  const bashSetup = join(dir, 'bash_setup')
  const zshSetup = join(dir, 'zsh_setup')
  const files: Array<[string, string]> = [
    [bashFunction, bashScript(spec, bin)],
    [zshFunction, zshScript(spec, bin)],
    [bashSetup, `[ -f ${quoted(bashFunction)} ] && . ${quoted(bashFunction)}\n`],
    [zshSetup, `fpath=(${quoted(zshDir)} $fpath)\nautoload -Uz compinit\ncompinit\n`],
  ]
  await Promise.all(
    files.map(async ([file, text]) => {
      await writeFile(file, text, {mode: 0o644})
      await chmod(file, 0o644) // an existing file keeps its mode through writeFile
    }),
  )
  return {functions: [bashFunction, zshFunction], setup: [bashSetup, zshSetup]}
}

/**
 * The line a shell's startup file needs, ending with a newline (appended with `>>`, the next line
 * of the file starts on a line of its own), and starting with one (in case the file does not end
 * with a newline). Same variable and layout as @oclif/plugin-autocomplete's line.
 */
export function setupLine(shell: Shell, cacheDir: string, bin = 'agentvault'): string {
  const dir = autocompleteDir(cacheDir)
  if (shell === 'powershell') return `. ${quoted(join(dir, 'functions', 'powershell', `${bin}.ps1`))}\n`
  const variable = `${bin.toUpperCase().replaceAll('-', '_')}_AC_${shell.toUpperCase()}_SETUP_PATH`
  const file = quoted(join(dir, `${shell}_setup`))
  return `\n${variable}=${file} && test -f "$${variable}" && source "$${variable}"; # ${bin} autocomplete setup\n`
}
