import {Flags} from '@oclif/core'

import type {InstallPlan} from '../../core/mcp/install.js'

import {AgentVaultCommand} from '../../base-command.js'
import {UsageError} from '../../core/errors.js'
import {MCP_CLIENTS} from '../../core/mcp/install.js'
import {confirm} from '../../ui/input.js'

export interface McpInstallResult {
  client: string
  /** The snippet, in the client's format. */
  config: InstallPlan['config']
  file: string
  /** Whether --write changed the file. */
  written: boolean
}

export default class McpInstall extends AgentVaultCommand<typeof McpInstall> {
  static description = `Prints the exact configuration that makes the client start \`agentvault mcp\` with the --allow flags you give here (absolute paths to node and agentvault, so desktop apps find them; AGENTVAULT_HOME when set; never a secret).

With --write the entry is merged into the client's configuration file (other servers are kept): the change is shown as a diff and, on a terminal, confirmed first. Without a terminal --write needs --yes.

Files: claude-code .mcp.json (this project), cursor ~/.cursor/mcp.json, claude-desktop its claude_desktop_config.json (macOS ~/Library/Application Support/Claude, Windows %APPDATA%\\Claude, Linux ~/.config/Claude), vscode .vscode/mcp.json (this workspace). --config-file picks another (e.g. .cursor/mcp.json for one project).`
  static examples = [
    "<%= config.bin %> <%= command.id %> --client claude-code --allow 'local://OPENAI_*'",
    "<%= config.bin %> <%= command.id %> --client cursor --allow 'openbao+kv2://secret/app/*' --allow-domain api.example.com --write",
    "<%= config.bin %> <%= command.id %> --client claude-desktop --allow 'sanctum://ci/*' --write --yes",
    "<%= config.bin %> <%= command.id %> --client vscode --allow 'local://*' --allow-run --json",
  ]
  static flags = {
    client: Flags.string({
      description: 'The MCP client to configure.',
      options: [...MCP_CLIENTS],
      required: true,
    }),
    allow: Flags.string({
      description: 'A reference pattern the server may use (repeatable), passed on as --allow.',
      helpValue: 'REF-PATTERN',
      multiple: true,
    }),
    'allow-domain': Flags.string({
      aliases: ['allow-host'],
      deprecateAliases: true,
      description: 'Passed on as --allow-domain (repeatable).',
      helpValue: 'HOST',
      multiple: true,
    }),
    'allow-run': Flags.boolean({description: 'Passed on: offer the run_command tool.'}),
    'config-file': Flags.string({
      description: "Write this file instead of the client's default.",
      helpValue: 'FILE',
    }),
    name: Flags.string({default: 'agentvault', description: 'The server’s name in the client.'}),
    write: Flags.boolean({description: "Merge the entry into the client's configuration file."}),
    yes: Flags.boolean({char: 'y', description: 'With --write: do not ask for confirmation.'}),
  }
  static summary = 'Print (or write) the MCP client configuration that starts agentvault mcp.'

  async run(): Promise<McpInstallResult> {
    const {flags} = this
    const install = await import('../../core/mcp/install.js')
    const {join, resolve} = await import('node:path')
    const args = [
      ...(flags.allow ?? []).flatMap((pattern) => ['--allow', pattern]),
      ...(flags['allow-domain'] ?? []).flatMap((host) => ['--allow-domain', host]),
      ...(flags['allow-run'] ? ['--allow-run'] : []),
      ...(flags.profile ? ['--profile', flags.profile] : []),
    ]
    if ((flags.allow ?? []).length > 0) {
      const {parseAllowPattern} = await import('../../core/mcp/policy.js')
      for (const pattern of flags.allow ?? []) parseAllowPattern(pattern)
    } else this.warnUser('No --allow pattern: the server will refuse every secret until you add one.')
    const plan = install.planInstall({
      args,
      // The CommonJS launcher: node runs it without the ES module loader (bin/run.js hands over to it).
      bin: join(this.config.root, 'bin', 'run.cjs'),
      client: flags.client as (typeof MCP_CLIENTS)[number],
      ...(flags['config-file'] !== undefined && {configFile: resolve(flags['config-file'])}),
      cwd: process.cwd(),
      env: process.env,
      name: flags.name,
      node: process.execPath,
      platform: process.platform,
    })
    const result: McpInstallResult = {
      client: plan.client,
      config: plan.config,
      file: plan.file,
      written: false,
    }
    if (!flags.write) {
      if (!this.jsonEnabled()) {
        this.log(JSON.stringify(plan.config, null, 2))
        this.logToStderr(`Add this to ${plan.file} (or run again with --write).`)
        if (plan.client === 'claude-code')
          this.logToStderr(`Or let Claude Code add it: ${install.claudeCodeCommand(plan)}`)
      }

      return result
    }

    const {after, before} = await install.mergedConfig(plan)
    if (after === before) {
      this.logToStderr(`${plan.file} already has this entry.`)
      return result
    }

    process.stderr.write(install.lineDiff(before, after, plan.file))
    if (!flags.yes) {
      if (!this.interactive)
        throw new UsageError(
          'CONFIRMATION_REQUIRED',
          `Refusing to change ${plan.file} without confirmation`,
          {
            suggestion:
              'Check the diff above, then add --yes to write it (or drop --write to only print the snippet).',
          },
        )
      if (!(await confirm(`Write ${plan.file}?`)))
        throw new UsageError('ABORTED', 'Nothing was written', {
          suggestion: 'Run again when you want the change.',
        })
    }

    await install.writeClientConfig(plan.file, after)
    this.logToStderr(`Wrote ${plan.file}: restart ${plan.client} to start agentvault mcp.`)
    return {...result, written: true}
  }
}
