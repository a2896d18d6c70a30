/**
 * The certificate authority of one `run --placeholders`: made at start with Node's WebCrypto
 * (ECDSA P-256) and @peculiar/x509, its private key non-extractable and held in memory only — it
 * is never serialised, so it cannot reach a disk. It signs a leaf certificate per intercepted host
 * on first use (cached for the run); all leaves share one key pair made for this run.
 *
 * The X.509 library is loaded here only, and this module only by `--placeholders`: plain `run`
 * never pays for it.
 */
import type {webcrypto as WebCrypto} from 'node:crypto'
import type {SecureContext} from 'node:tls'

// @peculiar/x509 is typed against the DOM's WebCrypto types; Node's are the same objects.
type Key = never

export interface RunCa {
  /** The CA certificate (PEM), for the child's trust stores. */
  certificatePem: string
  /** A TLS context presenting a certificate for `hostname` (a DNS name or an IP literal, no brackets). */
  contextFor(hostname: string): Promise<SecureContext>
}

const HOUR = 3_600_000
/** Leaves live a day; a run that outlives half of that gets fresh ones. */
const LEAF_LIFETIME = 24 * HOUR
const LEAF_REFRESH = 12 * HOUR

function serial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  bytes[0] = (bytes[0] ?? 0) & 0x7f // positive
  return Buffer.from(bytes).toString('hex')
}

function pem(label: string, der: ArrayBuffer): string {
  const base64 = Buffer.from(der).toString('base64')
  return `-----BEGIN ${label}-----\n${base64.replaceAll(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`
}

export async function createRunCa(): Promise<RunCa> {
  // @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata polyfill.
  await import('reflect-metadata')
  const [x509, {webcrypto}, tls, {isIP}] = await Promise.all([
    import('@peculiar/x509'),
    import('node:crypto'),
    import('node:tls'),
    import('node:net'),
  ])
  x509.cryptoProvider.set(webcrypto as never)
  const algorithm = {hash: 'SHA-256', name: 'ECDSA', namedCurve: 'P-256'}
  const {subtle} = webcrypto
  const [caKeys, leafKeys] = await Promise.all([
    subtle.generateKey(algorithm, false, ['sign', 'verify']),
    subtle.generateKey(algorithm, true, ['sign', 'verify']),
  ])
  const now = Date.now()
  const tag = serial().slice(0, 8)
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey as Key),
    ],
    keys: caKeys as never,
    name: `CN=agentvault run ${tag} (placeholders; this run only), O=agentvault`,
    notAfter: new Date(now + 30 * 24 * HOUR),
    notBefore: new Date(now - HOUR),
    serialNumber: serial(),
    signingAlgorithm: algorithm,
  })
  const leafKeyPem = pem(
    'PRIVATE KEY',
    await subtle.exportKey('pkcs8', (leafKeys as WebCrypto.CryptoKeyPair).privateKey),
  )
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(ca, false)
  const caPem = ca.toString('pem')
  const made = new Map<string, {at: number; context: Promise<SecureContext>}>()

  async function issue(hostname: string): Promise<SecureContext> {
    const issued = Date.now()
    const leaf = await x509.X509CertificateGenerator.create({
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension([
          isIP(hostname) === 0 ? {type: 'dns', value: hostname} : {type: 'ip', value: hostname},
        ]),
        authorityKeyId,
        await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey as Key),
      ],
      issuer: ca.subject,
      notAfter: new Date(issued + LEAF_LIFETIME),
      notBefore: new Date(issued - HOUR),
      publicKey: leafKeys.publicKey as Key,
      serialNumber: serial(),
      signingAlgorithm: algorithm,
      signingKey: caKeys.privateKey as Key,
      // The name lives in the SAN only: a host name may hold characters a DN string would misread.
      subject: 'CN=agentvault intercepted host',
    })
    return tls.createSecureContext({cert: `${leaf.toString('pem')}\n${caPem}`, key: leafKeyPem})
  }

  return {
    certificatePem: caPem,
    contextFor(hostname) {
      const cached = made.get(hostname)
      if (cached && Date.now() - cached.at < LEAF_REFRESH) return cached.context
      const context = issue(hostname)
      made.set(hostname, {at: Date.now(), context})
      context.catch(() => made.delete(hostname))
      return context
    },
  }
}
