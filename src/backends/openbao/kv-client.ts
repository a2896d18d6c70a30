/**
 * `KvV2Client`: our small typed adapter over node-vault 0.12.0 (protocols/openbao.md §5, §9, §13).
 *
 * node-vault is loaded lazily, constructed with explicit options only (so none of its own env
 * reading — VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_PREFIX, VAULT_SKIP_VERIFY — decides
 * anything), and used through a narrow interface of our own: its `Promise<any>` ends here.
 * One node-vault client per configured address shares the guarded agents; each request goes to
 * the address that answered last, then the others in order, each at most once; 503 and failures
 * before sending move on (reads also after a reset or timeout); 429 is retried twice.
 */
import type {Debugger} from 'debug'

import {setTimeout as delay} from 'node:timers/promises'

import type {GuardedAgents} from './agents.js'

import {concealSent} from '../../core/conceal.js'
import {AgentVaultError, InternalError} from '../../core/errors.js'
import {
  type Answer,
  classifyFailure,
  classifyRead,
  failureReason,
  isAgentVaultError,
  isEnvelope,
  type KvSecret,
  type NetworkFailure,
  networkFailure,
  type OperationContext,
  responseOf,
  tlsFailed,
  unavailable,
  unexpectedAnswer,
} from './errors.js'

/** The per-call options node-vault merges into each request. */
interface CallOptions {
  headers: Record<string, string>
  httpAgent: GuardedAgents['http']
  httpsAgent: GuardedAgents['https']
  timeout: number
}

/** The part of a node-vault client we use; everything it returns is `unknown` until classified. */
interface NodeVaultClient {
  approleLogin(args: {
    mount_point: string
    requestOptions: CallOptions
    role_id: string
    secret_id: string
  }): Promise<unknown>
  delete(path: string, options: CallOptions): Promise<unknown>
  endpoint: string
  health(args: {requestOptions: CallOptions}): Promise<unknown>
  list(path: string, options: CallOptions): Promise<unknown>
  namespace?: string
  pathPrefix: string
  read(path: string, options: CallOptions): Promise<unknown>
  request(options: CallOptions & {json?: unknown; method: string; path: string}): Promise<unknown>
  token?: string
  tokenLookupSelf(args: {requestOptions: CallOptions}): Promise<unknown>
  tokenRenewSelf(args: {requestOptions: CallOptions}): Promise<unknown>
  write(path: string, data: unknown, options: CallOptions): Promise<unknown>
}

type NodeVaultFactory = (options: Record<string, unknown>) => NodeVaultClient

/** How to build a client: the cluster, its agents, namespace and timeout. */
export interface KvClientOptions {
  addresses: readonly string[]
  agents: GuardedAgents
  /** Whether a CA bundle was configured (for the TLS error's hint). */
  hasCa: boolean
  log: Debugger
  namespace?: string
  /** Waits between 429 retries; tests pass a recorder. */
  sleep?: (ms: number) => Promise<void>
  timeoutMs: number
}

/** The `auth` block of a login or renewal (§8). */
export interface TokenAuth {
  accessor: string
  client_token: string
  lease_duration: number
  policies: string[]
  renewable: boolean
}

/** lookup-self `data` (§8); `expire_time` null for root tokens. */
export interface TokenLookup {
  accessor: string
  creation_ttl: number
  display_name: string
  expire_time: null | string
  policies: string[]
  renewable: boolean
  ttl: number
}

/** `GET {m}/metadata/{p}` (§7); `versions` keyed by the version number as a string. */
export interface KeyMetadata {
  cas_required: boolean
  created_time: string
  current_version: number
  custom_metadata: null | Record<string, string>
  delete_version_after: string
  max_versions: number
  oldest_version: number
  updated_time: string
  versions: Record<string, {created_time: string; deletion_time: string; destroyed: boolean}>
}

/** `wrap_info` of a wrapped response (§11). */
export interface WrapInfo {
  accessor: string
  creation_path: string
  creation_time: string
  token: string
  ttl: number
}

/** `sys/health` of one address, or why it did not answer. */
export interface HealthReport {
  address: string
  body?: {cluster_name?: string; initialized?: boolean; sealed?: boolean; standby?: boolean; version?: string}
  error?: string
}

