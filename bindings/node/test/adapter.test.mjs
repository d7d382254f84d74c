// What the adapter promises beyond Auth.js's own suite: Auth.js's shapes (Dates, `null` for
// not found, absent optional fields, extra fields kept), the errors Auth.js expects to be
// thrown (with authdb's error codes), single use of sign-in links under concurrency, and one
// shared handle per file per process.
import { spawn } from 'node:child_process'
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, test } from 'vitest'
import { AuthDbAdapter, __test, cleanup, createHash, dbHelpers, freshAdapter, randomUUID, tempDbPath } from './helpers.mjs'

afterAll(cleanup)

const here = path.dirname(fileURLToPath(import.meta.url))
const later = (ms) => new Date(Date.now() + ms)
const HOUR = 60 * 60 * 1000

async function rejection(promise) {
  try {
    await promise
  } catch (e) {
    return e
  }
  throw new Error('expected the call to be rejected')
}

describe('shapes', () => {
  const { adapter } = freshAdapter()
  const db = dbHelpers(adapter)

  test('a user keeps its extra fields; optional fields it lacks are absent', async () => {
    const u = await adapter.createUser({
      id: 'ignored',
      email: 'Ada@Example.com',
      emailVerified: null,
      role: 'admin',
      plan: { tier: 'pro', seats: 3 },
      tags: ['a', 'b'],
      nothing: null,
      skipped: undefined,
    })
    expect(u).toEqual({
      id: u.id,
      email: 'Ada@Example.com',
      emailVerified: null,
      role: 'admin',
      plan: { tier: 'pro', seats: 3 },
      tags: ['a', 'b'],
      nothing: null,
    })
    expect(Object.keys(u)).not.toContain('name')
    expect(Object.keys(u)).not.toContain('image')
    expect(Object.keys(u)).not.toContain('skipped')
    expect(await adapter.getUser(u.id)).toEqual(u)
    // Emails compare in one normal form (NFKC, lowercase, trimmed); stored as given.
    expect(await adapter.getUserByEmail(' ada@EXAMPLE.com')).toEqual(u)
    expect(await adapter.getUserByEmail('ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ')).toEqual(u)
  })

  test('a user without an email has `email: null`', async () => {
    const u = await adapter.createUser({ name: 'No Mail', emailVerified: null })
    expect(u).toEqual({ id: u.id, name: 'No Mail', email: null, emailVerified: null })
  })

  test('updateUser is partial: null clears, extra fields merge, null removes one', async () => {
    const u = await adapter.createUser({
      name: 'Grace',
      email: 'grace@example.com',
      image: 'https://example.com/g.png',
      emailVerified: null,
      role: 'user',
      team: 'navy',
    })
    const verified = new Date('2030-01-02T03:04:05.678Z')
    const updated = await adapter.updateUser({ id: u.id, image: null, emailVerified: verified, role: 'admin', team: null, level: 7 })
    expect(updated).toEqual({
      id: u.id,
      name: 'Grace',
      email: 'grace@example.com',
      emailVerified: verified,
      role: 'admin',
      level: 7,
    })
    expect(await db.user(u.id)).toEqual(updated)
    // Nothing given: nothing changes.
    expect(await adapter.updateUser({ id: u.id })).toEqual(updated)
  })

  test('an account keeps provider fields; expires_at is Unix seconds; absent fields stay absent', async () => {
    const u = await adapter.createUser({ email: 'acct@example.com', emailVerified: null })
    const account = {
      userId: u.id,
      type: 'oidc',
      provider: 'keycloak',
      providerAccountId: 'kc-1',
      access_token: 'at-1',
      expires_at: 1_900_000_000,
      token_type: 'bearer',
      id_token: 'header.payload.signature',
      refresh_token_expires_in: 1800,
      'not-before-policy': 0,
    }
    const linked = await adapter.linkAccount(account)
    expect(linked).toEqual(account)
    expect(Object.keys(linked)).not.toContain('refresh_token')
    expect(Object.keys(linked)).not.toContain('scope')
    expect(await adapter.getAccount('kc-1', 'keycloak')).toEqual(account)
    const stored = await db.account({ provider: 'keycloak', providerAccountId: 'kc-1' })
    expect(stored).toEqual({ ...account, id: stored.id })
    expect(Number.isInteger(stored.expires_at)).toBe(true)

    // Linking again refreshes the tokens; a token not given keeps the stored one.
    const again = await adapter.linkAccount({ ...account, access_token: 'at-2', expires_at: 1_900_003_600, id_token: undefined })
    expect(again).toEqual({ ...account, access_token: 'at-2', expires_at: 1_900_003_600 })

    const removed = await adapter.unlinkAccount({ provider: 'keycloak', providerAccountId: 'kc-1' })
    expect(removed).toEqual(again)
    expect(await adapter.unlinkAccount({ provider: 'keycloak', providerAccountId: 'kc-1' })).toBeUndefined()
    expect(await adapter.getAccount('kc-1', 'keycloak')).toBeNull()
  })

  test('sessions: Dates out, null when missing, deleteSession returns what it removed', async () => {
    const u = await adapter.createUser({ email: 'sess@example.com', emailVerified: null })
    const expires = new Date(Math.floor(Date.now() / 1000) * 1000 + 30 * 24 * HOUR)
    const s = await adapter.createSession({ sessionToken: 'tok-1-5f1e0c7a2b9d4e8f6a3c1b0d', userId: u.id, expires })
    expect(s).toEqual({ sessionToken: 'tok-1-5f1e0c7a2b9d4e8f6a3c1b0d', userId: u.id, expires })
    expect(s.expires).toBeInstanceOf(Date)
    // Without `expires` nothing changes and the stored session comes back.
    expect(await adapter.updateSession({ sessionToken: 'tok-1-5f1e0c7a2b9d4e8f6a3c1b0d' })).toEqual(s)
    expect(await adapter.updateSession({ sessionToken: 'missing', expires })).toBeNull()
    const moved = await adapter.updateSession({ sessionToken: 'tok-1-5f1e0c7a2b9d4e8f6a3c1b0d', userId: u.id, expires: later(HOUR) })
    expect(moved.userId).toBe(u.id)
    expect(await adapter.deleteSession('tok-1-5f1e0c7a2b9d4e8f6a3c1b0d')).toEqual(moved)
    expect(await adapter.deleteSession('tok-1-5f1e0c7a2b9d4e8f6a3c1b0d')).toBeNull()
    expect(await adapter.getSessionAndUser('tok-1-5f1e0c7a2b9d4e8f6a3c1b0d')).toBeNull()
  })

  test('an expired session reads as null and is gone', async () => {
    const u = await adapter.createUser({ email: 'old@example.com', emailVerified: null })
    await adapter.createSession({ sessionToken: 'old-5f1e0c7a2b9d4e8f6a3c1b0d', userId: u.id, expires: new Date(Date.now() - 1000) })
    expect(await adapter.getSessionAndUser('old-5f1e0c7a2b9d4e8f6a3c1b0d')).toBeNull()
    expect(await adapter.updateSession({ sessionToken: 'old-5f1e0c7a2b9d4e8f6a3c1b0d', expires: later(HOUR) })).toBeNull()
    expect(await db.session('old-5f1e0c7a2b9d4e8f6a3c1b0d')).toBeNull()
  })

  test('authenticators: transports absent when not given', async () => {
    const u = await adapter.createUser({ email: 'pk@example.com', emailVerified: null })
    const a = await adapter.createAuthenticator({
      credentialID: 'cred-1',
      userId: u.id,
      providerAccountId: 'cred-1',
      credentialPublicKey: 'pk',
      counter: 0,
      credentialDeviceType: 'singleDevice',
      credentialBackedUp: false,
    })
    expect(a).toEqual({
      credentialID: 'cred-1',
      userId: u.id,
      providerAccountId: 'cred-1',
      credentialPublicKey: 'pk',
      counter: 0,
      credentialDeviceType: 'singleDevice',
      credentialBackedUp: false,
    })
    // Authenticators that never count (always 0) pass.
    expect((await adapter.updateAuthenticatorCounter('cred-1', 0)).counter).toBe(0)
  })

  test('the file stays consistent', async () => {
    const report = await __test.checkIntegrity(adapter)
    expect(report.problems).toEqual([])
    expect(report.clean).toBe(true)
  })
})

