/**
 * `agentvault mcp`: a Model Context Protocol server on stdio (the official SDK's low-level
 * `Server`, on our own line transport) over the use engine. Each tool call runs in its own request
 * session (shared config and backend connections, its own audit record as command `mcp` with the
 * tool, references, target host, outcome and the client's name/version).
 *
 * Errors are of two kinds, as MCP has them:
 * - protocol errors (JSON-RPC `error`): malformed messages, unknown tools, and — for clients of a
 *   protocol before 2025-11-25 — arguments that break a tool's schema or exceed MAX_ARGUMENTS_BYTES;
 * - tool errors (`isError: true`): everything agentvault refuses or fails at while performing a
 *   call, carrying product.md §9's code, category, message and suggestion in `structuredContent`;
 *   from protocol 2025-11-25 on (SEP-1303) also arguments off the schema, so that the model reads
 *   what was wrong and corrects its call.
 * Neither ever carries a secret value.
 */
import type {CallToolResult, InitializeResult, ListToolsResult} from '@modelcontextprotocol/sdk/types.js'

import type {SecretMetadata} from '../backend.js'
import type {Session} from '../session.js'
import type {HttpRequestInput, ListSecretsInput, RunCommandInput, ToolSpec, UseSecretInput} from './tools.js'

import {AgentVaultError, EXIT_CODES, NotSupportedError, toAgentVaultError, UsageError} from '../errors.js'
import {parseReference} from '../references.js'
import {McpPolicy, type ResolvedPattern} from './policy.js'

/** The first protocol version whose clients get invalid arguments as tool errors (SEP-1303). */
const ARGUMENT_ERRORS_AS_TOOL_ERRORS = '2025-11-25'

/** How long a stop signal waits for the tool calls in flight before the server closes anyway. */
const STOP_GRACE_MS = 10_000

export interface McpServerOptions {
  /** `--allow`: reference patterns the server may use. */
  allow: readonly string[]
  /** `--allow-domain`, `--cacert`, `--max-response-bytes`, `--timeout`, as for `call`. */
  allowHosts?: readonly string[]
  /** `--allow-run`: offer run_command. */
  allowRun: boolean
  caCert?: string
  maxResponseBytes?: number
  /** The server's name/version for `initialize`. */
  name: string
  timeout?: number
  version: string
}

interface ListedSecret extends SecretMetadata {
  backend: string
  profile: string
  reference: string
}

interface ListSecretsResult {
  secrets: ListedSecret[]
  /** Profiles that could not be listed, with why (a refusal never hides the rest). */
  unavailable?: Array<{error: {code: string; message: string}; pattern: string}>
}

const INSTRUCTIONS = `agentvault lets you use secrets (API keys, tokens, signing keys) without ever seeing them. Call list_secrets first to learn the references you may use, then pass references — never values — to http_request, use_secret or run_command. A refusal names the --allow or --allow-domain flag the human who runs this server must add.`

/** A client-supplied name or version as it may go into the audit log: no control characters, bounded. */
function cleanLabel(text: unknown): string {
  return typeof text === 'string' ? text.replaceAll(/[\u0000-\u001F\u007F]/g, '').slice(0, 100) : ''
}

function toolError(error: AgentVaultError): CallToolResult {
  const body = {
    code: error.code,
    category: error.category,
    message: error.message,
    ...(error.suggestion !== undefined && {suggestion: error.suggestion}),
  }
  return {
    content: [
      {
        text: `Error (${error.code}, ${error.category}): ${error.message}${error.suggestion ? `\nTry this: ${error.suggestion}` : ''}`,
        type: 'text',
      },
    ],
    isError: true,
    structuredContent: {error: body},
  }
}

/** A call that its client cancelled (notifications/cancelled) or left behind by disconnecting. */
function cancelledError(): AgentVaultError {
  return new AgentVaultError(
    'cancelled',
    'CANCELLED',
    'The client cancelled this tool call (or disconnected) before it finished',
    {suggestion: 'An HTTP request may already have reached its server: check before repeating the call.'},
  )
}