/** Where a KV v2 secret lives: mount and path inside it (from a parsed reference). */
export interface KvLocation {
  mount: string
  path: string
}

interface Request {
  context: OperationContext
  /** What the request carries besides the token (a body, login credentials): concealed in errors. */
  sent?: unknown
  /** Send `X-Vault-Token` (the client's token, or this explicit one). */
  token?: 'client' | {explicit: string}
  /** Reads move on after resets and timeouts; writes do not. */
  type: 'read' | 'write'
  wrapTtl?: string
}

const RETRY_WAITS_MS = [250, 1000] as const
const MAX_RETRY_AFTER_MS = 5000

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const asString = (value: unknown): string => (typeof value === 'string' ? value : '')
const asNumber = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0)
const asStrings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []

/**
 * Keep the transport's own debug output off: follow-redirects logs its request options —
 * `X-Vault-Token` included — under `DEBUG=*`. Our own namespace (`agentvault:openbao`) logs
 * methods, paths and statuses only. `debug.enable` writes `process.env.DEBUG`; it is restored so
 * children of `run` see the user's value.
 */
async function silenceTransportDebug(): Promise<void> {
  const {default: createDebug} = await import('debug')
  const saved = process.env.DEBUG
  const current = createDebug.disable()
  createDebug.enable(
    [current, '-follow-redirects', '-node-vault', '-axios'].filter((s) => s !== '').join(','),
  )
  if (saved === undefined) delete process.env.DEBUG
  else process.env.DEBUG = saved
}

/** Typed KV v2, token, wrapping and health calls over node-vault, with failover (see the module comment). */
export class KvV2Client {
  /** The token sent as `X-Vault-Token`; set by the backend, never logged. */
  token?: string
  private readonly clients: NodeVaultClient[]
  private forbiddenCheck?: Promise<AgentVaultError>
  private preferred = 0

  private constructor(
    private readonly options: KvClientOptions,
    factory: NodeVaultFactory,
  ) {
    this.clients = options.addresses.map((address) => {
      const client = factory({
        // Explicit values only: node-vault's env fallbacks are overwritten below.
        apiVersion: 'v1',
        debug() {},
        endpoint: address,
        noCustomHTTPVerbs: true,
        pathPrefix: '',
        rpDefaults: {strictSSL: true},
        requestOptions: {timeout: options.timeoutMs},
      })
      // `config.x || process.env.VAULT_X` at construction: set our own resolved values after it.
      client.endpoint = address
      client.token = ''
      client.namespace = options.namespace ?? ''
      client.pathPrefix = ''
      return client
    })
  }

  /** Load node-vault (lazily) and build one client per address. */
  static async create(options: KvClientOptions): Promise<KvV2Client> {
    await silenceTransportDebug()
    const module = (await import('node-vault')) as unknown as {default: NodeVaultFactory}
    return new KvV2Client(options, module.default)
  }

  /** One `sys/health` per address, concurrently (no token): for `status`. */
  async health(): Promise<HealthReport[]> {
    return Promise.all(
      this.options.addresses.map(async (address, index): Promise<HealthReport> => {
        const client = this.clients[index] as NodeVaultClient
        try {
          const body = await client.health({
            requestOptions: this.callOptions({context: {purpose: 'health'}, type: 'read'}),
          })
          if (!isRecord(body)) return {address, error: 'unexpected answer'}
          return {
            address,
            body: {
              ...(typeof body.cluster_name === 'string' ? {cluster_name: body.cluster_name} : {}),
              ...(typeof body.initialized === 'boolean' ? {initialized: body.initialized} : {}),
              ...(typeof body.sealed === 'boolean' ? {sealed: body.sealed} : {}),
              ...(typeof body.standby === 'boolean' ? {standby: body.standby} : {}),
              ...(typeof body.version === 'string' ? {version: body.version} : {}),
            },
          }
        } catch (error) {
          const response = responseOf(error)
          return {address, error: response ? `HTTP ${response.status}` : failureReason(networkFailure(error))}
        }
      }),
    )
  }

