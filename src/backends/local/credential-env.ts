/**
 * The credential variables the local backend reads. Its key passphrase, AGENTVAULT_PASSPHRASE,
 * belongs to core (it also seals the credential store): see core/child-env.ts.
 */
export const CREDENTIAL_ENV: readonly string[] = []
