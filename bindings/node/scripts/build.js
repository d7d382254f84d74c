#!/usr/bin/env node
// Builds the native addon with cargo and copies it next to package.json as
// `authdb.<platform>-<arch>.node`, the name lib/native.js loads.
//
// Only cargo and the crates.io registry are needed: no prebuilt binaries are downloaded.
//   node scripts/build.js           release build (what `npm run build` runs)
//   node scripts/build.js --debug   dev profile (faster to compile, slower to run)
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const debug = process.argv.includes('--debug')
const started = Date.now()

const args = [
  'build',
  '--manifest-path',
  path.join(root, 'Cargo.toml'),
  '-p',
  'authdb-node',
  '--lib',
  '--message-format=json-render-diagnostics',
]
if (!debug) args.push('--release')

const cargo = process.env.CARGO || 'cargo'
const run = spawnSync(cargo, args, {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  maxBuffer: 256 * 1024 * 1024,
  encoding: 'utf8',
})
if (run.error) {
  console.error(`could not run ${cargo}: ${run.error.message} (is a Rust toolchain installed?)`)
  process.exit(1)
}
if (run.status !== 0) {
  console.error(`cargo build failed (exit ${run.status})`)
  process.exit(run.status || 1)
}

// cargo reports every artifact it built; pick the addon's shared library.
let library = null
for (const line of run.stdout.split('\n')) {
  if (!line.startsWith('{')) continue
  let msg
  try {
    msg = JSON.parse(line)
  } catch {
    continue
  }
  if (msg.reason !== 'compiler-artifact' || msg.target?.name !== 'authdb_node') continue
  library = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) ?? library
}
if (!library) {
  console.error('cargo did not report the authdb_node library')
  process.exit(1)
}

const out = path.join(root, `authdb.${process.platform}-${process.arch}.node`)
// Copy to a temporary name and rename, so a running process never sees a half-written file.
const tmp = `${out}.${process.pid}.tmp`
fs.copyFileSync(library, tmp)
fs.renameSync(tmp, out)
const secs = ((Date.now() - started) / 1000).toFixed(1)
console.log(`built ${path.relative(process.cwd(), out) || out} (${debug ? 'debug' : 'release'}, ${secs} s)`)
