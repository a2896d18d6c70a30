/**
 * AgentSecrets errors (protocols/agentsecrets.md §6): responses and CLI output classified by the
 * shape of their body, never by status alone. Anything that is not a recognised AgentSecrets error
 * is the upstream's own answer and is returned as a response (E7), not raised.
 *
 * Messages quote only text proven safe: key names (environment-variable names), host names and
 * block slugs. CLI error lines are quoted cleaned and bounded; they never carry values.
 */
import {
  AgentVaultError,
  AuthError,
  BackendUnavailableError,
  DeniedError,
  SecretNotFoundError,
} from '../../core/errors.js'

/** An AgentSecrets key: an environment-variable name. */
export const KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/
/** A host name or IP literal we are willing to print back. */
const HOST_PATTERN = /^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]{2,45}\]$/
const MAX_QUOTE = 200

/** Block slugs of 5.4 other than the allowlist ones (E2). */
export const BLOCK_SLUGS = [
  'non_https_blocked',
  'capability_denied',
  'policy_denied',
  'policy_approval_required',
  'policy_approval_denied',
  'ssrf_protection_blocked',
] as const
const ALLOWLIST_SLUGS = new Set(['domain_not_in_allowlist', 'empty_allowlist'])
const NOT_FOUND = /secret '([^']+)' not found/
const SESSION_TOKEN_ERROR = 'Invalid or missing session token'

/** Text from the CLI for a terminal: no control characters, bounded (4.5 step 8: at most 200 characters). */
export function quoteOutput(text: string, max = MAX_QUOTE): string {
  const flat = text
    .replaceAll(/\u001B\[[0-?]*[ -/]*[@-~]|\u001B\][^\u0007\u001B]*(?:\u0007|\u001B\\)?/g, '')
    .replaceAll(/[\u0000-\u001F\u007F-\u009F]+/g, ' ')
    .trim()
  return flat.length > max ? `${flat.slice(0, max)}…` : flat
}

/** The CLI or the proxy answered something agentvault cannot read (`backend_protocol`). */
export class AgentSecretsProtocolError extends BackendUnavailableError {
  constructor(what: string, details?: Record<string, unknown>) {
    super('AGENTSECRETS_PROTOCOL', `Unexpected output from AgentSecrets: ${what}`, {
      suggestion:
        'Check that the AgentSecrets CLI and proxy work on their own (`agentsecrets --version`, `agentsecrets secrets list`), and upgrade them if they are old.',
      ...(details && {details}),
    })
  }
}

/** E5: the proxy (or the CLI's proxy) could not be reached. */
export function proxyDown(where: string, cause?: unknown): BackendUnavailableError {
  return new BackendUnavailableError(
    'AGENTSECRETS_PROXY_DOWN',
    `The AgentSecrets proxy is not reachable (${where})`,
    {
      suggestion:
        'Start it with `agentsecrets proxy start` (and check the port: profile "port", else AGENTSECRETS_PORT, else 8765).',
      ...(cause === undefined ? {} : {cause}),
    },
  )
}

/** E6: no executable. */
export function cliNotFound(where: string): BackendUnavailableError {
  return new BackendUnavailableError(
    'AGENTSECRETS_CLI_NOT_FOUND',
    `The AgentSecrets CLI was not found (${where})`,
    {
      suggestion:
        'Install AgentSecrets (https://github.com/The-17/agentsecrets), put `agentsecrets` on PATH or set the profile’s "cliPath"; or use the proxy with `transport: "proxy"`.',
    },
  )
}

/** E3: a missing key. */
export function keyNotFound(key: string, profile?: string): SecretNotFoundError {
  const safe = KEY_PATTERN.test(key) && key.length <= 128 ? key : undefined
  const reference =
    safe === undefined
      ? 'an agentsecrets:// key'
      : `agentsecrets://${safe}${profile ? `?profile=${profile}` : ''}`
  return new SecretNotFoundError(reference, {
    code: 'AGENTSECRETS_SECRET_NOT_FOUND',
    suggestion: `Store it in AgentSecrets: agentsecrets secrets set ${safe ?? 'KEY'}=… (\`agentsecrets secrets list\` shows the keys of the active environment).`,
  })
}

