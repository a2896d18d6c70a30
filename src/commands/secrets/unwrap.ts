import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {UsageError} from '../../core/errors.js'
import {unwrapSecret} from '../../core/secrets.js'
import {inputTooLarge, promptHidden, readStdin, stripOneNewline} from '../../ui/input.js'

/** A wrapping token is a few dozen characters: stdin is read no further than this. */
const MAX_TOKEN_BYTES = 64 * 1024

export interface SecretsUnwrapResult {
  encoding: 'base64' | 'utf8'
  /** With --expect: the reference the token was checked against. */
  reference?: string
  value: string
}

export default class SecretsUnwrap extends AgentVaultCommand<typeof SecretsUnwrap> {
  static args = {
    token: Args.string({
      description: 'The wrapping token. Prefer stdin or the prompt: argv leaks to shell history and `ps`.',
      // Piped stdin is read below (as a secret), not by oclif as this argument.
      ignoreStdin: true,
    }),
  }
  static description = `Reads the wrapping token from stdin or a hidden prompt, looks it up (without using it), refuses it with --expect when it was made for another secret, then unwraps it: the token works exactly once. Prints the whole data map as JSON, or one field with --field. Uses the openbao profile of --expect, else --profile, else the default openbao profile.`
  static examples = [
    'printf %s "$WRAP_TOKEN" | <%= config.bin %> <%= command.id %> --reveal',
    'printf %s "$WRAP_TOKEN" | <%= config.bin %> <%= command.id %> --reveal --expect openbao://secret/myapp/api --field token',
  ]
  static flags = {
    expect: Flags.string({
      description: 'Refuse (exit 7, token left unused) unless the token wraps this secret.',
    }),
    field: Flags.string({description: 'Print only this key of the unwrapped data map.'}),
    reveal: Flags.boolean({description: 'Confirm that the value may be printed.'}),
  }
  static summary = 'Unwrap a response-wrapping token (openbao) into the secret, once.'

  async run(): Promise<SecretsUnwrapResult | void> {
    if (!this.flags.reveal)
      throw new UsageError('REVEAL_REQUIRED', 'Refusing to print a secret value without --reveal', {
        suggestion: 'Add --reveal (the token is not used until then).',
      })
    const token = await this.wrappingToken()
    const {reference, value} = await unwrapSecret(this.vault, token, {
      ...(this.flags.expect === undefined ? {} : {expect: this.flags.expect}),
      ...(this.flags.field === undefined ? {} : {field: this.flags.field}),
      kind: 'openbao',
    })
    if (this.jsonEnabled()) {
      const text = value.toString('utf8')
      const utf8 = Buffer.from(text, 'utf8').equals(value)
      return {
        encoding: utf8 ? 'utf8' : 'base64',
        ...(reference ? {reference} : {}),
        value: utf8 ? text : value.toString('base64'),
      }
    }

    process.stdout.write(value)
    if (process.stdout.isTTY) process.stdout.write('\n')
  }

  private async wrappingToken(): Promise<string> {
    if (this.args.token !== undefined) {
      this.warnUser('A token in argv leaks to shell history and `ps`; pipe it on stdin instead.')
      return this.args.token.trim()
    }

    let bytes: Buffer | undefined
    if (!process.stdin.isTTY)
      bytes = stripOneNewline(
        await readStdin(
          MAX_TOKEN_BYTES,
          2,
          inputTooLarge(
            'The wrapping token on stdin',
            'Pipe only the wrapping token (a few dozen characters).',
          ),
        ),
      )
    else if (this.interactive) bytes = await promptHidden('Wrapping token')
    const token = bytes?.toString('utf8').trim() ?? ''
    bytes?.fill(0)
    if (token === '')
      throw new UsageError('VALUE_REQUIRED', 'No wrapping token given', {
        suggestion: 'Pipe it: printf %s "$WRAP_TOKEN" | agentvault secrets unwrap --reveal',
      })
    return token
  }
}
