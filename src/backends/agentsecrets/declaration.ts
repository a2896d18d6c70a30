/**
 * What `login agentsecrets` takes and what an agentsecrets profile may set (core/declarations.ts,
 * protocols/agentsecrets.md §3): data only, read by the command layer to build flags and help.
 */
import type {LoginDeclaration, SettingDeclaration} from '../../core/declarations.js'

export const LOGIN: LoginDeclaration = {
  kind: 'agentsecrets',
  summary: 'Check an AgentSecrets install (its CLI or proxy) and save it as a profile.',
  description:
    'Checks the AgentSecrets CLI (`--version`) or the proxy’s /health, then saves the transport, CLI path, port and agent id in the profile. A proxy session token or an agent token given on stdin goes to the credential store (the OS keychain, else the encrypted credentials.enc of the agentvault home), never to config.json.',
  examples: [
    '<%= config.bin %> <%= command.id %> --transport cli',
    'printf %s "$AGENTSECRETS_SESSION_TOKEN" | <%= config.bin %> <%= command.id %> --transport proxy --port 8765 --session-token-stdin',
  ],
  inputs: [
    {
      name: 'transport',
      flag: 'transport',
      label: 'transport',
      options: ['auto', 'cli', 'proxy'],
      description: 'Use the CLI, the HTTP proxy, or auto (the CLI when it is installed).',
    },
    {
      name: 'cliPath',
      flag: 'cli-path',
      label: 'CLI path',
      helpValue: 'FILE',
      description: 'The agentsecrets executable (default: the one on PATH).',
    },
    {
      name: 'port',
      flag: 'port',
      label: 'port',
      type: 'integer',
      min: 1,
      max: 65_535,
      description: 'Proxy port (default: the profile’s, else AGENTSECRETS_PORT, else 8765).',
    },
    {
      name: 'agentId',
      flag: 'agent-id',
      label: 'agent id',
      description: 'Agent identity sent to the proxy as X-AS-Agent-ID.',
    },
    {
      name: 'sessionToken',
      flag: 'session-token',
      label: 'session token',
      secret: true,
      exclusive: ['agent-token-stdin'],
      description: 'Read the proxy session token (as_sess_…) from stdin and keep it in the credential store.',
    },
    {
      name: 'agentToken',
      flag: 'agent-token',
      label: 'agent token',
      secret: true,
      exclusive: ['session-token-stdin'],
      description: 'Read the agent token from stdin and keep it in the credential store.',
    },
  ],
}

export const SETTINGS: readonly SettingDeclaration[] = [
  {name: 'transport', type: 'string', description: '"cli", "proxy" or "auto".'},
  {name: 'cliPath', type: 'string', description: 'The agentsecrets executable.'},
  {name: 'port', type: 'integer', description: 'Proxy port.'},
  {name: 'agentId', type: 'string', description: 'Agent identity sent to the proxy as X-AS-Agent-ID.'},
]
