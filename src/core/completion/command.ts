/**
 * The service behind `agentvault autocomplete`: write the completion files from the loaded
 * commands, start the names cache in the agentvault home, and say how to load them.
 */
import {loadConfig} from '../config.js'
import {type Shell, writeCompletionFiles} from './install.js'
import {enableNamesCache, recordProfileNames} from './names-cache.js'
import {buildCompletionSpec, type DeclaredCommand} from './spec.js'

export interface AutocompleteResult {
  /** The completion files written, and what the startup line sources. */
  files: string[]
  /** Where profile and secret names are kept for completion (names only). */
  namesCache: string
  /** The command whose output is appended to the shell's startup file. */
  setupCommand: string
  shell: Shell
}

/** What of oclif's Config the service uses. */
export interface CompletionHost {
  bin: string
  cacheDir: string
  commands: DeclaredCommand[]
  runCommand(id: string, argv?: string[]): Promise<unknown>
  topics: Array<{description?: string; hidden?: boolean; name: string}>
}

export async function installCompletion(
  host: CompletionHost,
  home: string,
  shell: Shell,
): Promise<AutocompleteResult> {
  // PowerShell's script still comes from @oclif/plugin-autocomplete (it writes every shell's files:
  // ours are written after it, over its bash and zsh ones).
  if (shell === 'powershell') await host.runCommand('autocomplete:create')
  const topics = Object.fromEntries(
    host.topics
      .filter((topic) => !topic.hidden)
      .map((topic) => [topic.name, {description: topic.description}]),
  )
  const spec = buildCompletionSpec(host.commands, topics)
  const files = await writeCompletionFiles(host.cacheDir, spec, host.bin)
  const namesCache = await enableNamesCache(home)
  // Profile names now; secret names when agentvault next reads or changes them (that needs the key).
  try {
    await recordProfileNames(home, Object.keys((await loadConfig(home)).profiles))
  } catch {
    // An invalid config.json is reported by the commands that use it; completion offers the kinds.
  }

  return {
    files: [...files.functions, ...files.setup],
    namesCache,
    setupCommand: `${host.bin} autocomplete script ${shell}`,
    shell,
  }
}

export function setupInstructions(shell: Shell, bin: string): string {
  const title = `Setup Instructions for ${bin.toUpperCase()} CLI Autocomplete ---\n==============================================\n`
  const script = `${bin} autocomplete script ${shell}`
  const tryIt = (tab: string): string => `
2) Try it:

  ${bin} ${tab}                        # commands
  ${bin} run --${tab}                  # flags
  ${bin} run --mask ${tab}             # option values
  ${bin} run --env-file ${tab}         # file names
  ${bin} secrets get ${tab}            # secret names of the local vault (once \`${bin} secrets list\` ran)
`
  switch (shell) {
    case 'bash': {
      return `${title}
1) Add completion to your bash startup file and load it:

  ${script} >> ~/.bashrc; source ~/.bashrc

  For a login shell, use ~/.bash_profile (or ~/.profile) instead of ~/.bashrc.
${tryIt('<TAB><TAB>')}`
    }

    case 'powershell': {
      return `${title}
1) Run these two cmdlets in your PowerShell window:

  New-Item -Type Directory -Path (Split-Path -Parent $PROFILE) -ErrorAction SilentlyContinue
  Add-Content -Path $PROFILE -Value (Invoke-Expression -Command "${script}"); .$PROFILE

2) Try it: ${bin} <TAB> completes commands, ${bin} COMMAND --<TAB> their flags.
`
    }

    case 'zsh': {
      return `${title}
1) Add completion to your zsh startup file and load it:

  ${script} >> ~/.zshrc; source ~/.zshrc

  If zsh warns about insecure directories, run: compaudit
${tryIt('<TAB>')}`
    }
  }
}