  /** `GET {m}/metadata/{folder}/?list=1`; a 404 is an empty folder. */
  async list(location: {folder: string; mount: string}, reference: string): Promise<string[]> {
    const folder = location.folder === '' ? '' : `${location.folder.replace(/\/$/, '')}/`
    const context: OperationContext = {purpose: 'list', reference}
    const answer = await this.send({context, token: 'client', type: 'read'}, (client, options) =>
      client.list(`${location.mount}/metadata/${folder}`, options),
    )
    if (!answer.ok && answer.status === 404) return []
    const body = await this.expectOk(context, answer)
    const data = isEnvelope(body) ? body.data : undefined
    if (!isRecord(data) || !Array.isArray(data.keys)) throw unexpectedAnswer(context)
    return asStrings(data.keys)
  }

  /** lookup-self with the client's token, or `token` (login checks a token before storing it). */
  async lookupSelf(token?: string): Promise<TokenLookup> {
    const context: OperationContext = {purpose: 'lookup-self'}
    const answer = await this.send(
      {context, token: token === undefined ? 'client' : {explicit: token}, type: 'read'},
      (client, options) => client.tokenLookupSelf({requestOptions: options}),
    )
    const body = await this.expectOk(context, answer)
    const data = isEnvelope(body) ? body.data : undefined
    if (!isRecord(data)) throw unexpectedAnswer(context)
    return {
      accessor: asString(data.accessor),
      creation_ttl: asNumber(data.creation_ttl),
      display_name: asString(data.display_name),
      expire_time: typeof data.expire_time === 'string' && data.expire_time !== '' ? data.expire_time : null,
      policies: asStrings(data.policies),
      renewable: data.renewable === true,
      ttl: asNumber(data.ttl),
    }
  }

  async loginAppRole(mount: string, roleId: string, secretId: string): Promise<TokenAuth> {
    return this.login([roleId, secretId], (client, options) =>
      client.approleLogin({
        mount_point: mount,
        requestOptions: options,
        role_id: roleId,
        secret_id: secretId,
      }),
    )
  }

  async loginUserpass(mount: string, username: string, password: string): Promise<TokenAuth> {
    return this.login([password], (client, options) =>
      client.request({
        ...options,
        json: {password},
        method: 'POST',
        path: `/auth/${mount}/login/${encodeURIComponent(username)}`,
      }),
    )
  }

  /** `GET {m}/data/{p}[?version=N]`, classified as in §6. */
  async read(location: KvLocation, version: number | undefined, reference: string): Promise<KvSecret> {
    const context: OperationContext = {purpose: 'read', reference}
    const query = version === undefined ? '' : `?version=${version}`
    const answer = await this.send({context, token: 'client', type: 'read'}, (client, options) =>
      client.read(`${location.mount}/data/${location.path}${query}`, options),
    )
    return this.settle(context, answer, () => classifyRead(context, answer))
  }

  async readMetadata(location: KvLocation, reference: string): Promise<KeyMetadata> {
    const context: OperationContext = {purpose: 'metadata-read', reference}
    const answer = await this.send({context, token: 'client', type: 'read'}, (client, options) =>
      client.read(`${location.mount}/metadata/${location.path}`, options),
    )
    const body = await this.expectOk(context, answer)
    const data = isEnvelope(body) ? body.data : undefined
    if (!isRecord(data) || !isRecord(data.versions)) throw unexpectedAnswer(context)
    const versions: KeyMetadata['versions'] = {}
    for (const [number, entry] of Object.entries(data.versions)) {
      if (!/^\d+$/.test(number) || !isRecord(entry)) continue
      versions[number] = {
        created_time: asString(entry.created_time),
        deletion_time: asString(entry.deletion_time),
        destroyed: entry.destroyed === true,
      }
    }

    return {
      cas_required: data.cas_required === true,
      created_time: asString(data.created_time),
      current_version: asNumber(data.current_version),
      custom_metadata: isRecord(data.custom_metadata)
        ? Object.fromEntries(
            Object.entries(data.custom_metadata).filter(
              (e): e is [string, string] => typeof e[1] === 'string',
            ),
          )
        : null,
      delete_version_after: asString(data.delete_version_after),
      max_versions: asNumber(data.max_versions),
      oldest_version: asNumber(data.oldest_version),
      updated_time: asString(data.updated_time),
      versions,
    }
  }

