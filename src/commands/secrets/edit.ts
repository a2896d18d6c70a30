import {Args, Flags} from '@oclif/core'

import type {SecretMetadata} from '../../core/backend.js'

import {AgentVaultCommand} from '../../base-command.js'
import {editSecret} from '../../core/secrets.js'
import {normaliseHostPattern} from '../../core/use/hosts.js'

export type SecretsEditResult = SecretMetadata & {reference: string}

export default class SecretsEdit extends AgentVaultCommand<typeof SecretsEdit> {
  static args = {
    name: Args.string({description: 'Secret name or reference (NAME, local://NAME).', required: true}),
  }
  static description = `Changes a secret's description, tags or allowed domains without asking for (or reading) its value; its version stays the same. Each flag given replaces that piece of metadata; what is not given stays as it is. Supported by the local backend.`
  static examples = [
    '<%= config.bin %> <%= command.id %> OPENAI_KEY --description "team key, rotated monthly"',
    '<%= config.bin %> <%= command.id %> GITHUB_TOKEN --allow-domain api.github.com --allow-domain uploads.github.com',
    '<%= config.bin %> <%= command.id %> DEPLOY_KEY --tag prod --tag ssh --json',
  ]
  static flags = {
    'allow-domain': Flags.string({
      description:
        'Host this secret may be used against by `use`/`call` (exact host or *.suffix, optionally with :port; repeatable; replaces the list).',
      multiple: true,
    }),
    description: Flags.string({description: 'New free-text description.'}),
    tag: Flags.string({description: 'Tag (repeatable; replaces the tags).', multiple: true}),
  }
  static summary = 'Change a secret’s metadata without re-entering its value.'

  async run(): Promise<SecretsEditResult> {
    const result = await editSecret(this.vault, this.args.name, {
      allowedDomains: this.flags['allow-domain']?.map((pattern) => normaliseHostPattern(pattern)),
      description: this.flags.description,
      tags: this.flags.tag,
    })
    this.logToStderr(
      `Updated ${result.reference}${result.version === undefined ? '' : ` (still version ${result.version})`}`,
    )
    return result
  }
}
