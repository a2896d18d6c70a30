import {Args} from '@oclif/core'

import type {SecretVersions} from '../../core/backend.js'

import {AgentVaultCommand} from '../../base-command.js'
import {secretVersions} from '../../core/secrets.js'
import {renderTable} from '../../ui/table.js'

export type SecretsVersionsResult = SecretVersions

export default class SecretsVersions extends AgentVaultCommand<typeof SecretsVersions> {
  static args = {
    ref: Args.string({
      description: 'openbao reference (openbao://MOUNT/PATH) or local secret (local://NAME).',
      required: true,
    }),
  }
  static description = `local: lists the versions the vault keeps of a secret (the current one and up to keepVersions previous values, default 10); read one with local://NAME?version=N, restore one with secrets rollback. openbao: reads the KV v2 metadata of one secret: its current and oldest version, max_versions, cas_required, delete_version_after and, per version, when it was created, deleted or destroyed. The state shown is destroyed › deleted › scheduled (deletion in the future) › active. Values are never read.`
  static examples = [
    '<%= config.bin %> <%= command.id %> local://DB_PASSWORD',
    '<%= config.bin %> <%= command.id %> openbao://secret/myapp/api',
    '<%= config.bin %> <%= command.id %> "vault://kv/team-a/db?profile=prod-bao" --json',
  ]
  static summary = 'Show the version history of a secret (local, openbao), never values.'

  async run(): Promise<SecretsVersionsResult> {
    const result = await secretVersions(this.vault, this.args.ref)
    this.log(
      renderTable(result.versions, [
        {
          header: 'version',
          get: (v) => `${v.version}${v.version === result.current_version ? ' (current)' : ''}`,
        },
        {header: 'state', get: (v) => v.state},
        {header: 'created', get: (v) => v.created_time},
        {header: 'deleted', get: (v) => v.deletion_time},
        {header: 'destroyed', get: (v) => (v.destroyed ? 'yes' : '')},
      ]).trimEnd(),
    )
    this.logToStderr(
      `${result.reference}: current ${result.current_version}, oldest ${result.oldest_version}, max_versions ${result.max_versions || 'mount default'}${result.cas_required ? ', cas required' : ''}`,
    )
    return result
  }
}