  /** renew-self without an increment (§8). */
  async renewSelf(): Promise<TokenAuth> {
    const context: OperationContext = {purpose: 'renew-self'}
    const answer = await this.send({context, token: 'client', type: 'write'}, async (client, options) => {
      try {
        return await client.tokenRenewSelf({requestOptions: options})
      } finally {
        // node-vault keeps a renewed token for itself; ours travels in per-call headers only.
        client.token = ''
      }
    })
    return this.authOf(context, await this.expectOk(context, answer))
  }

  /** revoke-self (204). A plain request: the generated command would post its own arguments as the body. */
  async revokeSelf(): Promise<void> {
    const context: OperationContext = {purpose: 'revoke-self'}
    const answer = await this.send({context, token: 'client', type: 'write'}, (client, options) =>
      client.request({...options, method: 'POST', path: '/auth/token/revoke-self'}),
    )
    await this.expectOk(context, answer)
  }

  /** Delete operations (§7): all 204, also for a missing key. */
  async remove(
    location: KvLocation,
    action:
      | {kind: 'all-versions'}
      | {kind: 'current'}
      | {kind: 'delete' | 'destroy' | 'undelete'; versions: number[]},
    reference: string,
  ): Promise<void> {
    const context: OperationContext = {purpose: 'delete', reference}
    const {mount, path} = location
    const answer = await this.send({context, token: 'client', type: 'write'}, (client, options) => {
      switch (action.kind) {
        case 'current': {
          return client.delete(`${mount}/data/${path}`, options)
        }

        case 'all-versions': {
          return client.delete(`${mount}/metadata/${path}`, options)
        }

        default: {
          return client.write(`${mount}/${action.kind}/${path}`, {versions: action.versions}, options)
        }
      }
    })
    await this.expectOk(context, answer)
  }

  /** `POST sys/wrapping/lookup` (no client token) → the wrap's creation path. */
  async wrapLookup(wrapToken: string): Promise<{creation_path: string; creation_ttl: number}> {
    const context: OperationContext = {purpose: 'wrap-lookup'}
    const answer = await this.send({context, sent: wrapToken, type: 'read'}, (client, options) =>
      client.request({...options, json: {token: wrapToken}, method: 'POST', path: '/sys/wrapping/lookup'}),
    )
    const body = await this.expectOk(context, answer)
    const data = isEnvelope(body) ? body.data : undefined
    if (!isRecord(data)) throw unexpectedAnswer(context)
    return {creation_path: asString(data.creation_path), creation_ttl: asNumber(data.creation_ttl)}
  }

  /**
   * `POST sys/wrapping/unwrap` with the wrapping token as `X-Vault-Token` and no body; the answer is
   * the original read. Not repeated on another address after a reset: the token may be spent.
   */
  async unwrap(wrapToken: string, reference: string): Promise<KvSecret> {
    const context: OperationContext = {purpose: 'read', reference}
    const answer = await this.send(
      {context: {purpose: 'unwrap', reference}, token: {explicit: wrapToken}, type: 'write'},
      (client, options) => client.request({...options, method: 'POST', path: '/sys/wrapping/unwrap'}),
    )
    if (!answer.ok) {
      if (answer.status === 400) throw classifyFailure({purpose: 'unwrap', reference}, 400, answer.body)
      if (answer.status === 403) throw classifyFailure({purpose: 'unwrap', reference}, 400, answer.body)
    }

    return classifyRead(context, answer)
  }

