/**
 * `agentvault mcp` over the openbao and sanctum backends, against the project's protocol-faithful
 * test servers on loopback: one listing and one use per backend through the SDK's Client, and the
 * whole transcript swept for their canaries.
 */
import type {CallToolResult} from '@modelcontextprotocol/sdk/types.js'

import assert from 'node:assert/strict'
import {createHmac} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {runCli, tempHome} from '../helpers/cli.js'
import {startMcp, type Transcript} from '../helpers/mcp.js'
import {CANARY as BAO_CANARY, startSeededServer} from '../servers/openbao/harness.js'
import {type OpenBaoTestServer} from '../servers/openbao/server.js'
import {
  AGENT,
  CANARY as SANCTUM_CANARY,
  startStandardServer,
  writeSeedFile,
} from '../servers/sanctum/harness.js'
import {type SanctumTestServer} from '../servers/sanctum/server.js'

function structured<T>(result: CallToolResult): T {
  assert.notEqual(result.isError, true, JSON.stringify(result.content))
  return result.structuredContent as T
}

describe('e2e: mcp over openbao and sanctum', function () {
  this.timeout(90_000)
  let t: Awaited<ReturnType<typeof tempHome>>
  let bao: OpenBaoTestServer
  let sanctum: SanctumTestServer
  const transcripts: Transcript[] = []
  const env = (): NodeJS.ProcessEnv => ({...t.env, HOME: t.home})
  const ok = async (args: string[], input?: string): Promise<void> => {
    const result = await runCli(args, {env: env(), ...(input !== undefined && {input})})
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
  }

  before(async () => {
    t = await tempHome()
    const seeded = await startSeededServer({name: 'active'})
    bao = seeded.server
    sanctum = await startStandardServer()
    await ok(['profiles', 'add', 'bao', '--kind', 'openbao', '--set', `address=${bao.url}`])
    await ok(['login', 'openbao', '--profile', 'bao', '--token-stdin'], seeded.tokens.reader)
    const keyPath = await writeSeedFile(join(t.home, '.sanctum', 'keys'), `${AGENT}.key`)
    await ok(['login', 'sanctum', '--agent', AGENT, '--socket', sanctum.socketPath, '--key-path', keyPath])
  })

  after(async () => {
    await bao.close()
    await sanctum.close()
    await t.dispose()
  })

  it('openbao: list_secrets walks the allowed folder; use_secret signs with a field it never returns', async () => {
    const session = await startMcp(['--allow', 'openbao+kv2://secret/myapp/*?profile=bao'], env())
    try {
      const listed = structured<{secrets: Array<{reference: string}>}>(
        (await session.client.callTool({arguments: {}, name: 'list_secrets'})) as CallToolResult,
      )
      const references = listed.secrets.map((secret) => secret.reference.replace(/\?profile=bao$/, ''))
      assert.deepEqual(references, ['openbao+kv2://secret/myapp/api', 'openbao+kv2://secret/myapp/db'])
      const signed = structured<{signature: string}>(
        (await session.client.callTool({
          arguments: {
            operation: 'sign',
            params: {data: 'payload'},
            reference: 'openbao+kv2://secret/myapp/api#token?profile=bao',
          },
          name: 'use_secret',
        })) as CallToolResult,
      )
      assert.equal(signed.signature, createHmac('sha256', BAO_CANARY).update('payload').digest('base64'))
      const refused = (await session.client.callTool({
        arguments: {
          operation: 'sign',
          params: {data: 'x'},
          reference: 'openbao+kv2://secret/bulk/key-01#f0?profile=bao',
        },
        name: 'use_secret',
      })) as CallToolResult
      assert.equal(refused.isError, true)
    } finally {
      transcripts.push(await session.close())
    }
  })

  it('sanctum: the daemon signs; only the allowed paths are listed', async () => {
    const session = await startMcp(['--allow', 'sanctum://canary/*'], env())
    try {
      const listed = structured<{secrets: Array<{reference: string; type?: string}>}>(
        (await session.client.callTool({arguments: {}, name: 'list_secrets'})) as CallToolResult,
      )
      assert.deepEqual(
        listed.secrets.map((secret) => secret.reference),
        ['sanctum://canary/token'],
      )
      assert.equal(listed.secrets[0]?.type, 'token')
      const signed = structured<{signature: string}>(
        (await session.client.callTool({
          arguments: {
            operation: 'sign',
            params: {algorithm: 'hmac-sha512', data: 'payload'},
            reference: 'sanctum://canary/token',
          },
          name: 'use_secret',
        })) as CallToolResult,
      )
      assert.equal(signed.signature, createHmac('sha512', SANCTUM_CANARY).update('payload').digest('base64'))
      assert.equal(sanctum.leases.size, 0, 'use never retrieves the value')
    } finally {
      transcripts.push(await session.close())
    }
  })

  it('no canary in either transcript, its stderr or the audit log; both calls audited as mcp', async () => {
    assert.equal(transcripts.length, 2)
    for (const transcript of transcripts)
      for (const text of [transcript.sent, transcript.received, transcript.stderr])
        for (const canary of [BAO_CANARY, SANCTUM_CANARY]) assert.ok(!text.includes(canary))
    const audit = await readFile(join(t.env.AGENTVAULT_HOME as string, 'audit.log'), 'utf8')
    for (const canary of [BAO_CANARY, SANCTUM_CANARY]) assert.ok(!audit.includes(canary))
    const records = audit
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((record) => record.command === 'mcp' && record.tool === 'use_secret')
    assert.deepEqual(
      records.map((record) => [record.backend, record.outcome]),
      [
        ['openbao', 'ok'],
        ['openbao', 'denied'],
        ['sanctum', 'ok'],
      ],
    )
  })
})
