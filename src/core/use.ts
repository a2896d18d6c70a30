/**
 * The service behind `use` and `call` (product.md §5): finds each secret's backend, lets a backend
 * that performs operations itself do so (sanctum, agentsecrets), and otherwise runs agentvault's
 * own engine (use-engine.ts) — checking host allowlists before any value is read, wiping values
 * afterwards, and filling the audit record (operation, references, target host, status).
 */
import {resolve} from 'node:path'

import type {Backend, UseHttpRequest, UseRequest, UseResult} from './backend.js'
import type {Profile} from './config.js'
import type {SecretReference} from './references.js'
import type {Session} from './session.js'
import type {EngineOptions, HttpPlan, SecretPolicy} from './use-engine.js'
import type {HttpOutcome} from './use/http-result.js'
import type {Redactor} from './use/redaction.js'
import type {InjectionFlags} from './use/specs.js'

import {NotSupportedError, UsageError} from './errors.js'

/** Limits and trust given on the command line; each has a default. */
export interface UseLimits {
  /** `--allow-host`: hosts for secrets without an allowlist of their own. */
  allowHosts?: readonly string[]
  /** `--cacert`: a PEM file of extra trusted CAs. */
  caCert?: string
  maxResponseBytes?: number
  /** What an echoed secret becomes in a response (`proxy`: `[REDACTED_BY_AGENTSECRETS]`). */
  redactionMarker?: string
  /** Aborts agentvault's own HTTP request (`mcp`: a cancelled tool call, a client gone). */
  signal?: AbortSignal
  /** Seconds. */
  timeout?: number
}

export interface CallOptions extends UseLimits {
  /**
   * Called (before the values are wiped) with a redactor of the values this call read, so that the
   * caller can conceal them in text of its own (`proxy`: a client-supplied agent id in its logs).
   */
  concealWith?(redactor: Redactor): void
}

export interface UseOptions extends UseLimits {
  /** `--reveal`: required by operations that return a credential (`http_header`). */
  reveal?: boolean
}

export interface CallRequest {
  body?: Buffer
  /** `-H 'Name: value'` specs. */
  headers?: readonly string[]
  injections: InjectionFlags
  method?: string
  url: string
}

interface OpenedSecret {
  backend: Backend
  profile: Profile
  ref: SecretReference
}

interface EngineModules {
  engine: typeof import('./use-engine.js')
  hosts: typeof import('./use/hosts.js')
  redaction: typeof import('./use/redaction.js')
  specs: typeof import('./use/specs.js')
}

let engineModules: Promise<EngineModules> | undefined

/**
 * The engine's modules, imported on first use (never at startup) and then kept: a long-lived
 * `proxy` calls the engine per request, and each `await import()` costs it microseconds.
 */
function modules(): Promise<EngineModules> {
  engineModules ??= Promise.all([
    import('./use-engine.js'),
    import('./use/hosts.js'),
    import('./use/redaction.js'),
    import('./use/specs.js'),
  ]).then(([engine, hosts, redaction, specs]) => ({engine, hosts, redaction, specs}))
  return engineModules
}

async function engineOptions(
  session: Session,
  limits: UseLimits,
  profiles: readonly Profile[],
): Promise<EngineOptions> {
  const {
    engine: {DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT_MS},
    hosts: {normaliseHostPattern},
  } = await modules()
  const caCertFiles = limits.caCert === undefined ? [] : [resolve(limits.caCert)]
  for (const profile of new Set(profiles)) {
    const {caCert} = profile.settings
    // A profile's relative path is relative to the agentvault home, where its config lives.
    if (typeof caCert === 'string' && caCert !== '') caCertFiles.push(resolve(session.home, caCert))
  }

  return {
    // Checked here so that a mistyped --allow-host is an error, not a silent non-match.
    allowHosts: (limits.allowHosts ?? []).map((pattern) => normaliseHostPattern(pattern)),
    caCertFiles: [...new Set(caCertFiles)],
    maxResponseBytes: limits.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    ...(limits.redactionMarker !== undefined && {redactionMarker: limits.redactionMarker}),
    ...(limits.signal && {signal: limits.signal}),
    timeoutMs: limits.timeout === undefined ? DEFAULT_TIMEOUT_MS : limits.timeout * 1000,
  }
}

