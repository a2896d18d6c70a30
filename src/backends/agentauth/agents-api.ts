/**
 * Agent and webhook management (protocols/agentauth.md §5.2–§5.7, §7.1, §10.5) over one
 * connection. Results carry known fields only; API keys and webhook secrets are returned to the
 * caller (to be shown once) and never logged.
 */
import type {AgentAuthConnection} from './connection.js'

import {
  catalogueOperation,
  deleteWebhookOperation,
  getOperation,
  type ListInput,
  listOperation,
  listWebhooksOperation,
  type RegisterInput,
  registerOperation,
  registerWebhookOperation,
  revokeOperation,
  rotateWebhookOperation,
  tierOperation,
  webhookEventsOperation,
} from './operations.js'
import {checkPermissions} from './permissions.js'
import {
  type AgentInfo,
  type AgentList,
  parseAgent,
  parseAgentList,
  parseAgentUpdate,
  parseCatalogue,
  parseRegister,
  parseWebhookCreated,
  parseWebhookEvents,
  parseWebhookList,
  parseWebhookRotated,
  type RegisteredAgent,
  type Webhook,
  type WebhookSecret,
} from './responses.js'

/** The tiers AgentAuth knows (§5.5). */
export type Tier = 'enterprise' | 'free' | 'pro'

/** A create call that only succeeded after a retry may have created a duplicate (§12). */
export interface Created {
  duplicateMayExist: boolean
}

/** The permission catalogue and where it came from. */
export interface Catalogue {
  permissions: string[]
  /** `server`: `/permissions/list`; `builtin`: agentvault's copy of §6 (v0.7 has no catalogue). */
  source: 'builtin' | 'server'
}

/** `agents webhooks register` input. */
export interface WebhookRegisterInput {
  /** Default: the signed-in agent. */
  agentId?: string
  description?: string
  events: string[]
  url: string
}

/** Agent and webhook management over one profile's connection (public and JWT routes). */
export class AgentAuthApi {
  constructor(private readonly connection: AgentAuthConnection) {}

  /** The permission catalogue: the server's, or the built-in copy when it has none. */
  async catalogue(): Promise<Catalogue> {
    const operation = catalogueOperation()
    const answer = await (await this.connection.http()).call(operation)
    if (answer.routeMiss) {
      const {BUILTIN_PERMISSIONS} = await import('./permissions.js')
      return {permissions: [...BUILTIN_PERMISSIONS], source: 'builtin'}
    }

    return {permissions: parseCatalogue(this.connection.check(answer, operation.name).body), source: 'server'}
  }

  async deleteWebhook(id: string): Promise<{deleted: string}> {
    await this.connection.jwtCall(deleteWebhookOperation(id))
    return {deleted: id}
  }

  async get(agentId: string): Promise<AgentInfo> {
    return parseAgent((await this.connection.jwtCall(getOperation(agentId))).body)
  }

  async list(input: ListInput = {}): Promise<AgentList> {
    return parseAgentList((await this.connection.jwtCall(listOperation(input))).body)
  }

  async listWebhooks(agentId?: string): Promise<Webhook[]> {
    const owner = agentId ?? (await this.selfId())
    return parseWebhookList((await this.connection.jwtCall(listWebhooksOperation(owner))).body)
  }

  /** Register an agent (no login needed, only a base URL); the API key is in the result, once. */
  async register(input: RegisterInput): Promise<Created & RegisteredAgent> {
    const permissions = input.permissions === undefined ? undefined : checkPermissions(input.permissions)
    const answer = await this.connection.publicCall(
      registerOperation({...input, ...(permissions ? {permissions} : {})}),
    )
    return {...parseRegister(answer.body), duplicateMayExist: answer.retries > 0}
  }

  async registerWebhook(input: WebhookRegisterInput): Promise<Created & WebhookSecret> {
    const agentId = input.agentId ?? (await this.selfId())
    const answer = await this.connection.jwtCall(
      registerWebhookOperation({
        agentId,
        ...(input.description === undefined ? {} : {description: input.description}),
        events: input.events,
        url: input.url,
      }),
    )
    return {...parseWebhookCreated(answer.body), duplicateMayExist: answer.retries > 0}
  }

  /** v0.7 suspends (`status: suspended`), legacy revokes. */
  async revoke(agentId: string): Promise<AgentInfo> {
    return parseAgentUpdate(
      (await this.connection.jwtCall(revokeOperation(agentId))).body,
      'revoke the agent',
    )
  }

  async rotateWebhookSecret(id: string): Promise<WebhookSecret> {
    return parseWebhookRotated((await this.connection.jwtCall(rotateWebhookOperation(id))).body, id)
  }

  /** The signed-in agent's id (from the token's claims, else the stored session). */
  async selfId(): Promise<string> {
    const tokens = await this.connection.tokens()
    const session = await tokens.session()
    const {tryDecodeJwtClaims} = await import('./jwt.js')
    return tryDecodeJwtClaims(session.access_token)?.agent_id ?? session.agent_id
  }

  async setTier(agentId: string, tier: Tier): Promise<AgentInfo> {
    return parseAgentUpdate(
      (await this.connection.jwtCall(tierOperation(agentId, tier))).body,
      'set the agent tier',
    )
  }

  async webhookEvents(): Promise<string[]> {
    return parseWebhookEvents((await this.connection.publicCall(webhookEventsOperation())).body)
  }
}
