/**
 * Parsers of AgentAuth response bodies (protocols/agentauth.md §5–§7). Each accepts both
 * generations' shapes (v0.7 serves its shapes on the un-prefixed mounts too, §2.4), reads known
 * fields only, normalises timestamps to UTC `Z`, and throws UNEXPECTED_RESPONSE (exit 5) for a body
 * it cannot read — never anything else, whatever the input.
 */
import {unexpectedResponse} from './http-errors.js'

/** An access/refresh token pair (verify's `token`, refresh's flat body). */
export interface TokenPair {
  access_token: string
  expires_in?: number
  refresh_token?: string
  /** Legacy only: the opaque refresh token's lifetime in seconds. */
  refresh_token_expires_in?: number
}

/** An agent as the server describes it; absent fields were not given. */
export interface AgentInfo {
  agent_id: string
  created_at?: string
  description?: null | string
  last_verified_at?: null | string
  name?: string
  owner_email?: string
  permissions?: string[]
  status?: string
  tier?: string
  updated_at?: string
}

/** A successful verify: who signed in and the token pair. */
export interface VerifyResult {
  agent: AgentInfo
  token: TokenPair
}

/** `agents register`: the new agent and its API key (shown once). */
export interface RegisteredAgent extends AgentInfo {
  api_key: string
}

/** A page of agents; `total` is v0.7's total or legacy's `count`. */
export interface AgentList {
  agents: AgentInfo[]
  limit?: number
  offset?: number
  total?: number
}

/** One verify attempt (§5.6). */
export interface ActivityEntry {
  agent_id: string
  id?: number | string
  ip_address: null | string
  reason: string
  success: boolean
  /** UTC, ending in `Z`. */
  timestamp: string
}

/** One page of activity with whatever tells whether more follow. */
export interface ActivityPage {
  entries: ActivityEntry[]
  /** Legacy `pagination.has_more`. */
  hasMore?: boolean
  total?: number
}

/** A webhook as listed (never with its secret). */
export interface Webhook {
  agent_id?: string
  created_at?: string
  description?: null | string
  events: string[]
  id: string
  is_active?: boolean
  url: string
}

/** A webhook with its signing secret (register, rotate-secret): shown once. */
export interface WebhookSecret {
  secret: string
  webhook: Partial<Webhook> & {id: string}
}

/** `GET /health`. */
export interface Health {
  service?: string
  status: string
  version?: string
}

type Json = Record<string, unknown>

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The body as an object, or UNEXPECTED_RESPONSE. */
function object(body: unknown, operation: string): Json {
  if (!isRecord(body)) throw unexpectedResponse(operation)
  return body
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined
}

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((item) => typeof item === 'string') ? [...value] : undefined
}

/** A timestamp as UTC `Z`; undefined when absent or unreadable. */
export function toUtc(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 64) return undefined
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) return undefined
  return new Date(ms).toISOString()
}

function nullableText(value: unknown): null | string | undefined {
  if (value === null) return null
  return typeof value === 'string' ? value : undefined
}

/** Known agent fields of `raw`; undefined without an `agent_id`. */
function agentInfo(raw: unknown): AgentInfo | undefined {
  if (!isRecord(raw)) return undefined
  const agentId = text(raw.agent_id)
  if (agentId === undefined) return undefined
  const info: AgentInfo = {agent_id: agentId}
  const name = text(raw.name)
  if (name !== undefined) info.name = name
  const description = nullableText(raw.description)
  if (description !== undefined) info.description = description
  const email = text(raw.owner_email)
  if (email !== undefined) info.owner_email = email
  const status = text(raw.status)
  if (status !== undefined) info.status = status
  const tier = text(raw.tier)
  if (tier !== undefined) info.tier = tier
  const permissions = strings(raw.permissions)
  if (permissions !== undefined) info.permissions = permissions
  const created = toUtc(raw.created_at)
  if (created !== undefined) info.created_at = created
  const updated = toUtc(raw.updated_at)
  if (updated !== undefined) info.updated_at = updated
  if (raw.last_verified_at === null) info.last_verified_at = null
  else {
    const verified = toUtc(raw.last_verified_at)
    if (verified !== undefined) info.last_verified_at = verified
  }

  return info
}

