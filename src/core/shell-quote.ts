/** A word as a POSIX shell reads it back unchanged: bare when it is safe, else single-quoted. */
export function shellQuote(word: string): string {
  return /^[\w./:=@%+,-]+$/.test(word) ? word : `'${word.replaceAll("'", String.raw`'\''`)}'`
}
