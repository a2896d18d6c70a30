import {Flags} from '@oclif/core'

import type {RegisteredAgent} from '../../backends/agentauth/responses.js'

import {AgentVaultCommand} from '../../base-command.js'

/** The new agent, its API key (shown this once) and whether a retry may have made a duplicate. */
export type AgentsRegisterResult = RegisteredAgent & {duplicate_may_exist: boolean}

export default class AgentsRegister extends AgentVaultCommand<typeof AgentsRegister> {
  static description = `Registers a new agent on the AgentAuth server of the profile (only a base URL is needed: the profile's, or AGENTAUTH_BASE_URL; no login). The server answers with the agent id and its API key; the key is printed once, to stdout, and never stored, logged or written to the audit trail — save it now. Permissions are checked for the service:resource:action syntax before anything is sent; which ones exist is the server's call (\`agents permissions\`).`
  static examples = [
    '<%= config.bin %> <%= command.id %> --name ci-deployer --owner-email ops@example.com --permission github:repos:read',
    '<%= config.bin %> <%= command.id %> --name support-bot --owner-email ops@example.com --permission zendesk:tickets:read --permission zendesk:tickets:write --description "Support triage" --json',
  ]
  static flags = {
    description: Flags.string({description: 'What the agent is for (up to 500 characters).'}),
    name: Flags.string({description: 'Agent name (3–100 characters).', required: true}),
    'owner-email': Flags.string({description: 'Email address of the agent’s owner.', required: true}),
    permission: Flags.string({
      description: 'A permission service:resource:action (repeatable; default: the server’s).',
      helpValue: 'PERMISSION',
      multiple: true,
    }),
  }
  static summary = 'Register an AgentAuth agent; its API key is shown once.'

  async run(): Promise<AgentsRegisterResult> {
    const {agentAuthFor} = await import('../../backends/agentauth/service.js')
    const backend = await agentAuthFor(this.vault, {audited: true})
    const {duplicateMayExist, ...agent} = await backend.api.register({
      ...(this.flags.description === undefined ? {} : {description: this.flags.description}),
      name: this.flags.name,
      owner_email: this.flags['owner-email'],
      ...(this.flags.permission === undefined ? {} : {permissions: this.flags.permission}),
    })
    if (duplicateMayExist)
      this.warnUser(
        'Registering succeeded only after a retry: a duplicate agent may exist. Check with `agentvault agents list`.',
      )
    this.warnUser('Save the API key now: AgentAuth shows it only once, and agentvault does not keep it.')
    if (!this.jsonEnabled()) {
      this.log(`agent_id  ${agent.agent_id}`)
      this.log(`api_key   ${agent.api_key}`)
    }

    return {...agent, duplicate_may_exist: duplicateMayExist}
  }
}
