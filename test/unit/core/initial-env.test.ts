/**
 * scrubInitialEnvironment in a fresh process (the region is the one a process starts with, so each
 * case spawns Node with the canaries in its environment): the values leave /proc/self/environ,
 * credentials stay readable through process.env, other variables are untouched. It is synchronous
 * (a few system calls of microseconds): the region is blank when it returns, without a turn of the
 * event loop in which the work that follows would wait for the thread pool.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

const execFileP = promisify(execFile)
const MODULE = fileURLToPath(new URL('../../../src/core/initial-env.ts', import.meta.url))

const SCRIPT = `
const {readFileSync} = await import('node:fs')
const {scrubInitialEnvironment} = await import(${JSON.stringify(MODULE)})
delete process.env.AGENTVAULT_ARGV_0
delete process.env.AGENTVAULT_ARGC
const blanked = scrubInitialEnvironment(['CANARY_CREDENTIAL', 'CANARY_ABSENT'])
const region = readFileSync('/proc/self/environ', 'latin1')
process.stdout.write(JSON.stringify({
  blanked,
  credential: process.env.CANARY_CREDENTIAL,
  argv: process.env.AGENTVAULT_ARGV_0 ?? null,
  region,
}))
`

async function scrubIn(
  env: NodeJS.ProcessEnv,
): Promise<{argv: null | string; blanked: number; credential?: string; region: string}> {
  const {stdout} = await execFileP(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', SCRIPT],
    {
      env: {PATH: process.env.PATH, ...env},
    },
  )
  return JSON.parse(stdout) as {argv: null | string; blanked: number; credential?: string; region: string}
}

describe('core/initial-env: scrubInitialEnvironment', () => {
  before(function () {
    if (process.platform !== 'linux') this.skip()
  })

  it('blanks credentials and launcher arguments in the region, keeps process.env and the rest', async () => {
    const result = await scrubIn({
      AGENTVAULT_ARGC: '1',
      AGENTVAULT_ARGV_0: 'canary-argv-7f3a',
      CANARY_CREDENTIAL: 'canary-credential-91be',
      OTHER: 'kept-value-2c4d',
    })
    assert.equal(result.blanked, 3)
    assert.ok(!result.region.includes('canary-'), result.region)
    assert.match(result.region, /(^|\0)OTHER=kept-value-2c4d\0/)
    // The entries keep their place and the region its size: the names stay, the values are NULs.
    assert.match(result.region, /(^|\0)AGENTVAULT_ARGV_0=\0{16}/)
    assert.match(result.region, /(^|\0)CANARY_CREDENTIAL=\0{22}/)
    assert.equal(result.credential, 'canary-credential-91be', 'the credential is still readable')
    assert.equal(result.argv, null, 'a deleted variable stays deleted')
  })

  it('a name that only starts like a credential, an empty value and a value holding "="', async () => {
    const result = await scrubIn({
      CANARY_CREDENTIAL: 'a=b=canary-eq-55aa',
      CANARY_CREDENTIAL_NOT: 'kept-prefix-0e0e',
      CANARY_ABSENT: '',
      XCANARY_CREDENTIAL: 'kept-suffix-1f1f',
    })
    assert.equal(result.blanked, 1)
    assert.ok(!result.region.includes('canary-eq'), result.region)
    assert.match(result.region, /CANARY_CREDENTIAL_NOT=kept-prefix-0e0e/)
    assert.match(result.region, /XCANARY_CREDENTIAL=kept-suffix-1f1f/)
    assert.equal(result.credential, 'a=b=canary-eq-55aa')
  })
})
