// Shared by the test files: the package as Node's own `require` loads it (not through vite's
// transform), temporary database files, and `db` helpers that read the file through the
// package's test hooks and build Auth.js's shapes with code of their own (so a mistake in the
// adapter's mapping cannot hide behind the same mistake here).
import { createRequire } from 'node:module'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const require = createRequire(import.meta.url)
export const { AuthDbAdapter } = require('../index.js')
export const { __test } = require('../testing.js')

const dirs = []

/** A fresh database path in a temporary folder (removed by `cleanup`). */
export function tempDbPath(name = 'auth.redb') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'authdb-node-'))
  dirs.push(dir)
  return path.join(dir, name)
}

export function cleanup() {
  for (const dir of dirs.splice(0)) {
    for (const f of fs.readdirSync(dir)) __test.forget(path.join(dir, f))
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** An adapter on a fresh file; encryption key set, purging off. */
export function freshAdapter(extra = {}) {
  const file = tempDbPath()
  const adapter = AuthDbAdapter({
    path: file,
    encryptionKey: 'test secret: a long random string in real life',
    purgeIntervalSeconds: 0,
    ...extra,
  })
  return { adapter, file }
}

function withExtra(base, json) {
  return json ? { ...JSON.parse(json), ...base } : base
}

/** Auth.js's `db` helpers over the test hooks. */
export function dbHelpers(adapter) {
  return {
    async user(id) {
      const r = await __test.user(adapter, id)
      if (!r) return null
      const u = {
        id: r.id,
        email: r.email ?? null,
        emailVerified: r.emailVerified === undefined || r.emailVerified === null ? null : new Date(r.emailVerified),
      }
      if (typeof r.name === 'string') u.name = r.name
      if (typeof r.image === 'string') u.image = r.image
      return withExtra(u, r.extra)
    },
    async session(sessionToken) {
      const r = await __test.session(adapter, sessionToken)
      if (!r) return null
      return { id: r.id, sessionToken: r.sessionToken, userId: r.userId, expires: new Date(r.expires) }
    },
    async account(key) {
      const r = await __test.account(adapter, key)
      if (!r) return null
      const a = {
        id: r.id,
        userId: r.userId,
        type: r.providerType,
        provider: r.provider,
        providerAccountId: r.providerAccountId,
      }
      const optional = {
        refresh_token: r.refreshToken,
        access_token: r.accessToken,
        expires_at: r.expiresAt,
        token_type: r.tokenType,
        scope: r.scope,
        id_token: r.idToken,
        session_state: r.sessionState,
      }
      for (const [k, v] of Object.entries(optional)) if (v !== undefined && v !== null) a[k] = v
      return withExtra(a, r.extra)
    },
    async verificationToken(key) {
      const r = await __test.verificationToken(adapter, key)
      if (!r) return null
      return { identifier: r.identifier, token: r.token, expires: new Date(r.expires) }
    },
    async authenticator(credentialID) {
      const r = await __test.authenticator(adapter, credentialID)
      if (!r) return null
      const a = {
        credentialID: r.credentialId,
        userId: r.userId,
        providerAccountId: r.providerAccountId,
        credentialPublicKey: r.credentialPublicKey,
        counter: r.counter,
        credentialDeviceType: r.credentialDeviceType,
        credentialBackedUp: r.credentialBackedUp,
      }
      if (typeof r.transports === 'string') a.transports = r.transports
      return a
    },
  }
}

/** Auth.js's hashing of an emailed token with the app secret. */
export { createHash, randomUUID, randomInt } from 'node:crypto'