/** Open a reference and check that its backend offers `operation`. */
async function openFor(session: Session, ref: SecretReference, operation: string): Promise<OpenedSecret> {
  const {backend, profile} = await session.open(ref)
  if (!backend.capabilities.useOperations.includes(operation))
    throw new NotSupportedError(backend.kind, `The ${operation} operation`)
  return {backend, profile, ref}
}

async function policyOf({backend, profile, ref}: OpenedSecret): Promise<SecretPolicy> {
  const metadata = backend.describe ? await backend.describe(ref) : undefined
  return {
    ...(metadata?.allowedDomains && {allowedDomains: metadata.allowedDomains}),
    profile,
    reference: ref.canonical,
  }
}

async function readValue({backend, ref}: OpenedSecret): Promise<Buffer> {
  if (!backend.get || !backend.capabilities.get)
    throw new NotSupportedError(backend.kind, 'Using its secrets in agentvault’s own engine')
  return backend.get(ref)
}

/** A backend that performs HTTP use itself (sanctum, agentsecrets): the value never reaches us. */
function isServerSide(backend: Backend): boolean {
  return backend.use !== undefined
}

/** The checked plan as the backend sees it: references instead of canonical strings. */
function httpRequestOf(plan: HttpPlan, refs: ReadonlyMap<string, SecretReference>): UseHttpRequest {
  return {
    ...(plan.body && {body: plan.body}),
    headers: plan.headers,
    injections: plan.injections.map((injection) => ({
      reference: refs.get(injection.reference) as SecretReference,
      style: injection.style,
      ...(injection.target !== undefined && {target: injection.target}),
    })),
    method: plan.method,
    url: plan.url.href,
  }
}

/** A server-side backend's `call --json`-shaped result as the engine's outcome. */
async function outcomeOf(result: UseResult): Promise<HttpOutcome> {
  const {STATUS_CODES} = await import('node:http')
  const status = typeof result.status === 'number' ? result.status : 0
  const text = typeof result.body === 'string' ? result.body : ''
  const headers = (result.headers ?? {}) as Record<string, string | string[]>
  return {
    body: Buffer.from(text, result.bodyEncoding === 'base64' ? 'base64' : 'utf8'),
    duration_ms: typeof result.duration_ms === 'number' ? result.duration_ms : 0,
    headers,
    redacted: result.redacted === true,
    status,
    statusText: typeof result.statusText === 'string' ? result.statusText : (STATUS_CODES[status] ?? ''),
  }
}

/**
 * `call` whose secrets live in a backend that injects them itself: the whole request goes to that
 * backend (its own allowlist and redaction apply). Mixing it with other backends' secrets in one
 * request is refused: neither side could inject the other's.
 */
async function callServerSide(
  session: Session,
  plan: HttpPlan,
  opened: readonly OpenedSecret[],
  refs: ReadonlyMap<string, SecretReference>,
): Promise<HttpOutcome> {
  const [first] = opened as [OpenedSecret, ...OpenedSecret[]]
  if (opened.some((secret) => secret.backend !== first.backend))
    throw new UsageError(
      'MIXED_CALL_BACKENDS',
      `Secrets of ${first.backend.kind} profile ${first.profile.name} are injected by ${first.backend.kind} itself: one call cannot combine them with secrets of another profile or backend`,
      {suggestion: 'Make separate calls, or keep every secret of this request in the same profile.'},
    )
  const use = first.backend.use as NonNullable<Backend['use']>
  const result = await use.call(first.backend, first.ref, {
    http: httpRequestOf(plan, refs),
    operation: 'http_request',
    params: {},
  })
  const outcome = await outcomeOf(result)
  session.audit.status = outcome.status
  return outcome
}

/**
 * `agentvault use REF OPERATION`: perform one operation with a secret and return only its result.
 * Parameters are checked (and `--reveal` demanded where needed) before the secret is touched.
 */
