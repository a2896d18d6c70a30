import {Flags} from '@oclif/core'

import type {AgentList} from '../../backends/agentauth/responses.js'

import {AgentVaultCommand} from '../../base-command.js'
import {renderTable} from '../../ui/table.js'

export type AgentsListResult = AgentList

export default class AgentsList extends AgentVaultCommand<typeof AgentsList> {
  static description = `Lists the agents of the AgentAuth server, newest first. AgentAuth v0.7 pages (--limit, --offset) and filters by status; legacy servers ignore those options and allow the list only to an admin agent (permission *:*:*).`
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --status active --limit 20 --json',
  ]
  static flags = {
    limit: Flags.integer({description: 'At most this many agents (server default 50).', min: 1}),
    offset: Flags.integer({description: 'Skip this many agents first.', min: 0}),
    status: Flags.string({description: 'Only agents with this status (e.g. active, suspended).'}),
  }
  static summary = 'List AgentAuth agents.'

  async run(): Promise<AgentsListResult> {
    const {agentAuthFor} = await import('../../backends/agentauth/service.js')
    const backend = await agentAuthFor(this.vault)
    const result = await backend.api.list({
      limit: this.flags.limit,
      offset: this.flags.offset,
      status: this.flags.status,
    })
    if (result.agents.length === 0) this.logToStderr('No agents.')
    else
      this.log(
        renderTable(result.agents, [
          {header: 'agent_id', get: (a) => a.agent_id},
          {header: 'name', get: (a) => a.name ?? ''},
          {header: 'status', get: (a) => a.status ?? ''},
          {header: 'tier', get: (a) => a.tier ?? ''},
          {header: 'created', get: (a) => a.created_at ?? ''},
          {header: 'last verified', get: (a) => a.last_verified_at ?? ''},
        ]).trimEnd(),
      )
    return result
  }
}
