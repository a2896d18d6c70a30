import type {Catalogue} from '../../backends/agentauth/agents-api.js'

import {AgentVaultCommand} from '../../base-command.js'

export type AgentsPermissionsResult = Catalogue

export default class AgentsPermissions extends AgentVaultCommand<typeof AgentsPermissions> {
  static description = `Lists the permissions (service:resource:action) an agent can be given. Legacy servers publish their catalogue at /permissions/list; AgentAuth v0.7 has none, so agentvault shows its built-in copy (source "builtin"). *:*:* is the admin permission.`
  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static summary = 'List the AgentAuth permission catalogue.'

  async run(): Promise<AgentsPermissionsResult> {
    const {agentAuthFor} = await import('../../backends/agentauth/service.js')
    const catalogue = await (await agentAuthFor(this.vault)).api.catalogue()
    if (catalogue.source === 'builtin')
      this.logToStderr('This server publishes no catalogue: showing agentvault’s built-in copy.')
    this.log(catalogue.permissions.join('\n'))
    return catalogue
  }
}
