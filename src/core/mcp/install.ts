/**
 * `agentvault mcp install`: the configuration that makes an MCP client start `agentvault mcp`, in
 * that client's own format and file:
 *
 * | client | file | servers key |
 * |---|---|---|
 * | claude-code | `.mcp.json` in the project (current directory) | `mcpServers` (`type: "stdio"`) |
 * | cursor | `~/.cursor/mcp.json` (every project; `.cursor/mcp.json` for one, via --config-file) | `mcpServers` |
 * | claude-desktop | macOS `~/Library/Application Support/Claude/claude_desktop_config.json`, Windows `%APPDATA%\Claude\…`, Linux `$XDG_CONFIG_HOME/Claude/…` | `mcpServers` |
 * | vscode | `.vscode/mcp.json` in the workspace (current directory) | `servers` (`type: "stdio"`) |
 *
 * The server is started with absolute paths (node and agentvault's bin/run.cjs): desktop apps start
 * servers with a reduced PATH. The entry carries no secret: only the flags and AGENTVAULT_HOME.
 */
import {homedir} from 'node:os'
import {join} from 'node:path'

import {ConfigError} from '../errors.js'
import {shellQuote} from '../shell-quote.js'

export const MCP_CLIENTS = ['claude-code', 'cursor', 'claude-desktop', 'vscode'] as const
export type McpClient = (typeof MCP_CLIENTS)[number]

export interface ServerEntry {
  args: string[]
  command: string
  env?: Record<string, string>
  type?: 'stdio'
}

export interface InstallPlan {
  client: McpClient
  /** The whole snippet to paste: `{key: {name: entry}}`. */
  config: Record<string, Record<string, ServerEntry>>
  entry: ServerEntry
  /** The client's configuration file. */
  file: string
  key: 'mcpServers' | 'servers'
  name: string
}

export interface InstallOptions {
  /** `agentvault mcp` flags to put in the entry (--allow …, --allow-domain …, --allow-run, --profile …). */
  args: string[]
  /** agentvault's launcher (bin/run.cjs), absolute. */
  bin: string
  client: McpClient
  /** Overrides the client's default file. */
  configFile?: string
  cwd: string
  env: NodeJS.ProcessEnv
  name: string
  /** node, absolute. */
  node: string
  platform: NodeJS.Platform
}

/** Where a client reads its MCP servers from, by default. */
export function defaultConfigFile(
  client: McpClient,
  context: {cwd: string; env: NodeJS.ProcessEnv; home?: string; platform: NodeJS.Platform},
): string {
  const home = context.home ?? context.env.HOME ?? homedir()
  switch (client) {
    case 'claude-code': {
      return join(context.cwd, '.mcp.json')
    }

    case 'claude-desktop': {
      if (context.platform === 'darwin')
        return join(home, 'Library', 'Application Support', 'Claude', 'claude_desktop_config.json')
      if (context.platform === 'win32')
        return join(
          context.env.APPDATA ?? join(home, 'AppData', 'Roaming'),
          'Claude',
          'claude_desktop_config.json',
        )
      return join(
        context.env.XDG_CONFIG_HOME ?? join(home, '.config'),
        'Claude',
        'claude_desktop_config.json',
      )
    }

    case 'cursor': {
      return join(home, '.cursor', 'mcp.json')
    }

    case 'vscode': {
      return join(context.cwd, '.vscode', 'mcp.json')
    }
  }
}

export function planInstall(options: InstallOptions): InstallPlan {
  const {client} = options
  const key = client === 'vscode' ? 'servers' : 'mcpServers'
  const env: Record<string, string> = {}
  if (options.env.AGENTVAULT_HOME) env.AGENTVAULT_HOME = options.env.AGENTVAULT_HOME
  const entry: ServerEntry = {
    ...((client === 'vscode' || client === 'claude-code') && {type: 'stdio' as const}),
    command: options.node,
    args: [options.bin, 'mcp', ...options.args],
    ...(Object.keys(env).length > 0 && {env}),
  }
  return {
    client,
    config: {[key]: {[options.name]: entry}},
    entry,
    file:
      options.configFile ??
      defaultConfigFile(client, {cwd: options.cwd, env: options.env, platform: options.platform}),
    key,
    name: options.name,
  }
}

