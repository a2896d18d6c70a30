#!/usr/bin/env node
// Bundles what runs on every call into dist/fast/ (run after tsc and scripts/manifest.js):
//  - the fast `run` path (dist/fast-run.js and what it imports, lazily loaded parts as chunks);
//  - every other command with `@oclif/core` resolved to src/dispatch/oclif-lite.ts, plus the
//    dispatcher that runs them (src/dispatch/dispatcher.ts), shared code in chunks;
//  - dist/fast/dispatch.json: command ids (aliases and plugins' commands too) → bundled module;
//  - dist/fast/help.json: oclif's own help for the root, every topic and every command, as it
//    prints it when stdout is not a terminal (80 columns, no colour).
//  - dist/fast/vendor/x509.cjs: @peculiar/x509 and its dependencies in one CommonJS file;
//  - dist/fast/run.cjs and dist/fast/dispatch/all.cjs: the same code (tweetnacl inside) as one
//    CommonJS-shaped script each, which main.ts compiles from the V8 code cache that
//    scripts/warm-cache.js writes beside them at the end of the build.
// Dependencies stay external, so they are still loaded only when needed. A command whose
// flags the lite runtime does not define exactly as oclif does fails the build.
import {build} from 'esbuild'
import {spawnSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import {fileURLToPath} from 'node:url'
import {format} from 'node:util'

// Rendered as oclif renders for a pipe: before oclif loads (it reads these when imported).
process.env.FORCE_COLOR = '0'
process.env.OCLIF_COLUMNS = '80'
process.env.AGENTVAULT_DISABLE_THEME = 'true'
const {Config, Help} = await import('@oclif/core')
const {getHelpFlagAdditions} = await import('@oclif/core/help')

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = new URL('../dist/', import.meta.url)
const fast = new URL('fast/', dist)
const path = (url) => fileURLToPath(url)
const common = {
  bundle: true,
  format: 'esm',
  logLevel: 'warning',
  outbase: path(dist),
  outdir: path(fast),
  packages: 'external',
  platform: 'node',
  splitting: true,
  target: 'node20',
}

await build({...common, entryPoints: [path(new URL('fast-run.js', dist))]})
await scriptBundle('fast-run.js', 'run')

// dist/fast/vendor/x509.cjs: @peculiar/x509 and everything it loads (reflect-metadata first) as
// one CommonJS file, which the run bundle's import() of either gets instead of a dozen packages
// through Node's ES module loader (src/launch.cts). Not inside run.cjs: plain `run` never needs it.
await build({
  bundle: true,
  format: 'cjs',
  logLevel: 'warning',
  minifyWhitespace: true,
  outfile: path(new URL('vendor/x509.cjs', fast)),
  platform: 'node',
  stdin: {
    contents: "require('reflect-metadata')\nmodule.exports = require('@peculiar/x509')\n",
    loader: 'js',
    resolveDir: root,
  },
  target: 'node20',
})

/**
 * tweetnacl inside the script bundles (so under their code cache too) rather than loaded from
 * node_modules: sealing.js's lazy createRequire(…)('tweetnacl') becomes the bundle's own require.
 */
function naclInside() {
  return {
    name: 'nacl-inside',
    setup(bundler) {
      const sealing = path(new URL('core/sealing.js', dist))
      bundler.onResolve({filter: /^tweetnacl$/}, () => ({path: createRequire(sealing).resolve('tweetnacl')}))
      bundler.onLoad({filter: /[/\\]core[/\\]sealing\.js$/}, async (args) => {
        const source = await readFile(args.path, 'utf8')
        const call = "createRequire(import.meta.url)('tweetnacl')"
        if (!source.includes(call)) throw new Error(`${args.path} no longer loads tweetnacl with ${call}`)
        return {contents: source.replace(call, "require('tweetnacl')"), loader: 'js'}
      })
    },
  }
}

/**
 * dist/fast/NAME.cjs: ENTRY and everything it imports in one CommonJS-style function, the form
 * main.ts compiles with vm.Script from V8's code cache (scripts/warm-cache.js writes it). A vm
 * script has no `import()`, so the bundle's own (all of them to dependencies or Node's modules)
 * call the importer main.ts passes in; `import.meta.url` is the bundle's URL.
 */
async function scriptBundle(entry, name, plugins = []) {
  const outfile = path(new URL(`${name}.cjs`, fast))
  const {outputFiles} = await build({
    ...common,
    plugins: [...plugins, naclInside()],
    define: {'import.meta.url': '__agentvaultUrl'},
    entryPoints: [path(new URL(entry, dist))],
    format: 'cjs',
    // No comments, less to read; names are kept for stack traces.
    minifyWhitespace: true,
    outdir: undefined,
    outfile,
    splitting: false,
    write: false,
  })
  let imports = 0
  // A module name, or a URL built in place (the dispatcher's default loader of unbundled builds).
  const code = outputFiles[0].text.replaceAll(
    /\bimport\(("(?:node:)?[\w@][\w@/.-]*"\)|new URL\()/g,
    (_, rest) => {
      imports++
      return `__agentvaultImport(${rest}`
    },
  )
  if (/\bimport\(/.test(code)) throw new Error(`${name}.cjs: an import() the build does not redirect`)
  // What is left outside ASCII is in regular expressions and strings (esbuild escapes the rest):
  // \uXXXX means the same there, and not in String.raw (checked). ASCII lets main.ts read
  // the source as latin1, half the work of utf8, into a one-byte string.
  const ascii = code.replaceAll(
    /[^\0-\x7F]/g,
    (char) => `\\u${char.codePointAt(0).toString(16).padStart(4, '0')}`,
  )
  for (const [raw] of code.matchAll(/String\.raw`[^`]*`/g))
    if (/[^\0-\x7F]/.test(raw))
      throw new Error(`${name}.cjs: non-ASCII in String.raw, where \\u would change it`)
  writeFileSync(
    outfile,
    `(function (exports, require, module, __filename, __dirname, __agentvaultImport, __agentvaultUrl) {${ascii}\n})`,
  )
  return imports
}

const config = await Config.load(root)
const rootPlugin = config.pjson.name
const ids = config.commandIDs
const isAlias = (command, id) => [...(command.aliases ?? []), ...(command.hiddenAliases ?? [])].includes(id)
const modules = new Map()
for (const id of ids) {
  const command = config.findCommand(id)
  if (command.pluginName !== rootPlugin || isAlias(command, id)) continue
  // `run` never gets here: main.ts runs it from the fast path above.
  if (id === 'run') continue
  modules.set(id, command.relativePath.slice(1).join('/'))
}

const lite = path(new URL('dispatch/oclif-lite.js', dist))
const oclifLite = {
  name: 'oclif-lite',
  setup(bundler) {
    bundler.onResolve({filter: /^@oclif\/core$/}, () => ({path: lite}))
  },
}
await build({
  ...common,
  entryPoints: [
    path(new URL('dispatch/dispatcher.js', dist)),
    ...[...modules.values()].map((p) => path(new URL(p, dist))),
  ],
  plugins: [oclifLite],
})
// The dispatcher and every command module in one script bundle (dist/fast/dispatch/all.cjs, its
// `commands` loads a module by its DispatchEntry.module path); a command's top level runs only
// when it is loaded.
const scriptEntry = new URL('dispatch/script-entry.js', dist)
writeFileSync(
  scriptEntry,
  `export {dispatch} from './dispatcher.js'\nexport const commands = {\n${[...new Set(modules.values())]
    .map((module) => `  ${JSON.stringify(module)}: () => import(${JSON.stringify(`../${module}`)}),\n`)
    .join('')}}\n`,
)
await scriptBundle('dispatch/script-entry.js', 'dispatch/all', [oclifLite])

// What the lite runtime sees of each command must be what oclif put in the manifest.
const {unsupportedFeature} = await import(new URL('dispatch/parse.js', dist).href)
const FLAG_KEYS = [
  'aliases',
  'allowNo',
  'char',
  'charAliases',
  'default',
  'dependsOn',
  'env',
  'exclusive',
  'hidden',
]
const FLAG_KEYS_OPTION = ['multiple', 'options', 'required']
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)
const commands = {}
const skipped = []
for (const id of ids) {
  const command = config.findCommand(id)
  const canonical = isAlias(command, id) ? (await command.load()).id : id
  const entry = {
    id: canonical,
    takesArgs: command.strict === false || Object.keys(command.args ?? {}).length > 0,
  }
  const module = modules.get(canonical)
  if (module) {
    const {default: Lite} = await import(new URL(`fast/${module}`, dist).href)
    const input = Lite.liteDefinitions()
    const {flags} = input
    const mismatch = []
    if (!same(Object.keys(flags), Object.keys(command.flags))) mismatch.push('flag names')
    if (!same(Object.keys(input.args), Object.keys(command.args))) mismatch.push('argument names')
    for (const [name, flag] of Object.entries(command.flags)) {
      const mine = flags[name]
      if (!mine || mine.type !== flag.type) mismatch.push(`--${name} type`)
      else
        for (const key of [...FLAG_KEYS, ...(flag.type === 'option' ? FLAG_KEYS_OPTION : [])])
          if (typeof mine[key] !== 'function' && !same(mine[key] ?? undefined, flag[key] ?? undefined))
            mismatch.push(`--${name} ${key}`)
    }

    for (const [name, arg] of Object.entries(command.args))
      for (const key of ['default', 'options', 'required'])
        if (!same(input.args[name]?.[key], arg[key])) mismatch.push(`${name} ${key}`)
    if (
      Lite.strict !== command.strict ||
      Boolean(Lite.enableJsonFlag) !== Boolean(command.enableJsonFlag ?? command.flags.json)
    )
      mismatch.push('strict or enableJsonFlag')
    if (mismatch.length > 0)
      throw new Error(`the lite runtime defines ${id} differently from oclif: ${mismatch.join(', ')}`)
    const unsupported = Lite.usesOclifConfig ? "oclif's Config" : unsupportedFeature(input)
    if (unsupported) skipped.push(`${id} (${unsupported})`)
    else entry.module = module
  }

  commands[id] = entry
}

const hooks = ['init', 'prerun', 'postrun', 'preparse', 'finally']
const help = {}
const subjects = ['', ...config.topics.map((topic) => topic.name), ...ids]
for (const subject of new Set(subjects)) {
  // A fresh Config per text: rendering help rewrites the ids of the commands it lists.
  const fresh = subject === '' ? config : await Config.load(root)
  const lines = []
  const Capture = class extends Help {
    log(...args) {
      lines.push(format(...args) + '\n')
    }
  }
  await new Capture(fresh, fresh.pjson.oclif.helpOptions ?? fresh.pjson.helpOptions).showHelp(
    subject === '' ? [] : [subject],
  )
  help[subject] = lines.join('')
}

const table = {
  commandHooks: [...config.plugins.values()].some((plugin) =>
    hooks.some((hook) => (plugin.hooks?.[hook] ?? []).length > 0),
  ),
  commands,
  helpFlags: getHelpFlagAdditions(config),
  pjson: {name: config.pjson.name, oclif: config.pjson.oclif, version: config.pjson.version},
  theme: Boolean(config.pjson.oclif.theme),
  topics: config.topics.map((topic) => topic.name),
  userAgent: config.userAgent,
}
writeFileSync(new URL('dispatch.json', fast), JSON.stringify(table) + '\n')
writeFileSync(new URL('help.json', fast), JSON.stringify(help) + '\n')

// The code caches, once the binary works (the warm-up runs it).
const warm = spawnSync(process.execPath, [path(new URL('../scripts/warm-cache.js', import.meta.url))], {
  stdio: 'inherit',
})
if (warm.status !== 0) throw new Error(`scripts/warm-cache.js failed (${warm.status ?? warm.signal})`)
const routed = Object.values(commands).filter((entry) => entry.module).length
console.log(
  `dist/fast: ${routed} of ${ids.length} command ids run without oclif${skipped.length > 0 ? `; oclif runs ${skipped.join(', ')}` : ''}`,
)
