import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {importSecrets, type ImportSummary} from '../../core/transfer.js'
import {DEFAULT_MAX_VALUE_BYTES, MAX_VALUE_BYTES_ENV} from '../../core/value-size.js'
import {readInputFile} from '../../ui/input.js'

export type SecretsImportResult = ImportSummary

/** The largest file `secrets import` reads. */
const MAX_IMPORT_FILE_BYTES = 64 * 1024 * 1024

function list(names: string[]): string {
  return names.join(', ')
}

export default class SecretsImport extends AgentVaultCommand<typeof SecretsImport> {
  static args = {
    file: Args.string({description: 'A dotenv file of NAME=value lines, or - for stdin.', required: true}),
  }
  static description = `Reads NAME=value lines (the syntax of \`run --env-file\`: quotes, \`export\`, comments, multi-line quoted values) and stores every value in the profile in one write, all or nothing. Names already in the profile are skipped (and listed) unless --overwrite. Empty values, and values that are references (local://…, openbao://…: use \`run --env-file\` for those), are not imported; they are named in a warning. A value larger than the limit (1 MiB, --max-value-bytes) fails the whole import before anything is written. The summary names secrets, never values. The local backend imports in one locked vault update; other backends refuse (store their secrets with \`secrets set\`).`
  static examples = [
    '<%= config.bin %> <%= command.id %> .env',
    '<%= config.bin %> <%= command.id %> .env --overwrite --json',
    'doppler secrets download --no-file --format env | <%= config.bin %> <%= command.id %> -',
  ]
  static flags = {
    'max-value-bytes': Flags.integer({
      description: 'Refuse a value larger than this many bytes (default 1 MiB).',
      env: MAX_VALUE_BYTES_ENV,
      helpValue: 'N',
      min: 1,
    }),
    overwrite: Flags.boolean({description: 'Replace secrets that already exist (each gets a new version).'}),
  }
  static summary = 'Import a dotenv file of plain values into a profile.'

  async run(): Promise<SecretsImportResult> {
    const {file} = this.args
    const summary = await importSecrets(this.vault, {
      maxValueBytes: this.flags['max-value-bytes'] ?? DEFAULT_MAX_VALUE_BYTES,
      overwrite: this.flags.overwrite,
      read: () => readInputFile(file, MAX_IMPORT_FILE_BYTES, 'FILE'),
      source: file === '-' ? 'stdin' : file,
      warn: (message) => this.warnUser(message),
    })
    const imported = summary.created.length + summary.replaced.length
    const parts = [`Imported ${imported} secret${imported === 1 ? '' : 's'} into ${summary.profile}`]
    if (summary.created.length > 0) parts.push(`new: ${list(summary.created)}`)
    if (summary.replaced.length > 0) parts.push(`replaced: ${list(summary.replaced)}`)
    if (summary.skipped.length > 0)
      parts.push(
        `skipped ${summary.skipped.length} existing (--overwrite replaces them): ${list(summary.skipped)}`,
      )
    if (summary.ignored.length > 0) parts.push(`not imported: ${list(summary.ignored.map(({name}) => name))}`)
    this.logToStderr(parts.join('; '))
    return summary
  }
}
