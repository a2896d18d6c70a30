import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {UsageError} from '../../core/errors.js'
import {deleteSecret} from '../../core/secrets.js'
import {confirm} from '../../ui/input.js'

export interface SecretsDeleteResult {
  deleted: string
}

export default class SecretsDelete extends AgentVaultCommand<typeof SecretsDelete> {
  static aliases = ['secrets rm']
  static args = {
    ref: Args.string({description: 'Secret reference or name.', required: true}),
  }
  static description = 'Asks to confirm on a terminal; elsewhere (scripts, CI) --yes is required.'
  static examples = [
    '<%= config.bin %> <%= command.id %> OLD_TOKEN',
    '<%= config.bin %> <%= command.id %> local://OLD_TOKEN --yes',
  ]
  static flags = {
    yes: Flags.boolean({char: 'y', description: 'Delete without asking.'}),
  }
  static summary = 'Delete a secret.'

  async run(): Promise<SecretsDeleteResult> {
    if (!this.flags.yes) {
      if (!this.interactive)
        throw new UsageError(
          'CONFIRMATION_REQUIRED',
          `Refusing to delete ${this.args.ref} without confirmation`,
          {
            suggestion: 'Add --yes to delete without a prompt.',
          },
        )
      if (!(await confirm(`Delete ${this.args.ref}? This cannot be undone.`)))
        throw new UsageError('ABORTED', 'Deletion cancelled', {suggestion: 'Nothing was deleted.'})
    }

    const result = await deleteSecret(this.vault, this.args.ref)
    this.logToStderr(`Deleted ${result.deleted}`)
    return result
  }
}