/** `claude mcp add …`: the Claude Code CLI's own way to add the same server. */
export function claudeCodeCommand(plan: InstallPlan): string {
  const env = Object.entries(plan.entry.env ?? {}).flatMap(([name, value]) => ['--env', `${name}=${value}`])
  return [
    'claude',
    'mcp',
    'add',
    '--scope',
    'project',
    ...env,
    plan.name,
    '--',
    plan.entry.command,
    ...plan.entry.args,
  ]
    .map((word) => shellQuote(word))
    .join(' ')
}

/**
 * The client's file with this server's entry set (other servers and keys kept), and the text it
 * had. A file that is not a JSON object is never overwritten.
 */
export async function mergedConfig(plan: InstallPlan): Promise<{after: string; before: string}> {
  const {refuseSpecialOutput} = await import('../output-file.js')
  refuseSpecialOutput(plan.file, 'the client configuration', CLIENT_FILE_SUGGESTION)
  const {readFile} = await import('node:fs/promises')
  let before = ''
  try {
    before = await readFile(plan.file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new ConfigError(
        'CLIENT_CONFIG_UNREADABLE',
        `Cannot read ${plan.file} (${(error as NodeJS.ErrnoException).code})`,
        {
          suggestion:
            'Check the file’s permissions, or print the snippet without --write and add it by hand.',
        },
      )
  }

  let data: Record<string, unknown> = {}
  if (before.trim() !== '') {
    let parsed: unknown
    try {
      parsed = JSON.parse(before)
    } catch {
      parsed = undefined
    }

    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new ConfigError(
        'CLIENT_CONFIG_INVALID',
        `${plan.file} is not a JSON object: refusing to rewrite it`,
        {
          suggestion:
            'Fix the file (comments and trailing commas are not JSON), or add the printed snippet by hand.',
        },
      )
    data = parsed as Record<string, unknown>
  }

  const servers = data[plan.key]
  if (servers !== undefined && (servers === null || typeof servers !== 'object' || Array.isArray(servers)))
    throw new ConfigError(
      'CLIENT_CONFIG_INVALID',
      `"${plan.key}" in ${plan.file} is not an object: refusing to rewrite it`,
      {
        suggestion: 'Fix the file, or add the printed snippet by hand.',
      },
    )
  const after = {
    ...data,
    [plan.key]: {...(servers as Record<string, unknown> | undefined), [plan.name]: plan.entry},
  }
  return {after: `${JSON.stringify(after, null, 2)}\n`, before}
}

/** A unified-style line diff of two small texts (the changed middle, with up to 3 lines of context). */
export function lineDiff(before: string, after: string, file: string): string {
  const a = before === '' ? [] : before.replace(/\n$/, '').split('\n')
  const b = after.replace(/\n$/, '').split('\n')
  let start = 0
  while (start < a.length && start < b.length && a[start] === b[start]) start++
  let endA = a.length
  let endB = b.length
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--
    endB--
  }

  if (start === endA && start === endB) return ''
  const from = Math.max(0, start - 3)
  const lines = [`--- ${before === '' ? '/dev/null' : file}`, `+++ ${file}`]
  for (const line of a.slice(from, start)) lines.push(` ${line}`)
  for (const line of a.slice(start, endA)) lines.push(`-${line}`)
  for (const line of b.slice(start, endB)) lines.push(`+${line}`)
  for (const line of a.slice(endA, endA + 3)) lines.push(` ${line}`)
  return `${lines.join('\n')}\n`
}

const CLIENT_FILE_SUGGESTION =
  'Give --config-file a regular file (or a path that does not exist yet), or leave out --write to print the snippet.'

/** Write the file atomically (temp file, then rename), creating its directory. */
export async function writeClientConfig(file: string, text: string): Promise<void> {
  const {refuseSpecialOutput} = await import('../output-file.js')
  refuseSpecialOutput(file, 'the client configuration', CLIENT_FILE_SUGGESTION)
  const {mkdir, rename, writeFile} = await import('node:fs/promises')
  const {dirname} = await import('node:path')
  await mkdir(dirname(file), {recursive: true})
  const temporary = `${file}.agentvault-${process.pid}.tmp`
  await writeFile(temporary, text, {flag: 'wx'})
  await rename(temporary, file)
}
