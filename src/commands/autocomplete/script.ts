import {Args} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {setupLine, type Shell, SHELLS} from '../../core/completion/install.js'

export interface AutocompleteScriptResult {
  line: string
  shell: Shell
}

export default class AutocompleteScript extends AgentVaultCommand<typeof AutocompleteScript> {
  static args = {
    shell: Args.string({
      description: 'Shell whose startup line to print.',
      options: [...SHELLS],
      required: true,
    }),
  }
  static baseFlags = {
    'no-prompt': AgentVaultCommand.baseFlags['no-prompt'],
  } as unknown as typeof AgentVaultCommand.baseFlags
  static description =
    'Prints the line that loads agentvault’s completion files, ending with a newline: append it to the startup file (`>> ~/.bashrc`). `agentvault autocomplete SHELL` writes the files it loads.'
  static examples = [
    '<%= config.bin %> <%= command.id %> bash >> ~/.bashrc',
    '<%= config.bin %> <%= command.id %> zsh >> ~/.zshrc',
  ]
  static summary = 'Print the shell startup line that loads completion.'
  /** Uses oclif's Config (commands, topics, cacheDir, plugins): the dispatcher leaves it to oclif. */
  static usesOclifConfig = true

  async run(): Promise<AutocompleteScriptResult> {
    const shell = this.args.shell as Shell
    const line = setupLine(shell, this.config.cacheDir, this.config.bin)
    if (!this.jsonEnabled()) process.stdout.write(line)
    return {line, shell}
  }
}
