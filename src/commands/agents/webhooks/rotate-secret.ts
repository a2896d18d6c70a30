import {Args} from '@oclif/core'

import type {WebhookSecret} from '../../../backends/agentauth/responses.js'

import {AgentVaultCommand} from '../../../base-command.js'

export type WebhooksRotateSecretResult = WebhookSecret

export default class WebhooksRotateSecret extends AgentVaultCommand<typeof WebhooksRotateSecret> {
  static args = {
    id: Args.string({description: 'The webhook id (from `agents webhooks list`).', required: true}),
  }
  static description = `Replaces a webhook's signing secret; deliveries are signed with the new one from now on. The new secret is printed once, to stdout, and never stored or logged.`
  static examples = [
    '<%= config.bin %> <%= command.id %> 42',
    '<%= config.bin %> <%= command.id %> 42 --json',
  ]
  static summary = 'Rotate an AgentAuth webhook’s signing secret.'

  async run(): Promise<WebhooksRotateSecretResult> {
    const {agentAuthFor} = await import('../../../backends/agentauth/service.js')
    const rotated = await (
      await agentAuthFor(this.vault, {audited: true})
    ).api.rotateWebhookSecret(this.args.id)
    this.warnUser('Save the new webhook secret now: it is shown only once, and the old one no longer signs.')
    if (!this.jsonEnabled()) this.log(rotated.secret)
    return rotated
  }
}
