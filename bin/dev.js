#!/usr/bin/env -S node --import tsx
// Development entry: runs the TypeScript sources through oclif (no fast paths, no build needed).
import {execute} from '@oclif/core'

await execute({development: true, dir: import.meta.url})