  /** A read sent with `X-Vault-Wrap-TTL`: the answer is the wrap info, not the value. */
  async wrap(
    location: KvLocation,
    version: number | undefined,
    ttl: string,
    reference: string,
  ): Promise<WrapInfo> {
    const context: OperationContext = {purpose: 'read', reference}
    const query = version === undefined ? '' : `?version=${version}`
    const answer = await this.send(
      {context, token: 'client', type: 'read', wrapTtl: ttl},
      (client, options) => client.read(`${location.mount}/data/${location.path}${query}`, options),
    )
    // A read that fails is answered with the plain failure, unwrapped (an invalid TTL is a 400).
    if (!answer.ok) await this.settle(context, answer, () => classifyRead(context, answer))

    const info = isEnvelope(answer.body) ? answer.body.wrap_info : undefined
    if (!isRecord(info) || typeof info.token !== 'string' || info.token === '')
      throw unexpectedAnswer(context)
    return {
      accessor: asString(info.accessor),
      creation_path: asString(info.creation_path),
      creation_time: asString(info.creation_time),
      token: info.token,
      ttl: asNumber(info.ttl),
    }
  }

  /** `POST {m}/data/{p}` → the new version's metadata (flat in `data`). */
  async write(
    location: KvLocation,
    data: Record<string, unknown>,
    cas: number | undefined,
    reference: string,
  ): Promise<{created_time: string; version: number}> {
    const context: OperationContext = {cas: cas !== undefined, purpose: 'write', reference}
    const body = {data, ...(cas === undefined ? {} : {options: {cas}})}
    const answer = await this.send({context, sent: body, token: 'client', type: 'write'}, (client, options) =>
      client.write(`${location.mount}/data/${location.path}`, body, options),
    )
    const result = await this.expectOk(context, answer)
    const meta = isEnvelope(result) ? result.data : undefined
    if (!isRecord(meta) || typeof meta.version !== 'number') throw unexpectedAnswer(context)
    return {created_time: asString(meta.created_time), version: meta.version}
  }

  /** `POST {m}/metadata/{p}` (custom metadata). */
  async writeMetadata(location: KvLocation, body: Record<string, unknown>, reference: string): Promise<void> {
    const context: OperationContext = {purpose: 'metadata-write', reference}
    const answer = await this.send({context, sent: body, token: 'client', type: 'write'}, (client, options) =>
      client.write(`${location.mount}/metadata/${location.path}`, body, options),
    )
    await this.expectOk(context, answer)
  }

  private authOf(context: OperationContext, body: unknown): TokenAuth {
    const auth = isEnvelope(body) ? body.auth : undefined
    if (!isRecord(auth) || typeof auth.client_token !== 'string' || auth.client_token === '')
      throw unexpectedAnswer(context)
    return {
      accessor: asString(auth.accessor),
      client_token: auth.client_token,
      lease_duration: asNumber(auth.lease_duration),
      policies: asStrings(auth.policies),
      renewable: auth.renewable === true,
    }
  }

  /** Fresh options (and a fresh headers object) for every call: node-vault writes into them. */
  private callOptions(request: Request): CallOptions {
    const headers: Record<string, string> = {'X-Vault-Request': 'true'}
    if (request.token === 'client') {
      if (this.token) headers['X-Vault-Token'] = this.token
    } else if (request.token) {
      headers['X-Vault-Token'] = request.token.explicit
    }

    if (request.wrapTtl !== undefined) headers['X-Vault-Wrap-TTL'] = request.wrapTtl
    return {
      headers,
      httpAgent: this.options.agents.http,
      httpsAgent: this.options.agents.https,
      timeout: this.options.timeoutMs,
    }
  }

  /** A non-2xx answer becomes its typed error (403 after one lookup-self); 2xx yields the body. */
  private async expectOk(context: OperationContext, answer: Answer): Promise<unknown> {
    if (answer.ok) return answer.body
    return this.settle(context, answer, () => {
      throw classifyFailure(context, answer.status, answer.body)
    })
  }

  private async login(
    sent: string[],
    invoke: (client: NodeVaultClient, options: CallOptions) => Promise<unknown>,
  ): Promise<TokenAuth> {
    const context: OperationContext = {purpose: 'login'}
    const answer = await this.send({context, sent, type: 'write'}, async (client, options) => {
      try {
        return await invoke(client, options)
      } finally {
        client.token = ''
      }
    })
    if (!answer.ok) throw classifyFailure(context, answer.status, answer.body)
    return this.authOf(context, answer.body)
  }

