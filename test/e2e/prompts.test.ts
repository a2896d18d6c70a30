/**
 * Prompts on a real terminal (issue 12 §4): Ctrl-C at any prompt is "Cancelled." and exit 130
 * (product.md §9), never "a bug"; an empty hidden value is refused at the prompt. Each command runs
 * under a pseudo-terminal; the test waits for the prompt to show before typing.
 */
import assert from 'node:assert/strict'

import {runCli, tempHome} from '../helpers/cli.js'
import {CTRL_C, startInPty} from '../helpers/pty.js'

describe('e2e: prompts on a terminal', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  const reveal = async (name: string): Promise<string> => {
    const result = await runCli(['secrets', 'get', name, '--reveal'], {env: t.env})
    assert.equal(result.code, 0, result.stderr)
    return result.stdout
  }

  /** Start ARGS on a terminal, wait for `prompt`, press Ctrl-C: "Cancelled.", exit 130. */
  const cancelAt = async (args: string[], prompt: RegExp): Promise<string> => {
    const session = startInPty(args, t.env)
    await session.output.until((text) => prompt.test(text), String(prompt))
    session.type(CTRL_C)
    const result = await session.result
    assert.equal(result.code, 130, `${args.join(' ')}: ${result.stdout}`)
    assert.match(result.stdout, /Cancelled\./)
    assert.doesNotMatch(result.stdout, /bug|Unexpected error|force closed/i)
    return result.stdout
  }

  before(async () => {
    t = await tempHome()
    const stored = await runCli(['secrets', 'set', 'KEEP'], {env: t.env, input: 'kept-value'})
    assert.equal(stored.code, 0, stored.stderr)
  })

  after(() => t.dispose())

  it('Ctrl-C at the hidden value prompt of `secrets set`: exit 130, nothing stored', async () => {
    await cancelAt(['secrets', 'set', 'NEVER'], /Value for NEVER/)
    const list = await runCli(['secrets', 'list', 'NEVER', '--json'], {env: t.env})
    assert.deepEqual((JSON.parse(list.stdout) as {secrets: unknown[]}).secrets, [])
  })

  it('Ctrl-C at the `secrets delete` confirmation: exit 130, nothing deleted', async () => {
    await cancelAt(['secrets', 'delete', 'KEEP'], /Delete KEEP\?/)
    assert.equal(await reveal('KEEP'), 'kept-value')
  })

  it('Ctrl-C at login prompts (a plain one and a hidden one): exit 130', async () => {
    await cancelAt(['login', 'agentauth', '--base-url', 'http://127.0.0.1:9'], /agent id/)
    await cancelAt(
      ['login', 'agentauth', '--base-url', 'http://127.0.0.1:9', '--agent-id', 'agt_prompted'],
      /API key/,
    )
  })

  it('an empty hidden value is refused at the prompt; the value typed next is stored', async () => {
    const session = startInPty(['secrets', 'set', 'TYPED'], t.env)
    await session.output.until((text) => /Value for TYPED/.test(text), 'the prompt')
    session.type('\r')
    await session.output.until((text) => /A value is required/.test(text), 'the refusal')
    session.type('typed-value\r')
    const result = await session.result
    assert.equal(result.code, 0, result.stdout)
    assert.doesNotMatch(result.stdout, /typed-value/, 'the prompt hides what is typed')
    assert.equal(await reveal('TYPED'), 'typed-value')
  })
})
