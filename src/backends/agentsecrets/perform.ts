/**
 * HTTP use through AgentSecrets (protocols/agentsecrets.md §4.2, §5, §6): the same request over
 * the CLI (`agentsecrets call`) or the proxy (`POST /proxy`), the answer classified by body shape
 * (E1–E5) and otherwise returned as the upstream's response (E7) in the `--json` shape of `call`.
 */
import type {Debugger} from 'debug'
import type {IncomingHttpHeaders} from 'node:http'

import type {BackendContext, UseResult} from '../../core/backend.js'
import type {AgentSecretsCli} from './cli.js'
import type {AgentSecretsCall} from './request.js'
import type {AgentSecretsSettings} from './settings.js'

import {type HttpResult, toHttpResult} from '../../core/use/http-result.js'
import {
  AgentSecretsProtocolError,
  classifyCliText,
  classifyResponse,
  proxyDown,
  quoteOutput,
} from './errors.js'

/** §5.4 / §7: what AgentSecrets puts where an injected value was echoed. */
export const REDACTION_MARKER = '[REDACTED_BY_AGENTSECRETS]'

export type Transport = {cli: AgentSecretsCli; kind: 'cli'} | {kind: 'proxy'; port: number}

export interface PerformOptions {
  context: BackendContext
  log?: Debugger
  settings: AgentSecretsSettings
}

/** The response, in the shape of `call --json` (HttpResult) so `call` and `use` print it as-is. */
export type AgentSecretsHttpResult = HttpResult & UseResult

/** Lower-cased names; `set-cookie` stays a list, other repeated headers are joined as Node does. */
export function normaliseHeaders(
  headers: Record<string, readonly string[] | string | undefined>,
): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
  for (const [name, raw] of Object.entries(headers)) {
    if (raw === undefined) continue
    const lower = name.toLowerCase()
    const values = [...(typeof raw === 'string' ? [raw] : raw)]
    const existing = result[lower]
    const all =
      existing === undefined ? values : [...(Array.isArray(existing) ? existing : [existing]), ...values]
    result[lower] = lower === 'set-cookie' ? all : all.join(', ')
  }

  return result
}

/** The `call --json` shape; `redacted` when AgentSecrets said so or its marker is in the answer. */
function resultOf(
  response: {body: Buffer; headers: Record<string, string | string[]>; status: number},
  started: number,
  reportedRedacted = false,
): AgentSecretsHttpResult {
  const {body, headers, status} = response
  // Spread: an interface has no index signature; UseResult wants one.
  return {
    ...toHttpResult({
      body,
      duration_ms: Math.max(0, Math.round(performance.now() - started)),
      headers,
      redacted: reportedRedacted || sawMarker(body, headers),
      status,
    }),
  }
}

function sawMarker(body: Buffer, headers: Record<string, string | string[]>): boolean {
  if (body.includes(REDACTION_MARKER)) return true
  return Object.values(headers).some((value) =>
    (Array.isArray(value) ? value : [value]).some((item) => item.includes(REDACTION_MARKER)),
  )
}