describe('errors Auth.js expects to be thrown', () => {
  const { adapter } = freshAdapter()

  test('codes name authdb errors', async () => {
    const a = await adapter.createUser({ email: 'a@example.com', emailVerified: null })
    const b = await adapter.createUser({ email: 'b@example.com', emailVerified: null })
    const gone = randomUUID()

    const taken = await rejection(adapter.createUser({ email: 'A@EXAMPLE.COM', emailVerified: null }))
    expect(taken).toBeInstanceOf(Error)
    expect(taken).toMatchObject({ name: 'AuthDbError', code: 'EmailTaken' })
    expect(await rejection(adapter.updateUser({ id: b.id, email: 'a@example.com' }))).toMatchObject({ code: 'EmailTaken' })
    expect(await rejection(adapter.updateUser({ id: gone, name: 'x' }))).toMatchObject({ code: 'UserNotFound' })

    const acct = { type: 'oauth', provider: 'github', providerAccountId: '42' }
    expect(await rejection(adapter.linkAccount({ ...acct, userId: gone }))).toMatchObject({ code: 'UserNotFound' })
    await adapter.linkAccount({ ...acct, userId: a.id })
    expect(await rejection(adapter.linkAccount({ ...acct, userId: b.id }))).toMatchObject({
      code: 'AccountLinkedToAnotherUser',
    })
    expect(await rejection(adapter.linkAccount({ ...acct, type: 'saml', userId: a.id }))).toMatchObject({
      code: 'InvalidValue',
      field: 'provider_type',
    })

    await adapter.createSession({ sessionToken: 'same-5f1e0c7a2b9d4e8f6a3c1b0d', userId: a.id, expires: later(HOUR) })
    expect(await rejection(adapter.createSession({ sessionToken: 'same-5f1e0c7a2b9d4e8f6a3c1b0d', userId: b.id, expires: later(HOUR) }))).toMatchObject({
      code: 'SessionTokenTaken',
    })
    expect(await rejection(adapter.createSession({ sessionToken: 'other-5f1e0c7a2b9d4e8f6a3c1b0d', userId: gone, expires: later(HOUR) }))).toMatchObject({
      code: 'UserNotFound',
    })

    const vt = { identifier: 'a@example.com', token: 'f'.repeat(64), expires: later(HOUR) }
    await adapter.createVerificationToken(vt)
    expect(await rejection(adapter.createVerificationToken(vt))).toMatchObject({ code: 'VerificationTokenTaken' })

    const passkey = {
      credentialID: 'c1',
      userId: a.id,
      providerAccountId: 'c1',
      credentialPublicKey: 'k',
      counter: 5,
      credentialDeviceType: 'multiDevice',
      credentialBackedUp: true,
      transports: 'internal,hybrid',
    }
    await adapter.createAuthenticator(passkey)
    expect(await rejection(adapter.createAuthenticator({ ...passkey, userId: b.id }))).toMatchObject({ code: 'AuthenticatorTaken' })
    expect(await rejection(adapter.createAuthenticator({ ...passkey, credentialID: 'c2', userId: gone }))).toMatchObject({
      code: 'UserNotFound',
    })
    expect(await rejection(adapter.updateAuthenticatorCounter('nope', 1))).toMatchObject({ code: 'AuthenticatorNotFound' })
    const cloned = await rejection(adapter.updateAuthenticatorCounter('c1', 5))
    expect(cloned).toMatchObject({ code: 'CounterNotIncreased' })
    expect(cloned.message).toContain('stored 5, given 5')
    expect((await adapter.getAuthenticator('c1')).counter).toBe(5)
  })

  test('OAuth tokens need an encryption key', async () => {
    const { adapter: keyless } = freshAdapter({ encryptionKey: undefined })
    const u = await keyless.createUser({ email: 'k@example.com', emailVerified: null })
    const e = await rejection(keyless.linkAccount({ userId: u.id, type: 'oauth', provider: 'p', providerAccountId: '1', access_token: 't' }))
    expect(e).toMatchObject({ code: 'EncryptionKeyRequired' })
    // Accounts without secrets need none.
    await keyless.linkAccount({ userId: u.id, type: 'email', provider: 'email', providerAccountId: 'k@example.com' })
  })

  test('deleteUser of a missing user is not an error', async () => {
    await expect(adapter.deleteUser(randomUUID())).resolves.toBeUndefined()
  })
})

