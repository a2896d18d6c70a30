import {Args} from '@oclif/core'

import {BACKEND_KINDS} from '../../core/backend.js'
import {LoginCommand} from '../../login-command.js'

export default class Login extends LoginCommand {
  static args = {
    kind: Args.string({
      description: 'Backend kind; its flags come with `login KIND` (see `login KIND --help`).',
      options: [...BACKEND_KINDS],
    }),
  }
  static description = `Signs in to the active profile (or the one -p names), reading what its backend needs from variables and prompts. To give flags, name the kind: \`login local\`, \`login sanctum\`, \`login openbao\`, \`login agentsecrets\` or \`login agentauth\`, each with its own flags and --help.

Tokens go to the credential store (the OS keychain, else an encrypted file in the agentvault home), never to config.json.`
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> -p prod-bao',
    '<%= config.bin %> <%= command.id %> openbao --help',
  ]
  static summary = 'Sign in to a backend (or initialise the local vault).'

  protected get kind(): string | undefined {
    return this.args.kind
  }
}