function parseErrorBody(body: Buffer | string): Record<string, unknown> | undefined {
  const text = typeof body === 'string' ? body : body.toString('utf8')
  if (text.length > 64 * 1024) return undefined
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    return undefined
  }

  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined
  const record = data as Record<string, unknown>
  return typeof record.error === 'string' ? record : undefined
}

export interface ClassifyContext {
  /** The keys the request injects (for the approval suggestion). */
  keys: readonly string[]
  method: string
  /** The target URL's host, used when a block body names no safe domain. */
  targetHost: string
}

/**
 * E1–E4 for a status and body (raw proxy response or CLI JSON envelope). Returns undefined for
 * everything else: that is the upstream's response (E7).
 */
export function classifyResponse(
  status: number,
  body: Buffer | string,
  context: ClassifyContext,
): AgentVaultError | undefined {
  if (status !== 401 && status !== 403 && status !== 502) return undefined
  const parsed = parseErrorBody(body)
  if (!parsed) return undefined
  const error = parsed.error as string
  if (status === 403) {
    const domain =
      typeof parsed.domain === 'string' && HOST_PATTERN.test(parsed.domain)
        ? parsed.domain
        : context.targetHost
    if (ALLOWLIST_SLUGS.has(error))
      return new DeniedError(
        'AGENTSECRETS_DOMAIN_NOT_ALLOWED',
        error === 'empty_allowlist'
          ? `AgentSecrets blocked the call to ${domain}: the workspace allowlist is empty`
          : `AgentSecrets blocked the call: ${domain} is not in the workspace allowlist`,
        {
          details: {domain, reason: error},
          suggestion: `Allow the domain: agentsecrets workspace allowlist add ${domain}`,
        },
      )
    if ((BLOCK_SLUGS as readonly string[]).includes(error)) {
      const approval = error.startsWith('policy_approval_')
      const key = context.keys[0] ?? 'KEY'
      return new DeniedError(
        'AGENTSECRETS_BLOCKED',
        `AgentSecrets blocked the call to ${domain} (${error})`,
        {
          details: {domain, reason: error},
          suggestion: approval
            ? `Approve it: agentsecrets proxy approve ${key} ${context.method} ${domain}`
            : 'Check the AgentSecrets policy for this secret and domain (`agentsecrets proxy logs` shows the block).',
        },
      )
    }

    return undefined
  }

  if (status === 502) {
    const match = NOT_FOUND.exec(error)
    return match ? keyNotFound(match[1] ?? '') : undefined
  }

  if (error === SESSION_TOKEN_ERROR || error.startsWith('agent token'))
    return new AuthError(
      'AGENTSECRETS_SESSION',
      error === SESSION_TOKEN_ERROR
        ? 'The AgentSecrets proxy wants a session token (X-AS-Session-Token) and got none or a wrong one'
        : 'The AgentSecrets proxy refused the agent token',
      {
        suggestion:
          error === SESSION_TOKEN_ERROR
            ? 'Set AGENTSECRETS_SESSION_TOKEN, or save it with `agentvault login agentsecrets --session-token-stdin`; or use the CLI instead: `agentvault login agentsecrets --transport cli`.'
            : 'Check the agent id and token (`agentvault login agentsecrets --agent-id ID --agent-token-stdin`).',
      },
    )
  return undefined
}

/** E3 in CLI error text (text mode, or any `x …` line). */
export function classifyCliText(text: string): AgentVaultError | undefined {
  const match = NOT_FOUND.exec(text)
  return match ? keyNotFound(match[1] ?? '') : undefined
}

/** Is `error` one of ours that says the backend could not be used at all? */
export function isUnavailable(error: unknown): boolean {
  return error instanceof AgentVaultError && error.category === 'unavailable'
}
