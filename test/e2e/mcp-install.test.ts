/**
 * `agentvault mcp install` through the built binary: the snippet of each client, --write's diff,
 * confirmation rule and merge, refusing to rewrite a broken file — and a written entry that really
 * starts a working server for the SDK's Client.
 */
import {Client} from '@modelcontextprotocol/sdk/client/index.js'
import {StdioClientTransport} from '@modelcontextprotocol/sdk/client/stdio.js'
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {baseEnv, BIN, collect, ROOT, runCli, tempHome, waitForOutput} from '../helpers/cli.js'
import {expectFailure, parseJson} from '../helpers/e2e.js'

interface Entry {
  args: string[]
  command: string
  env?: Record<string, string>
  type?: string
}

describe('e2e: mcp install', function () {
  this.timeout(60_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  const env = () => ({...t.env, HOME: t.home, XDG_CONFIG_HOME: join(t.home, 'xdg')})
  const cli = (args: string[], cwd?: string) =>
    runCli(['mcp', 'install', ...args], {cwd: cwd ?? t.home, env: env()})

  before(async () => {
    t = await tempHome()
  })

  after(() => t.dispose())

  it('prints each client’s snippet in its own format, with the --allow flags and absolute paths', async () => {
    const expected: Record<string, {file: string; key: string; type?: string}> = {
      'claude-code': {file: join(t.home, '.mcp.json'), key: 'mcpServers', type: 'stdio'},
      'claude-desktop': {
        file: join(t.home, 'xdg', 'Claude', 'claude_desktop_config.json'),
        key: 'mcpServers',
      },
      cursor: {file: join(t.home, '.cursor', 'mcp.json'), key: 'mcpServers'},
      vscode: {file: join(t.home, '.vscode', 'mcp.json'), key: 'servers', type: 'stdio'},
    }
    for (const [client, want] of Object.entries(expected)) {
      const args = [
        '--client',
        client,
        '--allow',
        'local://OPENAI_*',
        '--allow-domain',
        'api.example.com',
        '--allow-run',
      ]
      const plain = await cli(args)
      assert.equal(plain.code, 0, plain.stderr)
      const snippet = JSON.parse(plain.stdout) as Record<string, Record<string, Entry>>
      assert.deepEqual(Object.keys(snippet), [want.key])
      const entry = snippet[want.key]?.agentvault as Entry
      assert.equal(entry.command, process.execPath)
      assert.deepEqual(entry.args, [
        join(ROOT, 'bin', 'run.cjs'),
        'mcp',
        '--allow',
        'local://OPENAI_*',
        '--allow-domain',
        'api.example.com',
        '--allow-run',
      ])
      assert.equal(entry.type, want.type)
      assert.deepEqual(entry.env, {AGENTVAULT_HOME: t.env.AGENTVAULT_HOME})
      assert.ok(plain.stderr.includes(want.file), plain.stderr)
      const json = parseJson<{client: string; file: string; written: boolean}>(await cli([...args, '--json']))
      assert.deepEqual([json.client, json.file, json.written], [client, want.file, false])
    }

    const code = await cli(['--client', 'claude-code', '--allow', 'local://K'])
    assert.match(code.stderr, /claude mcp add --scope project --env AGENTVAULT_HOME=\S+ agentvault -- /)
  })

  it('--write off a terminal needs --yes: the diff is shown, the file left alone (exit 2)', async () => {
    const file = join(t.home, 'cursor-a.json')
    await writeFile(file, '{"mcpServers":{"other":{"command":"x"}}}\n')
    const {plain} = await expectFailure(
      ['mcp', 'install', '--client', 'cursor', '--allow', 'local://K', '--config-file', file, '--write'],
      {cwd: t.home, env: env()},
      {code: 2, errorCode: 'CONFIRMATION_REQUIRED'},
    )
    assert.match(plain.stderr, /^\+\+\+ .*cursor-a\.json$/m)
    assert.match(plain.stderr, /^\+ {4}"agentvault": \{$/m)
    assert.equal(await readFile(file, 'utf8'), '{"mcpServers":{"other":{"command":"x"}}}\n')
  })

  it('--write on a terminal shows the diff and asks: "n" leaves the file, "y" writes it (under script(1))', async function () {
    if (spawnSync('script', ['--version']).error) this.skip()
    const file = join(t.home, 'cursor-tty.json')
    await writeFile(file, '{}\n')
    const command = `${process.execPath} ${BIN} mcp install --client cursor --allow local://K --config-file ${file} --write`
    const answer = async (key: string) => {
      const pty = spawn('script', ['-qec', command, '/dev/null'], {
        cwd: t.home,
        // baseEnv drops CI (and agentvault's own variables): under CI=true nothing would prompt.
        env: baseEnv(env()),
      })
      const done = collect(pty)
      await waitForOutput(pty, 'Write ')
      pty.stdin?.write(`${key}\r`)
      const result = await done
      pty.stdin?.end()
      return result
    }

    const declined = await answer('n')
    assert.equal(declined.code, 2, declined.stdout)
    assert.match(declined.stdout, /Nothing was written/)
    assert.match(declined.stdout, /\+\+\+ .*cursor-tty\.json/)
    assert.equal(await readFile(file, 'utf8'), '{}\n')
    const accepted = await answer('y')
    assert.equal(accepted.code, 0, accepted.stdout)
    assert.match(accepted.stdout, /Wrote .*cursor-tty\.json/)
    const written = JSON.parse(await readFile(file, 'utf8')) as {mcpServers: Record<string, Entry>}
    assert.deepEqual(written.mcpServers.agentvault?.args.slice(1), ['mcp', '--allow', 'local://K'])
  })

  it('--write --yes merges the entry and keeps the other servers; a second run changes nothing', async () => {
    const file = join(t.home, 'cursor-b.json')
    await writeFile(file, '{"mcpServers":{"other":{"command":"x"}},"theme":"dark"}\n')
    const args = ['--client', 'cursor', '--allow', 'local://K', '--config-file', file, '--write', '--yes']
    const result = await cli(args)
    assert.equal(result.code, 0, result.stderr)
    const written = JSON.parse(await readFile(file, 'utf8')) as {
      mcpServers: Record<string, Entry>
      theme: string
    }
    assert.equal(written.theme, 'dark')
    assert.deepEqual(written.mcpServers.other, {command: 'x'})
    assert.deepEqual(written.mcpServers.agentvault?.args.slice(1), ['mcp', '--allow', 'local://K'])
    const again = await cli(args)
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /already has this entry/)
  })

  it('refuses to rewrite a file that is not a JSON object (exit 3), leaving it as it was', async () => {
    const file = join(t.home, 'broken.json')
    await writeFile(file, '{"mcpServers": {,}\n')
    await expectFailure(
      ['mcp', 'install', '--client', 'claude-desktop', '--config-file', file, '--write', '--yes'],
      {cwd: t.home, env: env()},
      {code: 3, errorCode: 'CLIENT_CONFIG_INVALID'},
    )
    assert.equal(await readFile(file, 'utf8'), '{"mcpServers": {,}\n')
    await expectFailure(
      ['mcp', 'install', '--client', 'cursor', '--allow', 'nope'],
      {cwd: t.home, env: env()},
      {code: 2, errorCode: 'BAD_ALLOW_PATTERN'},
    )
  })

  it('the entry it writes (vscode, default file in the workspace) starts a server the SDK Client talks to', async () => {
    const workspace = join(t.home, 'workspace')
    await mkdir(workspace)
    const result = await cli(['--client', 'vscode', '--allow', 'local://K', '--write', '--yes'], workspace)
    assert.equal(result.code, 0, result.stderr)
    const config = JSON.parse(await readFile(join(workspace, '.vscode', 'mcp.json'), 'utf8')) as {
      servers: Record<string, Entry>
    }
    const entry = config.servers.agentvault as Entry
    const client = new Client({name: 'install-e2e', version: '1'})
    await client.connect(
      new StdioClientTransport({
        args: entry.args,
        command: entry.command,
        env: {...entry.env, NO_COLOR: '1'},
        stderr: 'pipe',
      }),
    )
    try {
      const {tools} = await client.listTools()
      assert.deepEqual(
        tools.map((tool) => tool.name),
        ['list_secrets', 'http_request', 'use_secret'],
      )
    } finally {
      await client.close()
    }
  })
})
