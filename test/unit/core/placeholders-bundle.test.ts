/**
 * The CA bundles `run --placeholders` reads from the environment (SSL_CERT_FILE for the system
 * roots, NODE_EXTRA_CA_CERTS to pass on) are read up to 16 MiB: a path that never ends
 * (SSL_CERT_FILE=/dev/zero, a FIFO) filled memory up to Node's largest string, or waited forever.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdtemp, open, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {readable} from '../../../src/core/placeholders/index.js'

describe('core/placeholders: CA bundles named by the environment', function () {
  this.timeout(30_000)
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentvault-bundle-'))
  })

  after(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  it('reads a bundle file; a missing one is undefined', async () => {
    const file = join(dir, 'roots.pem')
    await writeFile(file, '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n')
    assert.match((await readable(file)) ?? '', /BEGIN CERTIFICATE/)
    assert.equal(await readable(join(dir, 'missing.pem')), undefined)
    assert.equal(await readable(), undefined)
  })

  it('stops at 16 MiB of a stream that does not end (a FIFO whose writer stays open)', async () => {
    const fifo = join(dir, 'endless.pem')
    execFileSync('mkfifo', [fifo])
    // The writer sends 17 MiB and keeps the FIFO open: without the cap, the read waits for more.
    const reading = readable(fifo)
    const writer = await open(fifo, 'w')
    try {
      const chunk = Buffer.alloc(1024 * 1024, 0x41)
      for (let sent = 0; sent < 17; sent++)
        await writer.write(chunk).catch(() => {
          // the reader closed at its cap (EPIPE)
        })
      assert.equal(await reading, undefined)
    } finally {
      await writer.close()
    }
  })
})
