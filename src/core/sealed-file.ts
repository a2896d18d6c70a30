/**
 * The on-disk envelope shared by the vault (`vault.json`) and the credential file
 * (`credentials.enc`): a JSON header, ONE sealed body, and a SHA-256 checksum.
 *
 * ```json
 * {
 *   "format": "agentvault-vault",          // what this file is
 *   "version": 1,                          // envelope version
 *   "id": "<32 hex>",                      // random per file; also sealed inside the body
 *   "keyFingerprint": "<32 hex>",          // public fingerprint of the data key
 *   "key": {"source": "file", "file": "vault.key"},   // a KeyDescriptor (key-source.ts)
 *   "body": {"nonce": "<base64>", "box": "<base64>"}, // secretbox({format, id, data})
 *   "checksum": "sha256:<64 hex>"          // always last
 * }
 * ```
 *
 * The checksum is SHA-256 over the exact bytes of the file with its own 64 digits replaced by
 * '0', so ANY change — a truncation, a flipped bit in a name, in whitespace, in the checksum
 * itself — is detected before the JSON is trusted. It is not a MAC (whoever can write the file can
 * recompute it); authenticity comes from the sealed body, which repeats `format` and `id`, and from
 * the key fingerprint: a valid checksum plus a matching fingerprint plus a box that will not open
 * means the file was altered → ConfigError `*_TAMPERED`; a fingerprint that does not match the key
 * we were given means the wrong key → AuthError.
 *
 * Every problem with the file is a ConfigError (exit 3) naming the file; nothing here writes.
 */
import {createHash, randomBytes} from 'node:crypto'

import {AuthError, ConfigError} from './errors.js'
import {readFileIfExists} from './file-lock.js'
import {type KeyDescriptor, parseKeyDescriptor} from './key-source.js'
import {decodeBase64, keyFingerprint, NONCE_BYTES, seal, TAG_BYTES, unseal} from './sealing.js'

/** The envelope version this build reads and writes. */
export const SEALED_FILE_VERSION = 1

export interface SealedFileKind {
  /** Error code prefix: `VAULT` gives VAULT_CORRUPT, VAULT_FOREIGN, VAULT_TAMPERED. */
  codePrefix: string
  /** The format marker, e.g. `agentvault-vault`. */
  format: string
  /** What to call the file in messages: "vault", "credential file". */
  label: string
  /**
   * The envelope versions this build reads for this kind (default: [SEALED_FILE_VERSION]). Only
   * version 1 has the single sealed `body`; later versions are parsed by the kind's own code.
   */
  versions?: readonly number[]
}

/** A checked envelope: the checksum, format marker, version and header fields are valid. */
export interface SealedEnvelope {
  header: SealedFileHeader
  /** The parsed JSON object, for the fields a later version adds. */
  parsed: Record<string, unknown>
  version: number
}

export interface SealedFileHeader {
  id: string
  key: KeyDescriptor
  keyFingerprint: string
}

export interface SealedFile extends SealedFileHeader {
  body: {box: Buffer; nonce: Buffer}
}

const CHECKSUM_PREFIX = '"checksum": "sha256:'
/** The file's last bytes: its checksum member, the closing brace and a newline. */
const CHECKSUM_TRAILER = /^"checksum": "sha256:([\da-f]{64})"\n\}\n$/
const TRAILER_LENGTH = CHECKSUM_PREFIX.length + 64 + '"\n}\n'.length
const ZERO_DIGEST = '0'.repeat(64)
const HEX_ID = /^[\da-f]{32}$/

/** Read a sealed file's bytes; undefined when absent; an unreadable file is a ConfigError naming it. */
export function readSealedBytes(path: string, label: string): Buffer | undefined {
  try {
    return readFileIfExists(path)
  } catch (error) {
    if (error instanceof ConfigError) throw error // a FIFO, device, directory or link: already named
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error'
    throw new ConfigError('FILE_UNREADABLE', `Cannot read the ${label} ${path} (${code})`, {
      cause: error,
      details: {path},
      suggestion: `Check the permissions of ${path} and its directory.`,
    })
  }
}

/** A new random file id. */
export function newFileId(): string {
  return randomBytes(16).toString('hex')
}

