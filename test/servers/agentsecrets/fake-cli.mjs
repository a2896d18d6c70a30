#!/usr/bin/env node
// The fake `agentsecrets` executable (protocols/agentsecrets.md §10 "Fake agentsecrets
// executable"), put first on PATH by the tests as `agentsecrets`. It emulates 2.1.0 or 3.3.0 per
// the state file (AGENTSECRETS_FAKE_STATE): `--version`, per-command `--help` with exactly that
// version's flags, `call`, `env`, `secrets list|set|delete`, `log(s) --json`, `proxy logs`.
// Every invocation is appended to an invocation log first: argv and environment variable *names*
// (values too only with the `recordEnv` switch), so tests can check what agentvault ran.
import {spawn} from 'node:child_process'
import {appendFileSync} from 'node:fs'
import {request as httpRequest} from 'node:http'

import {executeCall, PLACEHOLDER, startFakeProxy} from './fake-proxy.mjs'
import {
  activeEnvironment,
  appendAudit,
  invocationLogPath,
  livePidFile,
  loadState,
  readAuditEntries,
  saveState,
  secretsOf,
} from './state.mjs'

const stateFile = process.env.AGENTSECRETS_FAKE_STATE
if (!stateFile) {
  process.stdout.write('x AGENTSECRETS_FAKE_STATE is not set (fake agentsecrets)\n')
  process.exit(1)
}

const state = loadState(stateFile)
const home = process.env.HOME ?? '/nonexistent'
const three = state.version.startsWith('3')
const switches = state.switches ?? {}
const argv = process.argv.slice(2)

appendFileSync(
  invocationLogPath(stateFile, state),
  JSON.stringify({
    argv,
    cwd: process.cwd(),
    envNames: Object.keys(process.env).sort(),
    ...(switches.recordEnv ? {env: process.env} : {}),
    pid: process.pid,
    stdinIsTTY: Boolean(process.stdin.isTTY),
    time: new Date().toISOString(),
  }) + '\n',
)

const out = (text) => process.stdout.write(text)
const err = (text) => process.stderr.write(text)

class CliExit extends Error {
  constructor(code) {
    super(`exit ${code}`)
    this.code = code
  }
}

/** `x message` on stdout (the CLI's habit), then exit `code`. */
function fail(message, code = 1, stream = out) {
  stream(`x ${message}\n`)
  throw new CliExit(code)
}

if (switches.banner) {
  out(`Update Available: ${state.version} → 9.9.9\n`)
  out('  Run: agentsecrets update\n')
  out('  Release notes: https://github.com/The-17/agentsecrets/releases\n')
  out('────────────────────────────────────────\n')
}

// ---------------------------------------------------------------------------------------------
// Help texts: exactly the flags of the emulated version (§2 probes read them).

const HELP = {
  call: three
    ? [
        '--url string',
        '--method string',
        '--body string',
        '--bearer string',
        '--basic string',
        '--header stringArray',
        '--query stringArray',
        '--body-field stringArray',
        '--form-field stringArray',
        '--token string',
        '--output string   text|json',
      ]
    : [
        '--url string',
        '--method string',
        '--body string',
        '--bearer string',
        '--basic string',
        '--header stringArray',
        '--query stringArray',
        '--body-field stringArray',
        '--form-field stringArray',
      ],
  env: three ? ['--only K1,K2   inject only these keys', '--cloud', '--sandbox'] : [],
  log:
    three || switches.noJsonAudit ? undefined : ['--json', '--limit int', '--credential string', '--blocked'],
  logs:
    three && !switches.noJsonAudit
      ? ['--json', '--limit int', '--credential string', '--blocked']
      : undefined,
  'proxy logs': ['--last int', '--secret string'],
  'secrets delete': [],
  'secrets list': ['--remote'],
  'secrets set': switches.setStdin
    ? ['--all-envs', '--value-stdin   read the value from stdin']
    : ['--all-envs'],
}

function printHelp(command) {
  const flags = HELP[command]
  if (flags === undefined) fail(`unknown command "${command}" for "agentsecrets"`)
  out(
    `Usage:\n  agentsecrets ${command} [flags]\n\nFlags:\n${flags.map((flag) => `  ${flag}\n`).join('')}  -h, --help   help for ${command}\n`,
  )
}

