import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {UsageError} from '../../core/errors.js'
import {getSecret} from '../../core/secrets.js'

export interface SecretsGetResult {
  encoding: 'base64' | 'utf8'
  reference: string
  value: string
}

export default class SecretsGet extends AgentVaultCommand<typeof SecretsGet> {
  static args = {
    ref: Args.string({description: 'Secret reference or name (local://NAME, NAME).', required: true}),
  }
  static description = `Prints the value to stdout, exactly as stored (bytes). Refuses without --reveal, so a value is never printed by accident; prefer \`run\`, \`use\` or \`call\`, which never show it.`
  static examples = [
    '<%= config.bin %> <%= command.id %> OPENAI_KEY --reveal',
    '<%= config.bin %> <%= command.id %> local://DEPLOY_KEY --reveal > key.pem',
    '<%= config.bin %> <%= command.id %> OPENAI_KEY --reveal --json',
  ]
  static flags = {
    reveal: Flags.boolean({description: 'Confirm that the value may be printed.'}),
  }
  static summary = 'Print a secret value (requires --reveal).'

  async run(): Promise<SecretsGetResult | void> {
    if (!this.flags.reveal)
      throw new UsageError('REVEAL_REQUIRED', 'Refusing to print a secret value without --reveal', {
        suggestion: `Add --reveal, or inject it instead: agentvault run --env NAME=${this.args.ref} -- cmd`,
      })
    const {reference, value} = await getSecret(this.vault, this.args.ref)
    if (this.jsonEnabled()) {
      const text = value.toString('utf8')
      const utf8 = Buffer.from(text, 'utf8').equals(value)
      return {reference, encoding: utf8 ? 'utf8' : 'base64', value: utf8 ? text : value.toString('base64')}
    }

    process.stdout.write(value)
    if (process.stdout.isTTY) process.stdout.write('\n')
  }
}