/** Seal `data` (JSON-serialisable) under `key` and encode the whole file. */
export async function encodeSealedFile(
  kind: SealedFileKind,
  header: SealedFileHeader,
  key: Buffer,
  data: unknown,
): Promise<Buffer> {
  const plaintext = Buffer.from(JSON.stringify({format: kind.format, id: header.id, data}), 'utf8')
  let body
  try {
    body = await seal(key, plaintext)
  } finally {
    plaintext.fill(0)
  }

  return encodeEnvelope({
    format: kind.format,
    version: SEALED_FILE_VERSION,
    id: header.id,
    keyFingerprint: header.keyFingerprint,
    key: header.key,
    body: {nonce: body.nonce.toString('base64'), box: body.box.toString('base64')},
  })
}

/**
 * Encode an envelope object (everything but the checksum) and append its checksum. Exported for
 * tests that need a file whose checksum is right but whose content is not.
 */
export function encodeEnvelope(envelope: Record<string, unknown>): Buffer {
  const text = `${JSON.stringify({...envelope, checksum: `sha256:${ZERO_DIGEST}`}, null, 2)}\n`
  const bytes = Buffer.from(text, 'utf8')
  const start = bytes.lastIndexOf(CHECKSUM_PREFIX) + CHECKSUM_PREFIX.length
  bytes.write(createHash('sha256').update(bytes).digest('hex'), start, 'latin1')
  return bytes
}

/** Check and parse a version-1 file's bytes. Throws ConfigError (CORRUPT / FOREIGN) naming `path`. */
export function decodeSealedFile(kind: SealedFileKind, bytes: Buffer, path: string): SealedFile {
  const envelope = decodeSealedEnvelope(kind, bytes, path)
  return decodeSealedBody(kind, envelope, path)
}

/** The single sealed body of a version-1 envelope. */
export function decodeSealedBody(kind: SealedFileKind, envelope: SealedEnvelope, path: string): SealedFile {
  const errors = fileErrors(kind, path)
  if (envelope.version !== 1) throw errors.corrupt('its format version is invalid')
  const {body} = envelope.parsed
  if (!isRecord(body)) throw errors.corrupt('it has no sealed body')
  const nonce = decodeBase64(body.nonce)
  const box = decodeBase64(body.box)
  if (nonce?.length !== NONCE_BYTES || !box || box.length < TAG_BYTES)
    throw errors.corrupt('its sealed body is invalid')
  return {...envelope.header, body: {box, nonce}}
}

/**
 * Check a file's checksum, format marker, version (one of `kind.versions`) and header fields.
 * Throws ConfigError (CORRUPT / FOREIGN) naming `path`.
 */
export function decodeSealedEnvelope(kind: SealedFileKind, bytes: Buffer, path: string): SealedEnvelope {
  const errors = fileErrors(kind, path)
  verifyChecksum(kind, bytes, errors)

  let parsed: unknown
  try {
    parsed = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw errors.corrupt('it is not valid JSON')
  }

  if (!isRecord(parsed)) throw errors.foreign('it is not a JSON object')
  if (parsed.format !== kind.format)
    throw errors.foreign(
      typeof parsed.format === 'string'
        ? `its format marker is not "${kind.format}"`
        : 'it has no format marker',
    )
  const versions = kind.versions ?? [SEALED_FILE_VERSION]
  const newest = Math.max(...versions)
  const {version} = parsed
  if (typeof version !== 'number' || !versions.includes(version)) {
    if (typeof version === 'number' && version > newest)
      throw new ConfigError(
        `${kind.codePrefix}_FOREIGN`,
        `The ${kind.label} ${path} has format version ${version}; this agentvault reads version ${newest}. agentvault has not modified it`,
        {details: {path}, suggestion: 'Upgrade agentvault to open it.'},
      )
    throw errors.corrupt('its format version is invalid')
  }

  return {header: parseHeader(parsed, errors), parsed, version}
}

/** The ConfigError for a file whose checksum is right but whose sealed content is not ours. */
export function tamperedError(kind: SealedFileKind, path: string, what: string): ConfigError {
  return new ConfigError(
    `${kind.codePrefix}_TAMPERED`,
    `The ${kind.label} ${path} was altered outside agentvault: ${what}. agentvault has not modified it`,
    {details: {path}, suggestion: `Restore ${path} from a backup.`},
  )
}

/** The ConfigError for a well-formed file whose content makes no sense (CORRUPT). */
export function corruptError(kind: SealedFileKind, path: string, what: string): ConfigError {
  return fileErrors(kind, path).corrupt(what)
}

