'use strict'
// Loads the native addon built by `npm run build` (scripts/build.js).

const path = require('node:path')

const file = path.join(__dirname, '..', `authdb.${process.platform}-${process.arch}.node`)

let native
try {
  native = require(file)
} catch (e) {
  const hint =
    e && e.code === 'MODULE_NOT_FOUND'
      ? `the native addon is missing: run \`npm run build\` in ${path.dirname(file)} (needs a Rust toolchain)`
      : `the native addon failed to load: ${e && e.message}`
  const err = new Error(`@authdb/authjs-adapter: ${hint}`)
  err.code = 'AUTHDB_NATIVE_MISSING'
  err.cause = e
  throw err
}

module.exports = native
