import {Args} from '@oclif/core'

import {AgentVaultCommand} from '../../../base-command.js'

export interface WebhooksDeleteResult {
  deleted: string
}

export default class WebhooksDelete extends AgentVaultCommand<typeof WebhooksDelete> {
  static args = {
    id: Args.string({description: 'The webhook id (from `agents webhooks list`).', required: true}),
  }
  static description = `Deletes a webhook: no more deliveries to its URL. AgentAuth v0.7 answers success for unknown ids too; legacy servers report them as not found.`
  static examples = ['<%= config.bin %> <%= command.id %> 42']
  static summary = 'Delete an AgentAuth webhook.'

  async run(): Promise<WebhooksDeleteResult> {
    const {agentAuthFor} = await import('../../../backends/agentauth/service.js')
    const result = await (await agentAuthFor(this.vault, {audited: true})).api.deleteWebhook(this.args.id)
    this.logToStderr(`Deleted webhook ${result.deleted}.`)
    return result
  }
}
