/**
 * The credential variables the openbao backend reads (protocols/openbao.md §4, §8): `run` withholds
 * them from its child unless `--pass-env NAME` (core/child-env.ts). Kept free of imports so that
 * `run` loads it without the backend.
 */
export const CREDENTIAL_ENV: readonly string[] = ['BAO_TOKEN', 'VAULT_TOKEN', 'AGENTVAULT_SECRET_ID']
