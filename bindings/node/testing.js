'use strict'
// Test hooks: raw reads of what an adapter's file holds, for test suites (the `db` helpers of
// Auth.js's adapter tests). Not part of the adapter; import '@authdb/authjs-adapter/testing'.
//
// Every function takes an adapter made by AuthDbAdapter and resolves with authdb's own
// records, not Auth.js's shapes: camelCase fields, timestamps in milliseconds since 1970,
// `expiresAt` in seconds, `extra` as JSON text, store-made ids, `null` when absent. None of
// them changes the file: sessions and sign-in tokens are read inside a transaction that is
// then discarded, so an expired session is not deleted and a sign-in token is not used up.

const { handleOf, native } = require('./lib/adapter')

function handle(adapter) {
  const get = handleOf.get(adapter)
  if (!get) return Promise.reject(new TypeError('not an adapter made by AuthDbAdapter'))
  return get()
}

const __test = {
  /** The native handle behind an adapter. */
  handle,
  /** The stored user with this id (`createdAt`, `updatedAt` included), or null. */
  async user(adapter, id) {
    return (await handle(adapter)).getUser(id)
  },
  /** The live session with this token (with its `id`), or null. */
  async session(adapter, sessionToken) {
    return (await handle(adapter)).testReadSession(sessionToken)
  },
  /** The account (secrets unsealed, with its `id`), or null. */
  async account(adapter, { provider, providerAccountId }) {
    return (await handle(adapter)).getAccount(provider, providerAccountId)
  },
  /** The live sign-in token matching identifier and hashed token, without using it, or null. */
  async verificationToken(adapter, { identifier, token }) {
    return (await handle(adapter)).testReadVerificationToken(identifier, token)
  },
  /** The authenticator with this credential id, or null. */
  async authenticator(adapter, credentialID) {
    return (await handle(adapter)).getAuthenticator(credentialID)
  },
  /** Every index checked against every table, and row counts. */
  async checkIntegrity(adapter) {
    return (await handle(adapter)).checkIntegrity()
  },
  /** Removes expired sessions and sign-in tokens now. */
  async purgeExpired(adapter) {
    return (await handle(adapter)).purgeExpired()
  },
  /** Drops the process-wide handle to the file at `path` (released once unreferenced). */
  forget(path) {
    return native.forget(path)
  },
}

module.exports = { __test }
