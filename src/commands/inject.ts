import {Flags} from '@oclif/core'

import {AgentVaultCommand} from '../base-command.js'
import {UsageError} from '../core/errors.js'
import {renderTemplate} from '../core/inject.js'
import {readInputFile} from '../ui/input.js'

export interface InjectResult {
  /** Bytes written. */
  bytes: number
  /** The file written (with --json, output always goes to a file). */
  output: string
  /** Every reference rendered, canonical, once each. */
  references: string[]
}

/** The largest template `inject` reads. */
const MAX_TEMPLATE_BYTES = 16 * 1024 * 1024

export default class Inject extends AgentVaultCommand<typeof Inject> {
  static description = `Replaces every \`{{ REF }}\` in a UTF-8 template with the secret's value (blanks inside the braces are optional) and writes the result to -o FILE — created with mode 0600 and replaced atomically, so no reader ever sees half of it — or to stdout. Printing to a terminal needs --reveal; piped or redirected stdout does not. \`{{ … }}\` holding anything other than a reference (another template language, a URL) is left as written. All references are resolved concurrently, one session per profile; when any is missing, the command fails with exit 6 naming every missing one and writes nothing.`
  static examples = [
    '<%= config.bin %> <%= command.id %> -i config.yml.tpl -o config.yml',
    "echo 'db_password: {{ local://DB_PASSWORD }}' | <%= config.bin %> <%= command.id %> -o config.yml",
    '<%= config.bin %> <%= command.id %> -i .env.tpl --reveal',
    '<%= config.bin %> <%= command.id %> -i app.conf.tpl -o app.conf --json',
  ]
  static flags = {
    'in-file': Flags.string({
      char: 'i',
      description: 'The template to render, or - for stdin (default: stdin when it is not a terminal).',
      helpValue: 'TEMPLATE',
    }),
    'out-file': Flags.string({
      char: 'o',
      description: 'Write the result to this file (mode 0600, replaced atomically) instead of stdout.',
      helpValue: 'FILE',
    }),
    reveal: Flags.boolean({description: 'Allow printing the rendered values to a terminal.'}),
  }
  static summary = 'Render {{ REF }} references in a template into a 0600 file or stdout.'

  async run(): Promise<InjectResult | void> {
    const input = this.flags['in-file'] ?? (process.stdin.isTTY ? undefined : '-')
    if (input === undefined)
      throw new UsageError('TEMPLATE_REQUIRED', 'No template given', {
        suggestion: 'Give one with -i TEMPLATE, or pipe it: agentvault inject -o FILE < TEMPLATE',
      })
    const output = this.flags['out-file']
    if (output === undefined && this.jsonEnabled())
      throw new UsageError(
        'OUTPUT_REQUIRED',
        '--json prints the result, not the rendered template: give -o FILE',
        {
          suggestion: 'agentvault inject -i TEMPLATE -o FILE --json',
        },
      )
    if (output === undefined && process.stdout.isTTY && !this.flags.reveal)
      throw new UsageError(
        'REVEAL_REQUIRED',
        'Refusing to print secret values to the terminal without --reveal',
        {
          suggestion: 'Write a file instead (-o FILE), or add --reveal.',
        },
      )
    const template = await readInputFile(input, MAX_TEMPLATE_BYTES, '-i')
    const rendered = await renderTemplate(
      this.vault,
      template.toString('utf8'),
      input === '-' ? 'stdin' : input,
    )
    try {
      if (output === undefined) {
        await new Promise<void>((resolve, reject) => {
          process.stdout.write(rendered.output, (error) => (error ? reject(error) : resolve()))
        })
        return
      }

      const {writeOutputFile} = await import('../core/output-file.js')
      await writeOutputFile(output, rendered.output)
      this.logToStderr(
        `Wrote ${output} (${rendered.references.length} reference${rendered.references.length === 1 ? '' : 's'}).`,
      )
      return {bytes: rendered.output.length, output, references: rendered.references}
    } finally {
      rendered.output.fill(0)
    }
  }
}
