import {Flags} from '@oclif/core'

import type {ProxyStarted} from '../../core/proxy/service.js'

import {AgentVaultCommand} from '../../base-command.js'
import {useLimitFlags} from '../use.js'

export type ProxyStartResult = ProxyStarted

export default class ProxyStart extends AgentVaultCommand<typeof ProxyStart> {
  static description = `Serves AgentSecrets' local HTTP API on 127.0.0.1 so that programs written for AgentSecrets (its Python and JavaScript SDKs, anything that speaks its /proxy API) work unchanged over every agentvault backend: local, openbao, sanctum and agentsecrets itself. A request names the target in X-AS-Target-URL and each secret in an X-AS-Inject-* header (Bearer, Basic, Header-<Name>, Query-<param>, Body-<path>, Form-<field>); agentvault injects the value, sends the request and returns the upstream's status, headers and body with every echo of a secret replaced by [REDACTED_BY_AGENTSECRETS]. The caller never holds a value.

A key is a bare name of the proxy's profile (as in AgentSecrets) or a full reference (local://K, openbao+kv2://secret/app#token, sanctum://path, agentsecrets://KEY). Header names are read the way AgentSecrets' Go server reads them: X-AS-Inject-Query-api_key injects the query parameter Api_key.

Every guard of \`call\` applies: a secret goes only to hosts it allows (its allowedDomains, else the profile's, else --allow-domain), private and metadata addresses are refused after DNS resolution unless the profile allows private networks, redirects carry no secret to another host, responses are capped. Refusals come back as AgentSecrets does: 403 domain_not_in_allowlist, empty_allowlist or ssrf_protection_blocked, 502 "secret 'KEY' not found", 401 without the session token.

The proxy listens on 127.0.0.1 only and answers only requests whose Host is 127.0.0.1, localhost or [::1] with its port, and never sends CORS headers. /proxy requires X-AS-Session-Token (printed by \`proxy status --show-token\`); --no-session-token serves clients that send none (AgentSecrets' Python SDK 1.x and 2.0) — then any local process can use your secrets through it. Each request is one audit event (command proxy; see \`proxy logs\`) and, in the foreground, one line on stderr. Ctrl-C (or \`proxy stop\`) stops it cleanly.`
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --port 9000 --profile prod-bao --detach',
    '<%= config.bin %> <%= command.id %> --no-session-token --allow-domain api.openai.com',
    `curl -s http://127.0.0.1:8765/proxy -H "X-AS-Session-Token: $(agentvault proxy status --show-token --json | jq -r .sessionToken)" -H 'X-AS-Target-URL: https://api.openai.com/v1/models' -H 'X-AS-Inject-Bearer: OPENAI_KEY'`,
  ]
  static flags = {
    port: Flags.integer({
      description: 'Port on 127.0.0.1 (default: AGENTSECRETS_PORT, else 8765; 0 picks a free one).',
      env: 'AGENTVAULT_PROXY_PORT',
      max: 65_535,
      min: 0,
    }),
    detach: Flags.boolean({
      description: 'Run in the background (output in proxy.log in the agentvault home).',
    }),
    'no-session-token': Flags.boolean({
      description:
        'Serve /proxy without X-AS-Session-Token (for clients that send none). Any local process can then use your secrets.',
    }),
    'max-body-bytes': Flags.integer({
      description: 'Refuse request bodies larger than this (default 10 MB).',
      min: 1,
    }),
    ...useLimitFlags,
  }
  static summary = 'Start an AgentSecrets-compatible /proxy on 127.0.0.1 over every backend.'

  async run(): Promise<ProxyStartResult> {
    const {flags} = this
    const service = await import('../../core/proxy/service.js')
    const port = service.proxyPort(flags.port, process.env)
    // A host list that could never match (`*`, a URL) would only show up as refusals later.
    const {normaliseHostPattern} = await import('../../core/use/hosts.js')
    for (const host of flags['allow-domain'] ?? []) normaliseHostPattern(host)
    if (flags.detach) {
      const started = await service.startDetached(this.vault.home, ['proxy', 'start', ...this.argv])
      this.log(
        `Proxy started in the background (pid ${started.pid}) on ${started.url} for profile ${started.profile}.`,
      )
      return started
    }

    // Any process of this user could otherwise open its inspector or crash it into a core file,
    // and read the vault key and values (process-guard.ts): before it holds any.
    await (await import('../../core/process-guard.js')).guardProcess()
    if (flags['no-session-token'])
      this.warnUser(
        'Serving /proxy without a session token: any process on this machine can make requests with your secrets through it.',
      )
    return service.runProxy(
      this.vault,
      {
        limits: {
          allowHosts: flags['allow-domain'],
          caCert: flags.cacert,
          maxResponseBytes: flags['max-response-bytes'],
          timeout: flags.timeout,
        },
        maxBodyBytes: flags['max-body-bytes'],
        port,
        sessionToken: !flags['no-session-token'],
      },
      {
        log: (line) => process.stderr.write(`${line}\n`),
        ready: (started) => {
          if (!this.jsonEnabled())
            this.log(
              `Proxy listening on ${started.url} for profile ${started.profile}${started.sessionTokenRequired ? ' (session token: agentvault proxy status --show-token)' : ''}. Ctrl-C stops it.`,
            )
          service.announceDetached(started)
        },
      },
    )
  }
}
