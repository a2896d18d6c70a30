/**
 * Errors and warnings go to a terminal; what they quote can come from a server or a backend's
 * listing. Control sequences in them are neutralised there (the same rule as tables); `--json`
 * keeps the exact text.
 */
import fc from 'fast-check'
import assert from 'node:assert/strict'

import {BackendUnavailableError} from '../../../src/core/errors.js'
import {formatError, reportError, terminalText, warn} from '../../../src/ui/errors.js'

// OSC 52 (set the clipboard), BEL, an 8-bit CSI, DEL, a carriage return that would hide the line.
const HOSTILE = 'a\u001B]52;c;Y3VybCBldmlsfHNo\u0007b\u009B2Kc\u007Fd\re'
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/

describe('ui/errors on a terminal', () => {
  const saved = {stderr: process.stderr.write, stdout: process.stdout.write}
  let written: {stderr: string; stdout: string}

  beforeEach(() => {
    written = {stderr: '', stdout: ''}
    for (const stream of ['stderr', 'stdout'] as const)
      process[stream].write = ((chunk: string | Uint8Array) => {
        written[stream] += String(chunk)
        return true
      }) as typeof process.stderr.write
  })

  afterEach(() => {
    process.stderr.write = saved.stderr
    process.stdout.write = saved.stdout
  })

  it('message, suggestion and warnings: control characters become ?, line breaks and tabs stay', () => {
    const error = new BackendUnavailableError('SERVER_ERROR', `The server said: ${HOSTILE}\nsecond\tline`, {
      suggestion: `Ask about ${HOSTILE}`,
    })
    reportError(error, {json: false})
    warn(`odd ${HOSTILE}`)
    process.stderr.write = saved.stderr
    assert.doesNotMatch(written.stderr, CONTROL, JSON.stringify(written.stderr))
    assert.match(
      written.stderr,
      /^Error: The server said: a\?\]52;c;Y3VybCBldmlsfHNo\?b\?2Kc\?d\?e\nsecond\tline\n/,
    )
    assert.match(written.stderr, /\nTry this: Ask about a\?/)
    assert.match(written.stderr, /\nWarning: odd a\?/)
  })

  it('--json keeps the exact text', () => {
    reportError(new BackendUnavailableError('SERVER_ERROR', HOSTILE), {json: true})
    process.stdout.write = saved.stdout
    assert.equal((JSON.parse(written.stdout) as {error: {message: string}}).error.message, HOSTILE)
  })

  it('terminalText: no control character but LF and TAB survives, printable text is unchanged (property)', () => {
    fc.assert(
      fc.property(fc.string({unit: 'binary'}), (text) => {
        const shown = terminalText(text)
        assert.doesNotMatch(shown, CONTROL)
        assert.equal(shown.length, text.length)
        if (!CONTROL.test(text)) assert.equal(shown, text)
      }),
    )
    // An error without a suggestion of its own gets its category's (product.md §9: always a Try this).
    assert.equal(
      formatError(new BackendUnavailableError('X', 'plain'), false),
      'Error: plain\nTry this: Check that the backend is running and reachable, then run the command again.\n',
    )
  })
})
