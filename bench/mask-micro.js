#!/usr/bin/env node
// Micro-benchmark of the streaming masker alone (no child process, no pipes): MB/s of
// Masker.push over 64 KiB chunks for 10 secret values and their encoded forms, on random bytes,
// on log-like text and on base64 lines (the payload of `npm run bench`). Not a test, not part of
// `npm run bench`; for comparing changes to src/core/mask.ts.
//
//   npm run build && node bench/mask-micro.js [MB per measurement, default 256] [path to mask.js]
//
// The corpora are 1 MiB, so chunks are cache-warm as they are when just read from a pipe.
// Figures are CPU time (best of 5): the masker is synchronous, and this keeps them steady on a
// busy machine.
import {randomBytes} from 'node:crypto'
import {resolve} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const megabytes = Number(process.argv[2] ?? 256)
const modulePath = process.argv[3] ?? fileURLToPath(new URL('../dist/core/mask.js', import.meta.url))
const {Masker, maskPatterns} = await import(pathToFileURL(resolve(modulePath)).href)

const CHUNK = 64 * 1024
const CORPUS = 1024 * 1024

const alnum = (n) => randomBytes(n).toString('base64').replaceAll(/[+/=]/g, 'x')

// The shortest value sets the search window, so the sets differ mainly in that.
const secretSets = {
  // As in bench/index.js: base64 of 18 random bytes.
  'bench (24 B values)': Array.from({length: 10}, () => randomBytes(18).toString('base64')),
  // Characters that make every encoded form distinct: ~5 patterns per value.
  'rich (27–30 B values)': Array.from(
    {length: 10},
    (_, i) => `k+y/${randomBytes(15).toString('base64')}"é ${i}`,
  ),
  'mixed (one 8 B password)': [
    `sk_live_${alnum(24)}`,
    `ghp_${alnum(36)}`,
    `AKIA${alnum(16)}`,
    alnum(40),
    'hunter22',
    `p@ss w0rd/+"\\é${alnum(6)}`,
    `xoxb-${alnum(10)}-${alnum(24)}`,
    `eyJhbGciOiJIUzI1NiJ9.${alnum(40)}.${alnum(20)}`,
    `postgres://app:${alnum(16)}@db`,
    alnum(32),
  ],
}

function logText(size) {
  const words = [
    'GET',
    'POST',
    '/api/v1/users',
    'status=200',
    'INFO',
    'DEBUG',
    'error:',
    'user_id=',
    '{"id":',
    'token',
  ]
  const lines = []
  let length = 0
  for (let i = 0; length < size; i++) {
    const line = `${new Date(1_700_000_000_000 + i * 997).toISOString()} ${words[i % words.length]} ${
      words[(i * 7) % words.length]
    } ${randomBytes(6).toString(i % 2 ? 'hex' : 'base64')} latency_ms=${i % 300}\n`
    lines.push(line)
    length += line.length
  }

  return Buffer.from(lines.join('')).subarray(0, size)
}

const corpora = {
  random: randomBytes(CORPUS),
  'log text': logText(CORPUS),
  'base64 lines': Buffer.from(
    randomBytes((CORPUS * 3) / 4)
      .toString('base64')
      .replaceAll(/(.{76})/g, '$1\n'),
  ).subarray(0, CORPUS),
}

/** MB/s of pushing `chunks` `rounds` times through one Masker, by CPU time. */
function measure(patterns, chunks, rounds) {
  const masker = new Masker(patterns)
  let bytes = 0
  const started = process.cpuUsage()
  for (let round = 0; round < rounds; round++) {
    for (const chunk of chunks) for (const piece of masker.push(chunk)) bytes += piece.length
  }

  for (const piece of masker.end()) bytes += piece.length
  const used = process.cpuUsage(started)
  // No value occurs in the corpora, so the output must be exactly as long as the input.
  if (bytes !== rounds * CORPUS) throw new Error('output length changed without any secret in the input')
  return (rounds * CORPUS) / (1024 * 1024) / ((used.user + used.system) / 1e6)
}

console.log(`masker micro-benchmark — node ${process.version}, ${megabytes} MB per measurement`)
for (const [setName, values] of Object.entries(secretSets)) {
  const patterns = maskPatterns(values.map((value) => Buffer.from(value)))
  console.log(`${setName}: ${patterns.length} patterns of ${patterns.at(-1).length}–${patterns[0].length} B`)
  for (const [corpusName, corpus] of Object.entries(corpora)) {
    const chunks = []
    for (let offset = 0; offset < corpus.length; offset += CHUNK)
      chunks.push(corpus.subarray(offset, offset + CHUNK))
    const rounds = Math.max(1, Math.round((megabytes * 1024 * 1024) / CORPUS))
    const best = Math.max(...Array.from({length: 5}, () => measure(patterns, chunks, rounds)))
    console.log(`  ${corpusName.padEnd(13)} ${best.toFixed(0).padStart(6)} MB/s`)
  }
}
