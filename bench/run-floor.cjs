// The floor of `agentvault run --env K=local://K -- true` (issue 17 names it): a plain Node script
// doing the least any such `run` must — read the key file and the vault, authenticate the vault's
// entry table (HMAC-SHA256), open one sealed value with tweetnacl, start `true` with its output
// through pipes and wait for it. None of agentvault's parsing, checks, masking or audit. What `run`
// costs above this is agentvault's own; what this costs is what this machine charges any Node
// program for that work. CommonJS, as agentvault's launcher is.
//   node bench/run-floor.cjs --seal   once: writes floor-box.json in AGENTVAULT_HOME (a value
//                                     sealed with the vault's key file, the box this opens)
//   node bench/run-floor.cjs          the measured run
'use strict'
const {spawn} = require('node:child_process')
const {createHmac, randomBytes} = require('node:crypto')
const {readFileSync, writeFileSync} = require('node:fs')
const {join} = require('node:path')
const nacl = require('tweetnacl')

const home = process.env.AGENTVAULT_HOME
if (!home) throw new Error('AGENTVAULT_HOME is not set')
const key = Buffer.from(readFileSync(join(home, 'vault.key'), 'latin1').trim(), 'base64').subarray(0, 32)
const boxFile = join(home, 'floor-box.json')

if (process.argv[2] === '--seal') {
  const nonce = randomBytes(24)
  const box = nacl.secretbox(
    Buffer.from(JSON.stringify({value: randomBytes(18).toString('base64')})),
    nonce,
    key,
  )
  writeFileSync(
    boxFile,
    JSON.stringify({box: Buffer.from(box).toString('base64'), nonce: nonce.toString('base64')}),
  )
} else {
  const vault = JSON.parse(readFileSync(join(home, 'vault.json'), 'utf8'))
  createHmac('sha256', key).update(JSON.stringify(vault.entries)).digest()
  const sealed = JSON.parse(readFileSync(boxFile, 'utf8'))
  const opened = nacl.secretbox.open(
    Buffer.from(sealed.box, 'base64'),
    Buffer.from(sealed.nonce, 'base64'),
    key,
  )
  if (!opened) throw new Error('floor-box.json does not open with vault.key')
  const {value} = JSON.parse(Buffer.from(opened).toString('utf8'))
  const child = spawn('true', [], {env: {...process.env, K: value}, stdio: ['inherit', 'pipe', 'pipe']})
  child.stdout.resume()
  child.stderr.resume()
  child.on('close', (code) => {
    process.exitCode = code
  })
}
