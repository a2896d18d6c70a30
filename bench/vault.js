// `npm run bench` section (h): the local vault's per-secret sealing (issue 17). One `local://`
// reference in a 200-secret vault next to the same reference in a 1-secret vault (target ≤ 1.03×),
// and `secrets set` into the 200-secret vault next to `node -e 0` (target ≤ 1.6×; oclif's startup
// is most of it). Interleaved A B C …, medians.
import {spawn} from 'node:child_process'
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'

const ref = (name) => ({canonical: `local://${name}`, kind: 'local', path: name, scheme: 'local'})

/** A vault of `count` secrets (K first), written through the built local backend. */
async function fillVault(root, home, count) {
  mkdirSync(home, {mode: 0o700, recursive: true})
  const {createBackend} = await import(join(root, 'dist', 'backends', 'local', 'index.js'))
  const backend = createBackend(
    {
      env: {AGENTVAULT_NO_KEYCHAIN: '1'},
      home,
      interactive: false,
      profile: {implicit: true, kind: 'local', name: 'local', settings: {}},
      warn() {},
    },
    {keychain: null},
  )
  await backend.set(ref('K'), Buffer.from('bench-value-of-K'), {description: 'bench'})
  for (let index = 1; index < count; index++)
    await backend.set(ref(`S${index}`), Buffer.from(`bench-value-${index}-${'x'.repeat(40)}`), {
      description: `bench secret ${index}`,
      tags: ['bench'],
    })
  await backend.close()
}

function timeOnce(command, args, env, input) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn(command, args, {env, stdio: ['pipe', 'pipe', 'pipe']})
    child.stdout.resume()
    child.stderr.resume()
    child.stdin.end(input)
    child.once('error', reject)
    child.once('close', (code) => {
      if (code === 0) resolve(Number(process.hrtime.bigint() - started) / 1e6)
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}`))
    })
  })
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

/** `environments`: [heading, env] pairs, each measured in its own interleaved loop (default: `env`). */
export async function benchVault({bin, env, environments = [['', env]], quick, root, work}) {
  const one = join(work, 'vault-1')
  const many = join(work, 'vault-200')
  await fillVault(root, one, 1)
  await fillVault(root, many, 200)
  const run = ['run', '--env', 'K=local://K', '--', 'true']
  console.log('\nlocal vault: each secret sealed on its own')
  for (const [heading, environment] of environments) {
    const variants = [
      [process.execPath, ['-e', '0'], environment],
      [bin, run, {...environment, AGENTVAULT_HOME: one}],
      [bin, run, {...environment, AGENTVAULT_HOME: many}],
      [bin, ['secrets', 'set', 'K'], {...environment, AGENTVAULT_HOME: many}, 'a new value'],
    ]
    const runs = quick ? 7 : 21
    const times = variants.map(() => [])
    for (let i = 0; i < runs; i++)
      for (const [index, variant] of variants.entries()) times[index].push(await timeOnce(...variant))
    const [node, runOne, runMany, set] = times.map((samples) => median(samples))
    if (heading) console.log(` ${heading}`)
    console.log(`  node -e 0                                       ${node.toFixed(1)} ms`)
    console.log(
      `  run, one reference, 200-secret vs 1-secret vault  ${runMany.toFixed(1)} vs ${runOne.toFixed(1)} ms   ratio ${(runMany / runOne).toFixed(2)}x  (target <= 1.03x)`,
    )
    console.log(
      `  secrets set into the 200-secret vault            ${set.toFixed(1)} ms   ratio ${(set / node).toFixed(2)}x vs node -e 0  (target <= 1.6x)`,
    )
  }
}