/** Throw AuthError `*_WRONG_KEY` unless `key` is the key the file header names. */
export function checkKeyFingerprint(
  kind: SealedFileKind,
  header: SealedFileHeader,
  key: Buffer,
  path: string,
): void {
  if (keyFingerprint(key) !== header.keyFingerprint)
    throw new AuthError(
      `${kind.codePrefix}_WRONG_KEY`,
      `The key agentvault found for the ${kind.label} ${path} is not the key it was sealed with`,
      {
        details: {path, keySource: header.key.source},
        suggestion:
          header.key.source === 'file'
            ? `Restore the key file that belongs to ${path} from your backup.`
            : 'Restore the OS keychain entry that belongs to this vault from a backup.',
      },
    )
}

interface FileErrors {
  corrupt(what: string): ConfigError
  foreign(what: string): ConfigError
}

function fileErrors(kind: SealedFileKind, path: string): FileErrors {
  return {
    corrupt: (what) =>
      new ConfigError(
        `${kind.codePrefix}_CORRUPT`,
        `The ${kind.label} ${path} is damaged: ${what}. agentvault has not modified it`,
        {
          details: {path},
          suggestion: `Restore ${path} from a backup (or move it aside to start an empty ${kind.label}).`,
        },
      ),
    foreign: (what) =>
      new ConfigError(
        `${kind.codePrefix}_FOREIGN`,
        `${path} is not an agentvault ${kind.label}: ${what}. agentvault has not modified it`,
        {
          details: {path},
          suggestion: `Move ${path} aside, or point AGENTVAULT_HOME at another directory.`,
        },
      ),
  }
}

/** Throw unless the checksum trailer is present and matches every other byte of the file. */
function verifyChecksum(kind: SealedFileKind, bytes: Buffer, errors: FileErrors): void {
  // The trailer has a fixed length and ends the file: only those bytes are read as text (latin1
  // maps bytes 1:1 to characters). A large vault is not copied or scanned again to find it.
  const trailerStart = bytes.length - TRAILER_LENGTH
  const trailer = trailerStart < 0 ? null : CHECKSUM_TRAILER.exec(bytes.toString('latin1', trailerStart))
  if (!trailer) {
    if (bytes.length === 0) throw errors.corrupt('it is empty')
    const text = bytes.toString('latin1')
    // Ours, cut short: it still starts like one of our files, or still names our format.
    const opening = `{\n  "format": "${kind.format}"`
    if (opening.startsWith(text) || text.includes(`"${kind.format}"`))
      throw errors.corrupt('it is truncated or its checksum is missing')
    throw errors.foreign(
      looksLikeJson(text) ? `it has no "format": "${kind.format}" marker` : 'it is not JSON',
    )
  }

  // The hash of the file with its own digits as zeros, fed in three parts rather than a copy.
  const digestStart = trailerStart + CHECKSUM_PREFIX.length
  const digest = createHash('sha256')
    .update(bytes.subarray(0, digestStart))
    .update(ZERO_DIGEST, 'latin1')
    .update(bytes.subarray(digestStart + ZERO_DIGEST.length))
    .digest('hex')
  if (digest !== trailer[1]) throw errors.corrupt('its checksum does not match its content')
}

function parseHeader(parsed: Record<string, unknown>, errors: FileErrors): SealedFileHeader {
  const key = parseKeyDescriptor(parsed.key)
  const {id, keyFingerprint: fingerprint} = parsed
  if (typeof id !== 'string' || !HEX_ID.test(id)) throw errors.corrupt('its id is invalid')
  if (typeof fingerprint !== 'string' || !HEX_ID.test(fingerprint))
    throw errors.corrupt('its key fingerprint is invalid')
  if (!key) throw errors.corrupt('its key description is invalid')
  return {id, key, keyFingerprint: fingerprint}
}

/**
 * Open a decoded file's body with `key` and return the sealed `data`.
 * Wrong key → AuthError; right key but the body does not open or does not belong to this header →
 * ConfigError `*_TAMPERED` (the file was altered by something that also recomputed the checksum).
 */
export async function openSealedFile(
  kind: SealedFileKind,
  file: SealedFile,
  key: Buffer,
  path: string,
): Promise<unknown> {
  checkKeyFingerprint(kind, file, key, path)
  const tampered = (what: string) => tamperedError(kind, path, what)

  const plaintext = await unseal(key, file.body)
  if (!plaintext) throw tampered('its sealed body fails authentication')
  let parsed: unknown
  try {
    parsed = JSON.parse(plaintext.toString('utf8'))
  } catch {
    throw tampered('its sealed body is not JSON')
  } finally {
    plaintext.fill(0)
  }

  if (!isRecord(parsed) || parsed.format !== kind.format || parsed.id !== file.id)
    throw tampered('its sealed body belongs to another file')
  return parsed.data
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function looksLikeJson(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}
