#!/usr/bin/env node
// A recording relay for MCP e2e tests: `node mcp-relay.mjs RECORD COMMAND ARGS…` starts COMMAND
// and passes stdin, stdout and stderr through unchanged, appending every byte of each direction to
// RECORD.in, RECORD.out and RECORD.err — the whole transcript, as the wire carried it.
import {spawn} from 'node:child_process'
import {appendFileSync} from 'node:fs'

const [record, file, ...args] = process.argv.slice(2)
const child = spawn(file, args, {stdio: ['pipe', 'pipe', 'pipe']})
process.stdin.on('data', (chunk) => {
  appendFileSync(`${record}.in`, chunk)
  child.stdin.write(chunk)
})
process.stdin.on('end', () => child.stdin.end())
child.stdin.on('error', () => {})
child.stdout.on('data', (chunk) => {
  appendFileSync(`${record}.out`, chunk)
  process.stdout.write(chunk)
})
child.stderr.on('data', (chunk) => {
  appendFileSync(`${record}.err`, chunk)
  process.stderr.write(chunk)
})
child.on('close', (code, signal) => {
  process.exitCode = code ?? (signal ? 128 : 1)
  process.stdin.destroy()
})
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal))
