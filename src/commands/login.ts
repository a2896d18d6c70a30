import {Args, Flags} from '@oclif/core'

import type {LoginResult} from '../core/backend.js'

import {AgentVaultCommand} from '../base-command.js'
import {login} from '../core/status.js'

export type LoginCommandResult = LoginResult & {kind: string; profile: string}

export default class Login extends AgentVaultCommand<typeof Login> {
  static args = {
    kind: Args.string({
      description: 'Backend kind (default: the active profile’s).',
      options: ['local', 'sanctum', 'agentsecrets', 'openbao', 'agentauth'],
    }),
  }
  static description = `For \`local\`, initialises the embedded vault and chooses where its key lives: AGENTVAULT_PASSPHRASE (scrypt), the OS keychain, or a 0600 key file — by default the first that is available. Other backends sign in and keep their tokens in the credential store; \`sanctum\` checks the agent key against the daemon (challenge-response) before saving the profile, and stores no secret. \`openbao\` signs in with a token, userpass or approle (secrets from a hidden prompt, stdin or env, never argv), saves the addresses, namespace and CA in the profile and the token with its TTL and policies in the credential store. \`agentsecrets\` checks the AgentSecrets CLI (\`--version\`) or the proxy's /health, then saves the transport, CLI path and port; a proxy session token or agent token given on stdin goes to the credential store. \`agentauth\` verifies the agent id and API key (\`--api-key-stdin\`, else AGENTAUTH_API_KEY, else a hidden prompt; never argv), keeps the access and refresh tokens in the credential store (refreshed automatically) and saves the base URL and agent id in the profile; the API key itself is never stored.`
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> local --key-source file',
    'AGENTVAULT_PASSPHRASE=… <%= config.bin %> <%= command.id %> local --key-source passphrase',
    '<%= config.bin %> <%= command.id %> sanctum --agent ci-bot --key-path ~/.sanctum/keys/ci-bot.key',
    '<%= config.bin %> <%= command.id %> sanctum --agent ci-bot --host 127.0.0.1 --port 7600 --generate-key',
    '<%= config.bin %> <%= command.id %> openbao --profile prod-bao --address https://bao-1.example.com:8200 --address https://bao-2.example.com:8200',
    'printf %s "$BAO_TOKEN" | <%= config.bin %> <%= command.id %> openbao --token-stdin --address https://bao.example.com:8200 --cacert ./ca.pem',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> openbao --method userpass --username alice --password-stdin',
    'AGENTVAULT_SECRET_ID=… <%= config.bin %> <%= command.id %> openbao --method approle --role-id "$ROLE_ID" --namespace team-a',
    '<%= config.bin %> <%= command.id %> agentsecrets --transport cli',
    'printf %s "$AGENTSECRETS_SESSION_TOKEN" | <%= config.bin %> <%= command.id %> agentsecrets --transport proxy --port 8765 --session-token-stdin',
    '<%= config.bin %> <%= command.id %> agentauth --base-url https://agentauth.example.com --agent-id agt_98f7c33622f58bbd84613b710a81ad1d',
    'printf %s "$AGENTAUTH_API_KEY" | <%= config.bin %> <%= command.id %> agentauth --profile ci-agent --base-url https://agentauth.example.com --agent-id agt_98f7c336… --api-key-stdin',
  ]
  static flags = {
    address: Flags.string({
      description:
        'openbao: server URL (https://HOST:PORT); repeat for every node of an HA cluster, tried in order. Default: the profile’s, else BAO_ADDR / VAULT_ADDR.',
      helpGroup: 'OPENBAO',
      multiple: true,
    }),
    'auth-mount': Flags.string({
      description: 'openbao: path of the auth method mount (default: the method name).',
      helpGroup: 'OPENBAO',
    }),
    // One spelling with call, use, mcp and proxy (curl's); --ca-cert still works, unlisted.
    cacert: Flags.string({
      aliases: ['ca-cert'],
      description:
        'openbao: PEM file of the CA(s) that signed the server certificate (replaces the default roots).',
      helpGroup: 'OPENBAO',
    }),
    method: Flags.string({
      description: 'openbao: how to sign in (default: the profile’s, else token).',
      helpGroup: 'OPENBAO',
      options: ['token', 'userpass', 'approle'],
    }),
    namespace: Flags.string({
      description:
        'openbao: namespace sent as X-Vault-Namespace (default: the profile’s, else BAO_NAMESPACE).',
      helpGroup: 'OPENBAO',
    }),
    'password-stdin': Flags.boolean({
      description: 'openbao userpass: read the password from stdin (else a hidden prompt).',
      helpGroup: 'OPENBAO',
    }),
    'role-id': Flags.string({
      description: 'openbao approle: the role ID (or AGENTVAULT_ROLE_ID).',
      helpGroup: 'OPENBAO',
    }),
    'secret-id-stdin': Flags.boolean({
      description:
        'openbao approle: read the secret ID from stdin (else AGENTVAULT_SECRET_ID, else a hidden prompt).',
      helpGroup: 'OPENBAO',
    }),
    'token-stdin': Flags.boolean({
      description: 'openbao token: read the token from stdin (else a hidden prompt).',
      helpGroup: 'OPENBAO',
    }),
    username: Flags.string({
      description: 'openbao userpass: the username (or AGENTVAULT_USERNAME).',
      helpGroup: 'OPENBAO',
    }),
    transport: Flags.string({
      description: 'agentsecrets: use the CLI, the HTTP proxy, or auto (the CLI when it is installed).',
      helpGroup: 'AGENTSECRETS',
      options: ['auto', 'cli', 'proxy'],
    }),
    'cli-path': Flags.string({
      description: 'agentsecrets: the agentsecrets executable (default: the one on PATH).',
      helpGroup: 'AGENTSECRETS',
    }),
    'agent-id': Flags.string({
      description:
        'agentsecrets: agent identity sent to the proxy as X-AS-Agent-ID. agentauth: the agent to sign in as (agt_…; else AGENTAUTH_AGENT_ID, the profile’s, or a prompt).',
      helpGroup: 'AGENTSECRETS',
    }),
    'session-token-stdin': Flags.boolean({
      description:
        'agentsecrets: read the proxy session token (as_sess_…) from stdin and keep it in the credential store.',
      helpGroup: 'AGENTSECRETS',
    }),
    'base-url': Flags.string({
      description:
        'agentauth: the server root (https://HOST[:PORT]; a trailing /v1 is dropped). Default: the profile’s, else AGENTAUTH_BASE_URL.',
      helpGroup: 'AGENTAUTH',
    }),
    'api-key-stdin': Flags.boolean({
      description:
        'agentauth: read the API key from stdin (else AGENTAUTH_API_KEY, else a hidden prompt). Never stored.',
      helpGroup: 'AGENTAUTH',
    }),
    'agent-token-stdin': Flags.boolean({
      description: 'agentsecrets: read the agent token from stdin and keep it in the credential store.',
      exclusive: ['session-token-stdin'],
      helpGroup: 'AGENTSECRETS',
    }),
    agent: Flags.string({
      description: 'sanctum: the agent name registered on the daemon.',
      helpGroup: 'SANCTUM',
    }),
    dialect: Flags.string({
      description: 'sanctum: protocol dialect (default auto: A, falling back to B).',
      helpGroup: 'SANCTUM',
      options: ['auto', 'a', 'b'],
    }),
    'generate-key': Flags.boolean({
      description: 'sanctum: write a new Ed25519 seed file (0600) and print its public key to register.',
      helpGroup: 'SANCTUM',
    }),
    host: Flags.string({
      description: 'sanctum: daemon TCP host (instead of the Unix socket).',
      exclusive: ['socket'],
      helpGroup: 'SANCTUM',
    }),
    'key-passphrase-stdin': Flags.boolean({
      description: 'sanctum: read the passphrase of ~/.sanctum/keys/<agent>.key.enc from stdin.',
      helpGroup: 'SANCTUM',
    }),
    'key-path': Flags.string({
      description: 'sanctum: the agent key file (hex seed; default ~/.sanctum/keys/<agent>.key).',
      helpGroup: 'SANCTUM',
    }),
    'key-source': Flags.string({
      description: 'local: where the vault key lives.',
      options: ['passphrase', 'keychain', 'file'],
    }),
    port: Flags.integer({
      description:
        'sanctum: daemon TCP port (default 7600; with a host). agentsecrets: proxy port (default AGENTSECRETS_PORT, else 8765).',
      helpGroup: 'SANCTUM',
      max: 65_535,
      min: 1,
    }),
    socket: Flags.string({
      description: 'sanctum: daemon Unix socket (default ~/.sanctum/vault.sock).',
      helpGroup: 'SANCTUM',
    }),
  }
  static summary = 'Sign in to a backend (or initialise the local vault).'

  async run(): Promise<LoginCommandResult> {
    const {flags} = this
    const result = await login(this.vault, this.args.kind, {
      address: flags.address,
      authMount: flags['auth-mount'],
      caCert: flags.cacert,
      method: flags.method,
      namespace: flags.namespace,
      passwordStdin: flags['password-stdin'],
      roleId: flags['role-id'],
      secretIdStdin: flags['secret-id-stdin'],
      tokenStdin: flags['token-stdin'],
      username: flags.username,
      agent: flags.agent,
      dialect: flags.dialect,
      generateKey: flags['generate-key'],
      host: flags.host,
      keyPassphraseStdin: flags['key-passphrase-stdin'],
      keyPath: flags['key-path'],
      keySource: flags['key-source'],
      port: flags.port === undefined ? undefined : String(flags.port),
      transport: flags.transport,
      cliPath: flags['cli-path'],
      agentId: flags['agent-id'],
      sessionTokenStdin: flags['session-token-stdin'],
      agentTokenStdin: flags['agent-token-stdin'],
      baseUrl: flags['base-url'],
      apiKeyStdin: flags['api-key-stdin'],
      socket: flags.socket,
    })
    this.logToStderr(result.message)
    return result
  }
}
