/**
 * Prompts on a real terminal (issue 12 §4): Ctrl-C at any prompt is "Cancelled." and exit 130
 * (product.md §9), never "a bug"; an empty hidden value is refused at the prompt. Each command runs
 * under a pseudo-terminal; the test waits for the prompt to show before typing.
 */
import assert from 'node:assert/strict'
import {stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {withFileLock} from '../../src/core/file-lock.js'
import {runCli, tempHome} from '../helpers/cli.js'
import {CTRL_C, startInPty} from '../helpers/pty.js'

/** A promise and the function that settles it. */
function gate(): {open: () => void; opened: Promise<void>} {
  const settle: Array<() => void> = []
  const opened = new Promise<void>((resolve) => {
    settle.push(resolve)
  })
  return {
    open() {
      for (const resolve of settle) resolve()
    },
    opened,
  }
}

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

  it('a passphrase vault asks for its passphrase on a terminal (hidden) when AGENTVAULT_PASSPHRASE is unset', async () => {
    const vault = await tempHome()
    try {
      const passphrase = 'correct horse battery staple 4f1e'
      const withPassphrase = {...vault.env, AGENTVAULT_PASSPHRASE: passphrase}
      const created = await runCli(['login', 'local', '--key-source', 'passphrase'], {env: withPassphrase})
      assert.equal(created.code, 0, created.stderr)
      const stored = await runCli(['secrets', 'set', 'P'], {
        env: withPassphrase,
        input: 'passphrase-vault-value',
      })
      assert.equal(stored.code, 0, stored.stderr)

      const session = startInPty(['secrets', 'get', 'P', '--reveal'], vault.env)
      await session.output.until((text) => /Passphrase for .*vault\.json/.test(text), 'the passphrase prompt')
      session.type(`${passphrase}\r`)
      const result = await session.result
      assert.equal(result.code, 0, result.stdout)
      assert.match(result.stdout, /passphrase-vault-value/)
      assert.ok(!result.stdout.includes(passphrase), 'the prompt hides what is typed')

      // A wrong one: exit 4 (auth), saying it was the passphrase typed, nothing revealed.
      const wrong = startInPty(['secrets', 'get', 'P', '--reveal'], vault.env)
      await wrong.output.until((text) => /Passphrase for .*vault\.json/.test(text), 'the passphrase prompt')
      wrong.type('not the passphrase\r')
      const refused = await wrong.result
      assert.equal(refused.code, 4, refused.stdout)
      assert.match(refused.stdout, /The passphrase typed does not open/)
      assert.ok(!refused.stdout.includes('passphrase-vault-value'))

      // A write asks before it takes the vault's lock: other writers never wait on someone typing.
      // (`secrets import` touches the vault first in its write, one that may create it.)
      const file = join(vault.home, 'q.env')
      await writeFile(file, 'Q=typed-q-value\n')
      const write = startInPty(['secrets', 'import', file], vault.env)
      await write.output.until((text) => /Passphrase for .*vault\.json/.test(text), 'the passphrase prompt')
      await assert.rejects(
        stat(join(vault.env.AGENTVAULT_HOME!, 'vault.lock')),
        {code: 'ENOENT'},
        'the lock is held while asking',
      )
      write.type(`${passphrase}\r`)
      const written = await write.result
      assert.equal(written.code, 0, written.stdout)
      const readBack = await runCli(['secrets', 'get', 'Q', '--reveal'], {env: withPassphrase})
      assert.equal(readBack.stdout, 'typed-q-value')

      // Not a terminal: no prompt, the error names the variable.
      const piped = await runCli(['secrets', 'get', 'P', '--reveal'], {env: vault.env})
      assert.equal(piped.code, 4, piped.stderr)
      assert.match(piped.stderr, /AGENTVAULT_PASSPHRASE is not set/)
    } finally {
      await vault.dispose()
    }
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

  it('waiting at a terminal for a lock another process holds, says for what and whom, then goes on when it is released', async () => {
    // This test process holds the vault lock (alive, refreshing it): the command must wait.
    const released = gate()
    const holding = gate()
    const holder = withFileLock(join(t.env.AGENTVAULT_HOME as string, 'vault.lock'), async () => {
      holding.open()
      await released.opened
    })
    try {
      await holding.opened
      const session = startInPty(['secrets', 'set', 'WAITED'], t.env)
      await session.output.until((text) => /Value for WAITED/.test(text), 'the value prompt')
      session.type('waited-value\r')
      await session.output.until(
        (text) => /waiting for .*vault\.lock.* process \d+/i.test(text),
        'a line saying what it waits for',
      )
      released.open()
      const result = await session.result
      assert.equal(result.code, 0, result.stdout)
      assert.match(result.stdout, new RegExp(`process ${process.pid}\\b`), 'the holder is named')
      assert.equal(await reveal('WAITED'), 'waited-value')
    } finally {
      released.open()
      await holder
    }
  })
})
