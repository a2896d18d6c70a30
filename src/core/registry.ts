/**
 * kind → lazily imported backend module. Core never imports a backend except through here, so a
 * command that only needs `local` never loads node-vault or a socket client.
 */
import type {Backend, BackendContext, BackendFactory, BackendKind} from './backend.js'

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