describe('email sign-in links', () => {
  const { adapter } = freshAdapter()
  const hash = (t) => createHash('sha256').update(`${t}secret`).digest('hex')

  test('of concurrent uses of one link exactly one succeeds', async () => {
    const vt = { identifier: 'race@example.com', token: hash('race'), expires: later(HOUR) }
    await adapter.createVerificationToken(vt)
    const results = await Promise.all(
      Array.from({ length: 16 }, () => adapter.useVerificationToken({ identifier: vt.identifier, token: vt.token })),
    )
    expect(results.filter(Boolean)).toEqual([vt])
  })

  test('a link works only for its own address, and not after it expires', async () => {
    const vt = { identifier: 'mine@example.com', token: hash('mine'), expires: later(HOUR) }
    await adapter.createVerificationToken(vt)
    expect(await adapter.useVerificationToken({ identifier: 'other@example.com', token: vt.token })).toBeNull()
    expect(await adapter.useVerificationToken({ identifier: vt.identifier, token: vt.token })).toEqual(vt)

    const old = { identifier: 'mine@example.com', token: hash('old'), expires: new Date(Date.now() - 1) }
    await adapter.createVerificationToken(old)
    expect(await adapter.useVerificationToken({ identifier: old.identifier, token: old.token })).toBeNull()
  })
})