/** Parse `--name value` / `--name=value` flags of a known set; anything else is an error. */
function parseFlags(args, known, {multi = [], booleans = []} = {}) {
  const flags = {}
  const rest = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (!arg.startsWith('--')) {
      rest.push(arg)
      continue
    }

    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    if (!known.includes(name) && !booleans.includes(name)) fail(`unknown flag: --${name}`)
    if (booleans.includes(name)) {
      flags[name] = true
      continue
    }

    const value = eq === -1 ? args[++i] : arg.slice(eq + 1)
    if (value === undefined) fail(`flag needs an argument: --${name}`)
    if (multi.includes(name)) (flags[name] ??= []).push(value)
    else flags[name] = value
  }

  return {flags, rest}
}

// ---------------------------------------------------------------------------------------------
// call

function injectionsOf(flags) {
  const injections = []
  if (flags.bearer !== undefined) injections.push({key: flags.bearer, style: 'bearer'})
  if (flags.basic !== undefined) injections.push({key: flags.basic, style: 'basic'})
  for (const [flag, style] of [
    ['header', 'header'],
    ['query', 'query'],
    ['body-field', 'body'],
    ['form-field', 'form'],
  ]) {
    for (const spec of flags[flag] ?? []) {
      const eq = spec.indexOf('=')
      if (eq <= 0 || eq === spec.length - 1) fail(`invalid --${flag} value "${spec}": use name=KEY`)
      injections.push({key: spec.slice(eq + 1), style, target: spec.slice(0, eq)})
    }
  }

  if (injections.length === 0)
    fail('at least one injection is required — specify how to authenticate (e.g. --bearer KEY)')
  return injections
}

function proxyCall(port, call, agentToken) {
  const headers = [
    ['X-AS-Target-URL', call.targetUrl],
    ['X-AS-Method', call.method],
  ]
  for (const injection of call.injections) {
    const kind = injection.style[0].toUpperCase() + injection.style.slice(1)
    if (injection.style === 'bearer' || injection.style === 'basic')
      headers.push([`X-AS-Inject-${kind}`, injection.key])
    else
      headers.push([
        `X-AS-Inject-${kind}-${injection.style === 'body' ? injection.target.replaceAll('.', '-') : injection.target}`,
        injection.key,
      ])
  }

  if (state.sessionToken && !switches.cliNoSession) headers.push(['X-AS-Session-Token', state.sessionToken])
  if (agentToken) headers.push(['X-AS-Agent-Token', agentToken])
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {headers: Object.fromEntries(headers), host: '127.0.0.1', method: 'POST', path: '/proxy', port},
      (response) => {
        const chunks = []
        response.on('data', (chunk) => chunks.push(chunk))
        response.on('end', () => {
          const grouped = {}
          for (let i = 0; i < response.rawHeaders.length; i += 2)
            (grouped[response.rawHeaders[i]] ??= []).push(response.rawHeaders[i + 1])
          resolve({body: Buffer.concat(chunks), headers: grouped, status: response.statusCode})
        })
      },
    )
    outgoing.on('error', reject)
    outgoing.end(call.body)
  })
}

function errorOf(status, body) {
  try {
    const data = JSON.parse(body.toString('utf8'))
    if (typeof data.message === 'string') return data.message
    if (typeof data.error === 'string') return data.error
  } catch {}

  return `HTTP ${status}`
}

/**
 * 3.x: the request goes over HTTP to the daemon named in proxy.pid, else to a transient proxy on
 * 127.0.0.1:0; the answer becomes the one-line JSON envelope (status 0 when none came back).
 */
async function envelopeOf(request, agentToken) {
  const started = Date.now()
  const live = livePidFile(home)
  try {
    let answer
    if (live) {
      answer = await proxyCall(live.port, request, agentToken)
    } else {
      if (switches.transientFails)
        throw Object.assign(
          new Error('failed to start transient proxy: listen tcp 127.0.0.1:0: bind: permission denied'),
          {transient: true},
        )
      const transient = await startFakeProxy({env: process.env, home, stateFile})
      try {
        answer = await proxyCall(transient.port, request, agentToken)
      } finally {
        await transient.close()
      }
    }

    const body = answer.body.toString('utf8')
    return {
      status: answer.status,
      headers: answer.headers,
      body,
      redacted: body.includes(PLACEHOLDER),
      duration_ms: Date.now() - started,
      ...(answer.status >= 400 ? {error: errorOf(answer.status, answer.body)} : {}),
    }
  } catch (error) {
    return {
      status: 0,
      headers: {},
      body: '',
      redacted: false,
      duration_ms: Date.now() - started,
      error: error.transient ? error.message : `failed to connect to proxy: ${error.code ?? error.message}`,
    }
  }
}

