import {Args, Flags} from '@oclif/core'

import type {HttpOutcome, HttpResult} from '../core/use/http-result.js'

import {AgentVaultCommand} from '../base-command.js'
import {UsageError} from '../core/errors.js'
import {SUPPORTED_SCHEMES} from '../core/references.js'
import {callWithSecrets} from '../core/use.js'
import {inputTooLarge, readFileCapped, readStdin} from '../ui/input.js'

/** The largest request body `call` reads (stdin or --data-file; as `run --placeholders` relays). */
const MAX_BODY_BYTES = 50 * 1024 * 1024

function bodyTooLarge(source: string): ReturnType<typeof inputTooLarge> {
  return inputTooLarge(
    source,
    'Send a smaller body: call reads at most 50 MiB (larger uploads need another tool).',
  )
}

import {useLimitFlags} from './use.js'

export type CallResult = HttpResult

/** curl -i style: status line and headers, a blank line, then the body. */
function responseHead(outcome: HttpOutcome): string {
  const lines = [`HTTP/1.1 ${outcome.status} ${outcome.statusText}`.trimEnd()]
  for (const [name, value] of Object.entries(outcome.headers))
    for (const item of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${item}`)
  return lines.join('\r\n') + '\r\n\r\n'
}

/**
 * `-H/--header` values that are the old secret-header spelling: the value after the colon is a
 * whole reference of a known scheme (`X-Api-Key: local://API_KEY`), which no curl user means as text.
 */
function splitHeaders(specs: readonly string[]): {plain: string[]; secret: string[]} {
  const plain: string[] = []
  const secret: string[] = []
  for (const spec of specs) {
    const value = spec.slice(spec.indexOf(':') + 1).trim()
    const scheme = /^([a-z][a-z0-9+.-]*):\/\/\S/i.exec(value)?.[1]?.toLowerCase()
    const isReference =
      spec.includes(':') && scheme !== undefined && (SUPPORTED_SCHEMES as readonly string[]).includes(scheme)
    ;(isReference ? secret : plain).push(spec)
  }

  return {plain, secret}
}

export default class Call extends AgentVaultCommand<typeof Call> {
  static args = {
    url: Args.string({description: 'The http:// or https:// URL to call.', required: true}),
  }
  static description = `Like curl, but the credentials are secret references: agentvault reads them, injects them where you say, and prints only the response. Styles combine in one call. Echoes of a secret in the response are concealed (--json: redacted: true).

Exit codes: 0 for 2xx/3xx, 22 for an HTTP status of 400 or more (unless --no-fail), 7 when a guard refuses (host not allowed for the secret, plain http:// off this machine without the profile's allowPlainHttp, private or metadata address, redirect to another host that would carry the secret), 3 for TLS verification failures, 5 for network failures and timeouts.

A secret goes only to hosts it allows (secrets set --allow-domain), else to the profile's allowedDomains or this command's --allow-domain. Redirects (at most 5) are followed only to allowed hosts; credential headers are dropped when the host changes.

agentsecrets:// secrets are injected by AgentSecrets itself (its CLI's \`call\`, or its proxy): its workspace allowlist and redaction apply instead of agentvault's (exit 7 names the \`agentsecrets workspace allowlist add\` command), and one call cannot mix them with other backends' secrets. Over its HTTP interface query, body and form names are canonicalised (\`key\` becomes \`Key\`), so such names are refused; -H headers and binary bodies need the proxy transport.`
  static examples = [
    '<%= config.bin %> <%= command.id %> https://api.openai.com/v1/models --bearer OPENAI_KEY',
    '<%= config.bin %> <%= command.id %> https://api.example.com/v1/items -X POST --secret-header "X-Api-Key: local://API_KEY" -H "Content-Type: application/json" -d \'{"name":"x"}\'',
    '<%= config.bin %> <%= command.id %> https://maps.example.com/geocode --query key=MAPS_KEY --json',
    '<%= config.bin %> <%= command.id %> https://api.stripe.com/v1/charges --bearer agentsecrets://STRIPE_KEY --json',
    '<%= config.bin %> <%= command.id %> https://auth.example.com/token --form-field client_secret=CLIENT_SECRET -d grant_type=client_credentials',
    '<%= config.bin %> <%= command.id %> https://internal.example.com/api --bearer TOKEN --cacert ./corp-ca.pem --allow-domain internal.example.com',
  ]
  static flags = {
    request: Flags.string({
      char: 'X',
      description: 'HTTP method (default GET, or POST when there is a body).',
      helpValue: 'METHOD',
    }),
    bearer: Flags.string({description: 'Send Authorization: Bearer <secret>.', helpValue: 'REF'}),
    basic: Flags.string({
      description: 'Send Authorization: Basic <base64 of the secret, which is user:password>.',
      helpValue: 'REF',
    }),
    'secret-header': Flags.string({
      description: 'Send a header whose value is a secret (repeatable). For plain headers use -H.',
      helpValue: "'NAME: REF'",
      multiple: true,
    }),
    query: Flags.string({
      description: 'Add a query parameter whose value is a secret (repeatable).',
      helpValue: 'NAME=REF',
      multiple: true,
    }),
    'body-field': Flags.string({
      description: 'Set a field of the JSON body (dotted path) to a secret (repeatable).',
      helpValue: 'PATH=REF',
      multiple: true,
    }),
    'form-field': Flags.string({
      description: 'Set a field of the form-encoded body to a secret (repeatable).',
      helpValue: 'NAME=REF',
      multiple: true,
    }),
    header: Flags.string({
      aliases: ['plain-header'],
      char: 'H',
      description:
        'A plain header, as in curl (repeatable). A value that is a whole secret reference (scheme://…) is still sent as that secret, with a deprecation warning: use --secret-header.',
      helpValue: "'NAME: VALUE'",
      multiple: true,
    }),
    data: Flags.string({char: 'd', description: 'Request body.', exclusive: ['data-file', 'data-stdin']}),
    'data-file': Flags.string({
      description: 'Read the request body (bytes as-is) from this file.',
      exclusive: ['data', 'data-stdin'],
    }),
    'data-stdin': Flags.boolean({
      description: 'Read the request body from stdin.',
      exclusive: ['data', 'data-file'],
    }),
    include: Flags.boolean({
      char: 'i',
      description: 'Print the status line and response headers before the body.',
    }),
    'no-fail': Flags.boolean({description: 'Exit 0 even when the HTTP status is 400 or more.'}),
    ...useLimitFlags,
  }
  static summary = 'Make an HTTP request with secrets injected, without revealing them.'

  async run(): Promise<CallResult> {
    const {flags} = this
    const {plain, secret} = splitHeaders(flags.header ?? [])
    for (const spec of secret)
      this.warnUser(
        `-H/--header sends plain headers, as in curl; a secret reference there is deprecated: use --secret-header '${spec.trim()}'.`,
      )
    const outcome = await callWithSecrets(
      this.vault,
      {
        ...(await this.body()),
        headers: plain,
        injections: {...flags, header: [...(flags['secret-header'] ?? []), ...secret]},
        method: flags.request,
        url: this.args.url,
      },
      {
        allowHosts: flags['allow-domain'],
        caCert: flags.cacert,
        maxResponseBytes: flags['max-response-bytes'],
        timeout: flags.timeout,
      },
    )
    if (outcome.status >= 400 && !flags['no-fail']) process.exitCode = 22
    if (outcome.redacted) this.warnUser('The response echoed a secret; every echo was concealed.')
    if (!this.jsonEnabled()) {
      if (flags.include) process.stdout.write(responseHead(outcome))
      process.stdout.write(outcome.body)
    }

    const {toHttpResult} = await import('../core/use/http-result.js')
    return toHttpResult(outcome)
  }

  private async body(): Promise<{body?: Buffer}> {
    const {flags} = this
    if (flags.data !== undefined) return {body: Buffer.from(flags.data, 'utf8')}
    if (flags['data-stdin'])
      return {body: await readStdin(MAX_BODY_BYTES, 0, bodyTooLarge('The request body on stdin'))}
    if (flags['data-file'] === undefined) return {}
    try {
      return {body: await readFileCapped(flags['data-file'], MAX_BODY_BYTES, 0, bodyTooLarge('--data-file'))}
    } catch (error) {
      if (error instanceof UsageError) throw error
      throw new UsageError(
        'FILE_UNREADABLE',
        `Cannot read ${flags['data-file']} (${(error as NodeJS.ErrnoException).code})`,
        {
          suggestion: 'Check the path given to --data-file.',
        },
      )
    }
  }
}
