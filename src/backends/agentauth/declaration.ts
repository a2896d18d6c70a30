/**
 * What `login agentauth` takes and what an agentauth profile may set (core/declarations.ts,
 * protocols/agentauth.md §10.1): data only, read by the command layer to build flags, help and prompts.
 */
import type {LoginDeclaration, SettingDeclaration} from '../../core/declarations.js'

export const LOGIN: LoginDeclaration = {
  kind: 'agentauth',
  summary: 'Sign in to an AgentAuth server as an agent.',
  description:
    'Verifies the agent id and API key, keeps the access and refresh tokens in the credential store (the OS keychain, else the encrypted credentials.enc of the agentvault home; refreshed automatically) and saves the base URL and agent id in the profile. The API key comes from stdin, AGENTAUTH_API_KEY or a hidden prompt — never argv — and is never stored.',
  examples: [
    '<%= config.bin %> <%= command.id %> --base-url https://agentauth.example.com --agent-id agt_98f7c33622f58bbd84613b710a81ad1d',
    'printf %s "$AGENTAUTH_API_KEY" | <%= config.bin %> <%= command.id %> --profile ci-agent --base-url https://agentauth.example.com --agent-id agt_98f7c336… --api-key-stdin',
  ],
  inputs: [
    {
      name: 'baseUrl',
      flag: 'base-url',
      label: 'base URL',
      helpValue: 'URL',
      description:
        'The server root (https://HOST[:PORT]; a trailing /v1 is dropped). Default: the profile’s, else AGENTAUTH_BASE_URL.',
    },
    {
      name: 'agentId',
      flag: 'agent-id',
      label: 'AgentAuth agent id (agt_…)',
      env: 'AGENTAUTH_AGENT_ID',
      profileSetting: 'agentId',
      prompt: 'text',
      required: true,
      description: 'The agent to sign in as (agt_…; else the profile’s, else a prompt).',
    },
    {
      name: 'apiKey',
      flag: 'api-key',
      label: 'AgentAuth API key',
      env: 'AGENTAUTH_API_KEY',
      secret: true,
      prompt: 'hidden',
      required: true,
      description:
        'Read the API key from stdin (else AGENTAUTH_API_KEY, else a hidden prompt). Never stored.',
    },
  ],
}

export const SETTINGS: readonly SettingDeclaration[] = [
  {name: 'baseUrl', type: 'string', description: 'The server root (http(s)://HOST[:PORT]).'},
  {name: 'agentId', type: 'string', description: 'The agent to sign in as (agt_…).'},
  {name: 'generation', type: 'string', description: '"v1", "legacy" or "unknown" (found at login).'},
  {name: 'timeoutMs', type: 'integer', description: 'Per-request timeout in milliseconds.'},
]