describe('one handle per file per process', () => {
  test('adapters on one file share it, however the path is spelled', async () => {
    const file = tempDbPath()
    const opts = { encryptionKey: 'k'.repeat(40), purgeIntervalSeconds: 0 }
    const one = AuthDbAdapter({ path: file, ...opts })
    const two = AuthDbAdapter({ path: path.join(path.dirname(file), '.', path.basename(file)), ...opts })
    const u = await one.createUser({ email: 'shared@example.com', emailVerified: null })
    expect(await two.getUser(u.id)).toEqual(u)

    // The package evaluated again, native addon included (a dev server's reload), gets the
    // same handle, not AlreadyOpen.
    const require = createRequire(import.meta.url)
    const root = path.join(here, '..')
    const ours = Object.keys(require.cache).filter(
      (k) => k.startsWith(root) && !k.includes('node_modules') && !k.startsWith(here),
    )
    expect(ours.some((k) => k.endsWith('.node'))).toBe(true)
    for (const key of ours) delete require.cache[key]
    const reloaded = require('../index.js')
    expect(reloaded.AuthDbAdapter).not.toBe(AuthDbAdapter)
    expect(await reloaded.AuthDbAdapter({ path: file, ...opts }).getUser(u.id)).toEqual(u)

    // The same file with another key is refused rather than opened twice.
    const otherKey = AuthDbAdapter({ path: file, encryptionKey: 'x'.repeat(40), purgeIntervalSeconds: 0 })
    expect(await rejection(otherKey.getUser(u.id))).toMatchObject({ code: 'InvalidConfig' })
  })

  test('a worker thread shares the handle of its process', async () => {
    const file = tempDbPath()
    const adapter = AuthDbAdapter({ path: file, purgeIntervalSeconds: 0 })
    const u = await adapter.createUser({ email: 'worker@example.com', emailVerified: null })
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const { AuthDbAdapter } = require(workerData.pkg);
       const a = AuthDbAdapter({ path: workerData.file, purgeIntervalSeconds: 0 });
       a.getUser(workerData.id).then(
         (u) => parentPort.postMessage({ email: u && u.email }),
         (e) => parentPort.postMessage({ error: e.code }),
       );`,
      { eval: true, workerData: { pkg: path.join(here, '..', 'index.js'), file, id: u.id } },
    )
    const reply = await new Promise((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    await worker.terminate()
    expect(reply).toEqual({ email: 'worker@example.com' })
  })

  test('a file another process holds is AlreadyOpen, and a later call tries again', async () => {
    const file = tempDbPath()
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const { AuthDbAdapter } = require(${JSON.stringify(path.join(here, '..', 'index.js'))});
         const a = AuthDbAdapter({ path: ${JSON.stringify(file)}, purgeIntervalSeconds: 0 });
         a.getUser('x').then(() => { console.log('open'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0)) });`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    )
    await new Promise((resolve, reject) => {
      holder.stdout.once('data', resolve)
      holder.once('exit', (code) => reject(new Error(`holder exited early (${code})`)))
    })
    const adapter = AuthDbAdapter({ path: file, purgeIntervalSeconds: 0 })
    expect(await rejection(adapter.getUser(randomUUID()))).toMatchObject({ name: 'AuthDbError', code: 'AlreadyOpen' })
    holder.stdin.end()
    await new Promise((resolve) => holder.once('exit', resolve))
    expect(await adapter.getUser(randomUUID())).toBeNull()
  })
})

