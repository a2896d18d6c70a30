import {Args, Flags} from '@oclif/core'

import type {SecretMetadata} from '../../core/backend.js'

import {AgentVaultCommand} from '../../base-command.js'
import {UsageError} from '../../core/errors.js'
import {existingVersion, prepareSet} from '../../core/secrets.js'
import {normaliseHostPattern} from '../../core/use/hosts.js'
import {DEFAULT_MAX_VALUE_BYTES, MAX_VALUE_BYTES_ENV} from '../../core/value-size.js'
import {readSecretInput, readStdin} from '../../ui/input.js'
import {isTerminal} from '../../ui/terminal.js'

export type SecretsSetResult = SecretMetadata & {reference: string}

export default class SecretsSet extends AgentVaultCommand<typeof SecretsSet> {
  static args = {
    name: Args.string({
      description:
        'Secret name or reference (NAME, local://NAME). NAME=VALUE works but leaks to shell history.',
      required: true,
    }),
  }
  static description = `The value comes from piped stdin, a hidden prompt on a terminal, --from-file or --from-env; never put it in argv. Piped stdin and --from-file drop one trailing newline (\\n or \\r\\n), as \`echo\` and editors add one; an empty value is refused. A value may be at most 1 MiB (--max-value-bytes raises the limit); no source is read further than that. Storing under an existing name creates a new version; on a terminal the command says which version it replaces. To change only the description, tags or allowed domains, use \`secrets edit\`.`
  static valueInArgvHint =
    'Pass the value on stdin: `printf %s "$VALUE" | agentvault secrets set NAME` (or --from-env VAR, --from-file FILE); a value in argv leaks to shell history and `ps`.'
  static examples = [
    'printf %s "$OPENAI_KEY" | <%= config.bin %> <%= command.id %> OPENAI_KEY',
    '<%= config.bin %> <%= command.id %> DEPLOY_KEY --from-file ./deploy_key.pem --description "deploy key"',
    '<%= config.bin %> <%= command.id %> GITHUB_TOKEN --from-env GITHUB_TOKEN --allow-domain api.github.com',
    'printf %s "$TOKEN" | <%= config.bin %> <%= command.id %> openbao://secret/myapp/api#token',
    `printf '{"user":"svc","token":"%s"}' "$TOKEN" | <%= config.bin %> <%= command.id %> openbao://secret/myapp/api --json-stdin --cas 3`,
    'printf %s "$STRIPE_KEY" | <%= config.bin %> <%= command.id %> agentsecrets://STRIPE_KEY --allow-argv',
  ]
  static flags = {
    'allow-argv': Flags.boolean({
      description:
        'agentsecrets: allow passing the value to the AgentSecrets CLI as a KEY=value argument (its only input; other local processes can read argv while it runs).',
    }),
    'allow-domain': Flags.string({
      description:
        'Host this secret may be used against by `use`/`call` (exact host or *.suffix, optionally with :port; repeatable).',
      multiple: true,
    }),
    description: Flags.string({description: 'Free-text description.'}),
    'from-env': Flags.string({
      description: 'Read the value from this environment variable.',
      exclusive: ['from-file'],
    }),
    'from-file': Flags.string({
      description:
        'Read the value from this file (- for stdin): its bytes as-is, minus one trailing newline (\\n or \\r\\n).',
      exclusive: ['from-env'],
    }),
    'max-value-bytes': Flags.integer({
      description: 'Refuse a value larger than this many bytes (default 1 MiB).',
      env: MAX_VALUE_BYTES_ENV,
      helpValue: 'N',
      min: 1,
    }),
    tag: Flags.string({description: 'Tag (repeatable).', multiple: true}),
    cas: Flags.integer({
      description:
        'openbao: write only if N is still the current version (0 = only if the secret does not exist yet).',
      min: 0,
    }),
    'json-stdin': Flags.boolean({
      description:
        'openbao: read a JSON object from stdin and store it as the whole new version (REF without #field).',
      exclusive: ['from-env', 'from-file'],
    }),
  }
  static summary = 'Store a secret from stdin, a hidden prompt, a file or an env var.'

  async run(): Promise<SecretsSetResult> {
    const {name} = this.args
    // NAME=VALUE, but the `=` of a reference's own `?profile=` / `?version=` is not the separator.
    const eq = name.search(/(?<![?&](?:profile|version))=/)
    const target = eq === -1 ? name : name.slice(0, eq)
    const allowedDomains = this.flags['allow-domain']?.map((pattern) => normaliseHostPattern(pattern))
    const json = this.flags['json-stdin']
    const maxBytes = this.flags['max-value-bytes'] ?? DEFAULT_MAX_VALUE_BYTES
    if (json && eq !== -1)
      throw new UsageError('SET_JSON_INLINE', '--json-stdin reads the value from stdin: drop "=VALUE"', {
        suggestion: `printf '{"key":"value"}' | agentvault secrets set ${target} --json-stdin`,
      })
    const store = await prepareSet(
      this.vault,
      target,
      {
        ...(this.flags['allow-argv'] ? {allowArgv: true} : {}),
        allowedDomains,
        ...(this.flags.cas === undefined ? {} : {cas: this.flags.cas}),
        description: this.flags.description,
        ...(json ? {json} : {}),
        tags: this.flags.tag,
      },
      {maxValueBytes: maxBytes},
    )
    if (isTerminal(2) && !this.jsonEnabled()) await this.sayWhatIsReplaced(target)

    const value = json
      ? await readStdin(maxBytes)
      : await readSecretInput({
          fromEnv: this.flags['from-env'],
          fromFile: this.flags['from-file'],
          inline: eq === -1 ? undefined : name.slice(eq + 1),
          interactive: this.interactive,
          maxBytes,
          promptLabel: `Value for ${target}`,
          warn: (message) => this.warnUser(message),
        })
    const result = await store(value)
    value.fill(0)
    this.logToStderr(
      `Stored ${result.reference}${result.version === undefined ? '' : ` (version ${result.version})`}`,
    )
    return result
  }

  /**
   * On a terminal, say which version is about to be replaced (names and numbers only). Best
   * effort: a backend that cannot describe the secret (permissions) still stores it.
   */
  private async sayWhatIsReplaced(target: string): Promise<void> {
    let current: number | undefined
    try {
      current = await existingVersion(this.vault, target)
    } catch {
      return
    }

    if (current !== undefined)
      this.logToStderr(
        `${target} exists: replacing version ${current} (the new value becomes version ${current + 1}).`,
      )
  }
}
