/**
 * What `login local` takes and what a local profile may set (core/declarations.ts): data only, read
 * by the command layer to build flags, help and prompts.
 */
import type {LoginDeclaration, SettingDeclaration} from '../../core/declarations.js'

export const LOGIN: LoginDeclaration = {
  kind: 'local',
  summary: 'Initialise the embedded local vault and choose where its key lives.',
  description:
    'Creates the vault file in $AGENTVAULT_HOME (nothing changes when it exists). Its key lives in the first available of: AGENTVAULT_PASSPHRASE (scrypt), the OS keychain, a 0600 key file `vault.key` — or exactly where --key-source says. The key source is recorded in the vault, so later commands go straight to it; a passphrase vault is opened with AGENTVAULT_PASSPHRASE, or at a terminal agentvault asks for the passphrase (hidden).',
  examples: [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --key-source file',
    'AGENTVAULT_PASSPHRASE=… <%= config.bin %> <%= command.id %> --key-source passphrase',
  ],
  inputs: [
    {
      name: 'keySource',
      flag: 'key-source',
      label: 'key source',
      description: 'Where the vault key lives (default: the first available).',
      options: ['passphrase', 'keychain', 'file'],
    },
  ],
}

export const SETTINGS: readonly SettingDeclaration[] = [
  {
    name: 'keepVersions',
    type: 'integer',
    description: 'Previous values kept per secret (0–1000, default 10).',
  },
]