function toolResult(result: object): CallToolResult {
  return {content: [{text: JSON.stringify(result), type: 'text'}], structuredContent: {...result}}
}

/** Objects of `name → value` as the `NAME: value` / `name=value` specs of `call`'s flags. */
function specsOf(
  map: Record<string, string> | undefined,
  separator: ': ' | '=',
  argument: string,
): string[] | undefined {
  if (map === undefined) return undefined
  return Object.entries(map).map(([name, value]) => {
    if (separator === '=' && name.includes('='))
      throw new UsageError('BAD_ARGUMENT', `A name in ${argument} contains "="`, {
        suggestion: `Give ${argument} names without "=".`,
      })
    return `${name}${separator}${value}`
  })
}

export class AgentVaultMcpServer {
  private client?: string
  private readonly tools: readonly ToolSpec[]

  constructor(
    private readonly root: Session,
    private readonly policy: McpPolicy,
    private readonly options: McpServerOptions,
    tools: readonly ToolSpec[],
  ) {
    this.tools = tools.filter((tool) => tool.name !== 'run_command' || options.allowRun)
  }

  /** Perform one validated tool call in its own request session; never throws. */
  async call(name: ToolSpec['name'], args: unknown, signal: AbortSignal): Promise<CallToolResult> {
    const session = this.root.derive()
    session.audit.touched = true
    session.audit.tool = name
    if (this.client) session.audit.client = this.client
    try {
      const result = await this.perform(session, name, args, signal)
      // A command stopped because its call was cancelled did not do what it was asked.
      if (signal.aborted) throw cancelledError()
      await session.finish('ok', 0)
      return toolResult(result)
    } catch (error_) {
      const error = signal.aborted ? cancelledError() : toAgentVaultError(error_)
      await session.finish(
        error.category === 'denied' ? 'denied' : 'error',
        EXIT_CODES[error.category],
        error.code,
      )
      return toolError(error)
    }
  }

  /** Audit a call of a known tool that was rejected before it ran (arguments off the schema). */
  async rejected(name: ToolSpec['name'], code: string): Promise<void> {
    const session = this.root.derive()
    session.audit.touched = true
    session.audit.tool = name
    if (this.client) session.audit.client = this.client
    await session.finish('error', EXIT_CODES.usage, code)
  }

  /** The tools/list answer, JSON Schemas built once. */
  async listTools(): Promise<ListToolsResult> {
    const z = await import('zod/v4')
    return {
      tools: this.tools.map((tool) => ({
        annotations: {
          destructiveHint: false,
          openWorldHint: tool.name !== 'list_secrets',
          readOnlyHint: tool.readOnly,
          title: tool.title,
        },
        description: tool.description,
        inputSchema: z.toJSONSchema(tool.input, {
          io: 'input',
        }) as ListToolsResult['tools'][number]['inputSchema'],
        name: tool.name,
        title: tool.title,
      })),
    }
  }

  /** Note the client's name/version from `initialize`, for the audit log. */
  setClient(info: undefined | {name?: string; version?: string}): void {
    if (!info) return
    this.client = `${cleanLabel(info.name) || 'unknown'}/${cleanLabel(info.version) || 'unknown'}`
  }

  tool(name: string): ToolSpec | undefined {
    return this.tools.find((tool) => tool.name === name)
  }

  private async httpRequest(session: Session, input: HttpRequestInput, signal: AbortSignal): Promise<object> {
    const injections = {
      ...(input.bearer !== undefined && {bearer: await this.admit(session, input.bearer)}),
      ...(input.basic !== undefined && {basic: await this.admit(session, input.basic)}),
      header: specsOf(await this.admitAll(session, input.header), ': ', 'header'),
      query: specsOf(await this.admitAll(session, input.query), '=', 'query'),
      'body-field': specsOf(await this.admitAll(session, input.body_field), '=', 'body_field'),
      'form-field': specsOf(await this.admitAll(session, input.form_field), '=', 'form_field'),
    }
    const {callWithSecrets} = await import('../use.js')
    const {toHttpResult} = await import('../use/http-result.js')
    const outcome = await callWithSecrets(
      session,
      {
        ...(input.body !== undefined && {body: Buffer.from(input.body, 'utf8')}),
        headers: specsOf(input.headers, ': ', 'headers'),
        injections,
        ...(input.method !== undefined && {method: input.method}),
        url: input.url,
      },
      this.limits(signal),
    )
    return toHttpResult(outcome)
  }

