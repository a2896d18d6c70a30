import createDebug from 'debug'
import assert from 'node:assert/strict'

import {redactDebugOutput} from '../../../src/core/debug-redaction.js'
import {InternalError} from '../../../src/core/errors.js'
import {reportError} from '../../../src/ui/errors.js'

describe('ui/errors under DEBUG', () => {
  const CANARY = 'canary-stack-value-3c8e'
  const saved = {debug: process.env.DEBUG, log: createDebug.log, write: process.stderr.write}

  afterEach(() => {
    createDebug.log = saved.log
    process.stderr.write = saved.write
    if (saved.debug === undefined) delete process.env.DEBUG
    else process.env.DEBUG = saved.debug
  })

  it("prints an internal error's stack through the argv redaction", async () => {
    process.env.DEBUG = '*'
    await redactDebugOutput(['secrets', 'set', `NAME=${CANARY}`])
    let written = ''
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written += String(chunk)
      return true
    }) as typeof process.stderr.write
    const code = reportError(new InternalError('boom', {cause: new Error(`failed on ${CANARY}`)}), {
      json: false,
    })
    process.stderr.write = saved.write
    assert.equal(code, 1)
    assert.match(written, /at /, 'the stack was printed')
    assert.ok(!written.includes(CANARY), written)
  })
})
