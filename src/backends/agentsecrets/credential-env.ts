/**
 * The credential variables the agentsecrets backend reads (the proxy's session token, the agent
 * token): `run` withholds them from its child unless `--pass-env NAME` (core/child-env.ts). Kept
 * free of imports so that `run` loads it without the backend.
 */
export const CREDENTIAL_ENV: readonly string[] = ['AGENTSECRETS_SESSION_TOKEN', 'AS_AGENT_TOKEN']