  /** Check one reference against the policy; the canonical reference to use instead. */
  private async admit(session: Session, target: string): Promise<string> {
    return (await this.policy.check(session, target)).canonical
  }

  private async admitAll(
    session: Session,
    map: Record<string, string> | undefined,
  ): Promise<Record<string, string> | undefined> {
    if (map === undefined) return undefined
    const admitted: Record<string, string> = {}
    for (const [name, target] of Object.entries(map)) admitted[name] = await this.admit(session, target)
    return admitted
  }

  private limits(signal: AbortSignal) {
    return {
      signal,
      ...(this.options.allowHosts && {allowHosts: this.options.allowHosts}),
      ...(this.options.caCert !== undefined && {caCert: this.options.caCert}),
      ...(this.options.maxResponseBytes !== undefined && {maxResponseBytes: this.options.maxResponseBytes}),
      ...(this.options.timeout !== undefined && {timeout: this.options.timeout}),
    }
  }

  /** Every secret the policy admits, pattern by pattern (a failing profile is reported, not fatal). */
  private async listSecrets(session: Session, input: ListSecretsInput): Promise<ListSecretsResult> {
    session.audit.operation = 'list'
    const found = new Map<string, ListedSecret>()
    const unavailable: NonNullable<ListSecretsResult['unavailable']> = []
    for (const pattern of this.policy.patterns) {
      try {
        for (const secret of await this.listPattern(session, pattern)) {
          const {prefix} = input
          if (prefix !== undefined && !secret.name.startsWith(prefix) && !secret.reference.startsWith(prefix))
            continue
          found.set(secret.reference, secret)
        }
      } catch (error_) {
        const error = toAgentVaultError(error_)
        unavailable.push({error: {code: error.code, message: error.message}, pattern: pattern.text})
      }
    }

    return {
      secrets: [...found.values()].sort((a, b) =>
        a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0,
      ),
      ...(unavailable.length > 0 && {unavailable}),
    }
  }

  private async listPattern(session: Session, pattern: ResolvedPattern): Promise<ListedSecret[]> {
    const config = await session.config()
    const names =
      pattern.profileName === '*'
        ? Object.entries(config.profiles)
            .filter(([, profile]) => profile.kind === pattern.kind)
            .map(([profileName]) => profileName)
        : [pattern.profileName]
    const profiles = await Promise.all(
      names.length === 0
        ? [session.profileFor(pattern.kind)]
        : names.map((profileName) => session.profileFor(pattern.kind, profileName)),
    )
    const listed: ListedSecret[] = []
    // What a reference without ?profile= resolves to needs none.
    const fallback = (await session.profileFor(pattern.kind)).name
    for (const profile of profiles) {
      session.noteProfile(profile)
      const backend = await session.backendFor(profile)
      if (!backend.list || !backend.capabilities.list) {
        // agentauth: its one reference needs no listing.
        if (pattern.matcher.test(pattern.literalPrefix) && !pattern.literalPrefix.includes('#')) {
          const ref = parseReference(
            `${pattern.scheme}://${pattern.literalPrefix}${profile.name === fallback ? '' : `?profile=${profile.name}`}`,
          )
          listed.push({
            backend: profile.kind,
            name: ref.path,
            profile: profile.name,
            reference: ref.canonical,
          })
          continue
        }

        throw new NotSupportedError(profile.kind, 'Listing secrets')
      }

      const prefix = pattern.literalPrefix.split('#')[0] as string
      let scope = prefix
      let base = ''
      if (pattern.kind === 'openbao') {
        // A folder to walk: the prefix up to its last "/" (at least the mount).
        const slash = prefix.lastIndexOf('/')
        if (slash <= 0)
          throw new NotSupportedError(
            'openbao',
            'Listing a pattern whose mount has a "*"',
            'Write the mount out: openbao+kv2://secret/app/*.',
          )
        base = prefix.slice(0, slash)
        scope = `${pattern.scheme}://${base}`
      }

      const entries = await backend.list(scope, {recursive: true})
      for (const entry of entries) {
        if (entry.type === 'folder' || entry.name.endsWith('/')) continue
        const path = base === '' ? entry.name : `${base}/${entry.name}`
        let ref
        try {
          ref = parseReference(
            `${pattern.scheme}://${path}${profile.name === fallback ? '' : `?profile=${profile.name}`}`,
          )
        } catch {
          continue
        }

        if (!this.policy.allows(ref, profile)) continue
        listed.push({
          ...entry,
          backend: profile.kind,
          name: entry.name,
          profile: profile.name,
          reference: ref.canonical,
        })
      }
    }

    return listed
  }

