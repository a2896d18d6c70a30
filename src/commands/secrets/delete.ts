import {Args, Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {UsageError} from '../../core/errors.js'
import {type DeleteOutcome, deleteSecret, deletionIsReversible} from '../../core/secrets.js'
import {confirm} from '../../ui/input.js'

export type SecretsDeleteResult = DeleteOutcome

/** `--versions 1,2` (also `--versions 1 --versions 2`) → [1, 2]. */
function parseVersions(values: string[] | undefined): number[] | undefined {
  if (values === undefined) return undefined
  const parts = values.flatMap((value) => value.split(',')).map((part) => part.trim())
  if (parts.length === 0 || !parts.every((part) => /^[1-9]\d{0,15}$/.test(part)))
    throw new UsageError('DELETE_VERSIONS', '--versions takes version numbers, e.g. --versions 1,2')
  return [...new Set(parts.map(Number))]
}

export default class SecretsDelete extends AgentVaultCommand<typeof SecretsDelete> {
  static aliases = ['secrets rm']
  static args = {
    ref: Args.string({description: 'Secret reference or name.', required: true}),
  }
  static description = `Asks to confirm on a terminal; elsewhere (scripts, CI) --yes is required. On openbao (KV v2) a plain delete soft-deletes the current version (reversible with \`bao kv undelete\`, no confirmation needed); --versions soft-deletes those versions; --destroy --versions and --all-versions are irreversible and need confirmation.`
  static examples = [
    '<%= config.bin %> <%= command.id %> OLD_TOKEN',
    '<%= config.bin %> <%= command.id %> local://OLD_TOKEN --yes',
    '<%= config.bin %> <%= command.id %> openbao://secret/myapp/api',
    '<%= config.bin %> <%= command.id %> openbao://secret/myapp/api --versions 1,2',
    '<%= config.bin %> <%= command.id %> openbao://secret/myapp/api --destroy --versions 2 --yes',
    '<%= config.bin %> <%= command.id %> openbao://secret/myapp/api --all-versions --yes',
  ]
  static flags = {
    'all-versions': Flags.boolean({
      description: 'openbao: delete every version and the metadata of the key, irreversibly.',
      exclusive: ['versions', 'destroy'],
    }),
    destroy: Flags.boolean({
      description:
        "openbao: destroy the --versions (or the REF's ?version) irreversibly instead of soft-deleting them.",
    }),
    versions: Flags.string({
      description: 'openbao: soft-delete these versions (comma-separated) instead of the current one.',
      multiple: true,
    }),
    yes: Flags.boolean({char: 'y', description: 'Delete without asking.'}),
  }
  static summary = 'Delete a secret.'

  async run(): Promise<SecretsDeleteResult> {
    const options = {
      allVersions: this.flags['all-versions'],
      destroy: this.flags.destroy,
      ...(this.flags.versions ? {versions: parseVersions(this.flags.versions)} : {}),
    }
    if (!this.flags.yes && !(await deletionIsReversible(this.vault, this.args.ref, options))) {
      if (!this.interactive)
        throw new UsageError(
          'CONFIRMATION_REQUIRED',
          `Refusing to delete ${this.args.ref} without confirmation`,
          {
            suggestion: 'Add --yes to delete without a prompt.',
          },
        )
      if (!(await confirm(`Delete ${this.args.ref}? This cannot be undone.`)))
        throw new UsageError('ABORTED', 'Deletion cancelled', {suggestion: 'Nothing was deleted.'})
    }

    const result = await deleteSecret(this.vault, this.args.ref, options)
    this.logToStderr(deletedMessage(result))
    return result
  }
}

function deletedMessage(result: DeleteOutcome): string {
  const versions = result.versions?.join(',')
  switch (result.mode) {
    case undefined: {
      return `Deleted ${result.deleted}`
    }

    case 'current': {
      return `Soft-deleted the current version of ${result.deleted} (if it existed). Undo: bao kv undelete -versions=N …; \`agentvault secrets versions ${result.deleted}\` shows N.`
    }

    case 'versions': {
      return `Soft-deleted version(s) ${versions} of ${result.deleted} (where they existed). Undo: bao kv undelete -versions=${versions} …`
    }

    case 'destroy': {
      return `Destroyed version(s) ${versions} of ${result.deleted} (where they existed). This cannot be undone.`
    }

    case 'all-versions': {
      return `Deleted every version and the metadata of ${result.deleted} (if it existed). This cannot be undone.`
    }
  }
}
