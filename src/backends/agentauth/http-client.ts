/**
 * The AgentAuth HTTP client (protocols/agentauth.md §2, §3, §8): one operation is sent to its v0.7
 * path (`/v1/…`) first and falls back, per call, to its legacy path on a *route miss*; the profile's
 * recorded generation follows the answers. Every HTTP call retries network errors, timeouts, 5xx and
 * 429 (honouring `Retry-After`, capped at 30 s) after 1, 2 and 4 s, at most three times.
 *
 * Time is injectable ({@link Clock}): retry spacing is tested without waiting. The client never
 * throws for an HTTP status — callers map answers to typed errors (http-errors.ts) — only for a
 * network failure that outlived its retries. Debug output names methods, paths and statuses only:
 * never a body, a header value or a token.
 */
import type {IncomingHttpHeaders} from 'node:http'

import {concealSent} from '../../core/conceal.js'
import {BackendUnavailableError} from '../../core/errors.js'
import {type Generation} from './settings.js'

/** The client's sense of time: `now()` for Retry-After dates, `sleep()` between retries. */
export interface Clock {
  now(): number
  sleep(ms: number): Promise<void>
}

/** Wall time and real timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) =>
    new Promise((resolve) => {
      setTimeout(resolve, ms)
    }),
}

/** One HTTP request of an operation on one generation's path. */
export interface WireRequest {
  body?: unknown
  method: 'DELETE' | 'GET' | 'POST' | 'PUT'
  /** The path from the server root, e.g. `/v1/agents/agt_1/activity` (ids already encoded). */
  path: string
  query?: Record<string, number | string | undefined>
}

/** An operation (§5.1): its request on each generation it exists on. */
export interface Operation {
  legacy?: WireRequest
  /** For messages: `list agents`. */
  name: string
  /** Sent as `Authorization: Bearer …` (JWT routes only). */
  token?: string
  v1?: WireRequest
}

/** What the server answered (after retries). */
export interface HttpAnswer {
  /** The parsed JSON body, when the body was JSON. */
  body: unknown
  /** Which generation's path answered. */
  generation: 'legacy' | 'v1'
  headers: IncomingHttpHeaders
  json: boolean
  /** The call was retried this many times (0–3). */
  retries: number
  /** A 404 for a path the server does not serve (§2): HTML, or JSON `Route not found`. */
  routeMiss: boolean
  status: number
  statusText: string
}

/** How to build a client: server, time, generation and how to record its changes. */
export interface AgentAuthHttpOptions {
  baseUrl: string
  clock?: Clock
  generation: Generation
  /** Debug output (`agentvault:agentauth`), printf-style. */
  log?: (format: string, ...args: unknown[]) => void
  /** Called when the recorded generation changes (to persist it). */
  onGeneration?: (generation: Generation) => Promise<void> | void
  timeoutMs: number
}

/** Delays before retries 1, 2 and 3 (§8). */
export const BACKOFF_MS = [1000, 2000, 4000] as const
/** The most a `Retry-After` may make us wait. */
export const RETRY_AFTER_CAP_MS = 30_000
/** A bound on what we read of one response. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024

class NetworkFailure extends Error {
  constructor(
    readonly reason: string,
    readonly timeout: boolean,
    readonly retryable = true,
  ) {
    super(reason)
  }
}

/**
 * The wait a `Retry-After` value asks for, in ms (seconds or an HTTP date), never negative and not
 * capped; undefined when absent or unreadable.
 */
export function requestedWaitMs(value: string | string[] | undefined, now: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim()
  if (text === undefined || text === '') return undefined
  let ms: number
  if (/^\d+$/.test(text)) ms = Number(text) * 1000
  else {
    const at = Date.parse(text)
    if (Number.isNaN(at) || !/[a-z]/i.test(text)) return undefined
    ms = at - now
  }

  return Math.max(ms, 0)
}

/**
 * The wait a `Retry-After` value asks for, in ms, capped at 30 s; undefined when absent or
 * unreadable. (A 429 asking for more than the cap is not retried at all: see `send`.)
 */
