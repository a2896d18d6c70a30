import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../base-command.js'
import {ENGINE_USE_OPERATIONS, type UseResult} from '../core/backend.js'
import {UsageError} from '../core/errors.js'
import {useSecret} from '../core/use.js'
import {inputTooLarge, readStdin} from '../ui/input.js'

/** `--params -` reads a JSON object of parameters: at most this much. */
const MAX_PARAMS_BYTES = 1024 * 1024

export type UseCommandResult = UseResult

/** Limits and trust shared by `use` and `call`. */
export const useLimitFlags = {
  // One spelling with `secrets set --allow-domain` and the `allowedDomains` setting; --allow-host
  // (its old name) still works, with a deprecation warning.
  'allow-domain': Flags.string({
    aliases: ['allow-host'],
    deprecateAliases: true,
    description:
      'Also allow this host (exact, or *.suffix; optionally with :port) for secrets that have no allowed domains of their own (repeatable).',
    helpValue: 'HOST',
    multiple: true,
  }),
  cacert: Flags.string({
    aliases: ['ca-cert'],
    description: 'PEM file of a CA to trust for this request, in addition to the system roots.',
    env: 'AGENTVAULT_CACERT',
    helpValue: 'FILE',
  }),
  'max-response-bytes': Flags.integer({
    description: 'Refuse a response body larger than this (default 50 MB).',
    env: 'AGENTVAULT_MAX_RESPONSE_BYTES',
    min: 1,
  }),
  timeout: Flags.integer({
    description: 'Give up after this many seconds, redirects included (default 30).',
    env: 'AGENTVAULT_TIMEOUT',
    min: 1,
  }),
}

/** `key: value` lines; non-string values as compact JSON. */
function renderResult(result: UseResult): string {
  return Object.entries(result)
    .map(([key, value]) => `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join('\n')
}

export default class Use extends AgentVaultCommand<typeof Use> {
  static args = {
    ref: Args.string({description: 'Secret reference or name (local://NAME, NAME).', required: true}),
    operation: Args.string({
      description: 'http_request, http_header, sign, verify, encrypt or decrypt.',
      required: true,
    }),
  }
  static description = `The secret never reaches the calling process: agentvault (or, for sanctum and agentsecrets, the backend itself) performs the operation and prints only the result.

Operations and their parameters:
  http_request  url, method, headers, body, header_type (bearer|api_key|basic|custom), header_name
  http_header   header_type, header_name — returns the header itself, so it needs --reveal
  sign          data, algorithm (hmac-sha256|hmac-sha512 → base64; ed25519 for a hex seed → hex), encoding
  verify        data, signature, algorithm, encoding → {valid}; a mismatch prints valid: false and exits 7
  encrypt       plaintext (or data), encoding → base64 ciphertext (XSalsa20-Poly1305, key from HKDF-SHA256)
  decrypt       ciphertext (or data) → plaintext

HTTP requests go only to hosts the secret allows (its --allow-domain list; else the profile's allowedDomains or this command's --allow-domain), never to loopback, private or link-local addresses unless the profile sets allowPrivateNetworks, never over plain http:// to a host off this machine unless the profile sets allowPlainHttp, and never to cloud metadata addresses. Echoes of the value in the response are concealed (redacted: true).`
  static examples = [
    '<%= config.bin %> <%= command.id %> OPENAI_KEY http_request --param url=https://api.openai.com/v1/models --json',
    '<%= config.bin %> <%= command.id %> WEBHOOK_KEY sign --param algorithm=hmac-sha256 --param data="$PAYLOAD"',
    'echo \'{"data":"hello","signature":"…"}\' | <%= config.bin %> <%= command.id %> WEBHOOK_KEY verify --params -',
    '<%= config.bin %> <%= command.id %> local://DATA_KEY encrypt --param plaintext="note to self"',
    '<%= config.bin %> <%= command.id %> GITHUB_TOKEN http_header --reveal',
  ]
  static flags = {
    param: Flags.string({
      description: 'A parameter as key=value (repeatable); headers.Name=value sets one request header.',
      helpValue: 'KEY=VALUE',
      multiple: true,
    }),
    params: Flags.string({
      description: 'All parameters as a JSON object, or - to read it from stdin.',
      helpValue: 'JSON|-',
    }),
    reveal: Flags.boolean({description: 'Allow an operation that returns a credential (http_header).'}),
    ...useLimitFlags,
  }
  static summary = 'Perform an operation with a secret without revealing it.'

  async run(): Promise<UseCommandResult> {
    await this.checkArgumentOrder()
    const {parseParams} = await import('../core/use/specs.js')
    const {params: json} = this.flags
    const text =
      json === '-'
        ? (
            await readStdin(
              MAX_PARAMS_BYTES,
              0,
              inputTooLarge('The JSON object on stdin (--params -)', 'Pass a JSON object of at most 1 MiB.'),
            )
          ).toString('utf8')
        : json
    const result = await useSecret(
      this.vault,
      this.args.ref,
      {operation: this.args.operation, params: parseParams(text, this.flags.param ?? [])},
      {
        allowHosts: this.flags['allow-domain'],
        caCert: this.flags.cacert,
        maxResponseBytes: this.flags['max-response-bytes'],
        reveal: this.flags.reveal,
        timeout: this.flags.timeout,
      },
    )
    if (result.redacted === true) this.warnUser('The result echoed the secret; every echo was concealed.')
    this.log(renderResult(result))
    if (this.args.operation === 'verify' && result.valid === false) {
      const {DeniedError} = await import('../core/errors.js')
      this.refuseWithResult(
        new DeniedError('SIGNATURE_INVALID', 'The signature does not match the data under this key', {
          suggestion:
            'Check that data, signature, encoding and algorithm are those the signer used (the result is valid: false).',
        }),
      )
    }

    return result
  }

  /** `use sign KEY` (operation first, as some CLIs order it): name the order, not "unknown operation KEY". */
  private async checkArgumentOrder(): Promise<void> {
    const operations: readonly string[] = ENGINE_USE_OPERATIONS
    const {operation, ref} = this.args
    if (!operations.includes(ref.toLowerCase()) || operations.includes(operation.toLowerCase())) return
    // parseTarget refuses a word that looks like a value rather than echo it.
    const reference = await this.vault.parseTarget(operation)
    throw new UsageError('USE_ARGUMENT_ORDER', `"${ref}" is an operation: the secret comes first`, {
      suggestion: `\`agentvault use ${reference.canonical} ${ref.toLowerCase()}\`, then the same flags.`,
    })
  }
}
