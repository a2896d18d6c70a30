/**
 * "Did you mean …?" for unknown commands and flags: the nearest known word by edit distance
 * (adjacent transpositions count as one edit), within a distance that grows with the word's length
 * so that `zzz` suggests nothing rather than something arbitrary.
 */
import {editDistance} from './scheme-typos.js'

/** How far a typo may be from what it meant: 1 edit for short words, then one more per 4 characters. */
export function typoBudget(word: string): number {
  return Math.max(1, Math.floor(word.length / 4))
}

/** The candidate nearest to `word` within its typo budget; undefined when none is close enough. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase()
  let best: string | undefined
  let bestDistance = typoBudget(lower) + 1
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }

  return best
}

/**
 * The command an unknown command line most likely meant: `words` are what the user typed as the
 * command (`['secrts', 'list']`), `commands` the known ids with spaces (`secrets list`). The longest
 * prefix of `words` that is near a command of as many words wins.
 */
export function nearestCommand(words: string[], commands: string[]): string | undefined {
  for (let count = words.length; count > 0; count--) {
    const typed = words.slice(0, count).join(' ')
    const sameLength = commands.filter((command) => command.split(' ').length === count)
    const found = nearest(typed, sameLength)
    if (found !== undefined) return found
  }

  return undefined
}