export function retryAfterMs(value: string | string[] | undefined, now: number): number | undefined {
  const ms = requestedWaitMs(value, now)
  return ms === undefined ? undefined : Math.min(ms, RETRY_AFTER_CAP_MS)
}

function isRouteMiss(status: number, json: boolean, body: unknown): boolean {
  if (status !== 404) return false
  if (!json) return true
  return (
    typeof body === 'object' && body !== null && (body as Record<string, unknown>).error === 'Route not found'
  )
}

function queryString(query: WireRequest['query']): string {
  if (!query) return ''
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
  const text = params.toString()
  return text === '' ? '' : `?${text}`
}

interface RawAnswer {
  body: Buffer
  headers: IncomingHttpHeaders
  status: number
  statusText: string
}

/** See the module comment: one client per profile per command. */
export class AgentAuthHttp {
  /** The profile's recorded generation, updated as answers arrive (§2). */
  generation: Generation
  private readonly clock: Clock

  constructor(private readonly options: AgentAuthHttpOptions) {
    this.generation = options.generation
    this.clock = options.clock ?? systemClock
  }

  get baseUrl(): string {
    return this.options.baseUrl
  }

  /**
   * Send `operation` per the generation rule (§2). The answer may be any status; when both paths
   * miss, it is the second route miss (`routeMiss: true`).
   *
   * @throws BackendUnavailableError when the server cannot be reached after retries.
   */
  async call(operation: Operation): Promise<HttpAnswer> {
    const {legacy, token, v1} = operation
    // Legacy-only operations (catalogue, revoke-tokens) never change the recorded generation.
    if (!v1) return this.send(legacy as WireRequest, 'legacy', token)
    if (!legacy) return this.record(await this.send(v1, 'v1', token))
    if (this.generation === 'legacy') {
      const first = await this.send(legacy, 'legacy', token)
      if (!first.routeMiss) return first
      await this.setGeneration('unknown')
      return this.record(await this.send(v1, 'v1', token))
    }

    const first = await this.send(v1, 'v1', token)
    if (!first.routeMiss) return this.record(first)
    const second = await this.send(legacy, 'legacy', token)
    if (!second.routeMiss) await this.setGeneration('legacy')
    return second
  }

  /**
   * One HTTP call with the retry policy of §8 (a fallback call has its own budget).
   *
   * @throws BackendUnavailableError after the last retry of a network failure or timeout.
   */
  async send(
    request: WireRequest,
    generation: 'legacy' | 'v1',
    token?: string,
    options: {retry?: boolean} = {},
  ): Promise<HttpAnswer> {
    const log = this.options.log ?? (() => {})
    const budget = options.retry === false ? 0 : BACKOFF_MS.length
    for (let attempt = 0; ; attempt++) {
      let raw: RawAnswer
      try {
        raw = await this.attempt(request, token)
      } catch (error) {
        if (!(error instanceof NetworkFailure)) throw error
        log('%s %s failed: %s (attempt %d)', request.method, request.path, error.reason, attempt + 1)
        if (!error.retryable || attempt >= budget) throw this.unavailable(error, attempt)
        await this.clock.sleep(BACKOFF_MS[attempt] as number)
        continue
      }

      log('%s %s -> %d (attempt %d)', request.method, request.path, raw.status, attempt + 1)
      if ((raw.status >= 500 || raw.status === 429) && attempt < budget) {
        const hinted =
          raw.status === 429 ? requestedWaitMs(raw.headers['retry-after'], this.clock.now()) : undefined
        // The window ends later than we would ever wait: retrying cannot succeed, so fail now.
        if (hinted !== undefined && hinted > RETRY_AFTER_CAP_MS) {
          log('Retry-After asks for %d ms, more than %d ms: not retrying', hinted, RETRY_AFTER_CAP_MS)
          return this.answer(raw, generation, attempt, [request.body, token])
        }

        const wait = hinted ?? (BACKOFF_MS[attempt] as number)
        log('retrying in %d ms', wait)
        await this.clock.sleep(wait)
        continue
      }

      return this.answer(raw, generation, attempt, [request.body, token])
    }
  }

