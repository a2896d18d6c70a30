import {Args, Flags} from '@oclif/core'

import type {SecretMetadata} from '../../core/backend.js'

import {AgentVaultCommand} from '../../base-command.js'
import {renameSecret} from '../../core/secrets.js'

export type SecretsRenameResult = SecretMetadata & {from: string; reference: string}

export default class SecretsRename extends AgentVaultCommand<typeof SecretsRename> {
  static args = {
    old: Args.string({description: 'Current name or reference (NAME, local://NAME).', required: true}),
    new: Args.string({description: 'New name (in the same profile).', required: true}),
  }
  static description = `Moves a secret — value, version and metadata — to a new name in the same profile, in one write. Refuses when the new name exists, unless --overwrite. References to the old name (env files, templates) must be updated. Supported by the local backend.`
  static examples = [
    '<%= config.bin %> <%= command.id %> OPENAI_KEY OPENAI_API_KEY',
    '<%= config.bin %> <%= command.id %> local://OLD local://NEW --overwrite --json',
  ]
  static flags = {
    overwrite: Flags.boolean({description: 'Replace a secret that already has the new name.'}),
  }
  static summary = 'Rename a secret.'

  async run(): Promise<SecretsRenameResult> {
    const result = await renameSecret(this.vault, this.args.old, this.args.new, {
      overwrite: this.flags.overwrite,
    })
    this.logToStderr(`Renamed ${result.from} to ${result.reference}`)
    return result
  }
}
