import {Flags} from '@oclif/core'

import {AgentVaultCommand} from '../../base-command.js'
import {useLimitFlags} from '../use.js'

export default class Mcp extends AgentVaultCommand<typeof Mcp> {
  static description = `An MCP (Model Context Protocol) server on stdin/stdout, for AI agents and their clients (Claude Code, Cursor, Claude Desktop, VS Code, agent frameworks). The agent lists, uses and calls with secrets from every backend and never sees a value.

Tools:
  list_secrets  references and metadata of the secrets this server may use (never values)
  http_request  an HTTP request with secrets injected (bearer, basic, header, query, body_field, form_field), as \`call\`
  use_secret    sign, verify, encrypt, decrypt or http_request with one secret, as \`use\` (never http_header)
  run_command   only with --allow-run: an argv (no shell unless it names one) with env mapping names to references; returns the exit code and stdout/stderr with every value concealed, each cut to its last 64 KiB

Least privilege is decided here, by whoever starts the server, not by the agent: --allow REF-PATTERN (repeatable; * matches any run of characters) is the set of references the server may use — none by default. A pattern without ?profile= means the profile its kind resolves to; ?profile=* any profile. Hosts follow the rules of \`call\`: a secret's own allowed domains, else its profile's allowedDomains or --allow-domain. A refused call is a tool error (isError) with the code, category and the flag to add.

Every tool call is appended to the audit log as command "mcp" with the tool, the references, the target host, the outcome and the client's name/version. Nothing is ever prompted for (stdin carries the protocol): sign in beforehand, or give credentials through the environment. \`agentvault mcp install --client …\` prints (or writes) the client configuration.

--allow-run gives the agent your shell, and --allow is then only advisory: a command runs as you and can read whatever your user can — run \`agentvault secrets get NAME --reveal\`, read the vault key, or print a mapped value transformed (\`echo $P | xxd -p\`, \`| rev\`), which no masking recognises. Use it only inside a sandbox (a container or VM holding nothing else of yours). The command gets no stdin and a minimal environment (PATH, HOME, locale) plus the mapped secrets.

--allow-domain takes hosts as \`profiles add\` does (exact, or *.suffix; optionally with :port): anything else, '*' included, is refused at start (exit 2).`
  static enableJsonFlag = false
  static examples = [
    "<%= config.bin %> <%= command.id %> --allow 'local://OPENAI_*'",
    "<%= config.bin %> <%= command.id %> --allow 'openbao+kv2://secret/app/*' --allow 'sanctum://ci/*' --allow-domain api.example.com",
    "<%= config.bin %> <%= command.id %> --allow 'local://*' --allow-run",
    "<%= config.bin %> <%= command.id %> install --client claude-code --allow 'local://OPENAI_*'",
  ]
  static flags = {
    allow: Flags.string({
      description:
        'A reference pattern this server may use (repeatable), e.g. local://OPENAI_* or openbao+kv2://secret/app/*. None by default. AGENTVAULT_MCP_ALLOW takes several, separated by commas or spaces.',
      env: 'AGENTVAULT_MCP_ALLOW',
      helpValue: 'REF-PATTERN',
      multiple: true,
      multipleNonGreedy: true,
    }),
    'allow-run': Flags.boolean({
      description:
        'Offer the run_command tool. This gives the agent your shell: --allow is then only advisory (a command can run `agentvault secrets get … --reveal`, read the vault key, or print a value transformed). Use it only inside a sandbox.',
      env: 'AGENTVAULT_MCP_ALLOW_RUN',
    }),
    ...useLimitFlags,
  }
  static summary = 'Serve secrets to AI agents over the Model Context Protocol (stdio), never revealing them.'

  async run(): Promise<void> {
    const [{serveMcp}, {guardProcess}] = await Promise.all([
      import('../../core/mcp/server.js'),
      import('../../core/process-guard.js'),
    ])
    // The agent (or a command of run_command) could otherwise open this server's inspector or crash
    // it into a core file, and read the vault key and values (process-guard.ts). What its parent
    // can still read of its memory: README.
    await guardProcess()
    // A host list that could never match (`*`, a URL) would only show up as refusals later.
    const {normaliseHostPattern} = await import('../../core/use/hosts.js')
    for (const host of this.flags['allow-domain'] ?? []) normaliseHostPattern(host)
    // From AGENTVAULT_MCP_ALLOW the flag arrives as one string (oclif reads a repeatable flag's
    // variable whole): patterns separated by commas or blanks, as AGENTVAULT_PASS_ENV takes names.
    const given = this.flags.allow as string | string[] | undefined
    const allow =
      typeof given === 'string' ? given.split(/[\s,]+/).filter((pattern) => pattern !== '') : (given ?? [])
    if (allow.length === 0)
      this.warnUser(
        'No --allow pattern: every tool call will be refused until the server is started with --allow REF-PATTERN.',
      )
    await serveMcp(this.vault, {
      allow,
      allowHosts: this.flags['allow-domain'],
      allowRun: this.flags['allow-run'],
      caCert: this.flags.cacert,
      maxResponseBytes: this.flags['max-response-bytes'],
      name: 'agentvault',
      timeout: this.flags.timeout,
      version: this.config.version,
    })
  }
}
