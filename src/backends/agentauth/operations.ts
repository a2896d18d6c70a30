/**
 * The AgentAuth operations agentvault uses (protocols/agentauth.md §5.1, §7.1), each as its request
 * on every generation it exists on. Pure: building an operation sends nothing. Ids are path-encoded.
 */
import type {Operation, WireRequest} from './http-client.js'

const segment = (id: string): string => encodeURIComponent(id)
const agent = (id: string): string => `/agents/${segment(id)}`
const hook = (id: string): string => `/webhooks/${segment(id)}`

/** The same request on `/v1/…` and on the legacy path. */
function both(
  name: string,
  method: WireRequest['method'],
  path: string,
  extra: Partial<WireRequest> = {},
): Operation {
  return {legacy: {method, path, ...extra}, name, v1: {method, path: `/v1${path}`, ...extra}}
}

/** `GET /health`, un-prefixed on both generations. */
export const HEALTH: WireRequest = {method: 'GET', path: '/health'}

/** Verify (§5.3): sign in with the agent id and API key (sent in the body only). */
export function verifyOperation(agentId: string, apiKey: string): Operation {
  return both('verify the agent', 'POST', '/agents/verify', {body: {agent_id: agentId, api_key: apiKey}})
}

/** Refresh (§5.4): a new pair for the refresh token (sent in the body only). */
export function refreshOperation(refreshToken: string): Operation {
  return both('refresh the access token', 'POST', '/agents/refresh', {body: {refresh_token: refreshToken}})
}

/** Legacy only: kill the agent's refresh token (logout). */
export function revokeTokensOperation(): Operation {
  return {legacy: {method: 'POST', path: '/agents/revoke-tokens'}, name: 'revoke the refresh token'}
}

/** Register (§5.2) input. */
export interface RegisterInput {
  description?: string
  name: string
  owner_email: string
  permissions?: string[]
}

/** Register (§5.2); the body is the same on both generations. */
export function registerOperation(input: RegisterInput): Operation {
  const body = {
    name: input.name,
    owner_email: input.owner_email,
    ...(input.description === undefined ? {} : {description: input.description}),
    ...(input.permissions === undefined || input.permissions.length === 0
      ? {}
      : {permissions: input.permissions}),
  }
  return both('register an agent', 'POST', '/agents/register', {body})
}

/** List options (v0.7 only). */
export interface ListInput {
  limit?: number
  offset?: number
  status?: string
}

/** List: v0.7 pages and filters; legacy takes no options (they are not sent). */
export function listOperation(input: ListInput = {}): Operation {
  return {
    legacy: {method: 'GET', path: '/agents'},
    name: 'list agents',
    v1: {
      method: 'GET',
      path: '/v1/agents',
      query: {limit: input.limit, offset: input.offset, status: input.status},
    },
  }
}

/** Get one agent (§5.5). */
export function getOperation(agentId: string): Operation {
  return both('get the agent', 'GET', agent(agentId))
}

/** v0.7 has no revoke: it suspends (`PUT …/status`); legacy revokes. */
export function revokeOperation(agentId: string): Operation {
  return {
    legacy: {method: 'POST', path: `${agent(agentId)}/revoke`},
    name: 'revoke the agent',
    v1: {body: {status: 'suspended'}, method: 'PUT', path: `/v1${agent(agentId)}/status`},
  }
}

/** Set an agent's tier (§5.5). */
export function tierOperation(agentId: string, tier: string): Operation {
  return both('set the agent tier', 'PUT', `${agent(agentId)}/tier`, {body: {tier}})
}

/** One page of an agent's verify activity (§5.6). */
export function activityOperation(agentId: string, limit: number, offset: number): Operation {
  return both('read the agent activity', 'GET', `${agent(agentId)}/activity`, {query: {limit, offset}})
}

/** Legacy only: the permission catalogue. */
export function catalogueOperation(): Operation {
  return {legacy: {method: 'GET', path: '/permissions/list'}, name: 'read the permission catalogue'}
}

/** Webhook register (§7.1) input. */
export interface WebhookInput {
  /** v0.7 only (legacy takes the agent from the token). */
  agentId: string
  description?: string
  events: string[]
  url: string
}

/** Register a webhook (§7.1): v0.7 names the agent, legacy takes it from the token. */
export function registerWebhookOperation(input: WebhookInput): Operation {
  return {
    legacy: {body: {events: input.events, url: input.url}, method: 'POST', path: '/webhooks'},
    name: 'register the webhook',
    v1: {
      body: {
        agent_id: input.agentId,
        events: input.events,
        url: input.url,
        ...(input.description === undefined ? {} : {description: input.description}),
      },
      method: 'POST',
      path: '/v1/webhooks',
    },
  }
}

/** v0.7 requires `agent_id`; legacy lists the token's agent's webhooks. */
export function listWebhooksOperation(agentId: string): Operation {
  return {
    legacy: {method: 'GET', path: '/webhooks'},
    name: 'list webhooks',
    v1: {method: 'GET', path: '/v1/webhooks', query: {agent_id: agentId}},
  }
}

/** Delete a webhook (§7.1). */
export function deleteWebhookOperation(id: string): Operation {
  return both('delete the webhook', 'DELETE', hook(id))
}

/** Replace a webhook's secret (§7.1). */
export function rotateWebhookOperation(id: string): Operation {
  return both('rotate the webhook secret', 'POST', `${hook(id)}/regenerate-secret`)
}

/** The event names a webhook may subscribe to (§7.1; no token). */
export function webhookEventsOperation(): Operation {
  return both('list webhook events', 'GET', '/webhooks/events')
}
