import {AgentVaultCommand} from '../../base-command.js'

export interface ProxyStopResult {
  pid?: number
  stopped: boolean
}

export default class ProxyStop extends AgentVaultCommand<typeof ProxyStop> {
  static description =
    'Stops the proxy of this agentvault home (found through proxy.pid) with SIGTERM and waits until it is gone: requests in flight are answered and audited, backend sessions are closed. Exits 0 when none was running. Only a process that proves to be this home’s proxy (it answers /health on the recorded port with the identity kept in proxy.pid) is signalled: a stale pid file, whose pid may now belong to another process, is removed instead and the command exits 3.'
  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static summary = 'Stop the running proxy.'

  async run(): Promise<ProxyStopResult> {
    const {stopProxy} = await import('../../core/proxy/service.js')
    const result = await stopProxy(this.vault.home)
    this.log(
      result.stopped ? `Proxy stopped (pid ${result.pid}).` : 'No proxy is running for this agentvault home.',
    )
    return result
  }
}
