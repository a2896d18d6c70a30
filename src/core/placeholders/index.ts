/**
 * `run --placeholders` (issue 15): swap each resolved secret in the child's environment for its
 * placeholder, make the run's CA and trust files, start the proxy, and point the child at both.
 * `close()` stops the proxy and removes the temp dir; a process `exit` hook removes it too, should
 * agentvault end some other way.
 */
import type {AuditEvent} from '../audit.js'
import type {Profile} from '../config.js'
import type {RunOptions} from '../run-options.js'
import type {PreparedRun} from '../runner.js'
import type {Session} from '../session.js'
import type {SecretPolicy} from '../use-engine.js'
import type {DeniedAttempt} from './proxy.js'
import type {Stand} from './tokens.js'

import {UsageError} from '../errors.js'

export interface PlaceholderRun {
  close(): Promise<void>
}

/** Variables that tell clients to skip the proxy for some hosts: removed from the child's environment. */
const BYPASS_VARIABLES = ['NO_PROXY', 'no_proxy']
/** The trust-store variables the common clients read (Node reads NODE_EXTRA_CA_CERTS besides its roots). */
const BUNDLE_VARIABLES = ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO']
/** Where Debian/Ubuntu, Fedora/RHEL, Alpine/Arch and macOS (Homebrew OpenSSL) keep the system roots. */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/cert.pem',
]
const MAX_BODY_BYTES = 50 * 1024 * 1024

/** A CA bundle named by the environment, as text; undefined when unreadable or over 16 MiB. */
export async function readable(path?: string): Promise<string | undefined> {
  if (!path) return undefined
  const {readCaFile} = await import('../tls.js')
  try {
    // Bounded: SSL_CERT_FILE=/dev/zero would otherwise fill memory up to Node's largest string.
    return (await readCaFile(path)).toString('utf8')
  } catch {
    return undefined
  }
}

/** The system's root certificates as PEM: the first bundle file found, else Node's own roots. */
async function systemRoots(env: NodeJS.ProcessEnv): Promise<string> {
  for (const path of [env.SSL_CERT_FILE, ...SYSTEM_BUNDLES]) {
    const text = await readable(path)
    if (text?.includes('-----BEGIN CERTIFICATE-----')) return text.endsWith('\n') ? text : `${text}\n`
  }

  const {rootCertificates} = await import('node:tls')
  return `${rootCertificates.join('\n')}\n`
}

export async function startPlaceholders(
  session: Session,
  prepared: PreparedRun,
  options: RunOptions,
): Promise<PlaceholderRun> {
  if (prepared.command.join('\0') !== options.command.join('\0'))
    throw new UsageError(
      'PLACEHOLDERS_NOT_SUPPORTED',
      '--placeholders cannot stand in for values that a backend injects itself (agentsecrets://)',
      {
        suggestion:
          'Leave agentsecrets:// references out of a --placeholders run, or run without --placeholders.',
      },
    )
  const [{makePlaceholder}, engine, {normaliseHostPattern}, {createRunCa}, {startProxy}, fs, {tmpdir}] =
    await Promise.all([
      import('./tokens.js'),
      import('../use-engine.js'),
      import('../use/hosts.js'),
      import('./ca.js'),
      import('./proxy.js'),
      import('node:fs/promises'),
      import('node:os'),
    ])
  const {join, resolve} = await import('node:path')
  const allowHosts = options.allowHosts.map((pattern) => normaliseHostPattern(pattern))
  const policies = new Map<Stand, SecretPolicy>()
  const profiles = new Set<Profile>()
  const stands: Stand[] = []
  for (const variable of prepared.resolved) {
    const {backend, profile} = await session.open(variable.ref)
    const metadata = backend.describe ? await backend.describe(variable.ref) : undefined
    const stand: Stand = {
      name: variable.name,
      placeholder: makePlaceholder(variable.name),
      reference: variable.ref.canonical,
      value: variable.value,
    }
    stands.push(stand)
    profiles.add(profile)
    policies.set(stand, {
      ...(metadata?.allowedDomains && {allowedDomains: metadata.allowedDomains}),
      profile,
      reference: variable.ref.canonical,
    })
    prepared.env[variable.name] = stand.placeholder
  }

  // The command never holds these values: its output is masked for them only where one appears
  // whole (issue 15: should a real value ever reach it, e.g. an echo the command decoded), and
  // never held back (runner.ts, PreparedRun.unheld): holding back what could begin one would tell a
  // command that reads agentvault's output (a log it is redirected to) which guess begins a value,
  // byte by byte. Values it does hold (--pass-env, a value it also got in clear) are masked as in
  // any run.
  const held = Object.values(prepared.env).filter((text): text is string => text !== undefined)
  const stoodIn = new Set(
    stands.flatMap(({value}) => [
      value.toString('latin1'),
      Buffer.from(value.toString('utf8')).toString('latin1'),
    ]),
  )
  const unheld: Buffer[] = []
  prepared.secrets = prepared.secrets.filter((secret) => {
    if (!stoodIn.has(secret.toString('latin1'))) return true
    const text = secret.toString('utf8')
    if (held.some((value) => value.includes(text))) return true
    unheld.push(secret)
    return false
  })
  if (unheld.length > 0) prepared.unheld = unheld

  const caFiles: string[] = []
  for (const profile of profiles) {
    const {caCert} = profile.settings
    if (typeof caCert === 'string' && caCert !== '') caFiles.push(resolve(session.home, caCert))
  }

  const [trustedCas, ca, roots, nodeExtra] = await Promise.all([
    engine.readCaFiles([...new Set(caFiles)]),
    createRunCa(),
    systemRoots(prepared.env),
    readable(prepared.env.NODE_EXTRA_CA_CERTS),
  ])
  const dir = await fs.mkdtemp(join(tmpdir(), 'agentvault-run-'))
  const {rmSync} = await import('node:fs')
  const removeDir = (): void => rmSync(dir, {force: true, recursive: true})
  process.once('exit', removeDir)
  const audit = deniedAuditQueue(session)
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined
  try {
    await fs.chmod(dir, 0o700)
    const write = (name: string, text: string): Promise<void> =>
      fs.writeFile(join(dir, name), text, {flag: 'wx', mode: 0o600})
    const caFile = join(dir, 'ca.pem')
    const bundleFile = join(dir, 'bundle.pem')
    const nodeFile = join(dir, 'node-extra-ca.pem')
    await Promise.all([
      write('ca.pem', ca.certificatePem),
      write('bundle.pem', `${roots}${ca.certificatePem}`),
      nodeExtra === undefined ? undefined : write('node-extra-ca.pem', `${nodeExtra}\n${ca.certificatePem}`),
    ])
    proxy = await startProxy({
      allows: (stand, hostname, port) => engine.allowedBy(policies.get(stand)!, hostname, allowHosts, port),
      allowsPlainHttp: process.env.AGENTVAULT_PLACEHOLDERS_ALLOW_HTTP === '1',
      allowsPrivate: (used) =>
        used.length > 0 &&
        used.every((stand) => policies.get(stand)!.profile.settings.allowPrivateNetworks === true),
      ca,
      maxBodyBytes: MAX_BODY_BYTES,
      onDenied(attempt) {
        const names = attempt.stands.map((stand) => stand.name).join(', ')
        session.options.warn(
          attempt.refused === 'request'
            ? `Refused a request of the command to ${attempt.host}: it carried the placeholder of ${names} (${attempt.code}).`
            : `Refused the response of ${attempt.host} to the command: agentvault could not check it for the value of ${names} (${attempt.code}).`,
        )
        audit.add(
          deniedEvent(
            session,
            attempt,
            attempt.stands.map((stand) => policies.get(stand)!),
          ),
        )
      },
      stands,
      trustedCas,
    })
    const proxyUrl = `http://127.0.0.1:${proxy.port}`
    const {env} = prepared
    for (const name of BYPASS_VARIABLES) delete env[name]
    for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy'])
      env[name] = proxyUrl
    env.NODE_USE_ENV_PROXY = '1'
    for (const name of BUNDLE_VARIABLES) env[name] = bundleFile
    env.NODE_EXTRA_CA_CERTS = nodeExtra === undefined ? caFile : nodeFile
  } catch (error) {
    await proxy?.close()
    removeDir()
    throw error
  }

  return {
    async close() {
      await proxy?.close()
      removeDir()
      process.off('exit', removeDir)
      await audit.settled()
    },
  }
}

