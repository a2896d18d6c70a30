import {Command, Flags} from '@oclif/core'

import {RUN_FLAGS, type RunFlagSpec} from '../core/run-options.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- oclif's flag types cannot express a table-driven union
function toOclifFlag(spec: RunFlagSpec): any {
  const common = {
    ...(spec.aliases && {aliases: [...spec.aliases], deprecateAliases: true}),
    char: spec.char as 'e' | undefined,
    description: spec.description,
    env: spec.env,
  }
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
  static description = `References come from --env NAME=REF (wins), then --env-file files in order (later wins), then variables already in the environment whose value is a reference. Plain env-file values pass through, and so does an inherited value that only looks like a reference (vault://user:pw@db/app, with a warning naming the variable); a bad reference in --env or an env file fails naming the variable and the flag or file:line. Env files are read up to 4 MiB each. All references resolve concurrently, one session per profile. A value that is not valid UTF-8 reaches the command with each invalid byte replaced by U+FFFD (a warning says so); both forms are masked. NODE_DEBUG is handed to the command, never applied to agentvault itself (Node's debug output would print values).

The command never inherits agentvault's credentials: AGENTVAULT_PASSPHRASE (the vault's key) and every credential variable a backend reads — AGENTVAULT_SECRET_ID, BAO_TOKEN and VAULT_TOKEN (openbao), SANCTUM_KEY_PASSPHRASE (sanctum), AGENTAUTH_API_KEY (agentauth), AGENTSECRETS_SESSION_TOKEN and AS_AGENT_TOKEN (agentsecrets) — are withheld from its environment, whichever backends this run uses: a child (and its logs, \`env\` in a CI step) has no use for the keys agentvault signs in with. \`--pass-env NAME\` (or AGENTVAULT_PASS_ENV, names separated by commas or spaces) keeps one on purpose; its value is then masked like a secret. Non-secret settings (BAO_ADDR, AGENTVAULT_HOME, …) pass through. When the command runs under \`agentsecrets env\`, AS_AGENT_TOKEN stays for the AgentSecrets CLI, which reads it, and is masked.

Before the command starts, every variable and argument is checked against what the OS accepts: a NUL byte, one NAME=value over 128 KiB (Linux) or a total over ARG_MAX fails with exit 2 naming the variable, never its value.

Output that is not a terminal is masked: every secret value becomes <concealed by agentvault>, and so do its trimmed form (without trailing newlines or surrounding spaces), its base64 (also inside a longer base64 text for values of 5 bytes or more, as in \`printf 'user:%s' "$P" | base64\`, and of the value plus a newline), its URL encodings (encodeURIComponent, encodeURI, RFC 3986, Go path escaping, form encoding with + for space, upper- or lower-case hex), its JSON escapes (JavaScript, Python, PHP, Go, .NET styles), its hexadecimal as one run of lower- or upper-case digits (\`xxd -p\` of a value up to 30 bytes, Python .hex()) and, for a multi-line value such as a PEM key, each line of 8 bytes or more. Not masked: values shorter than 4 bytes (a warning says so), and transformations it cannot guess (hashes, compression, nested encodings, base64 or hex wrapped across lines or spaced as \`od -tx1\` prints it, a value printed in parts). Bytes held back because they might begin a value are written after 100 ms without new output (AGENTVAULT_MASK_FLUSH_MS sets another idle time, in ms), so prompts and the last line of a quiet server are never held up; a value whose first bytes were already written that way and whose rest comes later is not concealed. Signals are forwarded once; the exit code is the command's own, or 128+N when it died of signal N — or 5 when the command succeeded but its masked output could not all be written (a full disk, a failing device: an Error line says so). agentvault's own failures (before the command starts) use exit codes 2–8 and print nothing on stdout.

agentsecrets://KEY references are never resolved by agentvault: the command runs as \`agentsecrets env --only KEY,… -- COMMAND\`, so AgentSecrets injects (and masks) its values itself. Each must be mapped under its own name (KEY=agentsecrets://KEY), from one agentsecrets profile, with the AgentSecrets 3.x CLI installed. AgentSecrets' notice lines (e.g. \`Local Engine: Injecting 2 secrets: …\`) appear on the command's stdout unchanged.

--placeholders (AGENTVAULT_PLACEHOLDERS=1): each resolved variable holds a placeholder, avph_NAME_ followed by 32 hex digits (random, fixed for the run), instead of its value. A proxy on 127.0.0.1 (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and their lower-case forms; NODE_USE_ENV_PROXY=1; NO_PROXY removed) and a CA made for this run (key in memory only; trusted through NODE_EXTRA_CA_CERTS and SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO = system roots + this CA, in a temp dir removed at exit) swap in the real values — in the request line, headers (also inside Basic credentials, as curl -u and Python requests' auth= send them) and textual bodies — only for hosts each secret allows (its --allow-domain list, else the profile's allowedDomains or --allow-domain), verifying the real server (system roots + the profile's caCert), and turn echoed values in responses back into placeholders. A placeholder sent to a host its secret does not allow is refused with 403 (the command keeps running) and audited as denied; so is one sent over plain http:// to a host that is not loopback, unless agentvault runs with AGENTVAULT_PLACEHOLDERS_ALLOW_HTTP=1. In responses the values are rewritten in header names and values and in bodies (gzip, deflate and br decoded, stacked too); the reason phrase is always the standard one; a response that cannot be checked (a coding agentvault cannot decode, gzip nested too deep, or gzip or zlib it did not declare holding a value) is refused with 502 and audited. HTTPS to hosts no secret allows is tunnelled untouched.

Limits: clients that ignore the proxy variables (Node before 22.21/24.5 without an agent of its own, some Go and Java programs) or pin certificates get placeholders only; the interception speaks HTTP/1.1 (ALPN), so HTTP/2-only servers fail there; WebSockets and other upgrades are refused (501); non-textual or compressed request bodies are passed on without substitution, and bodies over 50 MiB are refused (413); a placeholder sent over HTTPS to a host no secret allows is tunnelled, not seen (it is worthless without the proxy). Echo rewriting finds the forms masking knows, not transformations: a host a value is allowed for can be made to hand it back changed (an echo service that reverses it, an LLM asked to spell it backwards or in UTF-16), or to store it and serve it from a sibling host the value is not allowed for (a gist written through api.github.com, read from gist.githubusercontent.com, which is tunnelled unseen), so allow each secret only the hosts that need it (secrets set --allow-domain). The child runs as your OS user and can still read the agentvault home (and agentvault's own memory, which holds the values and the vault key, where kernel.yama.ptrace_scope is 0 or Yama is absent: Node cannot mark itself non-dumpable): --isolate (Linux with bubblewrap) runs it with the home, the keychain's session-bus socket and the credentials agentvault reads outside the home (~/.vault-token, sanctum agent keys) hidden, in its own PID namespace with its own /proc and /dev (no other process can be seen or read), and without a controlling terminal (so it cannot type into your shell; the price is job control: Ctrl-Z stops agentvault, not the command, and Ctrl-C ends it with 130); it fails clearly elsewhere, and where the keychain's session bus is an abstract or TCP socket (which it cannot hide).`
  static examples = [
    '<%= config.bin %> <%= command.id %> --env OPENAI_API_KEY=local://OPENAI_API_KEY -- node app.js',
    '<%= config.bin %> <%= command.id %> --env-file .env.agentvault -- npm test',
    'DB_PASSWORD=openbao://secret/db#password <%= config.bin %> <%= command.id %> -- ./migrate.sh',
    '<%= config.bin %> <%= command.id %> --env STRIPE_KEY=agentsecrets://STRIPE_KEY --env DB_URL=local://DB_URL -- node app.js',
    '<%= config.bin %> <%= command.id %> --pass-env BAO_TOKEN --env-file .env.agentvault -- bao kv get secret/app',
    '<%= config.bin %> <%= command.id %> --placeholders --isolate --env OPENAI_API_KEY=local://OPENAI_API_KEY -- my-agent',
  ]
  static flags = Object.fromEntries(
    Object.entries(RUN_FLAGS).map(([name, spec]) => [name, toOclifFlag(spec)]),
  )
  static strict = false
  static summary = 'Run a command with secrets in its environment, masked in its output.'
  static usage =
    '<%= command.id %> [--env NAME=REF]... [--env-file FILE]... [--mask auto|always|never] [--pass-env NAME]... [--placeholders [--allow-domain HOST]...] [--isolate] -- COMMAND [ARGS]...'

  async run(): Promise<void> {
    const {runFromArgv} = await import('../fast-run.js')
    process.exitCode = await runFromArgv(this.argv)
  }
}
