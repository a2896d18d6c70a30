import {Args, Flags} from '@oclif/core'

import type {SecretMetadata} from '../../core/backend.js'

import {AgentVaultCommand} from '../../base-command.js'
import {listSecrets, type SecretList} from '../../core/secrets.js'
import {renderTable} from '../../ui/table.js'

export type SecretsListResult = SecretList

export default class SecretsList extends AgentVaultCommand<typeof SecretsList> {
  static aliases = ['secrets ls']
  static args = {
    prefix: Args.string({
      description:
        'Only names starting with this prefix; for openbao a folder reference (openbao://MOUNT[/FOLDER]) or MOUNT/FOLDER.',
    }),
  }
  static description =
    'Shows names, versions, dates, descriptions and tags of the secrets in a profile. Values are never listed.'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> OPENAI_ --json',
    '<%= config.bin %> <%= command.id %> --profile prod-bao secret/myapp',
    '<%= config.bin %> <%= command.id %> openbao://secret --recursive',
  ]
  static flags = {
    recursive: Flags.boolean({
      char: 'r',
      description: 'openbao: walk sub-folders too and list every secret below the folder.',
    }),
  }
  static summary = 'List secret names and metadata (never values).'

  async run(): Promise<SecretsListResult> {
    const result = await listSecrets(this.vault, this.args.prefix, {recursive: this.flags.recursive})
    if (result.secrets.length === 0) this.logToStderr(emptyListMessage(this.args.prefix, result.profile))
    else
      this.log(
        renderTable(result.secrets, [
          {header: 'name', get: (s) => s.name},
          ...(result.secrets.some((s) => s.type !== undefined)
            ? [{header: 'type', get: (s: SecretMetadata) => s.type ?? ''}]
            : []),
          {header: 'version', get: (s) => (s.version === undefined ? '' : String(s.version))},
          {header: 'updated', get: (s) => s.updated ?? ''},
          {header: 'tags', get: (s) => (s.tags ?? []).join(',')},
          {header: 'allowed domains', get: (s) => (s.allowedDomains ?? []).join(',')},
          {header: 'description', get: (s) => s.description ?? ''},
        ]).trimEnd(),
      )
    return result
  }
}

/** An empty list with a prefix says what matched nothing: the profile may well hold other secrets. */
function emptyListMessage(prefix: string | undefined, profile: string): string {
  if (prefix === undefined || prefix === '') return `No secrets in profile ${profile}.`
  if (prefix.includes('://')) return `No secrets under ${prefix}.`
  return `No secret names start with ${prefix} in profile ${profile} (\`agentvault secrets list\` lists them all).`
}