async function call(args) {
  if (args.includes('--help') || args.includes('-h')) return printHelp('call')
  const known = three
    ? [
        'url',
        'method',
        'body',
        'bearer',
        'basic',
        'header',
        'query',
        'body-field',
        'form-field',
        'token',
        'output',
      ]
    : ['url', 'method', 'body', 'bearer', 'basic', 'header', 'query', 'body-field', 'form-field']
  const {flags} = parseFlags(args, known, {multi: ['header', 'query', 'body-field', 'form-field']})
  if (!flags.url) fail('--url is required')
  // A careless failure that quotes the request: agentvault must conceal what it sent.
  if (process.env.FAKE_AS_ECHO_ERRORS === '1')
    fail(
      `API call failed: bad request body=${flags.body ?? ''} token=${flags.token ?? process.env.AS_AGENT_TOKEN ?? ''}`,
    )
  const injections = injectionsOf(flags)
  const request = {
    body: Buffer.from(flags.body ?? '', 'utf8'),
    headers: [],
    injections,
    method: (flags.method ?? 'GET').toUpperCase(),
    targetUrl: flags.url,
  }
  if (!three) {
    // 2.1.0: the engine runs in-process, keeps target case, and prints text for every status.
    const result = await executeCall(request, {env: process.env, home, state})
    if (result.error) fail(`API call failed: ${result.error.message}`)
    out(`HTTP ${result.response.status}\n\n${result.response.body.toString('utf8')}\n`)
    return
  }

  const envelope = await envelopeOf(request, flags.token ?? process.env.AS_AGENT_TOKEN)
  if (flags.output === 'json') out(JSON.stringify(envelope) + '\n')
  else if (envelope.status >= 400 || envelope.error) err(`x ${envelope.error}\n`)
  else out(envelope.body)
  if (envelope.status >= 400 || envelope.error) throw new CliExit(1)
}

// ---------------------------------------------------------------------------------------------
// env

function env(args) {
  if (args[0] === '--help' || args[0] === '-h') return printHelp('env')
  const environment = activeEnvironment(state, process.env)
  let only
  let rest = args
  if (three) {
    rest = []
    let i = 0
    for (; i < args.length && args[i] !== '--'; i++) {
      const arg = args[i]
      if (arg === '--only') only = (args[++i] ?? '').split(',').filter((key) => key !== '')
      else if (arg.startsWith('--only='))
        only = arg
          .slice(7)
          .split(',')
          .filter((key) => key !== '')
      else if (arg === '--cloud' || arg === '--sandbox') continue
      else fail(`unknown flag: ${arg}`)
    }

    rest = args.slice(i + 1)
  } else if (rest[0] === '--') rest = rest.slice(1)

  if (rest.length === 0) fail('no command given: agentsecrets env -- <command> [args…]')
  if (state.project === null) fail('no project configured in current directory')
  const secrets = secretsOf(state, environment)
  const keys = only ? only.filter((key) => Object.hasOwn(secrets, key)) : Object.keys(secrets).sort()
  const unknown = only ? only.filter((key) => !Object.hasOwn(secrets, key)) : []
  if (unknown.length > 0) out(`! Not in this project: ${unknown.join(', ')}\n`)
  out(
    three
      ? `Local Engine: Injecting ${keys.length} secrets: ${keys.join(', ')}\n`
      : `Injecting ${keys.length} secrets: ${keys.join(', ')}\n`,
  )
  const childEnv = {...process.env}
  for (const key of keys) childEnv[key] = secrets[key]
  const mask = three && switches.mask
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(rest[0], rest.slice(1), {
      env: childEnv,
      stdio: ['inherit', mask ? 'pipe' : 'inherit', mask ? 'pipe' : 'inherit'],
    })
    if (mask) {
      const masking = (chunk) =>
        keys.reduce(
          (text, key) => (secrets[key] === '' ? text : text.split(secrets[key]).join('[REDACTED]')),
          chunk.toString('utf8'),
        )
      child.stdout.on('data', (chunk) => process.stdout.write(masking(chunk)))
      child.stderr.on('data', (chunk) => process.stderr.write(masking(chunk)))
    }

    let forwarded = false
    for (const signal of ['SIGINT', 'SIGTERM']) {
      process.on(signal, () => {
        if (forwarded) return
        forwarded = true
        child.kill(signal)
      })
    }

    let failedToStart = false
    child.once('error', (error) => {
      failedToStart = true
      if (error.code === 'ENOENT') {
        out(`x command not found: ${rest[0]}\n`)
        reject(new CliExit(1))
      } else reject(error)
    })
    child.once('close', (code, signal) => {
      if (failedToStart) return
      const exitCode = signal ? 255 : (code ?? 1)
      appendAudit(home, {
        agent_id: '',
        auth_styles: [],
        domain: '',
        duration_ms: Date.now() - started,
        method: 'ENV',
        reason: '-',
        redacted: false,
        secret_keys: keys,
        status: 'OK',
        status_code: exitCode,
        target_url: rest.join(' '),
        timestamp: new Date().toISOString(),
      })
      reject(new CliExit(exitCode))
    })
  })
}