export async function useSecret(
  session: Session,
  target: string,
  request: UseRequest,
  options: UseOptions = {},
): Promise<UseResult> {
  const {engine} = await modules()
  const ref = await session.parseTarget(target)
  const use = engine.validateUseRequest(request, ref.canonical)
  if (use.operation === 'http_header' && !options.reveal)
    throw new UsageError('REVEAL_REQUIRED', 'http_header returns a credential: refusing without --reveal', {
      suggestion: `Add --reveal, or let agentvault send the request itself: agentvault use ${target} http_request --param url=URL`,
    })
  session.audit.operation = use.operation
  const url = engine.targetOf(use)
  if (url) session.audit.targetHost = url.host
  const opened = await openFor(session, ref, use.operation)
  if (opened.backend.use) {
    // A backend that never hands values out gets the checked request with its injection.
    const http =
      use.operation === 'http_request' && !opened.backend.capabilities.get
        ? httpRequestOf(use.plan, new Map([[ref.canonical, ref]]))
        : undefined
    const result = await opened.backend.use(ref, {
      operation: use.operation,
      params: request.params,
      ...(http && {http}),
    })
    if (typeof result.status === 'number') session.audit.status = result.status
    return result
  }

  const policy = await policyOf(opened)
  const settings = await engineOptions(session, options, [opened.profile])
  if (url) engine.assertHostAllowed(url, [policy], settings.allowHosts)
  const value = await readValue(opened)
  try {
    const result = await engine.performUse(use, {policy, value}, settings)
    if (typeof result.status === 'number') session.audit.status = result.status
    return result
  } finally {
    value.fill(0)
  }
}

/**
 * `agentvault call URL`: one HTTP request with secrets injected in any combination of styles.
 * Every secret's allowlist is checked before any value is read.
 */
export async function callWithSecrets(
  session: Session,
  call: CallRequest,
  limits: CallOptions = {},
): Promise<HttpOutcome> {
  const {
    engine,
    redaction: {createRedactor},
    specs: {parseHeaderSpec, parseInjections},
  } = await modules()
  const injections = parseInjections(call.injections)
  const headers = (call.headers ?? []).map((spec): [string, string] => {
    const {name, value} = parseHeaderSpec(spec, '-H/--header')
    return [name, value]
  })
  const refs = new Map<string, SecretReference>()
  const resolved = await Promise.all(
    injections.map(async (injection) => {
      const ref = await session.parseTarget(injection.reference)
      refs.set(ref.canonical, ref)
      return {...injection, reference: ref.canonical}
    }),
  )
  const plan = engine.planHttp({
    ...(call.body && {body: call.body}),
    headers,
    injections: resolved,
    ...(call.method !== undefined && {method: call.method}),
    url: call.url,
  })
  session.audit.operation = 'http_request'
  session.audit.targetHost = plan.url.host
  const opened = await Promise.all([...refs.values()].map((ref) => openFor(session, ref, 'http_request')))
  if (opened.some((secret) => isServerSide(secret.backend)))
    return callServerSide(session, plan, opened, refs)
  const policies = await Promise.all(opened.map((secret) => policyOf(secret)))
  const settings = await engineOptions(
    session,
    limits,
    opened.map((secret) => secret.profile),
  )
  engine.assertHostAllowed(plan.url, policies, settings.allowHosts)
  const values = new Map<string, Buffer>()
  let redactor: Redactor | undefined
  try {
    await Promise.all(
      opened.map(async (secret) => {
        values.set(secret.ref.canonical, await readValue(secret))
      }),
    )
    redactor = createRedactor([...values.values()], settings.redactionMarker)
    const outcome = await engine.performHttp(plan, values, policies, {...settings, redactor})
    session.audit.status = outcome.status
    return outcome
  } finally {
    // The response's redactor conceals the caller's text too (one set of maskers per request).
    if (limits.concealWith && values.size > 0)
      limits.concealWith(redactor ?? createRedactor([...values.values()], limits.redactionMarker))

    for (const value of values.values()) value.fill(0)
  }
}
