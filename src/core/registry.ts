/**
 * kind → lazily imported backend module. Core never imports a backend except through here, so a
 * command that only needs `local` never loads node-vault or a socket client.
 */
import type {Backend, BackendContext, BackendFactory, BackendKind} from './backend.js'

import {CREDENTIAL_ENV as AGENTAUTH_CREDENTIAL_ENV} from '../backends/agentauth/credential-env.js'
import {CREDENTIAL_ENV as AGENTSECRETS_CREDENTIAL_ENV} from '../backends/agentsecrets/credential-env.js'
import {CREDENTIAL_ENV as LOCAL_CREDENTIAL_ENV} from '../backends/local/credential-env.js'
import {CREDENTIAL_ENV as OPENBAO_CREDENTIAL_ENV} from '../backends/openbao/credential-env.js'
import {CREDENTIAL_ENV as SANCTUM_CREDENTIAL_ENV} from '../backends/sanctum/credential-env.js'
import {NotSupportedError} from './errors.js'

const loaders: Partial<Record<BackendKind, () => Promise<{createBackend: BackendFactory}>>> = {
  local: () => import('../backends/local/index.js'),
  sanctum: () => import('../backends/sanctum/index.js'),
  openbao: () => import('../backends/openbao/index.js'),
  agentsecrets: () => import('../backends/agentsecrets/index.js'),
  agentauth: () => import('../backends/agentauth/index.js'),
}

export async function loadBackend(context: BackendContext): Promise<Backend> {
  const load = loaders[context.profile.kind]
  if (!load)
    throw new NotSupportedError(
      context.profile.kind,
      'This backend',
      'This build of agentvault does not include it yet; use `local://` references.',
    )
  const module = await load()
  return module.createBackend(context)
}

/**
 * The credential variables each backend declares (its `credential-env.ts`: constants only, so they
 * are imported here directly rather than loading the backend). `run` withholds them from its child.
 */
export const BACKEND_CREDENTIAL_ENV: Readonly<Record<BackendKind, readonly string[]>> = {
  local: LOCAL_CREDENTIAL_ENV,
  sanctum: SANCTUM_CREDENTIAL_ENV,
  openbao: OPENBAO_CREDENTIAL_ENV,
  agentsecrets: AGENTSECRETS_CREDENTIAL_ENV,
  agentauth: AGENTAUTH_CREDENTIAL_ENV,
}
