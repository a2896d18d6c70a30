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

Output that is not a terminal is masked: every secret value becomes <concealed by agentvault>, and so do its trimmed form (without trailing newlines or surrounding spaces), its base64 (also inside a longer base64 text for values of 5 bytes or more, as in \`printf 'user:%s' "$P" | base64\`, and of the value plus a newline), its URL encodings (encodeURIComponent, RFC 3986, form encoding with + for space, upper- or lower-case hex), its JSON escapes (JavaScript, Python, PHP, Go, .NET styles) and, for a multi-line value such as a PEM key, each line of 8 bytes or more. Not masked: values shorter than 4 bytes (a warning says so), and transformations it cannot guess (hashes, compression, nested encodings, base64 wrapped across lines, a value printed in parts). Bytes held back because they might begin a value are written after 100 ms without new output, so prompts and the last line of a quiet server are never held up; a value whose first bytes were already written that way and whose rest comes later is not concealed. Signals are forwarded once; the exit code is the command's own, or 128+N when it died of signal N. agentvault's own failures (before the command starts) use exit codes 2–8 and print nothing on stdout.

agentsecrets://KEY references are never resolved by agentvault: the command runs as \`agentsecrets env --only KEY,… -- COMMAND\`, so AgentSecrets injects (and masks) its values itself. Each must be mapped under its own name (KEY=agentsecrets://KEY), from one agentsecrets profile, with the AgentSecrets 3.x CLI installed. AgentSecrets' notice lines (e.g. \`Local Engine: Injecting 2 secrets: …\`) appear on the command's stdout unchanged.`
  static examples = [
    '<%= config.bin %> <%= command.id %> --env OPENAI_API_KEY=local://OPENAI_API_KEY -- node app.js',
    '<%= config.bin %> <%= command.id %> --env-file .env.agentvault -- npm test',
    'DB_PASSWORD=openbao://secret/db#password <%= config.bin %> <%= command.id %> -- ./migrate.sh',
    '<%= config.bin %> <%= command.id %> --env STRIPE_KEY=agentsecrets://STRIPE_KEY --env DB_URL=local://DB_URL -- node app.js',
  ]
  static flags = Object.fromEntries(
    Object.entries(RUN_FLAGS).map(([name, spec]) => [name, toOclifFlag(spec)]),
  )
  static strict = false
  static summary = 'Run a command with secrets in its environment, masked in its output.'
  static usage =
    '<%= command.id %> [--env NAME=REF]... [--env-file FILE]... [--mask auto|always|never] -- COMMAND [ARGS]...'

  async run(): Promise<void> {
    const {runFromArgv} = await import('../fast-run.js')
    process.exitCode = await runFromArgv(this.argv)
  }
}