describe('shared modes', () => {
  test('with shareMode "multi-writer" two processes write to one file', async () => {
    const file = tempDbPath()
    const opts = { shareMode: 'multi-writer', encryptionKey: 'm'.repeat(40), purgeIntervalSeconds: 0 }
    const mine = AuthDbAdapter({ path: file, ...opts })
    const me = await mine.createUser({ email: 'parent@example.com', emailVerified: null })
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const { AuthDbAdapter } = require(${JSON.stringify(path.join(here, '..', 'index.js'))});
         const a = AuthDbAdapter({ path: ${JSON.stringify(file)}, ...${JSON.stringify(opts)} });
         (async () => {
           const parent = await a.getUserByEmail('parent@example.com');
           const u = await a.createUser({ email: 'child@example.com', emailVerified: null });
           await a.createSession({ sessionToken: 'from-child-5f1e0c7a2b9d4e8f6a3c1b0d', userId: u.id, expires: new Date(Date.now() + 3600e3) });
           console.log(JSON.stringify({ sawParent: parent && parent.id }));
         })().catch((e) => { console.error(e); process.exit(1) });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const code = await new Promise((resolve) => child.once('exit', resolve))
    expect(code).toBe(0)
    expect(JSON.parse(out).sawParent).toBe(me.id)
    const fromChild = await mine.getSessionAndUser('from-child-5f1e0c7a2b9d4e8f6a3c1b0d')
    expect(fromChild.user.email).toBe('child@example.com')
  })
})

describe('off the JavaScript thread', () => {
  test('the event loop keeps turning while durable writes are in flight', async () => {
    const { adapter } = freshAdapter()
    const u = await adapter.createUser({ email: 'loop@example.com', emailVerified: null })
    let turns = 0
    let pending = 0
    let turnsWhilePending = 0
    const timer = setInterval(() => {
      turns++
      if (pending > 0) turnsWhilePending++
    }, 0)
    const calls = []
    for (let i = 0; i < 400; i++) {
      pending++
      calls.push(
        adapter
          .createSession({ sessionToken: `loop-${i}-5f1e0c7a2b9d4e8f6a3c1b0d`, userId: u.id, expires: later(HOUR) })
          .finally(() => pending--),
      )
    }
    await Promise.all(calls)
    clearInterval(timer)
    expect(turns).toBeGreaterThan(0)
    expect(turnsWhilePending).toBeGreaterThan(0)
  })
})
