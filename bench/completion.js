// `npm run bench` section (i): shell completion at TAB time (issue 16 §2). The scripts
// `agentvault autocomplete` writes answer a TAB without starting agentvault or Node: this measures
// one TAB (`secrets get <TAB>`, names from the cache, and `run --mask <TAB>`) inside a running bash
// and zsh, and the cost of sourcing the bash script at shell start, next to `node -e 0` (the least
// a completion that ran agentvault would cost per TAB). Medians of rounds interleaved bash, zsh.
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

const TABS = 200

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

/** Milliseconds per TAB (and per source) measured by the shell itself ($EPOCHREALTIME). */
function shellRound(shell, file, cwd, env) {
  const loop =
    shell === 'bash'
      ? `t0=$EPOCHREALTIME; source "$F"; t1=$EPOCHREALTIME
for ((i = 0; i < ${TABS}; i++)); do
  COMP_WORDS=(agentvault secrets get ''); COMP_CWORD=3; COMP_LINE='agentvault secrets get '; COMP_POINT=23; _agentvault
  COMP_WORDS=(agentvault run --mask ''); COMP_CWORD=3; COMP_LINE='agentvault run --mask '; COMP_POINT=22; _agentvault
done
t2=$EPOCHREALTIME; echo "$t0 $t1 $t2"`
      : `zmodload zsh/datetime; compdef() { :; }; compadd() { :; }
t0=$EPOCHREALTIME; source "$F"; t1=$EPOCHREALTIME
for ((i = 0; i < ${TABS}; i++)); do
  words=(agentvault secrets get ''); CURRENT=4; _agentvault
  words=(agentvault run --mask ''); CURRENT=4; _agentvault
done
t2=$EPOCHREALTIME; echo "$t0 $t1 $t2"`
  const result = spawnSync(shell, shell === 'zsh' ? ['-f', '-c', loop] : ['-c', loop], {
    cwd,
    encoding: 'utf8',
    env: {...env, F: file},
  })
  if (result.status !== 0) throw new Error(`${shell}: ${result.stderr}`)
  const [t0, t1, t2] = result.stdout.trim().split(' ').map(Number)
  return {source: (t1 - t0) * 1000, tab: ((t2 - t1) * 1000) / (TABS * 2)}
}

export async function benchCompletion({bin, env, quick, work}) {
  const missing = ['bash', 'zsh'].filter((shell) => spawnSync(shell, ['-c', 'exit 0']).status !== 0)
  if (missing.length > 0) {
    console.log(`\ncompletion: skipped (needs ${missing.join(' and ')}: sh scripts/test-tools.sh shells)`)
    return
  }

  const home = join(work, 'completion-home')
  const completionEnv = {...env, AGENTVAULT_HOME: home, HOME: home, XDG_CACHE_HOME: join(home, 'cache')}
  mkdirSync(home, {mode: 0o700, recursive: true})
  const setup = spawnSync(bin, ['autocomplete', 'bash', '--refresh-cache'], {env: completionEnv})
  if (setup.status !== 0) throw new Error(`agentvault autocomplete failed: ${setup.stderr}`)
  // 200 names in the cache, as `secrets list` of a 200-secret vault leaves it.
  const names = Array.from({length: 200}, (_, index) => `SECRET_${String(index).padStart(3, '0')}`)
  writeFileSync(join(home, 'completion', 'local-secrets'), names.map((name) => `${name}\n`).join(''))
  const functions = join(home, 'cache', 'agentvault', 'autocomplete', 'functions')
  const files = {bash: join(functions, 'bash', 'agentvault.bash'), zsh: join(functions, 'zsh', '_agentvault')}
  for (const file of Object.values(files)) if (!existsSync(file)) throw new Error(`not written: ${file}`)

  const rounds = quick ? 5 : 15
  const samples = {bash: [], node: [], zsh: []}
  for (let round = 0; round < rounds; round++) {
    for (const shell of ['bash', 'zsh'])
      samples[shell].push(shellRound(shell, files[shell], home, completionEnv))
    const started = process.hrtime.bigint()
    spawnSync(process.execPath, ['-e', '0'])
    samples.node.push(Number(process.hrtime.bigint() - started) / 1e6)
  }

  const node = median(samples.node)
  console.log(`\ncompletion at TAB time, ${TABS * 2} TABs per round, 200 secret names (median of ${rounds})`)
  for (const shell of ['bash', 'zsh']) {
    const tab = median(samples[shell].map((sample) => sample.tab))
    const source = median(samples[shell].map((sample) => sample.source))
    console.log(
      `  ${shell.padEnd(4)} one TAB ${tab.toFixed(3)} ms (${(node / tab).toFixed(0)}x less than node -e 0, ${node.toFixed(1)} ms); sourcing the script ${source.toFixed(1)} ms`,
    )
  }
}
