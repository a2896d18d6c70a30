import {Args, Flags} from '@oclif/core'

import type {SecretReference} from '../../core/references.js'

import {AgentVaultCommand} from '../../base-command.js'
import {UsageError} from '../../core/errors.js'
import {getSecret, type SecretPresence, secretPresence, wrapSecret} from '../../core/secrets.js'

export interface SecretsGetResult {
  encoding: 'base64' | 'utf8'
  reference: string
  value: string
}

/** Without --reveal, on a backend that never reveals values (agentsecrets): whether it exists. */
export type SecretsPresenceResult = SecretPresence

/** `--wrap-ttl`: a single-use wrapping token instead of the value (openbao). */
export interface SecretsWrapResult {
  accessor: string
  creation_path: string
  creation_time: string
  reference: string
  token: string
  ttl: number
}

export default class SecretsGet extends AgentVaultCommand<typeof SecretsGet> {
  static args = {
    ref: Args.string({description: 'Secret reference or name (local://NAME, NAME).', required: true}),
  }
  static description = `Prints the value to stdout, exactly as stored (bytes). Refuses without --reveal, so a value is never printed by accident; prefer \`run\`, \`use\` or \`call\`, which never show it.

AgentSecrets never reveals values: on an agentsecrets:// reference --reveal is refused without contacting AgentSecrets, and without --reveal the command only tells whether the key exists in the active environment (exit 6 when it does not).`
  static examples = [
    '<%= config.bin %> <%= command.id %> OPENAI_KEY --reveal',
    '<%= config.bin %> <%= command.id %> local://DEPLOY_KEY --reveal > key.pem',
    '<%= config.bin %> <%= command.id %> OPENAI_KEY --reveal --json',
    '<%= config.bin %> <%= command.id %> sanctum://openai/api_key --reveal --ttl 30',
    '<%= config.bin %> <%= command.id %> openbao://secret/myapp/api#token --reveal',
    '<%= config.bin %> <%= command.id %> "openbao://secret/myapp/api?version=2" --reveal --json',
    '<%= config.bin %> <%= command.id %> openbao://secret/myapp/api --wrap-ttl 5m',
    '<%= config.bin %> <%= command.id %> agentsecrets://STRIPE_KEY --json',
  ]
  static flags = {
    reveal: Flags.boolean({description: 'Confirm that the value may be printed.'}),
    'wrap-ttl': Flags.string({
      description:
        'openbao: print a single-use wrapping token for the whole secret (valid for 30s, 5m, 1h or N seconds) instead of the value; needs no --reveal. Unwrap with `secrets unwrap`.',
      exclusive: ['reveal', 'ttl'],
    }),
    ttl: Flags.integer({
      description:
        'Lease length in seconds, for backends with leases (sanctum); released when the command ends.',
      min: 1,
    }),
  }
  static summary = 'Print a secret value (requires --reveal).'

  async run(): Promise<SecretsGetResult | SecretsPresenceResult | SecretsWrapResult | void> {
    const wrapTtl = this.flags['wrap-ttl']
    if (wrapTtl !== undefined) {
      const wrapped = await wrapSecret(this.vault, this.args.ref, wrapTtl)
      if (!this.jsonEnabled()) {
        process.stdout.write(`${wrapped.token}\n`)
        this.logToStderr(
          `Wrapped ${wrapped.reference} for ${wrapped.ttl}s; it can be unwrapped once: agentvault secrets unwrap --reveal`,
        )
      }

      return wrapped
    }

    if (!this.flags.reveal) {
      // Zero-knowledge backends (agentsecrets) answer only whether the secret exists.
      const presence = await secretPresence(this.vault, this.args.ref)
      if (presence) {
        if (!this.jsonEnabled())
          this.logToStderr(
            `${presence.reference} is present${presence.description ? ` (${presence.description})` : ''}; its value is never revealed.`,
          )
        return presence
      }
    }

    if (!this.flags.reveal) {
      // `run --env` takes full references only: a bare NAME there is refused as a possible value.
      const reference = await this.vault.parseTarget(this.args.ref)
      throw new UsageError('REVEAL_REQUIRED', 'Refusing to print a secret value without --reveal', {
        suggestion: `Add --reveal, or inject it instead: agentvault run --env ${envNameFor(reference)}=${reference.canonical} -- cmd`,
      })
    }

    const {reference, value} = await getSecret(this.vault, this.args.ref, {ttl: this.flags.ttl})
    if (this.jsonEnabled()) {
      const text = value.toString('utf8')
      const utf8 = Buffer.from(text, 'utf8').equals(value)
      return {reference, encoding: utf8 ? 'utf8' : 'base64', value: utf8 ? text : value.toString('base64')}
    }

    process.stdout.write(value)
    if (process.stdout.isTTY) process.stdout.write('\n')
  }
}

/** A variable name for a secret (`local://team/openai_key` → OPENAI_KEY, `…/api#token` → TOKEN). */
function envNameFor(reference: SecretReference): string {
  const word = (reference.field ?? reference.path.split('/').at(-1) ?? '')
    .replaceAll(/\W/g, '_')
    .toUpperCase()
  return /^[A-Z_]/.test(word) ? word : `SECRET_${word}`
}
