import {Args, Flags} from '@oclif/core'

import type {SecretMetadata} from '../../core/backend.js'

import {AgentVaultCommand} from '../../base-command.js'
import {rollbackSecret} from '../../core/secrets.js'

export type SecretsRollbackResult = SecretMetadata & {reference: string; rolledBackTo: number}

export default class SecretsRollback extends AgentVaultCommand<typeof SecretsRollback> {
  static args = {
    ref: Args.string({description: 'Secret reference or name (local://NAME, NAME).', required: true}),
  }
  static description = `The value of a kept previous version becomes the secret's value again, as a new version; the value it replaces is kept like any other previous value. The local vault keeps the last 10 values of each secret (profile setting keepVersions). Values are never printed.`
  static examples = [
    '<%= config.bin %> <%= command.id %> local://DB_PASSWORD --version 3',
    '<%= config.bin %> secrets versions local://DB_PASSWORD',
  ]
  static flags = {
    version: Flags.integer({description: 'The version whose value to restore.', min: 1, required: true}),
  }
  static summary = 'Make a previous version of a local secret current again.'

  async run(): Promise<SecretsRollbackResult> {
    const result = await rollbackSecret(this.vault, this.args.ref, this.flags.version)
    this.logToStderr(
      `Rolled ${result.reference} back to the value of version ${result.rolledBackTo} (now version ${result.version}).`,
    )
    return result
  }
}
