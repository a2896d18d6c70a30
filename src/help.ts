/**
 * oclif's help, with one change: help for a command that does not exist (`agentvault help nope`,
 * `agentvault secrets nope --help`) is answered as an unknown command is (hooks/command-not-found:
 * `Error:`, `Try this:` with a "did you mean", exit 2) rather than with oclif's bare
 * `Command secrets:nope not found.`. Everything it prints otherwise is oclif's own.
 */
import {Help} from '@oclif/core'

export default class AgentVaultHelp extends Help {
  override async showHelp(argv: string[]): Promise<void> {
    try {
      await super.showHelp(argv)
    } catch (error) {
      const missing = /^Command (.+) not found\.$/.exec(error instanceof Error ? error.message : '')
      if (!missing) throw error
      const {default: commandNotFound} = await import('./hooks/command-not-found.js')
      await commandNotFound.call({config: this.config} as ThisParameterType<typeof commandNotFound>, {
        argv,
        config: this.config,
        context: undefined as never,
        id: missing[1]!,
      })
    }
  }
}
