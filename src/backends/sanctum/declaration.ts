/**
 * What `login sanctum` takes and what a sanctum profile may set (core/declarations.ts,
 * protocols/sanctum.md §1, §9): data only, read by the command layer to build flags, help and prompts.
 */
import type {LoginDeclaration, SettingDeclaration} from '../../core/declarations.js'

export const LOGIN: LoginDeclaration = {
  kind: 'sanctum',
  summary: 'Sign in to a SanctumAI vault daemon as an agent.',
  description: `Signs in once (Ed25519 challenge-response) to prove the agent, key and endpoint work, and only then saves them in the profile. The key stays a file you own: ~/.sanctum/keys/<agent>.key (hex seed), or --key-path.

An encrypted ~/.sanctum/keys/<agent>.key.enc is opened with the passphrase from --key-passphrase-stdin, else SANCTUM_KEY_PASSPHRASE, else a hidden prompt. Login then keeps the decrypted key (never the passphrase) in the credential store — the OS keychain, else the encrypted credentials.enc of the agentvault home — tied to that file's exact content, so later commands (secrets, run, use, call) sign in without the passphrase; SANCTUM_KEY_PASSPHRASE still wins when set. \`agentvault logout\` removes it, and a changed .key.enc makes it unused.`,
  examples: [
    '<%= config.bin %> <%= command.id %> --agent ci-bot --key-path ~/.sanctum/keys/ci-bot.key',
    '<%= config.bin %> <%= command.id %> --agent ci-bot --host 127.0.0.1 --port 7600 --generate-key',
    'printf %s "$PASSPHRASE" | <%= config.bin %> <%= command.id %> --agent ci-bot --key-passphrase-stdin',
  ],
  inputs: [
    {
      name: 'agent',
      flag: 'agent',
      label: 'agent name',
      description: 'The agent name registered on the daemon (default: the profile’s, else SANCTUM_AGENT).',
    },
    {
      name: 'socket',
      flag: 'socket',
      label: 'socket',
      helpValue: 'PATH',
      description:
        'Daemon Unix socket (default: the profile’s, else SANCTUM_SOCKET, else ~/.sanctum/vault.sock).',
      exclusive: ['host'],
    },
    {
      name: 'host',
      flag: 'host',
      label: 'host',
      description: 'Daemon TCP host, instead of the Unix socket (default: the profile’s, else SANCTUM_HOST).',
      exclusive: ['socket'],
    },
    {
      name: 'port',
      flag: 'port',
      label: 'port',
      type: 'integer',
      min: 1,
      max: 65_535,
      description: 'Daemon TCP port, with a host (default: the profile’s, else SANCTUM_PORT, else 7600).',
    },
    {
      name: 'keyPath',
      flag: 'key-path',
      label: 'key file',
      helpValue: 'FILE',
      description:
        'The agent key file, a plain hex seed (default: the profile’s, else SANCTUM_KEY_PATH, else ~/.sanctum/keys/<agent>.key).',
    },
    {
      name: 'dialect',
      flag: 'dialect',
      label: 'dialect',
      options: ['auto', 'a', 'b'],
      description: 'Protocol dialect (default auto: A, falling back to B).',
    },
    {
      name: 'generateKey',
      flag: 'generate-key',
      label: 'generate a key',
      type: 'boolean',
      description: 'Write a new Ed25519 seed file (0600) and print its public key to register.',
    },
    {
      name: 'keyPassphrase',
      flag: 'key-passphrase',
      label: 'Passphrase',
      secret: true,
      trim: false,
      deferred: true,
      prompt: 'hidden',
      description:
        'The passphrase of ~/.sanctum/keys/<agent>.key.enc, from stdin (else SANCTUM_KEY_PASSPHRASE, else a hidden prompt when the file is encrypted). The decrypted key is kept in the credential store.',
    },
  ],
}

export const SETTINGS: readonly SettingDeclaration[] = [
  {name: 'agent', type: 'string', description: 'The agent name registered on the daemon.'},
  {name: 'socket', type: 'string', description: 'Daemon Unix socket.'},
  {name: 'host', type: 'string', description: 'Daemon TCP host (instead of the socket).'},
  {name: 'port', type: 'integer', description: 'Daemon TCP port (default 7600).'},
  {name: 'keyPath', type: 'string', description: 'The agent key file (plain hex seed).'},
  {name: 'dialect', type: 'string', description: '"a", "b" or "auto".'},
  {name: 'maxFrameBytes', type: 'integer', description: 'Largest frame accepted.'},
  {name: 'timeoutMs', type: 'integer', description: 'Per-request timeout in milliseconds.'},
]