function tokenPair(raw: unknown): TokenPair | undefined {
  if (!isRecord(raw)) return undefined
  const access = text(raw.access_token)
  if (access === undefined) return undefined
  const pair: TokenPair = {access_token: access}
  const refresh = text(raw.refresh_token)
  if (refresh !== undefined) pair.refresh_token = refresh
  const expiresIn = count(raw.expires_in)
  if (expiresIn !== undefined) pair.expires_in = expiresIn
  const refreshExpiresIn = count(raw.refresh_token_expires_in)
  if (refreshExpiresIn !== undefined) pair.refresh_token_expires_in = refreshExpiresIn
  return pair
}

/** Verify (§5.3): `verified === true` and a `token.access_token` make a success. */
export function parseVerify(body: unknown): VerifyResult {
  const operation = 'verify the agent'
  const data = object(body, operation)
  const token = tokenPair(data.token)
  const agent = agentInfo(data.agent)
  if (data.verified !== true || !token || !agent) throw unexpectedResponse(operation)
  return {agent, token}
}

/** Refresh (§5.4): flat in both generations; also accepted under a `token` key. */
export function parseRefresh(body: unknown): TokenPair {
  const operation = 'refresh the access token'
  const data = object(body, operation)
  const pair = tokenPair(data) ?? tokenPair(data.token)
  if (!pair) throw unexpectedResponse(operation)
  return pair
}

/** Register (§5.2): `agent_id ?? agent.agent_id`, `api_key ?? credentials.api_key`. */
export function parseRegister(body: unknown): RegisteredAgent {
  const operation = 'register an agent'
  const data = object(body, operation)
  const agent = agentInfo(data) ?? agentInfo(data.agent)
  const apiKey =
    text(data.api_key) ?? (isRecord(data.credentials) ? text(data.credentials.api_key) : undefined)
  if (!agent || apiKey === undefined) throw unexpectedResponse(operation)
  return {...agent, api_key: apiKey}
}

/** List (§5.5): v0.7 `{agents, total, limit, offset}`, legacy `{agents, count}`. */
export function parseAgentList(body: unknown): AgentList {
  const operation = 'list agents'
  const data = object(body, operation)
  if (!Array.isArray(data.agents)) throw unexpectedResponse(operation)
  const agents = data.agents.map((raw) => agentInfo(raw))
  if (agents.includes(undefined)) throw unexpectedResponse(operation)
  const total = count(data.total) ?? count(data.count)
  const limit = count(data.limit)
  const offset = count(data.offset)
  return {
    agents: agents as AgentInfo[],
    ...(limit === undefined ? {} : {limit}),
    ...(offset === undefined ? {} : {offset}),
    ...(total === undefined ? {} : {total}),
  }
}

/** Get (§5.5): v0.7 the row unwrapped, legacy `{agent: {…}}`. */
export function parseAgent(body: unknown): AgentInfo {
  const operation = 'get the agent'
  const data = object(body, operation)
  const agent = agentInfo(data.agent) ?? agentInfo(data)
  if (!agent) throw unexpectedResponse(operation)
  return agent
}

/** Revoke and tier (§5.5): v0.7 flat `{agent_id, status|tier, updated_at}`, legacy `{agent: {…}}`. */
export function parseAgentUpdate(body: unknown, operation: string): AgentInfo {
  const data = object(body, operation)
  const agent = agentInfo(data.agent) ?? agentInfo(data)
  if (!agent) throw unexpectedResponse(operation)
  return agent
}

function activityEntry(raw: unknown): ActivityEntry | undefined {
  if (!isRecord(raw)) return undefined
  const agentId = text(raw.agent_id)
  const timestamp = toUtc(raw.timestamp)
  if (agentId === undefined || timestamp === undefined || typeof raw.success !== 'boolean') return undefined
  const entry: ActivityEntry = {
    agent_id: agentId,
    ip_address: typeof raw.ip_address === 'string' ? raw.ip_address : null,
    reason: typeof raw.reason === 'string' ? raw.reason : '',
    success: raw.success,
    timestamp,
  }
  if (
    (typeof raw.id === 'number' && Number.isFinite(raw.id)) ||
    (typeof raw.id === 'string' && raw.id !== '')
  )
    entry.id = raw.id
  return entry
}

