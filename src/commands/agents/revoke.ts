import {Args} from '@oclif/core'

import type {AgentInfo} from '../../backends/agentauth/responses.js'

import {AgentVaultCommand} from '../../base-command.js'

export type AgentsRevokeResult = AgentInfo

export default class AgentsRevoke extends AgentVaultCommand<typeof AgentsRevoke> {
  static args = {
    'agent-id': Args.string({description: 'The agent (agt_…).', required: true}),
  }
  static description = `Stops an agent from signing in or refreshing its tokens. AgentAuth v0.7 has no revoke: the agent is suspended (status "suspended"); legacy servers revoke it (status "revoked"). Access tokens already issued stay valid until they expire (up to an hour): AgentAuth cannot revoke them.`
  static examples = ['<%= config.bin %> <%= command.id %> agt_98f7c33622f58bbd84613b710a81ad1d']
  static summary = 'Revoke (suspend) an AgentAuth agent.'

  async run(): Promise<AgentsRevokeResult> {
    const {agentAuthFor} = await import('../../backends/agentauth/service.js')
    const backend = await agentAuthFor(this.vault, {audited: true})
    const agent = await backend.api.revoke(this.args['agent-id'])
    this.warnUser(
      `Access tokens already issued to ${agent.agent_id} stay valid until they expire (up to an hour); AgentAuth cannot revoke them.`,
    )
    if (!this.jsonEnabled()) this.log(`${agent.agent_id}  ${agent.status ?? 'revoked'}`)
    return agent
  }
}
