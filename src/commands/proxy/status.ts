import {Flags} from '@oclif/core'

import type {ProxyStatus} from '../../core/proxy/service.js'

import {AgentVaultCommand} from '../../base-command.js'

export type ProxyStatusResult = ProxyStatus

export default class ProxyStatusCommand extends AgentVaultCommand<typeof ProxyStatusCommand> {
  static description =
    'Whether a proxy runs for this agentvault home: its pid, address, profile, start time, whether it answers /health, and whether /proxy needs a session token. --show-token prints the token, for clients that must send it as X-AS-Session-Token. Exits 0 either way; --json has "running".'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --show-token --json',
  ]
  static flags = {
    'show-token': Flags.boolean({description: 'Also print the session token clients must send.'}),
  }
  static summary = 'Show the running proxy (and its session token).'

  async run(): Promise<ProxyStatusResult> {
    const {proxyStatus} = await import('../../core/proxy/service.js')
    const status = await proxyStatus(this.vault.home, this.flags['show-token'])
    if (!status.running) {
      this.log('No proxy is running for this agentvault home.')
      return status
    }

    this.log(
      `Proxy running: pid ${status.pid}, ${status.url}, profile ${status.profile}, since ${status.started}${status.healthy ? '' : ' (not answering /health)'}`,
    )
    if (status.sessionToken) this.log(`Session token: ${status.sessionToken}`)
    else if (status.sessionTokenRequired) this.log('Session token: required (print it with --show-token)')
    else this.log('Session token: none (started with --no-session-token)')
    return status
  }
}
