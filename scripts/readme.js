#!/usr/bin/env node
// Keeps README.md's command reference in sync with the commands (from oclif.manifest.json, so run
// after `npm run build`). `node scripts/readme.js` rewrites the section between the markers;
// `--check` exits 1 when README.md is out of date (a test runs that).
import {readFileSync, writeFileSync} from 'node:fs'

const START = '<!-- commands -->'
const STOP = '<!-- commandsstop -->'
const readmeUrl = new URL('../README.md', import.meta.url)
const manifest = JSON.parse(readFileSync(new URL('../oclif.manifest.json', import.meta.url), 'utf8'))
const bin = 'agentvault'

const render = (text) => text.replaceAll('<%= config.bin %>', bin)

function flagLine(name, flag) {
  const short = flag.char ? `-${flag.char}, ` : ''
  const value =
    flag.type === 'option' ? ` ${flag.helpValue ?? (flag.options ? flag.options.join('|') : 'VALUE')}` : ''
  const env = flag.env ? ` [env: ${flag.env}]` : ''
  return `  ${short}--${name}${value}  ${flag.summary ?? flag.description ?? ''}${env}`
}

function section(id, command) {
  const display = id.replaceAll(':', ' ')
  const args = Object.values(command.args ?? {})
    .map((arg) => (arg.required ? arg.name.toUpperCase() : `[${arg.name.toUpperCase()}]`))
    .join(' ')
  const usage = command.usage
    ? render(String(command.usage).replaceAll('<%= command.id %>', display))
    : `${display}${args ? ' ' + args : ''} [FLAGS]`
  const flags = Object.entries(command.flags ?? {})
    .filter(([, flag]) => !flag.hidden)
    .map(([name, flag]) => flagLine(name, flag))
  const examples = (command.examples ?? []).map((example) =>
    render(typeof example === 'string' ? example : example.command).replaceAll('<%= command.id %>', display),
  )
  const lines = [`## \`${bin} ${display}\``, '', command.summary ?? '', '']
  lines.push('```', `USAGE`, `  $ ${bin} ${usage}`, '', 'FLAGS', ...flags)
  if (command.description)
    lines.push(
      '',
      'DESCRIPTION',
      ...render(command.description)
        .split('\n')
        .map((l) => `  ${l}`.trimEnd()),
    )
  if (command.aliases?.length)
    lines.push('', 'ALIASES', ...command.aliases.map((a) => `  $ ${bin} ${a.replaceAll(':', ' ')}`))
  if (examples.length > 0) lines.push('', 'EXAMPLES', ...examples.map((e) => `  $ ${e}`))
  lines.push('```', '')
  return lines.join('\n')
}

function renderCommands() {
  const ids = Object.keys(manifest.commands).sort()
  const index = ids.map((id) => `* [\`${bin} ${id.replaceAll(':', ' ')}\`](#${anchor(id)})`)
  return [START, ...index, '', ...ids.map((id) => section(id, manifest.commands[id])), STOP].join('\n')
}

function anchor(id) {
  return `${bin} ${id.replaceAll(':', ' ')}`.toLowerCase().replaceAll(' ', '-')
}

const readme = readFileSync(readmeUrl, 'utf8')
const start = readme.indexOf(START)
const stop = readme.indexOf(STOP)
if (start === -1 || stop === -1) {
  console.error(`README.md lacks the ${START} … ${STOP} markers`)
  process.exit(1)
}

const updated = readme.slice(0, start) + renderCommands() + readme.slice(stop + STOP.length)
if (process.argv.includes('--check')) {
  if (updated !== readme) {
    console.error('README.md command reference is out of date: run `npm run build && node scripts/readme.js`')
    process.exit(1)
  }
} else {
  writeFileSync(readmeUrl, updated)
}
