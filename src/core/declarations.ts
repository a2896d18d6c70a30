/**
 * What a backend declares instead of talking to the terminal (architecture.md): the inputs its
 * `login` needs and the settings its profiles take. Each backend's `declaration.ts` exports one
 * {@link LoginDeclaration} and one list of {@link SettingDeclaration}s; the command layer builds
 * `login KIND`'s flags, help and prompts from the first and checks `profiles add/set --set` against
 * the second. Pure data: nothing here reads a flag, stdin, the environment or a terminal.
 */

/** How a value is asked for when no flag, stdin or variable gave one (and prompting is allowed). */
export type PromptKind = 'hidden' | 'text'

/** One input of `login KIND`. */
export interface LoginInput {
  /** Alternative flag spellings, accepted but not listed. */
  aliases?: readonly string[]
  /** The flag's value placeholder in help (`URL`, `FILE`). */
  helpValue?: string
  /** One line for `--help`: what it is, where its default comes from. */
  description: string
  /**
   * A variable the command layer reads when the flag is absent. It outranks the profile's setting,
   * so it is the flag's own variable (`[env: …]` in help). Native variables that a profile's own
   * setting outranks (`BAO_ADDR`) are read by the backend's settings instead, and only described.
   */
  env?: string
  /** Flag names that may not be given with this one. */
  exclusive?: readonly string[]
  /** The flag, in kebab-case; a secret's flag is `--<flag>-stdin` (never its value in argv). */
  flag: string
  /** Lowest and highest accepted value of an integer input. */
  max?: number
  min?: number
  /** The key of the backend's `LoginOptions` it arrives under (camelCase). */
  name: string
  /** The only accepted values. */
  options?: readonly string[]
  /**
   * A profile setting that stands for this input when no flag or variable gives one: `required`
   * and `when` are then satisfied by it (the backend reads the setting itself).
   */
  profileSetting?: string
  /** Ask for it on a terminal when nothing else gave it. */
  prompt?: PromptKind
  /** The prompt's text, e.g. `OpenBao token`; also names the value in errors. */
  label: string
  /**
   * Read lazily by the backend, through the context's prompt, only once it knows it needs it
   * (sanctum: the passphrase of a `.key.enc`, only when that file is the key). Its stdin flag is
   * still read up front.
   */
  deferred?: boolean
  /** Login fails (exit 2, naming the flag and variable) when nothing gives it. */
  required?: boolean
  /** A secret: read from stdin (`--<flag>-stdin`), `env` or a hidden prompt, never from argv. */
  secret?: boolean
  /** Trim surrounding whitespace from a secret read from stdin (default true; a passphrase keeps it). */
  trim?: boolean
  /** What kind of value: a string (default), a whole number, repeatable strings, or a switch. */
  type?: 'boolean' | 'integer' | 'string' | 'strings'
  /** Only read when another input (or its profile setting, or its default) has one of these values. */
  when?: {input: string; is: readonly string[]}
  /** The value assumed when nothing gives one (for `when`; the backend applies its own default). */
  default?: string
}

/** Everything `login KIND` needs to know about a backend. */
export interface LoginDeclaration {
  description: string
  examples: readonly string[]
  inputs: readonly LoginInput[]
  kind: string
  summary: string
}

/** One key a profile of a kind may set in config.json (`profiles add/set --set key=value`). */
export interface SettingDeclaration {
  description: string
  name: string
  /** How `--set key=value` reads the value: JSON for lists, booleans and numbers, else text. */
  type: 'boolean' | 'integer' | 'string' | 'strings'
}

/**
 * Settings every kind takes: they are read by core (the use engine, `call`, placeholders and the
 * audit log), not by one backend.
 */
export const COMMON_SETTINGS: readonly SettingDeclaration[] = [
  {
    name: 'allowedDomains',
    type: 'strings',
    description:
      'Hosts (exact, or *.suffix) every secret of this profile may be sent to when it has no list of its own.',
  },
  {
    name: 'allowPlainHttp',
    type: 'boolean',
    description:
      'Let use/call/proxy/mcp send secrets over plain http:// to hosts off this machine (loopback always may).',
  },
  {
    name: 'allowPrivateNetworks',
    type: 'boolean',
    description: 'Let use/call/run --placeholders reach loopback and private addresses.',
  },
  {
    name: 'auditPaths',
    type: 'string',
    description: '"ref" writes a salted resource_ref instead of reference names to the audit log.',
  },
  {
    name: 'caCert',
    type: 'string',
    description: 'PEM file of extra CAs trusted (relative paths from the agentvault home).',
  },
]