  private answer(
    raw: RawAnswer,
    generation: 'legacy' | 'v1',
    retries: number,
    sent: readonly unknown[],
  ): HttpAnswer {
    let body: unknown
    let json = false
    const text = raw.body.toString('utf8')
    const trimmed = text.trimStart()
    if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
      try {
        body = JSON.parse(text)
        json = true
      } catch {
        body = undefined
      }
    }

    // A failure's text may quote the request (an API key, a refresh token): never carried back.
    if (json && raw.status >= 400) body = concealSent(body, sent)
    return {
      body,
      generation,
      headers: raw.headers,
      json,
      retries,
      routeMiss: isRouteMiss(raw.status, json, body),
      status: raw.status,
      statusText: raw.statusText,
    }
  }

  private async attempt(request: WireRequest, token?: string): Promise<RawAnswer> {
    const url = new URL(`${this.options.baseUrl}${request.path}${queryString(request.query)}`)
    const {request: send} = url.protocol === 'https:' ? await import('node:https') : await import('node:http')
    const payload = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body), 'utf8')
    const headers: Record<string, string> = {Accept: 'application/json'}
    if (payload) {
      headers['Content-Type'] = 'application/json'
      headers['Content-Length'] = String(payload.length)
    }

    if (token !== undefined) headers.Authorization = `Bearer ${token}`
    return new Promise<RawAnswer>((resolve, reject) => {
      let settled = false
      const fail = (failure: NetworkFailure): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        outgoing.destroy()
        reject(failure)
      }

      // Verified whatever NODE_TLS_REJECT_UNAUTHORIZED says: tokens and agent secrets travel here.
      const outgoing = send(url, {headers, method: request.method, rejectUnauthorized: true}, (response) => {
        const chunks: Buffer[] = []
        let size = 0
        response.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > MAX_RESPONSE_BYTES) fail(new NetworkFailure('response too large', false, false))
          else chunks.push(chunk)
        })
        response.once('error', () => fail(new NetworkFailure('connection reset', false)))
        response.once('aborted', () => fail(new NetworkFailure('connection reset', false)))
        response.once('end', () => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          resolve({
            body: Buffer.concat(chunks),
            headers: response.headers,
            status: response.statusCode ?? 0,
            statusText: response.statusMessage ?? '',
          })
        })
      })
      const timer = setTimeout(
        () => fail(new NetworkFailure(`no answer within ${this.options.timeoutMs} ms`, true)),
        this.options.timeoutMs,
      )
      outgoing.once('error', (error: NodeJS.ErrnoException) =>
        fail(new NetworkFailure(error.code ?? 'network error', false)),
      )
      outgoing.end(payload)
    })
  }

  /** Any answer on a `/v1` path other than a route miss makes the profile `v1` (§2.3). */
  private async record(answer: HttpAnswer): Promise<HttpAnswer> {
    if (!answer.routeMiss) await this.setGeneration('v1')
    return answer
  }

  private async setGeneration(generation: Generation): Promise<void> {
    if (this.generation === generation) return
    this.generation = generation
    this.options.log?.('generation of %s is now %s', this.options.baseUrl, generation)
    await this.options.onGeneration?.(generation)
  }

  private unavailable(failure: NetworkFailure, retries: number): BackendUnavailableError {
    return new BackendUnavailableError(
      failure.timeout ? 'AGENTAUTH_TIMEOUT' : 'AGENTAUTH_UNREACHABLE',
      `Cannot reach AgentAuth at ${this.options.baseUrl}: ${failure.reason}${retries > 0 ? ` (after ${retries} retries)` : ''}`,
      {
        suggestion: failure.timeout
          ? 'Check that the server is up; a slow server may need a longer timeoutMs in the profile.'
          : 'Check the base URL (`agentvault status`) and that the server is running.',
        details: {reason: failure.reason},
      },
    )
  }
}