async function viaCli(
  cli: AgentSecretsCli,
  call: AgentSecretsCall,
  options: PerformOptions,
  started: number,
): Promise<AgentSecretsHttpResult> {
  const {callArgv, checkCall, checkCliTransportLimits} = await import('./request.js')
  const {CALL_TIMEOUT_MS} = await import('./cli.js')
  const json = await cli.callJson()
  checkCall(call, json)
  checkCliTransportLimits(call)
  // The agent token travels in the environment the CLI reads (AS_AGENT_TOKEN), never in argv (--token).
  const {resolveTokens} = await import('./tokens.js')
  const tokens = await resolveTokens(options.context, options.settings.port)
  const output = await cli.run(callArgv(call, json), {
    env: tokens.agentToken === undefined ? {} : {AS_AGENT_TOKEN: tokens.agentToken},
    timeoutMs: CALL_TIMEOUT_MS,
  })
  // The CLI's and the proxy's error texts may quote what was sent (the body, the agent token).
  const {concealSent} = await import('../../core/conceal.js')
  const scrub = (text: string): string =>
    concealSent(text, [call.body, tokens.agentToken, tokens.sessionToken])
  const context = {
    keys: call.injections.map((injection) => injection.key),
    method: call.method,
    targetHost: call.url.hostname,
  }
  const {cliFailure} = await import('./manage.js')
  if (json) {
    const {parseEnvelope} = await import('./call-output.js')
    let envelope: ReturnType<typeof parseEnvelope>
    try {
      envelope = parseEnvelope(output.stdout)
    } catch (error) {
      // No envelope at all: the CLI failed before the call (no project, bad flags…).
      const found = classifyCliText(scrub(output.stdout + '\n' + output.stderr))
      if (found) throw found
      if (/^\s*(?:x|✗|Error:)\s/m.test(output.stdout + '\n' + output.stderr))
        throw cliFailure(output, 'call', scrub)
      throw error
    }

    options.log?.('call envelope status %d', envelope.status)
    if (envelope.status === 0)
      throw proxyDown(`agentsecrets call: ${quoteOutput(scrub(envelope.error ?? 'no response'))}`)
    const classified = classifyResponse(envelope.status, envelope.body, context)
    if (classified) throw classified
    const result = resultOf(
      {
        body: Buffer.from(envelope.body, 'utf8'),
        headers: normaliseHeaders(envelope.headers),
        status: envelope.status,
      },
      started,
      envelope.redacted,
    )
    if (envelope.duration_ms !== undefined) result.duration_ms = envelope.duration_ms
    return result
  }

  const {parseTextResult, textFailure} = await import('./call-output.js')
  const text = parseTextResult(output.stdout)
  if (!text) {
    const failure = textFailure(scrub(output.stdout), scrub(output.stderr))
    if (failure !== undefined) {
      const found = classifyCliText(failure)
      if (found) throw found
      if (/failed to (?:connect|reach)|connection refused/i.test(failure) && !/upstream/i.test(failure))
        throw proxyDown(`agentsecrets call: ${quoteOutput(failure)}`)
    }

    if (/^\s*(?:x|✗|Error:)\s/m.test(output.stdout + '\n' + output.stderr))
      throw cliFailure(output, 'call', scrub)
    throw new AgentSecretsProtocolError('`agentsecrets call` printed no `HTTP <status>` line')
  }

  const classified = classifyResponse(text.status, text.body, context)
  if (classified) throw classified
  const body = Buffer.from(text.body, 'utf8')
  return resultOf({body, headers: {}, status: text.status}, started)
}

async function viaProxy(
  port: number,
  call: AgentSecretsCall,
  options: PerformOptions,
  started: number,
): Promise<AgentSecretsHttpResult> {
  const {checkCall, proxyHeaders} = await import('./request.js')
  checkCall(call, true)
  const {resolveTokens} = await import('./tokens.js')
  const tokens = await resolveTokens(options.context, port)
  const headers = proxyHeaders(call, {
    ...(options.settings.agentId === undefined ? {} : {agentId: options.settings.agentId}),
    ...(tokens.agentToken === undefined ? {} : {agentToken: tokens.agentToken}),
    ...(tokens.sessionToken === undefined ? {} : {sessionToken: tokens.sessionToken}),
  })
  const {proxyRequest} = await import('./proxy-client.js')
  const response = await proxyRequest({
    ...(call.body ? {body: call.body} : {}),
    headers,
    method: call.method,
    path: '/proxy',
    port,
  })
  options.log?.('proxy status %d', response.status)
  const classified = classifyResponse(response.status, response.body, {
    keys: call.injections.map((injection) => injection.key),
    method: call.method,
    targetHost: call.url.hostname,
  })
  if (classified) throw classified
  const normalised = normaliseHeaders(
    response.headers as IncomingHttpHeaders as Record<string, string | string[] | undefined>,
  )
  return resultOf({body: response.body, headers: normalised, status: response.status}, started)
}

/** Perform `call` through the chosen transport. */
export async function performCall(
  transport: Transport,
  call: AgentSecretsCall,
  options: PerformOptions,
): Promise<AgentSecretsHttpResult> {
  const started = performance.now()
  return transport.kind === 'cli'
    ? viaCli(transport.cli, call, options, started)
    : viaProxy(transport.port, call, options, started)
}
