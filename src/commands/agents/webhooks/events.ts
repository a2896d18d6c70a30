import {AgentVaultCommand} from '../../../base-command.js'

export interface WebhooksEventsResult {
  events: string[]
}

export default class WebhooksEvents extends AgentVaultCommand<typeof WebhooksEvents> {
  static description = `Lists the event names a webhook can subscribe to on this server (they differ between AgentAuth v0.7 and legacy servers). Needs no login.`
  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static summary = 'List AgentAuth webhook event names.'

  async run(): Promise<WebhooksEventsResult> {
    const {agentAuthFor} = await import('../../../backends/agentauth/service.js')
    const events = await (await agentAuthFor(this.vault)).api.webhookEvents()
    this.log(events.join('\n'))
    return {events}
  }
}
