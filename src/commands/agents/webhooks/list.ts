import {Flags} from '@oclif/core'

import type {Webhook} from '../../../backends/agentauth/responses.js'

import {AgentVaultCommand} from '../../../base-command.js'
import {renderTable} from '../../../ui/table.js'

export interface WebhooksListResult {
  webhooks: Webhook[]
}

export default class WebhooksList extends AgentVaultCommand<typeof WebhooksList> {
  static description = `Lists the webhooks of an agent (v0.7: --agent, default the signed-in agent; legacy: the signed-in agent's). Secrets are never listed.`
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --agent agt_98f7c336… --json',
  ]
  static flags = {
    agent: Flags.string({description: 'v0.7: whose webhooks (default: the signed-in agent).'}),
  }
  static summary = 'List AgentAuth webhooks.'

  async run(): Promise<WebhooksListResult> {
    const {agentAuthFor} = await import('../../../backends/agentauth/service.js')
    const webhooks = await (await agentAuthFor(this.vault)).api.listWebhooks(this.flags.agent)
    if (webhooks.length === 0) this.logToStderr('No webhooks.')
    else
      this.log(
        renderTable(webhooks, [
          {header: 'id', get: (w) => w.id},
          {header: 'url', get: (w) => w.url},
          {header: 'events', get: (w) => w.events.join(',')},
          {header: 'active', get: (w) => (w.is_active === undefined ? '' : w.is_active ? 'yes' : 'no')},
          {header: 'created', get: (w) => w.created_at ?? ''},
        ]).trimEnd(),
      )
    return {webhooks}
  }
}
