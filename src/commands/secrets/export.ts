import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {UsageError} from '../../core/errors.js'
import {EXPORT_FORMATS, exportable, exportSecrets, formatExport} from '../../core/transfer.js'

export interface SecretsExportResult {
  backend: string
  profile: string
  secrets: Array<{encoding: 'base64' | 'utf8'; name: string; value: string}>
}

export default class SecretsExport extends AgentVaultCommand<typeof SecretsExport> {
  static args = {
    prefix: Args.string({description: 'Only secrets whose name starts with this.'}),
  }
  static description = `Prints every value of the profile (or those whose name starts with PREFIX) as a dotenv file (default), a JSON object or YAML, so it refuses without --reveal. Zero-knowledge backends (agentsecrets) never reveal values and are refused. dotenv output is double-quoted so that \`secrets import\` and \`run --env-file\` read every value back unchanged; names that are not variable names (dotenv) and values that are not UTF-8 text (all formats) are left out with a warning naming them, and the command then exits 2 (EXPORT_INCOMPLETE) after printing the rest. With --json the result carries every value (binary ones base64-encoded).`
  static examples = [
    '<%= config.bin %> <%= command.id %> --reveal > backup.env',
    '<%= config.bin %> <%= command.id %> --reveal --format json',
    '<%= config.bin %> <%= command.id %> STRIPE_ --reveal --format yaml',
    '<%= config.bin %> <%= command.id %> --reveal --profile work | <%= config.bin %> secrets import - --profile home',
  ]
  static flags = {
    format: Flags.string({
      default: 'dotenv',
      description: 'Output format.',
      options: [...EXPORT_FORMATS],
    }),
    reveal: Flags.boolean({description: 'Confirm that values may be printed.'}),
  }
  static summary = 'Print a profile’s secrets as dotenv, JSON or YAML (requires --reveal).'

  async run(): Promise<SecretsExportResult | void> {
    if (!this.flags.reveal)
      throw new UsageError('REVEAL_REQUIRED', 'Refusing to print secret values without --reveal', {
        suggestion: 'Add --reveal, or inject them instead: agentvault run --env-file .env.refs -- cmd',
      })
    const exported = await exportSecrets(this.vault, this.args.prefix)
    try {
      if (this.jsonEnabled())
        return {
          backend: exported.backend,
          profile: exported.profile,
          secrets: exported.secrets.map(({name, value}) => {
            const text = value.toString('utf8')
            const utf8 = Buffer.from(text, 'utf8').equals(value)
            return {encoding: utf8 ? 'utf8' : 'base64', name, value: utf8 ? text : value.toString('base64')}
          }),
        }
      const format = this.flags.format as (typeof EXPORT_FORMATS)[number]
      const entries: Array<{name: string; text: string}> = []
      const leftOut: string[] = []
      for (const secret of exported.secrets) {
        const decision = exportable(secret, format)
        if ('text' in decision) entries.push(decision)
        else {
          leftOut.push(decision.name)
          this.warnUser(
            `${JSON.stringify(decision.name)} ${decision.reason}; left out of the ${format} output.`,
          )
        }
      }

      process.stdout.write(formatExport(entries, format))
      this.logToStderr(
        `Exported ${entries.length} secret${entries.length === 1 ? '' : 's'} from ${exported.profile}.`,
      )
      // `export --reveal > backup.env` is a backup: one that holds less than the profile must not
      // look like a success (exit 0) with only a warning scrolling past in a script's log.
      if (leftOut.length > 0)
        this.refuseWithResult(
          new UsageError(
            'EXPORT_INCOMPLETE',
            `${leftOut.length} secret${leftOut.length === 1 ? ' is' : 's are'} not in the ${format} output: ${leftOut.map((name) => JSON.stringify(name)).join(', ')}`,
            {
              details: {leftOut},
              suggestion:
                'Export with --json, which carries every value (binary ones base64-encoded), or pass a PREFIX that leaves those secrets out.',
            },
          ),
        )
    } finally {
      for (const {value} of exported.secrets) value.fill(0)
    }
  }
}
