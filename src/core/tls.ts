/**
 * TLS facts shared by every HTTPS client of agentvault (the use engine, the openbao adapter, …).
 */

/** OpenSSL / Node codes of certificate verification failures: a trust problem, not a network one. */
export const CERTIFICATE_ERROR_CODES: ReadonlySet<string> = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
  'INVALID_CA',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
])

/** The largest CA file read (a full system bundle is about 0.2 MiB). */
export const MAX_CA_FILE_BYTES = 16 * 1024 * 1024

/**
 * Read a CA certificate file, at most {@link MAX_CA_FILE_BYTES}: a path that never ends
 * (`--cacert /dev/zero`) or a huge file fails at the cap instead of taking all memory (with a
 * Buffer read, for minutes). Errors keep Node's errno `code`; past the cap the code is
 * `FILE_TOO_LARGE` and the message says so.
 */
export async function readCaFile(path: string): Promise<Buffer> {
  const {open} = await import('node:fs/promises')
  const handle = await open(path, 'r')
  try {
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024)

      const {bytesRead} = await handle.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) return Buffer.concat(chunks)
      chunks.push(chunk.subarray(0, bytesRead))
      total += bytesRead
      if (total > MAX_CA_FILE_BYTES)
        throw Object.assign(new Error(`${path} is larger than 16 MiB: not a CA certificate file`), {
          code: 'FILE_TOO_LARGE',
        })
    }
  } finally {
    await handle.close()
  }
}

/** What to say after "Cannot read the CA certificate file": the errno, or the size limit. */
export function caFileProblem(path: string, error: unknown): string {
  const {code} = error as NodeJS.ErrnoException
  return code === 'FILE_TOO_LARGE' ? `${path}: it is larger than 16 MiB` : `${path} (${code ?? 'error'})`
}
