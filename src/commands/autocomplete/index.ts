import {Args, Flags} from '@oclif/core'
import {basename} from 'node:path'

import type {AutocompleteResult} from '../../core/completion/command.js'

import {AgentVaultCommand} from '../../base-command.js'
import {type Shell, SHELLS} from '../../core/completion/install.js'
import {UsageError} from '../../core/errors.js'

export type {AutocompleteResult} from '../../core/completion/command.js'

/** The shell to set up when none is named: the login shell's name ($SHELL). */
function shellFromEnvironment(): Shell {
  const name = basename(process.env.SHELL ?? '')
  if ((SHELLS as readonly string[]).includes(name)) return name as Shell
  throw new UsageError(
    'UNKNOWN_SHELL',
    `Cannot tell which shell to set up${name ? ` (SHELL is ${name})` : ''}`,
    {
      suggestion: 'Name it: agentvault autocomplete bash (or zsh, powershell).',
    },
  )
}

export default class Autocomplete extends AgentVaultCommand<typeof Autocomplete> {
  static args = {
    shell: Args.string({
      description: 'Shell to set up (default: the one $SHELL names).',
      options: [...SHELLS],
    }),
  }
  static baseFlags = {
    'no-prompt': AgentVaultCommand.baseFlags['no-prompt'],
  } as unknown as typeof AgentVaultCommand.baseFlags
  static description = `Writes the completion files into agentvault's cache folder and prints the one command that adds them to your shell's startup file. bash and zsh complete commands, flags, option values (--mask auto|always|never, login kinds), file names where a flag or argument takes a path (--env-file, --from-file, secrets import FILE), the command after \`run --\` (then its own arguments), profile names, and the secret names of the local vault.

Nothing runs agentvault while you press TAB: profile names and secret names are read from $AGENTVAULT_HOME/completion/, which this command creates. From then on agentvault keeps the names there up to date whenever it reads or changes them (names only, never a value; the vault itself keeps its names sealed, so remove that folder to stop). Secret names appear once agentvault has read them: run \`agentvault secrets list\` once.

After upgrading agentvault, run \`agentvault autocomplete --refresh-cache\` so new commands and flags complete.`
  static examples = [
    '<%= config.bin %> <%= command.id %> bash',
    '<%= config.bin %> <%= command.id %> zsh',
    '<%= config.bin %> <%= command.id %> --refresh-cache',
  ]
  static flags = {
    'refresh-cache': Flags.boolean({
      char: 'r',
      description: 'Only rewrite the completion files (after an upgrade); print no instructions.',
    }),
  }
  static summary = 'Set up shell completion for bash, zsh or PowerShell.'
  /** Uses oclif's Config (commands, topics, cacheDir, plugins): the dispatcher leaves it to oclif. */
  static usesOclifConfig = true

  async run(): Promise<AutocompleteResult> {
    const shell = this.args.shell === undefined ? shellFromEnvironment() : (this.args.shell as Shell)
    const {installCompletion, setupInstructions} = await import('../../core/completion/command.js')
    const result = await installCompletion(this.config, this.vault.home, shell)
    if (!this.flags['refresh-cache'] && !this.jsonEnabled())
      this.log(setupInstructions(shell, this.config.bin))
    return result
  }
}
