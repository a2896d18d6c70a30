/**
 * The credential variables the agentauth backend reads (the agent's long-lived API key): `run`
 * withholds them from its child unless `--pass-env NAME` (core/child-env.ts). Kept free of imports
 * so that `run` loads it without the backend.
 */
export const CREDENTIAL_ENV: readonly string[] = ['AGENTAUTH_API_KEY']
