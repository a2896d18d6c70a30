/**
 * The largest secret value agentvault accepts (issue 12 §3): a 100 MB value made a 178 MB vault and
 * every later command slow. Every source of `secrets set` is read no further than the cap, and the
 * secrets service checks it again for every backend.
 */
import {UsageError} from './errors.js'

/** 1 MiB: a PEM bundle or a service-account JSON fits many times over. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024

/** The env var that raises (or lowers) the cap, as `--max-value-bytes` does. */
export const MAX_VALUE_BYTES_ENV = 'AGENTVAULT_MAX_VALUE_BYTES'

/** `1 MiB (1048576 bytes)`, `16 bytes`. */
export function describeBytes(bytes: number): string {
  const units: Array<[number, string]> = [
    [1024 ** 3, 'GiB'],
    [1024 ** 2, 'MiB'],
    [1024, 'KiB'],
  ]
  for (const [size, unit] of units) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit} (${bytes} bytes)`
  }

  return `${bytes} bytes`
}

/** The error for a value over the cap; it names the limit and how to raise it, never the value. */
export function valueTooLarge(maxBytes: number): UsageError {
  return new UsageError(
    'VALUE_TOO_LARGE',
    `The value is larger than the limit of ${describeBytes(maxBytes)}`,
    {
      details: {maxBytes},
      suggestion: `Store a smaller value, or raise the limit with --max-value-bytes N (or ${MAX_VALUE_BYTES_ENV}=N).`,
    },
  )
}

/** @throws UsageError VALUE_TOO_LARGE when `length` exceeds `maxBytes`. */
export function checkValueSize(length: number, maxBytes: number): void {
  if (length > maxBytes) throw valueTooLarge(maxBytes)
}