/**
 * The audit lines of refused requests, appended in order and in batches: while one batch is being
 * written (lock, write, fsync), the next refusals queue up and go in the next one, so a child that
 * hammers a refused host costs one append per batch, not per request. `settled()` (at close)
 * returns once every line queued so far is written.
 */
function deniedAuditQueue(session: Session): {
  add(event: Promise<AuditEvent>): void
  settled(): Promise<void>
} {
  const queue: Array<Promise<AuditEvent>> = []
  const warnAudit = (error: unknown): void =>
    session.options.warn(
      `Could not write the audit log: ${error instanceof Error ? error.message : String(error)}`,
    )
  let running: Promise<void> | undefined
  async function drain(): Promise<void> {
    try {
      while (queue.length > 0) {
        const batch = await Promise.allSettled(queue.splice(0))
        const events: AuditEvent[] = []
        for (const result of batch)
          if (result.status === 'fulfilled') events.push(result.value)
          else warnAudit(result.reason)
        try {
          const {appendAuditBatch} = await import('../audit.js')
          await appendAuditBatch(session.home, events)
        } catch (error) {
          warnAudit(error)
        }
      }
    } finally {
      // Cleared in the same turn as the last look at the queue: nothing added can be left behind.
      running = undefined
    }
  }

  return {
    add(event) {
      event.catch(() => {}) // its failure is reported by drain
      queue.push(event)
      running ??= drain()
    },
    async settled() {
      // A drain empties the queue before it ends; nothing is added once the proxy is closed.
      for (let current = running; current; current = running) await current
    },
  }
}

/** The audit line of a refused request or response: outcome `denied`, the references by name (or resource_ref). */
async function deniedEvent(
  session: Session,
  {code, host, status}: DeniedAttempt,
  policies: readonly SecretPolicy[],
): Promise<AuditEvent> {
  const [{auditSalt}, {parseReference, resourceRef}] = await Promise.all([
    import('../audit.js'),
    import('../references.js'),
  ])
  const references: string[] = []
  const hashed: string[] = []
  for (const policy of policies) {
    if (policy.profile.settings.auditPaths === 'ref')
      hashed.push(resourceRef(await auditSalt(session.home), parseReference(policy.reference).canonical))
    else references.push(policy.reference)
  }

  const profiles = [...new Set(policies.map((policy) => policy.profile))]
  return {
    time: new Date().toISOString(),
    command: 'run',
    outcome: 'denied',
    exit_code: 7,
    duration_ms: 0,
    profile: profiles.map((profile) => profile.name).join(','),
    backend: [...new Set(profiles.map((profile) => profile.kind))].join(','),
    ...(references.length > 0 && {references}),
    ...(hashed.length > 0 && {resource_refs: hashed}),
    operation: 'placeholder',
    target_host: host,
    error_code: code,
    status,
  }
}