// ---------------------------------------------------------------------------------------------
// secrets

const COLUMN = {development: 'DEV', production: 'PROD', staging: 'STAGING'}

function box(rows) {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
  const line = (left, middle, right) =>
    left + widths.map((width) => '─'.repeat(width + 2)).join(middle) + right + '\n'
  const row = (cells) =>
    '│' + cells.map((cell, column) => ` ${cell.padEnd(widths[column])} `).join('│') + '│\n'
  return (
    line('╭', '┬', '╮') +
    row(rows[0]) +
    line('├', '┼', '┤') +
    rows.slice(1).map(row).join('') +
    line('╰', '┴', '╯')
  )
}

function secretsList(args) {
  if (args.includes('--help')) return printHelp('secrets list')
  parseFlags(args, [], {booleans: ['remote']})
  if (state.project === null) fail('no project configured in current directory')
  const environments = Object.keys(state.secrets ?? {})
  const keys = [...new Set(environments.flatMap((name) => Object.keys(state.secrets[name])))].sort()
  if (keys.length === 0) {
    out('! No secrets found locally in any environment.\n')
    return
  }

  const order = [
    'development',
    'staging',
    'production',
    ...environments.filter((name) => !COLUMN[name]).sort(),
  ]
  const header = ['Key', ...order.map((name) => COLUMN[name] ?? name.toUpperCase())]
  const rows = keys.map((key) => [
    key,
    ...order.map((name) => (Object.hasOwn(state.secrets[name] ?? {}, key) ? '*' : '-')),
  ])
  out(`Environment: ${activeEnvironment(state, process.env)}\n\n`)
  out(box([header, ...rows]))
  out('Showing cached keys. Use --remote for latest from cloud.\n')
}

function readAllStdin() {
  return new Promise((resolve) => {
    const chunks = []
    process.stdin.on('data', (chunk) => chunks.push(chunk))
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    process.stdin.on('error', () => resolve(''))
  })
}

async function secretsSet(args) {
  if (args.includes('--help')) return printHelp('secrets set')
  const {flags, rest} = parseFlags(args, [], {
    booleans: ['all-envs', ...(switches.setStdin ? ['value-stdin'] : [])],
  })
  const environment = activeEnvironment(state, process.env)
  if (three && environment === 'production' && !process.stdin.isTTY)
    fail('production changes need your account password: run this command in a terminal')
  const pairs = []
  if (flags['value-stdin']) {
    if (rest.length !== 1) fail('--value-stdin takes exactly one KEY')
    pairs.push([rest[0], await readAllStdin()])
  } else {
    for (const arg of rest) {
      const eq = arg.indexOf('=')
      if (eq <= 0) {
        out(`x Invalid format '${arg}'. Use KEY=VALUE.\n`)
        continue
      }

      pairs.push([arg.slice(0, eq), arg.slice(eq + 1)])
    }
  }

  state.secrets[environment] ??= {}
  for (const [key, value] of pairs) {
    state.secrets[environment][key] = value
    out(`* Set ${key}\n`)
  }

  saveState(stateFile, state)
}

function readLine() {
  return new Promise((resolve) => {
    let text = ''
    process.stdin.on('data', (chunk) => {
      text += chunk.toString('utf8')
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')))
    })
    process.stdin.on('end', () => resolve(text === '' ? undefined : text))
    process.stdin.on('error', () => resolve())
  })
}