/** Activity (§5.6): v0.7 `{logs, total, limit, offset}`, legacy `{activity, pagination}`. */
export function parseActivityPage(body: unknown): ActivityPage {
  const operation = 'read the agent activity'
  const data = object(body, operation)
  const list = Array.isArray(data.logs) ? data.logs : Array.isArray(data.activity) ? data.activity : undefined
  if (!list) throw unexpectedResponse(operation)
  const entries = list.map((raw) => activityEntry(raw))
  if (entries.includes(undefined)) throw unexpectedResponse(operation)
  const pagination = isRecord(data.pagination) ? data.pagination : undefined
  const total = count(data.total) ?? count(pagination?.total)
  const hasMore = typeof pagination?.has_more === 'boolean' ? pagination.has_more : undefined
  return {
    entries: entries as ActivityEntry[],
    ...(hasMore === undefined ? {} : {hasMore}),
    ...(total === undefined ? {} : {total}),
  }
}

function webhookId(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
  return text(value)
}

function webhook(raw: unknown): undefined | Webhook {
  if (!isRecord(raw)) return undefined
  const id = webhookId(raw.id)
  const url = text(raw.url)
  const events = strings(raw.events)
  if (id === undefined || url === undefined || events === undefined) return undefined
  const hook: Webhook = {events, id, url}
  const agentId = text(raw.agent_id)
  if (agentId !== undefined) hook.agent_id = agentId
  const description = nullableText(raw.description)
  if (description !== undefined) hook.description = description
  if (typeof raw.is_active === 'boolean') hook.is_active = raw.is_active
  const created = toUtc(raw.created_at)
  if (created !== undefined) hook.created_at = created
  return hook
}

/** Webhook register (§7.1): v0.7 the row with `secret`, legacy `{webhook, secret}`. */
export function parseWebhookCreated(body: unknown): WebhookSecret {
  const operation = 'register the webhook'
  const data = object(body, operation)
  const hook = webhook(data.webhook) ?? webhook(data)
  const secret = text(data.secret)
  if (!hook || secret === undefined || secret === '***') throw unexpectedResponse(operation)
  return {secret, webhook: hook}
}

/** Webhook list (§7.1): `{webhooks: […]}`; the v0.7 mask `secret: "***"` is dropped. */
export function parseWebhookList(body: unknown): Webhook[] {
  const operation = 'list webhooks'
  const data = object(body, operation)
  if (!Array.isArray(data.webhooks)) throw unexpectedResponse(operation)
  const hooks = data.webhooks.map((raw) => webhook(raw))
  if (hooks.includes(undefined)) throw unexpectedResponse(operation)
  return hooks as Webhook[]
}

/** Rotate secret (§7.1): v0.7 `{webhook_id, secret}`, legacy `{webhook, secret}`. */
export function parseWebhookRotated(body: unknown, id: string): WebhookSecret {
  const operation = 'rotate the webhook secret'
  const data = object(body, operation)
  const secret = text(data.secret)
  if (secret === undefined || secret === '***') throw unexpectedResponse(operation)
  const hook = webhook(data.webhook)
  const rotatedId =
    webhookId(data.webhook_id) ?? (isRecord(data.webhook) ? webhookId(data.webhook.id) : undefined) ?? id
  return {secret, webhook: {...hook, id: rotatedId}}
}

/** Webhook events (§7.1): `{events: [names]}`. */
export function parseWebhookEvents(body: unknown): string[] {
  const operation = 'list webhook events'
  const events = strings(object(body, operation).events)
  if (!events) throw unexpectedResponse(operation)
  return events
}

/**
 * Permission catalogue (§5.7): `permissions` as a list of full strings, or (earlier builds) keyed
 * by service, each a list of full strings.
 */
export function parseCatalogue(body: unknown): string[] {
  const operation = 'read the permission catalogue'
  const {permissions} = object(body, operation)
  const list = strings(permissions)
  if (list) return list
  if (isRecord(permissions)) {
    const groups = Object.values(permissions).map((group) => strings(group))
    if (groups.every((group) => group !== undefined)) return [...new Set(groups.flat() as string[])]
  }

  throw unexpectedResponse(operation)
}

/** Health (§5.7): `{status, service, version, …}`. */
export function parseHealth(body: unknown): Health {
  const operation = 'check health'
  const data = object(body, operation)
  const status = text(data.status)
  if (status === undefined) throw unexpectedResponse(operation)
  const service = text(data.service)
  const version = text(data.version)
  return {status, ...(service === undefined ? {} : {service}), ...(version === undefined ? {} : {version})}
}
