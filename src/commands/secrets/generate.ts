import {Args, Flags} from '@oclif/core'

import type {SecretMetadata} from '../../core/backend.js'

import {AgentVaultCommand} from '../../base-command.js'
import {UsageError} from '../../core/errors.js'
import {
  CHARSET_NAMES,
  type CharsetName,
  DEFAULT_LENGTH,
  entropyBits,
  generateValue,
  MAX_LENGTH,
} from '../../core/generate.js'
import {existingVersion, prepareSet} from '../../core/secrets.js'
import {normaliseHostPattern} from '../../core/use/hosts.js'

export type SecretsGenerateResult = SecretMetadata & {
  bits: number
  charset: CharsetName
  length: number
  reference: string
  /** Only with --reveal. */
  value?: string
}

export default class SecretsGenerate extends AgentVaultCommand<typeof SecretsGenerate> {
  static args = {
    name: Args.string({description: 'Secret name or reference (NAME, local://NAME).', required: true}),
  }
  static description = `Stores a new random value drawn uniformly from the chosen alphabet (node:crypto's randomInt): alnum (default), alpha, numeric, hex, base64url, or ascii (printable ASCII, symbols included). The value is never printed unless --reveal. Refuses to replace an existing secret unless --overwrite (which stores the new value as a new version: a rotation).`
  static examples = [
    '<%= config.bin %> <%= command.id %> SESSION_SECRET',
    '<%= config.bin %> <%= command.id %> DB_PASSWORD --length 40 --charset ascii',
    '<%= config.bin %> <%= command.id %> WEBHOOK_SECRET --charset hex --length 64 --reveal',
    '<%= config.bin %> <%= command.id %> DB_PASSWORD --overwrite --json',
  ]
  static flags = {
    'allow-domain': Flags.string({
      description:
        'Host this secret may be used against by `use`/`call` (exact host or *.suffix, optionally with :port; repeatable).',
      multiple: true,
    }),
    charset: Flags.string({default: 'alnum', description: 'Alphabet of the value.', options: CHARSET_NAMES}),
    description: Flags.string({description: 'Free-text description.'}),
    length: Flags.integer({
      default: DEFAULT_LENGTH,
      description: `Number of characters (1–${MAX_LENGTH}).`,
      max: MAX_LENGTH,
      min: 1,
    }),
    overwrite: Flags.boolean({description: 'Replace an existing secret (its value becomes a new version).'}),
    reveal: Flags.boolean({description: 'Also print the generated value.'}),
    tag: Flags.string({description: 'Tag (repeatable).', multiple: true}),
  }
  static summary = 'Store a new random secret (printed only with --reveal).'

  async run(): Promise<SecretsGenerateResult> {
    const {name} = this.args
    const charset = this.flags.charset as CharsetName
    const {length} = this.flags
    const store = await prepareSet(this.vault, name, {
      allowedDomains: this.flags['allow-domain']?.map((pattern) => normaliseHostPattern(pattern)),
      description: this.flags.description,
      tags: this.flags.tag,
    })
    const current = this.flags.overwrite ? undefined : await existingVersion(this.vault, name)
    if (current !== undefined)
      throw new UsageError('SECRET_EXISTS', `${name} already exists (version ${current})`, {
        suggestion: `Rotate it with --overwrite (a new version), or pick another name.`,
      })
    const value = generateValue(length, charset)
    try {
      const stored = await store(value)
      const bits = entropyBits(length, charset)
      this.logToStderr(
        `Generated ${stored.reference}${stored.version === undefined ? '' : ` (version ${stored.version})`}: ${length} ${charset} characters, ${bits} bits`,
      )
      const result: SecretsGenerateResult = {...stored, bits, charset, length}
      if (!this.flags.reveal) return result
      if (this.jsonEnabled()) return {...result, value: value.toString('utf8')}
      process.stdout.write(value)
      if (process.stdout.isTTY) process.stdout.write('\n')
      return result
    } finally {
      value.fill(0)
    }
  }
}
