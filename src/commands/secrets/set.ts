import {Args, Flags} from '@oclif/core'

import type {SecretMetadata} from '../../core/backend.js'

import {AgentVaultCommand} from '../../base-command.js'
import {setSecret} from '../../core/secrets.js'
import {readSecretInput} from '../../ui/input.js'

export type SecretsSetResult = SecretMetadata & {reference: string}

export default class SecretsSet extends AgentVaultCommand<typeof SecretsSet> {
  static args = {
    name: Args.string({
      description:
        'Secret name or reference (NAME, local://NAME). NAME=VALUE works but leaks to shell history.',
      required: true,
    }),
  }
  static description = `The value comes from piped stdin, a hidden prompt on a terminal, --from-file or --from-env; never put it in argv. Storing under an existing name creates a new version.`
  static examples = [
    'printf %s "$OPENAI_KEY" | <%= config.bin %> <%= command.id %> OPENAI_KEY',
    '<%= config.bin %> <%= command.id %> DEPLOY_KEY --from-file ./deploy_key.pem --description "deploy key"',
    '<%= config.bin %> <%= command.id %> GITHUB_TOKEN --from-env GITHUB_TOKEN --allow-domain api.github.com',
  ]
  static flags = {
    'allow-domain': Flags.string({
      description:
        'Host this secret may be used against by `use`/`call` (exact host or *.suffix; repeatable).',
      multiple: true,
    }),
    description: Flags.string({description: 'Free-text description.'}),
    'from-env': Flags.string({
      description: 'Read the value from this environment variable.',
      exclusive: ['from-file'],
    }),
    'from-file': Flags.string({
      description: 'Read the value (bytes as-is) from this file.',
      exclusive: ['from-env'],
    }),
    tag: Flags.string({description: 'Tag (repeatable).', multiple: true}),
  }
  static summary = 'Store a secret from stdin, a hidden prompt, a file or an env var.'

  async run(): Promise<SecretsSetResult> {
    const {name} = this.args
    const eq = name.indexOf('=')
    const target = eq === -1 ? name : name.slice(0, eq)
    const value = await readSecretInput({
      fromEnv: this.flags['from-env'],
      fromFile: this.flags['from-file'],
      inline: eq === -1 ? undefined : name.slice(eq + 1),
      interactive: this.interactive,
      promptLabel: `Value for ${target}`,
      warn: (message) => this.warnUser(message),
    })
    const result = await setSecret(this.vault, target, value, {
      allowedDomains: this.flags['allow-domain'],
      description: this.flags.description,
      tags: this.flags.tag,
    })
    value.fill(0)
    this.logToStderr(
      `Stored ${result.reference}${result.version === undefined ? '' : ` (version ${result.version})`}`,
    )
    return result
  }
}
