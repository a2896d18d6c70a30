/**
 * Throwaway TLS material for test servers, made with the openssl CLI when a test needs it and
 * never committed: a CA (its key is deleted once the server certificate is signed), a server
 * certificate for the given names, and an unrelated CA to prove that a wrong CA fails verification.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

export interface TestCertificates {
  /** PEM file of the CA that signed `cert`. */
  ca: string
  /** PEM file of the server certificate. */
  cert: string
  /** Where the files are; remove it when done. */
  dir: string
  /** PEM file of the server's private key. */
  key: string
  /** PEM file of another CA, which signed nothing here. */
  otherCa: string
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

function selfSignedCa(dir: string, name: string, subject: string): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      subject,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ],
    {cwd: dir, stdio: 'ignore'},
  )
}

/**
 * Make a CA and a server certificate for `names` (IP addresses or DNS names) in a fresh temp dir.
 * Needs the openssl CLI.
 */
export function makeTestCertificates(
  names: readonly string[] = ['127.0.0.1', '::1', 'localhost'],
): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'agentvault-test-ca-'))
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, {cwd: dir, stdio: 'ignore'})
  }

  selfSignedCa(dir, 'ca', '/CN=agentvault test CA (test only)')
  selfSignedCa(dir, 'other-ca', '/CN=agentvault unrelated test CA (test only)')
  run('req', ...EC, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${names[0]}`)
  const alt = names.map((name) => (/^[\d.]+$|:/.test(name) ? `IP:${name}` : `DNS:${name}`)).join(',')
  writeFileSync(
    join(dir, 'ext.cnf'),
    `subjectAltName=${alt}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`,
  )
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  )
  for (const file of ['ca.key', 'other-ca.key', 'server.csr', 'ext.cnf', 'ca.srl'])
    rmSync(join(dir, file), {force: true})
  return {
    ca: join(dir, 'ca.pem'),
    cert: join(dir, 'server.pem'),
    dir,
    key: join(dir, 'server.key'),
    otherCa: join(dir, 'other-ca.pem'),
  }
}

let shared: TestCertificates | undefined

/** One set per test process, for 127.0.0.1, ::1 and localhost; removed when the process exits. */
export function sharedTestCertificates(): TestCertificates {
  if (!shared) {
    const made = makeTestCertificates()
    shared = made
    process.once('exit', () => rmSync(made.dir, {force: true, recursive: true}))
  }

  return shared
}
