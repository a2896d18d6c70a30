/**
 * What `login openbao` takes and what an openbao profile may set (core/declarations.ts,
 * protocols/openbao.md §4, §8): data only, read by the command layer to build flags, help and prompts.
 */
import type {LoginDeclaration, SettingDeclaration} from '../../core/declarations.js'

export const LOGIN: LoginDeclaration = {
  kind: 'openbao',
  summary: 'Sign in to OpenBao or HashiCorp Vault with a token, userpass or approle.',
  description:
    'Secrets (token, password, secret ID) come from stdin, a variable or a hidden prompt, never argv. The token is checked (lookup-self), then kept with its TTL and policies in the credential store — the OS keychain, else the encrypted credentials.enc of the agentvault home — and only ever sent to the addresses it was issued for; the addresses, namespace, CA and method are saved in the profile. Passwords and secret IDs are never stored.',
  examples: [
    '<%= config.bin %> <%= command.id %> --profile prod-bao --address https://bao-1.example.com:8200 --address https://bao-2.example.com:8200',
    'printf %s "$BAO_TOKEN" | <%= config.bin %> <%= command.id %> --token-stdin --address https://bao.example.com:8200 --cacert ./ca.pem',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --method userpass --username alice --password-stdin',
    'AGENTVAULT_SECRET_ID=… <%= config.bin %> <%= command.id %> --method approle --role-id "$ROLE_ID" --namespace team-a',
  ],
  inputs: [
    {
      name: 'address',
      flag: 'address',
      label: 'address',
      helpValue: 'URL',
      type: 'strings',
      description:
        'Server URL (https://HOST:PORT); repeat for every node of an HA cluster, tried in order. Default: the profile’s, else BAO_ADDR / VAULT_ADDR.',
    },
    {
      name: 'namespace',
      flag: 'namespace',
      label: 'namespace',
      description: 'Namespace sent as X-Vault-Namespace (default: the profile’s, else BAO_NAMESPACE).',
    },
    {
      name: 'caCert',
      flag: 'cacert',
      aliases: ['ca-cert'],
      label: 'CA file',
      helpValue: 'FILE',
      description:
        'PEM file of the CA(s) that signed the server certificate (replaces the default roots; default: the profile’s, else BAO_CACERT).',
    },
    {
      name: 'method',
      flag: 'method',
      label: 'method',
      options: ['token', 'userpass', 'approle'],
      profileSetting: 'authMethod',
      default: 'token',
      description: 'How to sign in (default: the profile’s, else token).',
    },
    {
      name: 'authMount',
      flag: 'auth-mount',
      label: 'auth mount',
      description: 'Path of the auth method’s mount (default: the method name).',
    },
    {
      name: 'token',
      flag: 'token',
      label: 'OpenBao token',
      secret: true,
      prompt: 'hidden',
      required: true,
      when: {input: 'method', is: ['token']},
      description: 'token: read the token from stdin (else a hidden prompt).',
    },
    {
      name: 'username',
      flag: 'username',
      label: 'OpenBao username',
      env: 'AGENTVAULT_USERNAME',
      prompt: 'text',
      required: true,
      when: {input: 'method', is: ['userpass']},
      description: 'userpass: the username (else a prompt).',
    },
    {
      name: 'password',
      flag: 'password',
      label: 'OpenBao password',
      secret: true,
      prompt: 'hidden',
      required: true,
      when: {input: 'method', is: ['userpass']},
      description: 'userpass: read the password from stdin (else a hidden prompt).',
    },
    {
      name: 'roleId',
      flag: 'role-id',
      label: 'OpenBao role ID',
      env: 'AGENTVAULT_ROLE_ID',
      prompt: 'text',
      required: true,
      when: {input: 'method', is: ['approle']},
      description: 'approle: the role ID (else a prompt).',
    },
    {
      name: 'secretId',
      flag: 'secret-id',
      label: 'OpenBao secret ID',
      env: 'AGENTVAULT_SECRET_ID',
      secret: true,
      prompt: 'hidden',
      required: true,
      when: {input: 'method', is: ['approle']},
      description:
        'approle: read the secret ID from stdin (else AGENTVAULT_SECRET_ID, else a hidden prompt).',
    },
  ],
}

export const SETTINGS: readonly SettingDeclaration[] = [
  {name: 'address', type: 'string', description: 'Server URL (http(s)://HOST:PORT).'},
  {name: 'addresses', type: 'strings', description: 'Server URLs of an HA cluster, tried in order.'},
  {name: 'namespace', type: 'string', description: 'Namespace sent as X-Vault-Namespace.'},
  {name: 'authMethod', type: 'string', description: '"token", "userpass" or "approle".'},
  {name: 'authMount', type: 'string', description: 'Path of the auth method’s mount.'},
  {name: 'allowedMounts', type: 'strings', description: 'The only KV mounts references may name.'},
  {name: 'tlsSkipVerify', type: 'boolean', description: 'Turn TLS verification off (never in production).'},
  {name: 'timeoutMs', type: 'integer', description: 'Per-request timeout in milliseconds.'},
]
