import {Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../../base-command.js'
import {UsageError} from '../../../core/errors.js'

export interface WebhooksVerifyResult {
  valid: true
}

/** The most `verify` reads (stdin, --body-file): webhook deliveries are far smaller. */
const MAX_WEBHOOK_BYTES = 16 * 1024 * 1024

export default class WebhooksVerify extends AgentVaultCommand<typeof WebhooksVerify> {
  static description = `Checks one AgentAuth delivery locally, in constant time: X-AgentAuth-Signature is the hex HMAC-SHA256 of the raw body, keyed by the webhook secret. stdin holds the secret on its first line, then the raw body — or, with --body-file, only the secret. Hex case and a sha256= prefix are ignored. Prints "valid" (exit 0); a mismatch is refused (exit 7). Nothing is sent anywhere.`
  static examples = [
    `{ printf '%s\\n' "$WEBHOOK_SECRET"; cat delivery.json; } | <%= config.bin %> <%= command.id %> --secret-stdin --signature "$SIGNATURE"`,
    `printf '%s' "$WEBHOOK_SECRET" | <%= config.bin %> <%= command.id %> --secret-stdin --signature "$SIGNATURE" --body-file delivery.json`,
  ]
  static flags = {
    'body-file': Flags.string({
      description: 'Read the raw body from this file (stdin then holds only the secret).',
    }),
    'secret-stdin': Flags.boolean({
      description: 'Read the webhook secret from stdin (required: never in argv).',
    }),
    signature: Flags.string({
      description: 'The X-AgentAuth-Signature header (64 hex digits).',
      required: true,
    }),
  }
  static summary = 'Check a webhook delivery’s signature.'

  async run(): Promise<WebhooksVerifyResult> {
    if (!this.flags['secret-stdin'])
      throw new UsageError(
        'SECRET_STDIN_REQUIRED',
        'The webhook secret is read from stdin only: add --secret-stdin',
        {
          suggestion: `{ printf '%s\\n' "$WEBHOOK_SECRET"; cat body.json; } | agentvault agents webhooks verify --secret-stdin --signature HEX`,
        },
      )
    const [
      {parseSignature, splitSecretAndBody, verifyWebhookSignature},
      {inputTooLarge, readFileCapped, readStdin},
    ] = await Promise.all([
      import('../../../backends/agentauth/webhook-signature.js'),
      import('../../../ui/input.js'),
    ])
    const signature = parseSignature(this.flags.signature)
    let bodyFromFile: Buffer | undefined
    if (this.flags['body-file'] !== undefined) {
      try {
        bodyFromFile = await readFileCapped(
          this.flags['body-file'],
          MAX_WEBHOOK_BYTES,
          0,
          inputTooLarge('--body-file', 'A webhook body is at most 16 MiB here.'),
        )
      } catch (error) {
        if (error instanceof UsageError) throw error
        throw new UsageError(
          'FILE_UNREADABLE',
          `Cannot read ${this.flags['body-file']} (${(error as NodeJS.ErrnoException).code})`,
          {
            suggestion: 'Check the path given to --body-file.',
          },
        )
      }
    }

    const stdin = await readStdin(
      MAX_WEBHOOK_BYTES,
      0,
      inputTooLarge('stdin (the secret, then the body)', 'A webhook body is at most 16 MiB here.'),
    )
    try {
      const {body, secret} = splitSecretAndBody(stdin, bodyFromFile)
      verifyWebhookSignature(secret, body, signature)
    } finally {
      stdin.fill(0)
    }

    this.log('valid')
    return {valid: true}
  }
}
