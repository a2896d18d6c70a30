/**
 * Reading what `agentsecrets call` prints (protocols/agentsecrets.md §4.2): the one-line JSON
 * envelope of 3.x (`--output json`) or the `HTTP <n>` text of ≤2.1.0. stdout is not clean (update
 * banners, spinner frames, warnings), so both parsers look for their own shape and ignore the rest.
 * Pure; a shape they cannot find is an {@link AgentSecretsProtocolError}. Output is never quoted
 * in errors: it carries the upstream's response.
 */
import {AgentSecretsProtocolError} from './errors.js'
import {cleanLines} from './text.js'

/** The 3.x JSON envelope, checked. */
export interface CallEnvelope {
  body: string
  duration_ms?: number
  /** Present when status ≥ 400, or when no response came back (then status is 0). */
  error?: string
  /** Each name maps to its values. */
  headers: Record<string, string[]>
  redacted: boolean
  status: number
}

/** `headers`: each name to its string values; undefined when it is not an object. */
function headersOf(value: unknown): Record<string, string[]> | undefined {
  const headers: Record<string, string[]> = Object.create(null) as Record<string, string[]>
  if (value === undefined || value === null) return headers
  if (typeof value !== 'object' || Array.isArray(value)) return undefined
  for (const [name, values] of Object.entries(value as Record<string, unknown>)) {
    const strings = (Array.isArray(values) ? values : [values]).filter(
      (item): item is string => typeof item === 'string',
    )
    if (strings.length > 0) headers[name] = strings
  }

  return headers
}

function asEnvelope(line: string): CallEnvelope | undefined {
  let data: unknown
  try {
    data = JSON.parse(line)
  } catch {
    return undefined
  }

  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined
  const record = data as Record<string, unknown>
  const {body, duration_ms: duration, status} = record
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 0 || status > 999) return undefined
  const headers = headersOf(record.headers)
  if (!headers || (body !== undefined && body !== null && typeof body !== 'string')) return undefined
  const validDuration = typeof duration === 'number' && Number.isFinite(duration) && duration >= 0
  return {
    body: typeof body === 'string' ? body : '',
    ...(validDuration && {duration_ms: Math.round(duration)}),
    ...(typeof record.error === 'string' && {error: record.error}),
    headers,
    redacted: record.redacted === true,
    status,
  }
}

/** §4.2 parse rule: the last stdout line that starts with `{` and parses to an object with a numeric status. */
export function parseEnvelope(stdout: string): CallEnvelope {
  const lines = cleanLines(stdout)
  for (let index = lines.length - 1; index >= 0; index--) {
    const line = lines[index]!.trimStart()
    if (!line.startsWith('{')) continue
    const envelope = asEnvelope(line)
    if (envelope) return envelope
  }

  throw new AgentSecretsProtocolError('`agentsecrets call --output json` printed no JSON result line')
}

/** The ≤2.1.0 text result. */
export interface TextCallResult {
  body: string
  status: number
}

/**
 * §4.2 text mode: from the last line that is exactly `HTTP <n>`, the blank line after it, then the
 * body minus its final newline. Returns undefined when there is no such line (a failure before any
 * response: see {@link textFailure}).
 */
export function parseTextResult(stdout: string): TextCallResult | undefined {
  // Only `\n` splits here: the body is kept byte for byte (no ANSI stripping inside it).
  const lines = stdout.split('\n')
  for (let index = lines.length - 1; index >= 0; index--) {
    const match = /^HTTP (\d{3})$/.exec(statusLine(lines[index]!))
    if (!match) continue
    const rest = lines.slice(index + 1)
    if (rest.length > 0 && rest[0]!.trim() !== '') continue
    let body = rest.slice(1).join('\n')
    if (body.endsWith('\n')) body = body.slice(0, -1)
    return {body, status: Number(match[1])}
  }

  return undefined
}

/** A candidate status line: colours removed, a trailing CR dropped, spinner redraws undone. */
function statusLine(line: string): string {
  const cleaned = line.replaceAll(/\u001B\[[0-?]*[ -/]*[@-~]/g, '').replace(/\r$/, '')
  return cleaned.slice(cleaned.lastIndexOf('\r') + 1)
}

/** `x API call failed: <message>` (stdout, 2.1.0) or `Error: API call failed: <message>` (stderr, 1.1.0). */
export function textFailure(stdout: string, stderr: string): string | undefined {
  for (const line of [...cleanLines(stdout), ...cleanLines(stderr)]) {
    const match = /^\s*(?:x|✗|Error:)\s+API call failed:\s*(.*)$/.exec(line)
    if (match) return match[1] ?? ''
  }

  return undefined
}
