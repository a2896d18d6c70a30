/**
 * The credential variables the sanctum backend reads (the agent key's passphrase): `run` withholds
 * them from its child unless `--pass-env NAME` (core/child-env.ts). Kept free of imports so that
 * `run` loads it without the backend.
 */
export const CREDENTIAL_ENV: readonly string[] = ['SANCTUM_KEY_PASSPHRASE']
