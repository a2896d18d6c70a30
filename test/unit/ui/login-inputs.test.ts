/**
 * Reading `login KIND`'s inputs from a backend's declaration (ui/login.ts), off a terminal: which
 * inputs apply (`when`, a profile's setting, a default), where each comes from, and the usage
 * errors that name the flag and variable to use.
 */
import assert from 'node:assert/strict'

import {LOGIN_DECLARATIONS} from '../../../src/core/backend-declarations.js'
import {UsageError} from '../../../src/core/errors.js'
import {loginFlags, readLoginInputs} from '../../../src/ui/login.js'

const OPENBAO = LOGIN_DECLARATIONS.openbao
const AGENTAUTH = LOGIN_DECLARATIONS.agentauth

function read(
  declaration: typeof OPENBAO,
  given: {env?: NodeJS.ProcessEnv; flags?: Record<string, unknown>; settings?: Record<string, unknown>},
) {
  return readLoginInputs(declaration, {
    env: given.env ?? {},
    flags: given.flags ?? {},
    interactive: false,
    settings: given.settings ?? {},
  })
}

async function usage(promise: Promise<unknown>, code: string): Promise<UsageError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error))
    assert.equal(error.code, code)
    return error
  }

  assert.fail(`expected ${code}`)
}

describe('ui/login: inputs from a declaration', () => {
  it('flags: a secret only as --X-stdin; an input with a variable carries it as its env', () => {
    const flags = loginFlags(OPENBAO)
    assert.ok('token-stdin' in flags && !('token' in flags))
    assert.equal(flags['role-id']?.env, 'AGENTVAULT_ROLE_ID')
    assert.equal(flags['token-stdin']?.type, 'boolean')
    assert.deepEqual(flags.cacert?.aliases, ['ca-cert'])
  })

  it('the method from the profile decides which inputs apply; a flag overrides it', async () => {
    const approle = await read(OPENBAO, {
      env: {AGENTVAULT_SECRET_ID: 'sid'},
      flags: {'role-id': 'rid'},
      settings: {authMethod: 'approle'},
    })
    assert.deepEqual(Object.keys(approle).sort(), ['roleId', 'secretId'])
    assert.equal(approle.roleId, 'rid')
    assert.ok(Buffer.isBuffer(approle.secretId) && approle.secretId.toString() === 'sid')
    // --method token wins over the profile's approle: the token is then what is missing.
    const error = await usage(
      read(OPENBAO, {flags: {method: 'token'}, settings: {authMethod: 'approle'}}),
      'VALUE_REQUIRED',
    )
    assert.match(error.message, /OpenBao token/)
    assert.match(error.suggestion ?? '', /login openbao --token-stdin; never put it in argv/)
    // No method anywhere: the default (token).
    await usage(read(OPENBAO, {}), 'VALUE_REQUIRED')
  })

  it("a profile's setting stands for a required input (the backend reads it); a variable fills a secret", async () => {
    const options = await read(AGENTAUTH, {env: {AGENTAUTH_API_KEY: 'key'}, settings: {agentId: 'agt_1'}})
    assert.deepEqual(Object.keys(options), ['apiKey'])
    const missing = await usage(read(AGENTAUTH, {env: {AGENTAUTH_API_KEY: 'key'}}), 'VALUE_REQUIRED')
    assert.match(missing.suggestion ?? '', /login agentauth --agent-id VALUE or set AGENTAUTH_AGENT_ID/)
    // An empty flag or variable counts as not given.
    await usage(
      read(AGENTAUTH, {env: {AGENTAUTH_API_KEY: ''}, flags: {'agent-id': 'agt_1'}}),
      'VALUE_REQUIRED',
    )
  })

  it('two values on stdin in one login are refused before anything is read', async () => {
    await usage(
      read(OPENBAO, {flags: {method: 'userpass', 'password-stdin': true, 'token-stdin': true}}),
      'ONE_STDIN',
    )
  })
})