  /**
   * One attempt at one address: the server's answer, or a transport failure (`undefined` answer).
   * Our own arguments being refused by node-vault's input checks is a bug, not a server state.
   */
  private async attempt(
    client: NodeVaultClient,
    request: Request,
    invoke: (client: NodeVaultClient, options: CallOptions) => Promise<unknown>,
  ): Promise<{answer: Answer} | {failure: NetworkFailure}> {
    try {
      return {answer: {body: await invoke(client, this.callOptions(request)), ok: true}}
    } catch (error) {
      const response = responseOf(error)
      if (response) {
        // What the server says about a request may quote it: its body and token never come back.
        const {headers} = this.callOptions(request)
        const body = concealSent(response.body, [request.sent, headers['X-Vault-Token']])
        return {answer: {body, ok: false, status: response.status}}
      }

      if (isAgentVaultError(error)) throw error
      // tv4's ValidationError: an Error with a numeric code.
      if (typeof (error as {code?: unknown}).code === 'number')
        throw new InternalError('node-vault rejected the request arguments', {cause: error})
      return {failure: networkFailure(error)}
    }
  }

  /**
   * One request with failover (§9): the preferred address first, then the others in order, each
   * once. Resolves with the server's answer; throws only for transport failures.
   */
  private async send(
    request: Request,
    invoke: (client: NodeVaultClient, options: CallOptions) => Promise<unknown>,
  ): Promise<Answer> {
    const {addresses, log} = this.options
    const order = addresses.map((_, i) => (i + this.preferred) % addresses.length)
    const failures: Array<{address: string; reason: string}> = []
    const sleep = this.options.sleep ?? ((ms: number) => delay(ms))
    for (const index of order) {
      const address = addresses[index] as string
      const client = this.clients[index] as NodeVaultClient
      for (let attempt = 0; ; attempt++) {
        const started = Date.now()
        const outcome = await this.attempt(client, request, invoke)
        if ('failure' in outcome) {
          const {failure} = outcome
          log('%s %s → %s (%dms)', request.context.purpose, address, failure.code, Date.now() - started)
          if (failure.kind === 'tls') throw tlsFailed(address, failure.code, this.options.hasCa)
          failures.push({address, reason: failureReason(failure)})
          // Before sending, any request may move on; after a reset or timeout, only reads.
          if (failure.kind === 'pre-send' || (failure.kind === 'in-flight' && request.type === 'read')) break
          throw unavailable(addresses, failures, failure.kind === 'in-flight')
        }

        const {answer} = outcome
        log(
          '%s %s → %s (%dms)',
          request.context.purpose,
          address,
          answer.ok ? 'ok' : answer.status,
          Date.now() - started,
        )
        if (!answer.ok && answer.status === 503) {
          failures.push({address, reason: 'HTTP 503'})
          break
        }

        if (!answer.ok && answer.status === 429 && attempt < RETRY_WAITS_MS.length) {
          const hinted = this.options.agents.retryAfter(address)
          await sleep(
            hinted === undefined
              ? (RETRY_WAITS_MS[attempt] as number)
              : Math.min(hinted * 1000, MAX_RETRY_AFTER_MS),
          )
          continue
        }

        this.preferred = index
        return answer
      }
    }

    throw unavailable(addresses, failures)
  }

  /**
   * Turn a classified failure into the final error: a provisional 403 is settled by one
   * lookup-self with the same token (shared by concurrent requests): 200 → PERMISSION_DENIED,
   * 403 → AUTH_REQUIRED.
   */
  private async settle<T>(context: OperationContext, answer: Answer, classify: () => T): Promise<T> {
    try {
      return classify()
    } catch (error) {
      if (!isAgentVaultError(error) || answer.ok || answer.status !== 403) throw error
      if (context.purpose === 'lookup-self') throw error
      this.forbiddenCheck ??= this.lookupSelf().then(
        () => error,
        (lookupError: unknown) =>
          isAgentVaultError(lookupError) && lookupError.code === 'AUTH_REQUIRED' ? lookupError : error,
      )
      const settled = await this.forbiddenCheck
      if (settled.code === 'AUTH_REQUIRED') throw settled
      throw error
    }
  }
}
