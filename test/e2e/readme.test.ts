import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {baseEnv, ROOT, tempHome} from '../helpers/cli.js'

describe('e2e: README', () => {
  it('keeps the command reference in sync with the commands', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'scripts', 'readme.js'), '--check'], {
      encoding: 'utf8',
    })
    assert.equal(result.status, 0, result.stderr)
  })

  it('runs the main-job command with no server and no Secret Service', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const block = /```sh\n(npm ci && npm run build && .*)\n# → (.*)\n```/.exec(readme)
    assert.ok(block, 'the README starts with the main-job command and its expected output')
    const [, command, expected] = block as unknown as [string, string, string]
    // `npm ci && npm run build` already ran for the test suite; run the rest as a user would.
    const mainJob = command.replace('npm ci && npm run build && ', '')
    const t = await tempHome()
    try {
      const env = baseEnv({AGENTVAULT_HOME: join(t.home, 'home')})
      delete env.DBUS_SESSION_BUS_ADDRESS
      const result = spawnSync('sh', ['-c', mainJob], {cwd: ROOT, encoding: 'utf8', env})
      assert.equal(result.status, 0, result.stderr)
      assert.equal(result.stdout.trim(), expected)
    } finally {
      await t.dispose()
    }
  })
})
