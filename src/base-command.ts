/**
 * The one base class: `--json`, `--profile`, `--no-prompt`, a Session per command, the audit hook,
 * and error rendering with exit codes (product.md §9). Commands only parse, call a service and
 * return a typed result (which is the `--json` output).
 */
import {Command, Flags, type Interfaces} from '@oclif/core'

import {nearest} from './core/did-you-mean.js'
import {AgentVaultError, ConfigError, toAgentVaultError, UsageError, withCommandHelp} from './core/errors.js'
import {Session} from './core/session.js'
import {reportError, warn} from './ui/errors.js'
import {isTerminal} from './ui/terminal.js'

export type BaseFlags = Interfaces.InferredFlags<(typeof AgentVaultCommand)['baseFlags']>
export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof AgentVaultCommand)['baseFlags'] & T['flags']
>
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export abstract class AgentVaultCommand<T extends typeof Command> extends Command {
  static baseFlags = {
    profile: Flags.string({
      char: 'p',
      description: 'Profile to use (default: the kind’s default, or the active profile).',
      env: 'AGENTVAULT_PROFILE',
      helpGroup: 'GLOBAL',
    }),
    'no-prompt': Flags.boolean({
      description: 'Never prompt; fail with the flag or env var to use instead (implied by CI).',
      env: 'AGENTVAULT_NO_PROMPT',
      helpGroup: 'GLOBAL',
    }),
  }
  static enableJsonFlag = true
  /**
   * The suggestion for an unexpected argument or an unknown flag with no near match, where the
   * likeliest cause is a value typed into argv (`secrets set NAME VALUE`, `--value V`).
   */
  static valueInArgvHint?: string
  protected args!: CommandArgs<T>
  protected flags!: CommandFlags<T>
  /** Every positional argument in order (named ones first): what a non-strict command takes. */
  protected positionals: string[] = []
  /** Set by `refuseWithResult`: the command printed its result and still fails. */
  private refusal?: AgentVaultError
  private session?: Session

  /** May we prompt? Only with a TTY on stdin and stdout, and neither --no-prompt nor CI. */
  protected get interactive(): boolean {
    return (
      isTerminal(0) && isTerminal(1) && !this.flags?.['no-prompt'] && !process.env.CI && !this.jsonEnabled()
    )
  }

  /** The command's session: config, backends and the audit record. */
  protected get vault(): Session {
    const {interactive} = this
    this.session ??= new Session({
      command: this.id?.replaceAll(':', ' ') ?? 'agentvault',
      env: process.env,
      interactive,
      profileName: this.flags?.profile,
      ...(interactive && {
        promptHidden: async (message: string) => (await import('./ui/input.js')).promptHidden(message),
      }),
      warn: (message) => this.warnUser(message),
    })
    return this.session
  }

  protected override async catch(
    thrown: Error & {exitCode?: number; oclif?: {exit?: number}},
  ): Promise<unknown> {
    // oclif's own exits (this.exit) and help output pass through untouched.
    if (thrown.oclif?.exit === 0 || thrown.constructor.name === 'ExitError') throw thrown
    const error = withCommandHelp(
      this.explainingPromptOff(
        this.namingProfileVariable(
          thrown instanceof AgentVaultError
            ? thrown
            : thrown.oclif === undefined
              ? toAgentVaultError(thrown)
              : this.usageError(thrown),
        ),
      ),
      this.id,
    )
    const code = reportError(error, {json: this.jsonEnabled()})
    process.exitCode = code
    await this.session?.close()
    await this.session?.finish(error.category === 'denied' ? 'denied' : 'error', code, error.code)
    this.session = undefined
    return undefined
  }

  protected override async finally(error: Error | undefined): Promise<void> {
    if (!error && this.session) {
      await this.session.close()
      const {refusal} = this
      await (refusal
        ? this.session.finish(
            refusal.category === 'denied' ? 'denied' : 'error',
            refusal.exitCode,
            refusal.code,
          )
        : this.session.finish('ok', Number(process.exitCode ?? 0)))
    }

    await super.finally(error)
  }

  override async init(): Promise<void> {
    await super.init()
    // oclif fills a missing argument from piped stdin, but agentvault's stdin carries secrets
    // (`secrets set`, `login --token-stdin`, `import -`): a forgotten NAME would become the value.
    const argsWithoutStdin = Object.fromEntries(
      Object.entries(this.ctor.args ?? {}).map(([name, arg]) => [name, {...arg, ignoreStdin: true}]),
    )
    const {args, argv, flags} = await this.parse({
      args: argsWithoutStdin,
      baseFlags: (super.ctor as typeof AgentVaultCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      flags: this.ctor.flags,
      strict: this.ctor.strict,
    })
    this.flags = flags as CommandFlags<T>
    this.args = args as CommandArgs<T>
    this.positionals = argv as string[]
  }

  /**
   * The command's result is also a failure (`use REF verify` with a wrong signature): the result is
   * still printed (and is the `--json` output), the exit code is the error's, the audit records the
   * refusal, and without `--json` the `Error:`/`Try this:` lines go to stderr.
   */
  protected refuseWithResult(error: AgentVaultError): void {
    this.refusal = error
    if (!this.jsonEnabled()) reportError(error, {json: false})
    process.exitCode = error.exitCode
  }

  /** Whether `--name` (or its -c char) was typed, as opposed to filled from its env var. */
  private typedFlag(name: string, char?: string): boolean {
    return this.argv.some(
      (word) =>
        word === `--${name}` ||
        word.startsWith(`--${name}=`) ||
        (char !== undefined && word.startsWith(`-${char}`) && !word.startsWith('--')),
    )
  }

  /**
   * "No value given and prompting is off": say what turned prompting off, which is often not the
   * user (`agentvault … | cat` at a terminal has no terminal on stdout).
   */
  private explainingPromptOff(error: AgentVaultError): AgentVaultError {
    if (error.code !== 'VALUE_REQUIRED' || !error.message.endsWith(' and prompting is off')) return error
    const reason = this.flags?.['no-prompt']
      ? this.typedFlag('no-prompt')
        ? '--no-prompt'
        : 'AGENTVAULT_NO_PROMPT is set'
      : process.env.CI
        ? 'CI is set'
        : isTerminal(0)
          ? isTerminal(1)
            ? this.jsonEnabled()
              ? '--json'
              : undefined
            : 'stdout is not a terminal'
          : 'stdin is not a terminal'
    if (reason === undefined) return error
    return new UsageError(error.code, `${error.message} (${reason})`, {
      ...(error.details && {details: error.details}),
      suggestion: error.suggestion,
    })
  }

  /**
   * A profile named by a leftover AGENTVAULT_PROFILE, not on the command line: say so, or the
   * user looks for a typo they never made.
   */
  private namingProfileVariable(error: AgentVaultError): AgentVaultError {
    const name = process.env.AGENTVAULT_PROFILE
    if (
      error.code !== 'PROFILE_NOT_FOUND' ||
      !name ||
      error.message !== `No profile named ${name}` ||
      this.typedFlag('profile', 'p')
    )
      return error
    return new ConfigError('PROFILE_NOT_FOUND', `No profile named ${name} (from AGENTVAULT_PROFILE)`, {
      suggestion: `Unset AGENTVAULT_PROFILE, or set it to a profile \`agentvault profiles list\` shows (or add ${name} with \`agentvault profiles add\`).`,
    })
  }

  /** oclif's parse errors in the house format; an unknown flag gets the nearest real one. */
  private usageError(thrown: Error & {flags?: unknown}): UsageError {
    const help = `See \`agentvault ${this.id?.replaceAll(':', ' ') ?? ''} --help\`.`
    // What was typed may be a secret (`--token=VALUE`, `-pVALUE`, `secrets set NAME VALUE`): errors
    // name the flag, never its value, and count unexpected words rather than repeat them.
    const unknown = Array.isArray(thrown.flags)
      ? (thrown.flags as string[]).map((flag) =>
          flag.startsWith('--') ? flag.replace(/=.*/s, '') : flag.slice(0, 2),
        )
      : []
    const unexpected = (thrown as {args?: unknown}).args
    if (thrown.constructor.name === 'UnexpectedArgsError' && Array.isArray(unexpected))
      return new UsageError(
        'USAGE',
        `Unexpected argument${unexpected.length === 1 ? '' : 's'}: ${unexpected.length} more than the command takes (not shown: argv may hold a secret)`,
        {suggestion: (this.ctor as typeof AgentVaultCommand).valueInArgvHint ?? help},
      )
    if (thrown.constructor.name !== 'NonExistentFlagsError' || unknown.length === 0) {
      const message = this.namingFlagVariable(usageMessage(thrown.message, this.argv))
      // "Expected opnbao to be one of: local, …, openbao": name the option meant.
      const choice = /Expected (.+) to be one of: (.+)$/.exec(message)
      const typed = choice?.[1]?.replace(/^--[\w-]+=/, '')
      const meant = typed === undefined ? undefined : nearest(typed, (choice?.[2] ?? '').split(/,\s*/))
      return new UsageError('USAGE', message, {
        suggestion: meant === undefined ? help : `Did you mean ${meant}? ${help}`,
      })
    }

    return this.unknownFlagError(unknown, help)
  }

  /** Unknown flags: the nearest real one, the subcommand that owns them, or what likely went wrong. */
  private unknownFlagError(unknown: string[], help: string): UsageError {
    const known = Object.entries({...this.ctor.baseFlags, ...this.ctor.flags}).flatMap(([name, flag]) =>
      flag.hidden ? [] : [`--${name}`, ...(flag.aliases ?? []).map((alias) => `--${alias}`)],
    )
    if (this.ctor.enableJsonFlag) known.push('--json')
    known.push('--help')
    // A secret's flag reads stdin (`--token-stdin`): `--token VALUE` means that one, not a near typo.
    const meant = unknown.map((flag) => {
      const name = flag.replace(/=.*/s, '')
      return known.includes(`${name}-stdin`)
        ? `${name}-stdin (secrets are read from stdin, never argv)`
        : nearest(name, known)
    })
    const first = meant.find((flag) => flag !== undefined)
    const owner = first === undefined ? this.subcommandWithFlags(unknown) : undefined
    if (owner)
      return new UsageError(
        'UNKNOWN_FLAG',
        `Unknown flag${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}`,
        {
          suggestion: `\`agentvault ${owner} ${unknown.join(' ')}\`: ${unknown.length === 1 ? 'it is a flag' : 'they are flags'} of ${owner}, which comes first.`,
        },
      )
    return new UsageError(
      'UNKNOWN_FLAG',
      `Unknown flag${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}`,
      {
        suggestion:
          first === undefined
            ? ((this.ctor as typeof AgentVaultCommand).valueInArgvHint ?? help)
            : `Did you mean ${first}? ${help}`,
      },
    )
  }

  /**
   * oclif's "Parsing --timeout Expected an integer but received: abc" (or "--length Expected an
   * integer greater than or equal to 1 but received: 0") in words, naming the
   * AGENTVAULT_* variable when the value came from it rather than from the command line.
   */
  private namingFlagVariable(message: string): string {
    const parsed = /^(?:Parsing )?--([\w-]+) (Expected .+)$/s.exec(message)
    if (!parsed) return message
    const [, name = '', problem = ''] = parsed
    const flag = this.ctor.flags?.[name] ?? this.ctor.baseFlags?.[name]
    const env = flag?.env !== undefined && !this.typedFlag(name, flag.char) ? flag.env : undefined
    const expected = /^Expected (.+?) but received: (.*)$/s.exec(problem)
    const what = expected ? `expects ${expected[1]}, got ${JSON.stringify(expected[2])}` : problem
    return env === undefined ? `--${name} ${what}` : `${env} (--${name}) ${what}`
  }

  /**
   * `login --token-stdin openbao`: the subcommand (`login openbao`) whose flags these are — the one
   * a word on the command line names when several have them.
   */
  private subcommandWithFlags(flags: string[]): string | undefined {
    if (this.id === undefined) return undefined
    const names = flags.map((flag) => flag.replace(/^--/, ''))
    const owners = this.config.commands.filter(
      (command) =>
        !command.hidden &&
        command.id.startsWith(`${this.id}:`) &&
        names.every((name) => name.length > 1 && Object.hasOwn(command.flags, name)),
    )
    const named = owners.find((command) => this.argv.includes(command.id.split(':').at(-1) ?? ''))
    const owner = named ?? (owners.length === 1 ? owners[0] : undefined)
    return owner?.id.replaceAll(':', ' ')
  }

  /**
   * oclif's own warnings (a deprecated flag alias such as --allow-host) in the house format, on
   * stderr also in --json mode, like every other warning.
   */
  override warn(input: Error | string): Error | string {
    warn(typeof input === 'string' ? input : input.message)
    return input
  }

  /** Warnings go to stderr, also in --json mode (stdout carries only the JSON). */
  protected warnUser(message: string): void {
    warn(message)
  }
}

/**
 * oclif's parse errors span several lines ("Missing 1 required arg:\nname …\nSee more help with --help"),
 * some behind a preamble ("The following error occurred:") or followed by a note on flags that take
 * several values — which explains a missing argument only when one of those flags was typed (and
 * took the argument as its value).
 */
function usageMessage(message: string, argv: readonly string[]): string {
  const typed = new Set(argv.map((word) => word.replace(/=.*/s, '')))
  const joined = usageLines(message)
    .replace(/^The following errors? occurred:\s*/, '')
    .replace(/^Missing required flag (\w[\w-]*)$/, 'Missing required flag --$1')
  return joined.replace(
    / Note: ((?:--[\w-]+(?:, )?)+) allows? multiple values\. .*? the beginning of arguments\./,
    (note, flags: string) => (flags.split(', ').some((flag) => typed.has(flag)) ? note : ''),
  )
}

function usageLines(message: string): string {
  const lines = message
    // "--data=VALUE cannot also be provided when using --data-stdin": the flag, never its value.
    .replaceAll(/(--[\w-]+)=[\s\S]*?( cannot also be provided when using --[\w-]+)(?=$|\n| --)/g, '$1$2')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('See more help'))
  return lines.join(' ') || 'Invalid usage'
}