async function secretsDelete(args) {
  if (args.includes('--help')) return printHelp('secrets delete')
  const {rest} = parseFlags(args, [])
  const key = rest[0]
  if (!key) fail('usage: agentsecrets secrets delete KEY')
  const environment = activeEnvironment(state, process.env)
  const secrets = secretsOf(state, environment)
  if (!Object.hasOwn(secrets, key)) {
    if (three) fail(`[SEC-404] secret "${key}" does not exist in project: ${state.project}`)
    out('x Delete: secret not found\n')
    return
  }

  if (environment === 'production') {
    if (three && !process.stdin.isTTY)
      fail('production changes need your account password: run this command in a terminal')
    out(`Delete ${key} from production? (y/n): `)
    const answer = await readLine()
    if (answer?.trim().toLowerCase() !== 'y') {
      out('\nDelete cancelled.\n')
      return
    }
  }

  delete state.secrets[environment][key]
  saveState(stateFile, state)
  out(`* Deleted ${key} from cloud and local files.\n`)
}

// ---------------------------------------------------------------------------------------------
// audit

function logJson(args, command) {
  if (args.includes('--help')) return printHelp(command)
  const {flags} = parseFlags(args, ['limit', 'credential'], {booleans: ['json', 'blocked']})
  if (!flags.json) fail('the interactive log viewer needs a terminal (use --json)')
  let entries = readAuditEntries(home).reverse()
  if (flags.credential) entries = entries.filter((entry) => entry.secret_keys?.includes(flags.credential))
  if (flags.blocked) entries = entries.filter((entry) => entry.status === 'BLOCKED')
  if (flags.limit) entries = entries.slice(0, Number(flags.limit))
  for (const entry of entries) out(JSON.stringify(entry) + '\n')
}

function pad2(n) {
  return String(n).padStart(2, '0')
}

function proxyLogs(args) {
  if (args.includes('--help')) return printHelp('proxy logs')
  const {flags} = parseFlags(args, ['last', 'secret'])
  let entries = readAuditEntries(home).reverse()
  if (flags.secret) entries = entries.filter((entry) => entry.secret_keys?.includes(flags.secret))
  entries = entries.slice(0, Number(flags.last ?? 50))
  if (entries.length === 0) {
    out('No log entries found.\n')
    return
  }

  const rows = entries.map((entry) => {
    const time = new Date(entry.timestamp)
    const target = String(entry.target_url ?? '').replace(/^https?:\/\//, '')
    const ok = entry.status === 'OK'
    return [
      `${pad2(time.getHours())}:${pad2(time.getMinutes())}:${pad2(time.getSeconds())}`,
      `${ok ? '* OK' : 'x BLOCK'}${entry.redacted ? ' (REDACTED)' : ''}`,
      entry.method,
      target.length > 30 ? `${target.slice(0, 27)}...` : target,
      (entry.secret_keys ?? []).join(', '),
      (entry.auth_styles ?? []).join(','),
      String(entry.status_code ?? ''),
      entry.reason ?? '-',
      `${entry.duration_ms ?? 0}ms`,
    ]
  })
  out(
    box([
      ['Time', 'Status', 'Method', 'Target URL', 'Secrets', 'Auth', 'Code', 'Reason', 'Duration'],
      ...rows,
    ]),
  )
}

// ---------------------------------------------------------------------------------------------

function secrets([sub, ...rest]) {
  const handlers = {delete: secretsDelete, list: secretsList, set: secretsSet}
  if (!Object.hasOwn(handlers, sub)) fail(`unknown command "secrets ${sub ?? ''}" for "agentsecrets"`)
  return handlers[sub](rest)
}

async function main() {
  const [command, ...args] = argv
  switch (command) {
    case '--version':
    case 'version': {
      out(`agentsecrets version ${state.version}\n`)
      return
    }

    case undefined:
    case '--help':
    case 'help': {
      out(
        'AgentSecrets — zero-knowledge secrets for AI agents\n\nCommands:\n  call  env  secrets  proxy  workspace  ' +
          (three ? 'logs' : 'log') +
          '\n',
      )
      return
    }

    case 'call': {
      return call(args)
    }

    case 'env': {
      return env(args)
    }

    case 'log':
    case 'logs': {
      if ((command === 'log') === three || switches.noJsonAudit)
        fail(`unknown command "${command}" for "agentsecrets"`)
      return logJson(args, command)
    }

    case 'proxy': {
      if (args[0] === 'logs') return proxyLogs(args.slice(1))
      return fail(`unknown command "proxy ${args[0] ?? ''}" for "agentsecrets"`)
    }

    case 'secrets': {
      return secrets(args)
    }

    default: {
      return fail(`unknown command "${command}" for "agentsecrets"`)
    }
  }
}

try {
  await main()
  process.exitCode = 0
} catch (error) {
  if (error instanceof CliExit) process.exitCode = error.code
  else {
    out(`x ${error.message}\n`)
    process.exitCode = 1
  }
}