  private async perform(
    session: Session,
    name: ToolSpec['name'],
    args: unknown,
    signal: AbortSignal,
  ): Promise<object> {
    switch (name) {
      case 'http_request': {
        return this.httpRequest(session, args as HttpRequestInput, signal)
      }

      case 'list_secrets': {
        return this.listSecrets(session, args as ListSecretsInput)
      }

      case 'run_command': {
        const input = args as RunCommandInput
        const references = new Map<string, string>()
        for (const [variable, target] of Object.entries(input.env ?? {}))
          references.set(variable, await this.admit(session, target))
        const {runCommand} = await import('./run-command.js')
        return runCommand(session, input, references, signal)
      }

      case 'use_secret': {
        const input = args as UseSecretInput
        const reference = await this.admit(session, input.reference)
        const {useSecret} = await import('../use.js')
        return useSecret(
          session,
          reference,
          {operation: input.operation, params: input.params ?? {}},
          this.limits(signal),
        )
      }
    }
  }
}

/**
 * Start the server on stdin/stdout and resolve when the client disconnects (stdin ends).
 * Nothing but protocol messages is written to stdout.
 */
export async function serveMcp(root: Session, options: McpServerOptions): Promise<void> {
  const policy = await McpPolicy.create(root, options.allow)
  const [{Server}, types, {ErrorCode, McpError}, {TOOLS, MAX_ARGUMENTS_BYTES}, {LineTransport}, z] =
    await Promise.all([
      import('@modelcontextprotocol/sdk/server/index.js'),
      import('@modelcontextprotocol/sdk/types.js'),
      import('@modelcontextprotocol/sdk/types.js'),
      import('./tools.js'),
      import('./stdio-transport.js'),
      import('zod/v4'),
    ])
  const mcp = new AgentVaultMcpServer(root, policy, options, TOOLS)
  const server = new Server(
    {name: options.name, title: 'agentvault', version: options.version},
    {capabilities: {tools: {}}, instructions: INSTRUCTIONS},
  )
  // Loose request schemas: the SDK would answer a malformed one with an internal error (-32603);
  // checked here, it is the invalid-params error (-32602) it is.
  const request = (method: string) =>
    z.object({method: z.literal(method), params: z.unknown().optional()}).loose()
  const invalidParams = (message: string) => new McpError(ErrorCode.InvalidParams, message)
  let listed: ListToolsResult | undefined
  /** Aborts every call in flight: the server is stopping and no client will wait for them. */
  const shutdown = new AbortController()
  const pending = new Set<Promise<unknown>>()
  const track = <T>(promise: Promise<T>): Promise<T> => {
    pending.add(promise)
    promise.finally(() => pending.delete(promise)).catch(() => {})
    return promise
  }

  // The SDK's own initialize, behind a check of its params: a malformed initialize would be an
  // internal error (-32603) carrying a schema dump.
  const initialize = (
    server as unknown as {_oninitialize(request: unknown): Promise<InitializeResult>}
  )._oninitialize.bind(server)
  /** The protocol version agreed at initialize (dates in ISO form compare as strings). */
  let protocolVersion = ''
  /**
   * Set once an initialize was accepted. Before it only ping is answered (the client's name and
   * protocol version, which the audit and argument errors depend on, are not known yet); after it
   * a second initialize is refused, as it would rename the client mid-session.
   */
  let initialized = false
  const invalidRequest = (message: string) => new McpError(ErrorCode.InvalidRequest, message)
  const mustBeInitialized = (method: string): void => {
    if (!initialized)
      throw invalidRequest(
        `Invalid Request: ${method} before initialize; send initialize first (only ping is answered before it)`,
      )
  }

  server.setRequestHandler(request('initialize'), async (message) => {
    if (initialized) throw invalidRequest('Invalid Request: the session is already initialized')
    const parsed = types.InitializeRequestSchema.safeParse(message)
    if (!parsed.success)
      throw invalidParams(
        'Invalid initialize request: params must hold protocolVersion (a string), capabilities (an object) and clientInfo {name, version}',
      )
    // Before any await: a client that sends its next request at once finds the session initialized.
    initialized = true
    const result = await initialize(parsed.data)
    protocolVersion = result.protocolVersion
    return result
  })
  /** Arguments the model got wrong: a tool error it can read, or a protocol error for older clients. */
  const argumentError = (code: string, message: string, suggestion: string): CallToolResult => {
    if (protocolVersion < ARGUMENT_ERRORS_AS_TOOL_ERRORS) throw invalidParams(message)
    return toolError(new UsageError(code, message, {suggestion}))
  }

  server.setRequestHandler(request('tools/list'), async (message) => {
    mustBeInitialized('tools/list')
    const parsed = types.ListToolsRequestSchema.safeParse(message)
    if (!parsed.success) throw invalidParams('Invalid tools/list request')
    // Every tool is listed at once and no cursor was ever given out: any cursor is not one of ours.
    if (parsed.data.params?.cursor !== undefined)
      throw invalidParams(
        'Invalid cursor: this server lists all its tools in one answer and gives no cursors',
      )
    listed ??= await mcp.listTools()
    return listed
  })
  // Registered as the SDK Protocol's handler, not through Server's override: that one checks a
  // tools/call first and answers a malformed one with a schema dump, before the check below.
  const setProtocolHandler = (
    Object.getPrototypeOf(Server.prototype) as typeof Server.prototype
  ).setRequestHandler.bind(server) as typeof server.setRequestHandler
  setProtocolHandler(request('tools/call'), async (message, extra) => {
    mustBeInitialized('tools/call')
    const parsed = types.CallToolRequestSchema.safeParse(message)
    if (!parsed.success)
      throw invalidParams('Invalid tools/call request: params must hold a tool name and an arguments object')
    const {arguments: args, name} = parsed.data.params
    mcp.setClient(server.getClientVersion())
    const tool = mcp.tool(name)
    if (!tool)
      throw invalidParams(
        name === 'run_command'
          ? 'Unknown tool: run_command (this server was started without --allow-run)'
          : `Unknown tool: ${JSON.stringify(name.slice(0, 64))}`,
      )
    const size = Buffer.byteLength(JSON.stringify(args ?? {}))
    if (size > MAX_ARGUMENTS_BYTES) {
      await mcp.rejected(tool.name, 'ARGUMENTS_TOO_LARGE')
      return argumentError(
        'ARGUMENTS_TOO_LARGE',
        `Arguments of ${tool.name} are ${size} bytes: the limit is ${MAX_ARGUMENTS_BYTES} bytes`,
        'Send less in one call: split the data, or keep large payloads out of tool arguments.',
      )
    }

    const checked = tool.input.safeParse(args ?? {})
    if (!checked.success) {
      await mcp.rejected(tool.name, 'INVALID_ARGUMENTS')
      return argumentError(
        'INVALID_ARGUMENTS',
        `Invalid arguments for ${tool.name}: ${checked.error.issues
          .slice(0, 5)
          .map((issue) => `${issue.path.join('.') || '(arguments)'}: ${issue.message}`)
          .join('; ')}`,
        `Call ${tool.name} again with arguments that match its input schema (tools/list).`,
      )
    }

    return track(mcp.call(tool.name, checked.data, AbortSignal.any([extra.signal, shutdown.signal])))
  })

  const transport = new LineTransport(
    types.JSONRPCMessageSchema as unknown as {safeParse(value: unknown): {data?: unknown; success: boolean}},
  )
  // `debug` loaded only when there is something to say: not on the start-up path.
  transport.onhold = () => {
    import('debug')
      .then(({default: createDebug}) =>
        createDebug('agentvault:mcp')(
          'the client is not reading its answers: its further requests wait until it reads them',
        ),
      )
      .catch(() => {})
  }

  const closed = new Promise<void>((resolve) => {
    // eslint-disable-next-line unicorn/prefer-add-event-listener -- the SDK's Protocol has only this hook
    server.onclose = () => resolve()
  })
  // The client closed stdin: answer what it already asked, then stop. A client that shuts down
  // (the MCP stdio lifecycle) follows with SIGTERM, which then cancels what is still running.
  let inputEnded = false
  transport.oninputend = () => {
    inputEnded = true
    ;(async () => {
      while (pending.size > 0) await Promise.allSettled(pending)
      await new Promise((resolve) => {
        setImmediate(resolve)
      })
      await server.close()
    })().catch(() => {})
  }

  // Errors of the connection itself (a client gone mid-write) end the session; nothing to report.
  // eslint-disable-next-line unicorn/prefer-add-event-listener -- the SDK's Protocol has only this hook
  server.onerror = () => {}
  // As `proxy`: each value's maskers built once, and every value a tool call used concealed in the
  // answers to later calls too; on before the first call can arrive (an upstream may keep one and hand it back to a call using another).
  const redaction = await import('../use/redaction.js')
  redaction.shareMaskers(true)
  await server.connect(transport)
  // This server declares no tasks capability, so a task-augmented request is performed as a plain
  // one (MCP 2025-11-25, tasks); the SDK would answer it with an internal error (-32603) instead.
  const deliver = transport.onmessage
  // eslint-disable-next-line unicorn/prefer-add-event-listener -- the SDK's Transport has only this hook
  transport.onmessage = (message) => {
    const params = (message as {params?: unknown}).params as Record<string, unknown> | undefined
    if (
      'method' in message &&
      'id' in message &&
      typeof params === 'object' &&
      params !== null &&
      'task' in params
    ) {
      const plain = {...params}
      delete plain.task
      deliver?.({...message, params: plain} as typeof message)
    } else deliver?.(message)
  }

  // A signal stops the server, after the tool calls in flight (at most STOP_GRACE_MS): their
  // secrets may already be on their way, and their audit events are written as they finish. The
  // handlers stay until the server has closed, so a second Ctrl-C or SIGTERM cannot kill it first.
  // After the client closed stdin, a signal is its shutdown (SIGKILL follows within seconds):
  // the calls in flight are cancelled at once. Whatever outlives the grace is cancelled too, and
  // awaited: its audit event written, run_command's process group stopped.
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    ;(async () => {
      if (pending.size > 0 && inputEnded)
        process.stderr.write(
          `agentvault mcp: the client has closed: cancelling the ${pending.size} tool call(s) in flight.\n`,
        )
      else if (pending.size > 0) {
        process.stderr.write(
          `agentvault mcp: stopping after the ${pending.size} tool call(s) in flight (at most ${STOP_GRACE_MS / 1000} s).\n`,
        )
        const {setTimeout: delay} = await import('node:timers/promises')
        const grace = delay(STOP_GRACE_MS, undefined, {ref: false})
        const settled = (async () => {
          while (pending.size > 0) await Promise.allSettled(pending)
        })()
        await Promise.race([settled, grace])
      }

      shutdown.abort()
      while (pending.size > 0) await Promise.allSettled(pending)
      await server.close()
    })().catch(() => {})
  }

  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  try {
    await closed
  } finally {
    redaction.shareMaskers(false)
    process.off('SIGTERM', stop)
    process.off('SIGINT', stop)
  }
}
