import {Command, Flags} from '@oclif/core'

import {RUN_FLAGS, type RunFlagSpec} from '../core/run-options.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- oclif's flag types cannot express a table-driven union
function toOclifFlag(spec: RunFlagSpec): any {
  const common = {char: spec.char as 'e' | undefined, description: spec.description, env: spec.env}
  if (spec.type === 'boolean') return Flags.boolean(common)
  const options = spec.options ? [...spec.options] : undefined
  return spec.multiple
    ? Flags.string({...common, helpValue: spec.helpValue, multiple: true, options})
    : Flags.string({...common, default: spec.default, helpValue: spec.helpValue, options})
}

/**
 * Help, completion and the manifest come from this class; execution is the fast path in
 * src/fast-run.ts (bin/run.js goes there directly), so both share one parser and one runner.
 */
export default class Run extends Command {
  static description = `References come from --env NAME=REF (wins), then --env-file files in order (later wins), then variables already in the environment whose value is a reference. Plain env-file values pass through. All references resolve concurrently, one session per profile.

Output that is not a terminal is masked: every secret value (and its base64, URL-encoded and JSON-escaped forms) becomes <concealed by agentvault>. Signals are forwarded once; the exit code is the command's own, or 128+N when it died of signal N. agentvault's own failures (before the command starts) use exit codes 2–8 and print nothing on stdout.

agentsecrets://KEY references are never resolved by agentvault: the command runs as \`agentsecrets env --only KEY,… -- COMMAND\`, so AgentSecrets injects (and masks) its values itself. Each must be mapped under its own name (KEY=agentsecrets://KEY), from one agentsecrets profile, with the AgentSecrets 3.x CLI installed. AgentSecrets' notice lines (e.g. \`Local Engine: Injecting 2 secrets: …\`) appear on the command's stdout unchanged.

--placeholders (AGENTVAULT_PLACEHOLDERS=1): each resolved variable holds a placeholder, avph_NAME_ followed by 32 hex digits (random, fixed for the run), instead of its value. A proxy on 127.0.0.1 (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and their lower-case forms; NODE_USE_ENV_PROXY=1; NO_PROXY removed) and a CA made for this run (key in memory only; trusted through NODE_EXTRA_CA_CERTS and SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO = system roots + this CA, in a temp dir removed at exit) swap in the real values — in the request line, headers and textual bodies — only for hosts each secret allows (its --allow-domain list, else the profile's allowedDomains or --allow-host), verifying the real server (system roots + the profile's caCert), and turn echoed values in responses back into placeholders. A placeholder sent to a host its secret does not allow is refused with 403 (the command keeps running) and audited as denied. HTTPS to hosts no secret allows is tunnelled untouched.

Limits: clients that ignore the proxy variables (Node before 22.21/24.5 without an agent of its own, some Go and Java programs) or pin certificates get placeholders only; the interception speaks HTTP/1.1 (ALPN), so HTTP/2-only servers fail there; WebSockets and other upgrades are refused (501); non-textual or compressed request bodies are passed on without substitution, and bodies over 50 MiB are refused (413); a placeholder sent over HTTPS to a host no secret allows is tunnelled, not seen (it is worthless without the proxy). The child runs as your OS user and can still read the agentvault home: --isolate (Linux with bubblewrap) hides the home and the keychain's session-bus socket from it, and fails clearly elsewhere.`
  static examples = [
    '<%= config.bin %> <%= command.id %> --env OPENAI_API_KEY=local://OPENAI_API_KEY -- node app.js',
    '<%= config.bin %> <%= command.id %> --env-file .env.agentvault -- npm test',
    'DB_PASSWORD=openbao://secret/db#password <%= config.bin %> <%= command.id %> -- ./migrate.sh',
    '<%= config.bin %> <%= command.id %> --env STRIPE_KEY=agentsecrets://STRIPE_KEY --env DB_URL=local://DB_URL -- node app.js',
    '<%= config.bin %> <%= command.id %> --placeholders --isolate --env OPENAI_API_KEY=local://OPENAI_API_KEY -- my-agent',
  ]
  static flags = Object.fromEntries(
    Object.entries(RUN_FLAGS).map(([name, spec]) => [name, toOclifFlag(spec)]),
  )
  static strict = false
  static summary = 'Run a command with secrets in its environment, masked in its output.'
  static usage =
    '<%= command.id %> [--env NAME=REF]... [--env-file FILE]... [--mask auto|always|never] [--placeholders [--allow-host HOST]...] [--isolate] -- COMMAND [ARGS]...'

  async run(): Promise<void> {
    const {runFromArgv} = await import('../fast-run.js')
    process.exitCode = await runFromArgv(this.argv)
  }
}
