/**
 * Parsers for the command-line specs of `use` and `call`: `--param k=v`, `--params JSON`,
 * `--secret-header 'Name: REF'`, `-H 'Name: value'`, `--query name=REF`, `--body-field a.b=REF` and
 * `--form-field name=REF`. Pure; every failure is a UsageError whose message names the flag and
 * never repeats the text given (it may be a mistyped secret).
 */
import {UsageError} from '../errors.js'

/** Where a call puts a secret. */
export type InjectionStyle = 'basic' | 'bearer' | 'body' | 'form' | 'header' | 'query'

export interface Injection {
  /** The reference as given (a full reference or a bare name of the active profile). */
  reference: string
  style: InjectionStyle
  /** Header name, query parameter, form field, or JSON path segments joined with `.`. */
  target?: string
}

/** RFC 9110 token: header names and methods. */
const TOKEN = /^[!#$%&'*+.^_`|~\dA-Za-z-]+$/
/** Keys that would reach an object's prototype when assigned. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
/** A param key: an identifier, optionally `.` and one sub-key (e.g. `headers.X-Trace`). */
const PARAM_KEY = /^[A-Za-z_]\w*(?:\.[!#$%&'*+^_`|~\dA-Za-z-]+)?$/

export function isToken(text: string): boolean {
  return TOKEN.test(text)
}

function bad(flag: string, what: string, example: string): UsageError {
  return new UsageError('BAD_SPEC', `${flag} ${what}`, {suggestion: `Write it as ${example}.`})
}

function splitAt(spec: string, separator: string): [string, string] | undefined {
  const at = spec.indexOf(separator)
  return at === -1 ? undefined : [spec.slice(0, at), spec.slice(at + separator.length)]
}

/**
 * `Name: value` (for the plain `-H`/`--header`) or `Name: REF` (for `--secret-header`): a token
 * name, then the trimmed rest. A flag label that starts with `-H` means a plain header.
 */
export function parseHeaderSpec(spec: string, flag: string): {name: string; value: string} {
  const secret = !flag.startsWith('-H')
  const example = secret ? "--secret-header 'X-Api-Key: local://API_KEY'" : "-H 'Accept: application/json'"
  const parts = splitAt(spec, ':')
  if (!parts) throw bad(flag, 'expects "Name: value"', example)
  const name = parts[0].trim()
  const value = parts[1].trim()
  if (!isToken(name)) throw bad(flag, 'has an invalid header name', example)
  if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value))
    throw bad(flag, 'has a control character in its value', example)
  if (secret && value === '') throw bad(flag, 'needs a secret reference after the colon', example)
  return {name, value}
}

/** `name=REF` for `--query`, `--form-field` and `--body-field`: a non-empty name, then a reference. */
export function parseAssignment(spec: string, flag: string, example: string): {name: string; value: string} {
  const parts = splitAt(spec, '=')
  if (!parts || parts[0] === '' || parts[1].trim() === '') throw bad(flag, 'expects name=REF', example)
  if (/[\u0000-\u001F\u007F]/.test(parts[0])) throw bad(flag, 'has a control character in its name', example)
  return {name: parts[0], value: parts[1].trim()}
}

/** The segments of a `--body-field` path (`auth.token` → `["auth", "token"]`). */
export function parseBodyPath(path: string): string[] {
  const segments = path.split('.')
  if (segments.some((segment) => segment === '' || UNSAFE_KEYS.has(segment)))
    throw bad(
      '--body-field',
      'has an empty or reserved path segment',
      '--body-field auth.token=local://TOKEN',
    )
  return segments
}

export interface InjectionFlags {
  basic?: string
  bearer?: string
  'body-field'?: string[]
  'form-field'?: string[]
  header?: string[]
  query?: string[]
}

/** Every injection a `call` asks for, in a stable order: bearer, basic, headers, query, body, form. */
export function parseInjections(flags: InjectionFlags): Injection[] {
  const injections: Injection[] = []
  if (flags.bearer !== undefined) injections.push({reference: flags.bearer, style: 'bearer'})
  if (flags.basic !== undefined) injections.push({reference: flags.basic, style: 'basic'})
  for (const spec of flags.header ?? []) {
    const {name, value} = parseHeaderSpec(spec, '--secret-header')
    injections.push({reference: value, style: 'header', target: name})
  }

  const assignments: Array<[keyof InjectionFlags, InjectionStyle, string]> = [
    ['query', 'query', '--query api_key=local://API_KEY'],
    ['body-field', 'body', '--body-field auth.token=local://TOKEN'],
    ['form-field', 'form', '--form-field client_secret=local://CLIENT_SECRET'],
  ]
  for (const [flag, style, example] of assignments) {
    for (const spec of (flags[flag] as string[] | undefined) ?? []) {
      const {name, value} = parseAssignment(spec, `--${flag}`, example)
      if (style === 'body') parseBodyPath(name)
      injections.push({reference: value, style, target: name})
    }
  }

  return injections
}

function setParam(params: Record<string, unknown>, key: string, value: unknown, flag: string): void {
  if (!PARAM_KEY.test(key) || key.split('.').some((part) => UNSAFE_KEYS.has(part)))
    throw bad(flag, 'has an invalid parameter name', '--param url=https://api.example.com/v1')
  const [head, sub] = key.split('.') as [string, string | undefined]
  if (sub === undefined) {
    params[head] = value
    return
  }

  const existing = params[head]
  const nested =
    existing !== null && typeof existing === 'object' && !Array.isArray(existing)
      ? (existing as Record<string, unknown>)
      : {}
  nested[sub] = value
  params[head] = nested
}

/** `--params` JSON: an object whose keys become operation parameters. */
export function parseParamsJson(text: string): Record<string, unknown> {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    throw new UsageError('BAD_PARAMS', '--params is not valid JSON', {
      suggestion: `Pass a JSON object, e.g. --params '{"url":"https://api.example.com","method":"GET"}', or --params - to read it from stdin.`,
    })
  }

  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw new UsageError('BAD_PARAMS', '--params must be a JSON object', {
      suggestion: `Pass a JSON object, e.g. --params '{"algorithm":"hmac-sha256","data":"hello"}'.`,
    })
  const params: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(data)) {
    if (UNSAFE_KEYS.has(key)) throw bad('--params', 'has a reserved key', '--params \'{"data":"hello"}\'')
    params[key] = value
  }

  return params
}

/**
 * Operation parameters from `--params` (JSON, applied first) and `--param key=value` pairs (strings,
 * applied in order; `headers.Name=value` sets one entry of the `headers` object).
 */
export function parseParams(json: string | undefined, pairs: readonly string[]): Record<string, unknown> {
  const params = json === undefined ? {} : parseParamsJson(json)
  for (const pair of pairs) {
    const parts = splitAt(pair, '=')
    if (!parts) throw bad('--param', 'expects key=value', '--param algorithm=hmac-sha256')
    setParam(params, parts[0], parts[1], '--param')
  }

  return params
}
