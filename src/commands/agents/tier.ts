import {Args} from '@oclif/core'

import type {AgentInfo} from '../../backends/agentauth/responses.js'

import {AgentVaultCommand} from '../../base-command.js'

export type AgentsTierResult = AgentInfo

export default class AgentsTier extends AgentVaultCommand<typeof AgentsTier> {
  static args = {
    'agent-id': Args.string({description: 'The agent (agt_…).', required: true}),
    tier: Args.string({description: 'The new tier.', options: ['free', 'pro', 'enterprise'], required: true}),
  }
  static description = `Moves an agent to another tier. Legacy servers allow it only to an admin agent (permission *:*:*). Tokens carry the tier they were issued with until the next refresh.`
  static examples = ['<%= config.bin %> <%= command.id %> agt_98f7c33622f58bbd84613b710a81ad1d pro']
  static summary = 'Set an AgentAuth agent’s tier.'

  async run(): Promise<AgentsTierResult> {
    const {agentAuthFor} = await import('../../backends/agentauth/service.js')
    const backend = await agentAuthFor(this.vault, {audited: true})
    const agent = await backend.api.setTier(
      this.args['agent-id'],
      this.args.tier as 'enterprise' | 'free' | 'pro',
    )
    if (!this.jsonEnabled()) this.log(`${agent.agent_id}  ${agent.tier ?? this.args.tier}`)
    return agent
  }
}
