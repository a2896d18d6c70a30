/**
 * `agentvault login agentauth` (protocols/agentauth.md §10.1): verify the agent's id and API key,
 * store the token pair in the credential store and the profile's non-secret settings (`baseUrl`,
 * `agentId`, `generation`) in config.json. The API key, read by the command layer from
 * `--api-key-stdin`, else `AGENTAUTH_API_KEY`, else a hidden prompt — never argv — is discarded
 * after the verify.
 */
import type {BackendContext, LoginOptions, LoginResult} from '../../core/backend.js'

import {type StoredProfile, updateConfig} from '../../core/config.js'
import {UsageError} from '../../core/errors.js'
import {AgentAuthConnection, type AgentAuthOptions} from './connection.js'
import {decodeJwtClaims, expiryIso} from './jwt.js'
import {verifyOperation} from './operations.js'
import {parseVerify} from './responses.js'
import {ENV_AGENT_ID, ENV_API_KEY} from './settings.js'
import {saveSession} from './token-store.js'
import {sessionFromPair} from './tokens.js'

function text(options: LoginOptions, name: string): string | undefined {
  const value = options[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** The flag (or AGENTAUTH_AGENT_ID, or a prompt: read by the command layer), then the profile's (§10.1). */
function agentIdInput(context: BackendContext, given?: string): string {
  const stored = context.profile.settings.agentId
  const candidate = given ?? (typeof stored === 'string' ? stored : undefined)
  if (candidate !== undefined && candidate.trim() !== '') return candidate.trim()
  throw new UsageError('VALUE_REQUIRED', 'No AgentAuth agent id given and prompting is off', {
    suggestion: `Pass --agent-id agt_… or set ${ENV_AGENT_ID}.`,
  })
}

/** The API key, already read by the command layer (`--api-key-stdin`, AGENTAUTH_API_KEY or a hidden prompt). */
function apiKeyInput(options: LoginOptions): string {
  const value = options.apiKey
  const key = Buffer.isBuffer(value) ? value.toString('utf8').trim() : ''
  if (key !== '') return key
  throw new UsageError('VALUE_REQUIRED', 'No AgentAuth API key given and prompting is off', {
    suggestion: `Pipe it with --api-key-stdin or set ${ENV_API_KEY}; never put it in argv.`,
  })
}

/** Sign in and save; see the module comment. */
export async function loginAgentAuth(
  context: BackendContext,
  options: LoginOptions,
  seams: AgentAuthOptions = {},
): Promise<LoginResult> {
  const baseUrlFlag = text(options, 'baseUrl')
  const connection = new AgentAuthConnection(
    context,
    seams,
    baseUrlFlag === undefined ? {} : {baseUrl: baseUrlFlag},
  )
  const baseUrl = connection.baseUrl()
  const agentId = agentIdInput(context, text(options, 'agentId'))
  // Generation is re-detected on every login (§2.1).
  const http = await connection.http('unknown')
  let apiKey: string | undefined = apiKeyInput(options)
  const answer = await http.call(verifyOperation(agentId, apiKey))
  apiKey = undefined
  connection.check(answer, 'verify the agent', 'verify')
  const {agent, token} = parseVerify(answer.body)
  const now = connection.clock.now()
  const session = sessionFromPair(token, {agent_id: agent.agent_id, base_url: baseUrl}, now)
  const claims = decodeJwtClaims(session.access_token, 'an access token')

  const profile = context.profile.name
  await updateConfig(context.home, (config) => {
    const next: StoredProfile = {...config.profiles[profile], kind: 'agentauth'}
    next.baseUrl = baseUrl
    next.agentId = agent.agent_id
    next.generation = http.generation
    config.profiles[profile] = next
    config.defaults.agentauth ??= profile
  })
  await saveSession(await connection.store(), profile, session)

  const tier = claims.tier ?? agent.tier ?? 'unknown'
  const expiresAt = expiryIso(claims) ?? 'unknown'
  return {
    details: {
      agent_id: agent.agent_id,
      base_url: baseUrl,
      expires_at: expiresAt,
      generation: http.generation,
      profile,
      tier,
    },
    identity: agent.agent_id,
    message: `Signed in to AgentAuth at ${baseUrl} as ${agent.agent_id} (tier ${tier}; access token expires ${expiresAt}; ${http.generation === 'legacy' ? 'legacy API' : 'API v1'}); saved profile ${profile}.`,
  }
}
