/**
 * isTerminal (src/ui/terminal.ts) answers as process.stdin/stdout.isTTY would, without making those streams; and
 * writeOutput's lines arrive whole and in order, also once a stream exists. Each case runs in a
 * child Node whose descriptors are a pipe, a file, /dev/null or (through util-linux `script`) a
 * pseudo-terminal.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {ROOT} from '../helpers/cli.js'

// The built module, in a plain Node (a loader such as tsx would load tty and net itself).
const MODULE = join(ROOT, 'dist', 'ui', 'terminal.js')

/** Node evaluating `code` (an ES module importing terminal.ts as `t`) with the given stdio. */
function child(
  code: string,
  stdio: Array<number | 'ignore' | 'pipe'>,
): {status: null | number; stderr: string; stdout: string} {
  const result = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', `import * as t from ${JSON.stringify(MODULE)};\n${code}`],
    {cwd: ROOT, encoding: 'utf8', stdio},
  )
  return {status: result.status, stderr: result.stderr ?? '', stdout: result.stdout ?? ''}
}

describe('e2e: the standard streams without process.stdin/stdout (dist/ui/terminal.js)', () => {
  let dir: string

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'agentvault-terminal-'))
  })

  after(() => rmSync(dir, {force: true, recursive: true}))

  it('a pipe, a file and /dev/null are not terminals, as isTTY says, and no stream is made to tell', () => {
    const file = openSync(join(dir, 'in.txt'), 'w+')
    const devNull = openSync('/dev/null', 'r')
    try {
      for (const stdin of [file, devNull, 'pipe'] as const) {
        const code = `
          const answer = [t.isTerminal(0), t.isTerminal(1)]
          const loaded = process.moduleLoadList.filter((name) => /^NativeModule (net|tty)$/.test(name))
          process.stderr.write(JSON.stringify({answer, loaded, isTTY: [Boolean(process.stdin.isTTY), Boolean(process.stdout.isTTY)]}))
        `
        const report = JSON.parse(child(code, [stdin, 'pipe', 'pipe']).stderr) as {
          answer: boolean[]
          isTTY: boolean[]
          loaded: string[]
        }
        assert.deepEqual(report.answer, [false, false], `stdin ${String(stdin)}`)
        assert.deepEqual(report.answer, report.isTTY)
        // Asked before process.stdin/stdout existed: neither the tty nor the net module was needed.
        assert.deepEqual(report.loaded, [], `stdin ${String(stdin)}: ${report.loaded.join(', ')}`)
      }
    } finally {
      closeSync(file)
      closeSync(devNull)
    }
  })

  it('a pseudo-terminal is a terminal (util-linux script)', function () {
    if (!existsSync('/usr/bin/script')) this.skip()
    const log = join(dir, 'tty.json')
    const script = join(dir, 'tty.mjs')
    writeFileSync(
      script,
      `import {writeFileSync} from 'node:fs'
import * as t from ${JSON.stringify(MODULE)}
const answer = [t.isTerminal(0), t.isTerminal(1)]
writeFileSync(${JSON.stringify(log)}, JSON.stringify({answer, isTTY: [Boolean(process.stdin.isTTY), Boolean(process.stdout.isTTY)]}))
`,
    )
    execFileSync('/usr/bin/script', ['-qec', `'${process.execPath}' '${script}'`, '/dev/null'], {
      cwd: ROOT,
      stdio: 'ignore',
    })
    const report = JSON.parse(readFileSync(log, 'utf8')) as {answer: boolean[]; isTTY: boolean[]}
    assert.deepEqual(report.answer, [true, true])
    assert.deepEqual(report.answer, report.isTTY)
  })

  it('writeOutput: lines whole and in order, before and after Node makes the stream', () => {
    const code = `
      t.watchOutputStreams(() => {})
      t.writeOutput(1, 'one\\n')
      t.writeOutput(2, 'err one\\n')
      process.stdout.write('two\\n') // the stream now exists: the rest goes through it
      t.writeOutput(1, 'three\\n')
      t.writeOutput(2, 'err two\\n')
    `
    const result = child(code, ['ignore', 'pipe', 'pipe'])
    assert.equal(result.status, 0)
    assert.equal(result.stdout, 'one\ntwo\nthree\n')
  })
})
