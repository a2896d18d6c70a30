#!/bin/sh
':' // ; if [ -n "${NODE_DEBUG+x}" ]; then export AGENTVAULT_NODE_DEBUG="$NODE_DEBUG"; unset NODE_DEBUG; else unset AGENTVAULT_NODE_DEBUG; fi; i=0; for a in "$@"; do export "AGENTVAULT_ARGV_$i=$a"; i=$((i + 1)); done; export AGENTVAULT_ARGC=$i; c="${0%.js}.cjs"; [ -f "$c" ] || c="$0"; exec node "$c" || exit 127
// The launcher is bin/run.cjs (the package's bin; read it first): this is the same launcher for
// what still calls bin/run.js. Run as a program, the line above (POSIX sh) does what run.cjs does
// and execs Node on run.cjs beside it, so that the usual commands run without Node's ES module
// loader; when there is none (a link to this file under another name), on this file. Given to
// node directly (`node bin/run.js ARGS`), this ES module hands over to run.cjs.
import {createRequire} from 'node:module'

createRequire(import.meta.url)('./run.cjs')
