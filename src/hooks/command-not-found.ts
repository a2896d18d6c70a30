/**
 * An unknown command (`agentvault secrts list`) in agentvault's own format — `Error:` and
 * `Try this:` with a "did you mean", exit 2, or the JSON error with `--json` — instead of oclif's
 * `command secrts:list not found`, which shows its internal colon-separated id.
 */
import type {Hook} from '@oclif/core'

import {nearestCommand} from '../core/did-you-mean.js'
import {UsageError} from '../core/errors.js'
import {reportError} from '../ui/errors.js'

/**
 * What users of op, doppler, vault and gh type, and the agentvault command that does it (the
 * README's "Coming from op / doppler / vault" table): suggested when no command is a near typo.
 */
const FROM_OTHER_TOOLS: Readonly<Record<string, string>> = {
  'auth login': 'login',
  'auth logout': 'logout',
  'auth status': 'status',
  exec: 'run',
  get: 'secrets get',
  'item create': 'secrets set',
  'item delete': 'secrets delete',
  'item edit': 'secrets edit',
  'item get': 'secrets get',
  'item list': 'secrets list',
  'kv delete': 'secrets delete',
  'kv get': 'secrets get',
  'kv list': 'secrets list',
  'kv metadata': 'secrets versions',
  'kv put': 'secrets set',
  list: 'secrets list',
  me: 'status',
  read: 'secrets get',
  'secrets download': 'secrets export',
  'secrets upload': 'secrets import',
  set: 'secrets set',
  signin: 'login',
  signout: 'logout',
}

/** The agentvault command for another tool's words (`kv get …` → `secrets get`), longest match first. */
function fromOtherTool(words: string[]): string | undefined {
  for (let count = Math.min(words.length, 2); count > 0; count--) {
    const found = FROM_OTHER_TOOLS[words.slice(0, count).join(' ').toLowerCase()]
    if (found !== undefined) return found
  }

  return undefined
}

const hook: Hook<'command_not_found'> = async function ({argv = [], config, id}) {
  const words = id.split(':')
  // A word with `=` is named up to it: `agentvault API_KEY=VALUE` (a forgotten `secrets set`) carries a secret.
  const typed = words.map((word) => word.replace(/=.*/s, '=…')).join(' ')
  const visible = config.commands.filter((command) => !command.hidden)
  const ids = [...new Set(visible.flatMap((command) => [command.id, ...command.aliases]))].map((name) =>
    name.replaceAll(':', ' '),
  )
  // oclif hands over no argv at all when a word holds a colon (`read local://K --json`: the id
  // swallows it): the command line as given still has --json.
  const json = [argv, process.argv.slice(2)].some((words) => {
    const end = words.indexOf('--')
    return (end === -1 ? words : words.slice(0, end)).includes('--json')
  })
  let error: UsageError
  if (typed.startsWith('-')) {
    // Only the flag's name: `--token=VALUE` carries a secret.
    const flag = typed.startsWith('--') ? typed.replace(/=.*/s, '') : typed.slice(0, 2)
    error = new UsageError('UNKNOWN_FLAG', `Unknown flag ${flag}`, {
      suggestion:
        'See `agentvault --help` for the commands, and `agentvault COMMAND --help` for their flags.',
    })
  } else {
    // A lone misspelt topic (`scerets`, `profile`) means the topic: its help lists its commands.
    const topics = config.topics
      .filter((topic) => !topic.hidden)
      .map((topic) => topic.name.replaceAll(':', ' '))
    const meant =
      nearestCommand(words, words.length === 1 ? [...new Set([...ids, ...topics])] : ids) ??
      fromOtherTool(words)
    // `inject t.tpl`, `status extra`: a command that takes no arguments, given some (oclif reads
    // them as a longer command id). Saying "did you mean `agentvault inject`?" would loop.
    const command = longestCommandPrefix(words, ids)
    if (command !== undefined && (meant === undefined || meant === command)) {
      const extra = words.length - command.split(' ').length
      error = new UsageError(
        'USAGE',
        `Unexpected argument${extra === 1 ? '' : 's'}: \`agentvault ${command}\` takes none (${extra} given, not shown: argv may hold a secret)`,
        {suggestion: `See \`agentvault ${command} --help\`.`},
      )
      process.exitCode = reportError(error, {json})
      return
    }

    const topic = words[0] !== undefined && config.findTopic(words[0]) ? words[0] : undefined
    const help = topic ? `agentvault ${topic} --help` : 'agentvault --help'
    error = new UsageError('UNKNOWN_COMMAND', `Unknown command "${typed}"`, {
      suggestion:
        meant === undefined
          ? `See \`${help}\` for the commands.`
          : `Did you mean \`agentvault ${meant}\`? See \`${help}\` for the commands.`,
    })
  }

  process.exitCode = reportError(error, {json})
}

/** The longest run of leading `words` that is itself a command (`['status', 'extra']` → `status`). */
function longestCommandPrefix(words: string[], commands: string[]): string | undefined {
  for (let count = words.length - 1; count > 0; count--) {
    const typed = words.slice(0, count).join(' ')
    if (commands.includes(typed)) return typed
  }

  return undefined
}

export default hook
