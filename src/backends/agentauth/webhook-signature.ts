/**
 * Checking one AgentAuth webhook delivery locally (protocols/agentauth.md §7.2): the
 * `X-AgentAuth-Signature` header is the lower-case hex HMAC-SHA256 of the raw body bytes, keyed by
 * the whole secret string (UTF-8, `whsec_` prefix included). Compared in constant time; hex case and
 * a leading `sha256=` are ignored. Nothing here prints, logs or echoes the secret or the body.
 */
import {createHmac, timingSafeEqual} from 'node:crypto'

import {DeniedError, UsageError} from '../../core/errors.js'

const HEX_SIGNATURE = /^[0-9a-f]{64}$/

/** The signature as 32 bytes, from hex with any case and an optional `sha256=` prefix. */
export function parseSignature(text: string): Buffer {
  const hex = text
    .trim()
    .replace(/^sha256=/i, '')
    .toLowerCase()
  if (!HEX_SIGNATURE.test(hex))
    throw new UsageError('BAD_SIGNATURE', '--signature must be the 64 hex digits of X-AgentAuth-Signature', {
      suggestion:
        'Copy the X-AgentAuth-Signature header of the delivery as it is (a sha256= prefix is fine).',
    })
  return Buffer.from(hex, 'hex')
}

/** The signature AgentAuth sends for `body` under `secret`. */
export function signWebhookBody(secret: Buffer | string, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(body).digest()
}

/**
 * Split `verify`'s stdin: the secret on the first line (a trailing CR dropped), then the raw body.
 * With `bodyFromFile`, stdin holds only the secret (one trailing newline dropped).
 */
export function splitSecretAndBody(stdin: Buffer, bodyFromFile?: Buffer): {body: Buffer; secret: Buffer} {
  let secret: Buffer
  let body: Buffer
  if (bodyFromFile === undefined) {
    const newline = stdin.indexOf(0x0a)
    secret = newline === -1 ? stdin : stdin.subarray(0, newline)
    body = newline === -1 ? Buffer.alloc(0) : stdin.subarray(newline + 1)
  } else {
    secret = stdin.at(-1) === 0x0a ? stdin.subarray(0, -1) : stdin
    body = bodyFromFile
  }

  if (secret.at(-1) === 0x0d) secret = secret.subarray(0, -1)
  if (secret.length === 0)
    throw new UsageError('SECRET_REQUIRED', 'No webhook secret on stdin', {
      suggestion:
        'Pipe the secret on the first line, then the body: { printf \'%s\\n\' "$SECRET"; cat body.json; } | agentvault agents webhooks verify --secret-stdin --signature HEX',
    })
  return {body, secret}
}

/**
 * Check a delivery in constant time.
 *
 * @throws DeniedError SIGNATURE_MISMATCH (exit 7) when the body was not signed with this secret.
 */
export function verifyWebhookSignature(secret: Buffer, body: Buffer, signature: Buffer): void {
  const expected = signWebhookBody(secret, body)
  const ok = signature.length === expected.length && timingSafeEqual(expected, signature)
  expected.fill(0)
  if (!ok)
    throw new DeniedError('SIGNATURE_MISMATCH', 'The signature does not match this body and secret', {
      suggestion:
        'Check that the body is byte-for-byte what was delivered and that the secret is the current one (after rotate-secret, only the new one signs).',
    })
}
