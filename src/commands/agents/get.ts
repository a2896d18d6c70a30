import {Args} from '@oclif/core'

import type {AgentInfo} from '../../backends/agentauth/responses.js'

import {AgentVaultCommand} from '../../base-command.js'
import {renderTable} from '../../ui/table.js'

export type AgentsGetResult = AgentInfo

/** `field  value` lines for one agent; lists comma-joined, absent fields left out. */
export function agentRows(agent: AgentInfo): Array<{field: string; value: string}> {
  return Object.entries(agent).map(([field, value]) => ({
    field,
    value: Array.isArray(value) ? value.join(', ') : value === null ? '-' : String(value),
  }))
}

export default class AgentsGet extends AgentVaultCommand<typeof AgentsGet> {
  static args = {
    'agent-id': Args.string({description: 'The agent (agt_…).', required: true}),
  }
  static description = `Shows one agent: name, owner, status, tier, permissions and when it was created and last verified. Legacy servers show an agent only to itself or an admin agent, and report no tier.`
  static examples = [
    '<%= config.bin %> <%= command.id %> agt_98f7c33622f58bbd84613b710a81ad1d',
    '<%= config.bin %> <%= command.id %> agt_98f7c33622f58bbd84613b710a81ad1d --json',
  ]
  static summary = 'Show an AgentAuth agent.'

  async run(): Promise<AgentsGetResult> {
    const {agentAuthFor} = await import('../../backends/agentauth/service.js')
    const agent = await (await agentAuthFor(this.vault)).api.get(this.args['agent-id'])
    this.log(
      renderTable(agentRows(agent), [
        {header: 'field', get: (row) => row.field},
        {header: 'value', get: (row) => row.value},
      ]).trimEnd(),
    )
    return agent
  }
}
