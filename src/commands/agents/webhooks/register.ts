import {Flags} from '@oclif/core'

import type {WebhookSecret} from '../../../backends/agentauth/responses.js'

import {AgentVaultCommand} from '../../../base-command.js'

/** The new webhook and its signing secret (shown this once). */
export type WebhooksRegisterResult = WebhookSecret & {duplicate_may_exist: boolean}

export default class WebhooksRegister extends AgentVaultCommand<typeof WebhooksRegister> {
  static description = `Registers a URL to receive AgentAuth events, signed with X-AgentAuth-Signature (check one with \`agents webhooks verify\`). The signing secret is printed once, to stdout, and never stored or logged — save it now. On AgentAuth v0.7 the webhook belongs to --agent (default: the signed-in agent); legacy servers take the agent from the token. \`agents webhooks events\` lists the event names.`
  static examples = [
    '<%= config.bin %> <%= command.id %> --url https://hooks.example.com/agentauth --event agent.verified --event agent.revoked',
    '<%= config.bin %> <%= command.id %> --url https://hooks.example.com/agentauth --event verification.failure --description "alerts" --json',
  ]
  static flags = {
    agent: Flags.string({
      description: 'v0.7: the agent the webhook belongs to (default: the signed-in agent).',
    }),
    description: Flags.string({description: 'v0.7: what the webhook is for.'}),
    event: Flags.string({
      description: 'An event to deliver (repeatable; 1–20).',
      helpValue: 'EVENT',
      multiple: true,
      required: true,
    }),
    url: Flags.string({description: 'The http(s) URL to POST events to.', required: true}),
  }
  static summary = 'Register an AgentAuth webhook; its secret is shown once.'

  async run(): Promise<WebhooksRegisterResult> {
    const {agentAuthFor} = await import('../../../backends/agentauth/service.js')
    const backend = await agentAuthFor(this.vault, {audited: true})
    const {duplicateMayExist, ...created} = await backend.api.registerWebhook({
      ...(this.flags.agent === undefined ? {} : {agentId: this.flags.agent}),
      ...(this.flags.description === undefined ? {} : {description: this.flags.description}),
      events: this.flags.event,
      url: this.flags.url,
    })
    if (duplicateMayExist)
      this.warnUser(
        'Registering succeeded only after a retry: a duplicate webhook may exist. Check with `agentvault agents webhooks list`.',
      )
    this.warnUser(
      'Save the webhook secret now: AgentAuth shows it only once, and agentvault does not keep it.',
    )
    if (!this.jsonEnabled()) {
      this.log(`id      ${created.webhook.id}`)
      this.log(`secret  ${created.secret}`)
    }

    return {...created, duplicate_may_exist: duplicateMayExist}
  }
}
