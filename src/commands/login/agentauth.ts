import {LOGIN} from '../../backends/agentauth/declaration.js'
import {LoginCommand} from '../../login-command.js'
import {loginFlags} from '../../ui/login.js'

export default class LoginAgentAuth extends LoginCommand {
  static description = LOGIN.description
  static examples = [...LOGIN.examples]
  static flags = loginFlags(LOGIN)
  static summary = LOGIN.summary
  protected readonly kind = LOGIN.kind
}
