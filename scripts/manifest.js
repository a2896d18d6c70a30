#!/usr/bin/env node
// Writes oclif.manifest.json from the built commands, as `oclif manifest` does, without the heavy
// `oclif` package. A stale manifest hides new commands, so the build always regenerates it.
import {Plugin} from '@oclif/core'
import {writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const plugin = new Plugin({
  errorOnManifestCreate: true,
  ignoreManifest: true,
  respectNoCacheDefault: true,
  root,
  type: 'core',
})
await plugin.load()
writeFileSync(
  new URL('../oclif.manifest.json', import.meta.url),
  JSON.stringify(plugin.manifest, null, 2) + '\n',
)
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`)
