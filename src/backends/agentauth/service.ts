/**
 * What the `agents …` commands call: the agentauth backend of the command's profile (`--profile`
 * when it names an agentauth profile, else the default agentauth profile, else the implicit one
 * built from `AGENTAUTH_*`), with mutating commands noted for the audit trail — by profile only:
 * API keys and webhook secrets never reach it.
 */
import type {Session} from '../../core/session.js'

import {InternalError} from '../../core/errors.js'
import {type AgentAuthBackend, isAgentAuthBackend} from './index.js'

/** How the command uses the backend. */
export interface AgentAuthForOptions {
  /** The command changes something on the server: write an audit record. */
  audited?: boolean
}

/** The agentauth backend the command works on. */
export async function agentAuthFor(
  session: Session,
  options: AgentAuthForOptions = {},
): Promise<AgentAuthBackend> {
  const profile = await session.profileFor('agentauth')
  if (options.audited) session.noteProfile(profile)
  const backend = await session.backendFor(profile)
  if (!isAgentAuthBackend(backend))
    throw new InternalError(`Profile ${profile.name} did not load the agentauth backend`)
  return backend
}
