/**
 * Random secret values for `secrets generate`: every character drawn independently and uniformly
 * (crypto.randomInt rejects biased draws) from a named alphabet.
 */
import {randomInt} from 'node:crypto'

const LOWER = 'abcdefghijklmnopqrstuvwxyz'
const UPPER = LOWER.toUpperCase()
const DIGITS = '0123456789'

/** The alphabets `--charset` names. */
export const CHARSETS = Object.freeze({
  alnum: UPPER + LOWER + DIGITS,
  alpha: UPPER + LOWER,
  /** Printable ASCII without the space: what password rules call "symbols" included. */
  ascii: Array.from({length: 0x7e - 0x21 + 1}, (_, index) => String.fromCodePoint(0x21 + index)).join(''),
  base64url: `${UPPER}${LOWER}${DIGITS}-_`,
  hex: `${DIGITS}abcdef`,
  numeric: DIGITS,
} as const)

export type CharsetName = keyof typeof CHARSETS

export const CHARSET_NAMES = Object.keys(CHARSETS) as CharsetName[]

export const DEFAULT_LENGTH = 32
export const MAX_LENGTH = 4096

/** `length` characters of `charset`, as a Buffer the caller wipes. */
export function generateValue(length: number, charset: CharsetName): Buffer {
  const alphabet = CHARSETS[charset]
  const value = Buffer.alloc(length)
  for (let i = 0; i < length; i++) value[i] = alphabet.codePointAt(randomInt(alphabet.length)) as number
  return value
}

/** Bits of entropy of such a value (for the summary: "190 bits"). */
export function entropyBits(length: number, charset: CharsetName): number {
  return Math.floor(length * Math.log2(CHARSETS[charset].length))
}
