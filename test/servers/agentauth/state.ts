/**
 * In-memory state of the AgentAuth test server: agents (API keys only as SHA-256 hex), verify logs,
 * webhooks, legacy refresh tokens (hashed) and the clock everything is stamped with.
 */
import {createHash, randomBytes} from 'node:crypto'

export type Generation = 'legacy' | 'v1'

/** Anything with a `now()` in epoch ms; {@link FakeClock} lets a test move time. */
export interface ServerClock {
  now(): number
}

/** A clock the test drives: time moves only when told. */
export class FakeClock implements ServerClock {
  constructor(private current = Date.now()) {}

  advance(ms: number): void {
    this.current += ms
  }

  now(): number {
    return this.current
  }

  /** For the client side: resolves at once, moving time by `ms` (retry spacing without waiting). */
  sleep = async (ms: number): Promise<void> => {
    this.current += ms
  }
}

export interface AgentRecord {
  agent_id: string
  api_key_hash: string
  created_at: string
  description: null | string
  last_verified_at: null | string
  name: string
  owner_email: string
  permissions: string[]
  status: string
  tier: string
  updated_at: string
}

export interface LogEntry {
  agent_id: string
  id: number
  ip_address: null | string
  reason: string
  success: boolean
  timestamp: string
}

export interface WebhookRecord {
  agent_id: string
  created_at: string
  description: null | string
  events: string[]
  id: number | string
  is_active: boolean
  secret: string
  updated_at: string
  url: string
}

export interface LegacyRefreshToken {
  agent_id: string
  expires_at: number
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')
const hex = (bytes: number): string => randomBytes(bytes).toString('hex')

export interface NewAgent {
  description?: null | string
  name: string
  owner_email?: string
  permissions?: string[]
  status?: string
  tier?: string
}

export class AgentAuthState {
  readonly agents = new Map<string, AgentRecord>()
  /** Every access and refresh token issued, for canary scans. */
  readonly issuedTokens: string[] = []
  readonly logs: LogEntry[] = []
  /** Legacy refresh tokens by SHA-256 hex. */
  readonly refreshTokens = new Map<string, LegacyRefreshToken>()
  readonly webhooks = new Map<string, WebhookRecord>()
  private nextLogId = 1
  private nextWebhookId = 1

  constructor(
    readonly generation: Generation,
    readonly clock: ServerClock,
  ) {}

  /** Create an agent; returns it with its API key (the only time the key exists in clear). */
  addAgent(input: NewAgent): {agent: AgentRecord; apiKey: string} {
    const apiKey = this.generation === 'v1' ? `sk_${hex(32)}` : `ak_${hex(24)}`
    const now = this.dbTime()
    const agent: AgentRecord = {
      agent_id: this.generation === 'v1' ? `agt_${hex(16)}` : `agt_${hex(12)}`,
      api_key_hash: sha256(apiKey),
      created_at: now,
      description: input.description ?? null,
      last_verified_at: null,
      name: input.name,
      owner_email: input.owner_email ?? 'owner@example.com',
      permissions: input.permissions ?? ['zendesk:tickets:read'],
      status: input.status ?? 'active',
      tier: input.tier ?? 'free',
      updated_at: now,
    }
    this.agents.set(agent.agent_id, agent)
    return {agent, apiKey}
  }

  addWebhook(input: Omit<WebhookRecord, 'created_at' | 'id' | 'secret' | 'updated_at'>): WebhookRecord {
    const now = this.dbTime()
    const id = this.generation === 'v1' ? randomUUIDish() : this.nextWebhookId++
    const hook: WebhookRecord = {
      ...input,
      created_at: now,
      id,
      secret: this.newWebhookSecret(),
      updated_at: now,
    }
    this.webhooks.set(String(id), hook)
    return hook
  }

  /** A database timestamp: with an offset, as Supabase returns them. */
  dbTime(): string {
    return new Date(this.clock.now()).toISOString().replace('Z', '+00:00')
  }

  /** Record a verify attempt (§5.6). */
  logVerification(agentId: string, success: boolean, reason: string, ip: null | string): LogEntry {
    const entry: LogEntry = {
      agent_id: agentId,
      id: this.nextLogId++,
      ip_address: ip,
      reason,
      success,
      timestamp: this.dbTime(),
    }
    this.logs.push(entry)
    return entry
  }

  newWebhookSecret(): string {
    return this.generation === 'v1' ? `whsec_${hex(32)}` : hex(32)
  }

  /** Activity of one agent, newest first. */
  activityOf(agentId: string): LogEntry[] {
    return this.logs.filter((entry) => entry.agent_id === agentId).reverse()
  }
}

function randomUUIDish(): string {
  const h = hex(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}
