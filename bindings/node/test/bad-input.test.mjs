// Bad input from JavaScript: every call gives a rejected promise with a clear message — a
// TypeError (`code: 'InvalidArgument'`) for a value of the wrong type, a missing field or an
// id that is not authdb's, an AuthDbError (`code: 'InvalidInput'` / `'InvalidValue'`, with
// `field`) for a value the store refuses — and never brings the Node process down.
import { afterAll, describe, expect, test } from 'vitest'
import { AuthDbAdapter, __test, cleanup, freshAdapter, randomUUID } from './helpers.mjs'

afterAll(cleanup)

const { adapter } = freshAdapter()
const later = () => new Date(Date.now() + 60 * 60 * 1000)

async function rejection(promise) {
  try {
    await promise
  } catch (e) {
    return e
  }
  throw new Error('expected the call to be rejected')
}

async function typeError(promise, ...words) {
  const e = await rejection(promise)
  expect(e).toBeInstanceOf(TypeError)
  expect(e.code).toBe('InvalidArgument')
  for (const w of words) expect(e.message).toContain(w)
  return e
}

async function refused(promise, code, field) {
  const e = await rejection(promise)
  expect(e.name).toBe('AuthDbError')
  expect(e.code).toBe(code)
  if (field) expect(e.field).toBe(field)
  return e
}

let user
const userOf = async () => (user ??= await adapter.createUser({ email: 'bad-input@example.com', emailVerified: null }))

describe('wrong types and missing fields', () => {
  test('strings that are not strings', async () => {
    for (const v of [undefined, null, 42, true, {}, [], Symbol('s'), 10n, () => 'x', new Date()]) {
      await typeError(adapter.getUser(v), 'getUser', '`id` must be a string')
      await typeError(adapter.getUserByEmail(v), '`email` must be a string')
      await typeError(adapter.getSessionAndUser(v), '`sessionToken` must be a string')
      await typeError(adapter.deleteSession(v), 'deleteSession')
      await typeError(adapter.getAuthenticator(v), '`credentialID`')
      await typeError(adapter.listAuthenticatorsByUserId(v), '`userId`')
      await typeError(adapter.getAccount(v, 'github'), '`providerAccountId`')
      await typeError(adapter.getAccount('1', v), '`provider`')
    }
  })

  test('objects that are not objects', async () => {
    for (const v of [undefined, null, 'x', 1, [], [{}]]) {
      await typeError(adapter.createUser(v), 'createUser', '`user` must be an object')
      await typeError(adapter.updateUser(v), '`user` must be an object')
      await typeError(adapter.linkAccount(v), '`account` must be an object')
      await typeError(adapter.unlinkAccount(v), '`account` must be an object')
      await typeError(adapter.getUserByAccount(v), '`account` must be an object')
      await typeError(adapter.createSession(v), '`session` must be an object')
      await typeError(adapter.updateSession(v), '`session` must be an object')
      await typeError(adapter.createVerificationToken(v), '`verificationToken` must be an object')
      await typeError(adapter.useVerificationToken(v), '`params` must be an object')
      await typeError(adapter.createAuthenticator(v), '`authenticator` must be an object')
    }
  })

  test('missing required fields', async () => {
    const u = await userOf()
    await typeError(adapter.createSession({ userId: u.id, expires: later() }), '`sessionToken` must be a string, got undefined')
    await typeError(adapter.createSession({ sessionToken: 't', userId: u.id }), '`expires` must be a Date, got undefined')
    await typeError(adapter.createSession({ sessionToken: 't', expires: later() }), '`userId` must be a string')
    await typeError(adapter.linkAccount({ userId: u.id, provider: 'p', providerAccountId: '1' }), '`type` must be a string')
    await typeError(adapter.linkAccount({ userId: u.id, type: 'oauth', providerAccountId: '1' }), '`provider` must be a string')
    await typeError(adapter.linkAccount({ userId: u.id, type: 'oauth', provider: 'p' }), '`providerAccountId`')
    await typeError(adapter.getUserByAccount({ provider: 'p' }), '`providerAccountId`')
    await typeError(adapter.createVerificationToken({ identifier: 'a@b.c', expires: later() }), '`token`')
    await typeError(adapter.useVerificationToken({ token: 'x' }), '`identifier`')
    await typeError(adapter.updateUser({ name: 'no id' }), '`id` must be a string')
    const passkey = {
      credentialID: 'c',
      userId: u.id,
      providerAccountId: 'c',
      credentialPublicKey: 'k',
      counter: 0,
      credentialDeviceType: 'singleDevice',
      credentialBackedUp: false,
    }
    for (const field of Object.keys(passkey)) {
      const { [field]: _, ...rest } = passkey
      await typeError(adapter.createAuthenticator(rest), `\`${field}\``)
    }
    await typeError(adapter.createAuthenticator({ ...passkey, credentialBackedUp: 'yes' }), '`credentialBackedUp` must be a boolean')
  })

  test('wrongly typed optional fields', async () => {
    const u = await userOf()
    await typeError(adapter.createUser({ email: 5 }), '`email` must be a string, got number')
    await typeError(adapter.createUser({ name: {} }), '`name` must be a string, got Object')
    await typeError(adapter.createUser({ emailVerified: '2024-01-01' }), '`emailVerified` must be a Date, got string')
    await typeError(adapter.createUser({ emailVerified: new Date('garbage') }), '`emailVerified` is an invalid Date')
    const fakeDate = { [Symbol.toStringTag]: 'Date', getTime: () => 0 }
    await typeError(adapter.createUser({ emailVerified: fakeDate }), '`emailVerified` must be a Date')
    await typeError(adapter.updateUser({ id: u.id, image: 1 }), '`image` must be a string')
    const acct = { userId: u.id, type: 'oauth', provider: 'p', providerAccountId: '1' }
    await typeError(adapter.linkAccount({ ...acct, access_token: 1 }), '`access_token` must be a string')
    for (const v of ['1700000000', NaN, Infinity, {}]) {
      await typeError(adapter.linkAccount({ ...acct, expires_at: v }), '`expires_at` must be a finite number')
    }
    await typeError(adapter.updateSession({ sessionToken: 't', expires: 123 }), '`expires` must be a Date, got number')
    for (const v of [-1, 1.5, 2 ** 53, NaN, '3']) {
      await typeError(adapter.updateAuthenticatorCounter('c', v), '`newCounter` must be a non-negative integer')
    }
  })

  test('extra fields that are not JSON', async () => {
    await typeError(adapter.createUser({ email: 'x@example.com', big: 1n }), 'extra fields must be JSON-serializable')
    const loop = {}
    loop.self = loop
    await typeError(adapter.createUser({ email: 'x@example.com', loop }), 'extra fields must be JSON-serializable')
  })
})

describe('ids that are not authdb user ids', () => {
  test('writes refuse them; reads find nothing', async () => {
    for (const bad of ['', 'not-a-uuid', '123', 'github|42', '00000000-0000-0000-0000-00000000000g', `${randomUUID()}x`]) {
      await typeError(adapter.deleteUser(bad), 'deleteUser', 'must be a user id made by authdb (a UUID)')
      await typeError(adapter.updateUser({ id: bad, name: 'x' }), 'a UUID')
      await typeError(adapter.linkAccount({ userId: bad, type: 'oauth', provider: 'p', providerAccountId: '1' }), 'a UUID')
      await typeError(adapter.createSession({ sessionToken: 't', userId: bad, expires: later() }), 'a UUID')
      await typeError(
        adapter.createAuthenticator({
          credentialID: 'c',
          userId: bad,
          providerAccountId: 'c',
          credentialPublicKey: 'k',
          counter: 0,
          credentialDeviceType: 'singleDevice',
          credentialBackedUp: false,
        }),
        'a UUID',
      )
      await typeError(adapter.updateSession({ sessionToken: 't', userId: bad, expires: later() }), 'a UUID')
      // Auth.js looks users up by a JWT's `sub`, which may be anything: no user has it.
      expect(await adapter.getUser(bad)).toBeNull()
      expect(await adapter.listAuthenticatorsByUserId(bad)).toEqual([])
    }
  })
})

describe('values the store refuses', () => {
  test('oversized strings name the field and the limit', async () => {
    const u = await userOf()
    const big = (n) => 'x'.repeat(n)
    let e = await refused(adapter.createUser({ email: `${big(320)}@example.com` }), 'InvalidInput', 'email')
    expect(e.message).toMatch(/is 332 bytes long, over the limit of 320/)
    await refused(adapter.createUser({ name: big(1025) }), 'InvalidInput', 'name')
    await refused(adapter.createUser({ image: big(8193) }), 'InvalidInput', 'image')
    await refused(adapter.createUser({ bio: big(17_000) }), 'InvalidInput', 'extra')
    await refused(adapter.updateUser({ id: u.id, name: big(1025) }), 'InvalidInput', 'name')
    const acct = { userId: u.id, type: 'oauth', provider: 'p', providerAccountId: '1' }
    await refused(adapter.linkAccount({ ...acct, provider: big(129) }), 'InvalidInput', 'provider_id')
    await refused(adapter.linkAccount({ ...acct, providerAccountId: big(513) }), 'InvalidInput', 'provider_account_id')
    await refused(adapter.linkAccount({ ...acct, access_token: big(8193) }), 'InvalidInput', 'access_token')
    await refused(adapter.linkAccount({ ...acct, id_token: big(16_385) }), 'InvalidInput', 'id_token')
    await refused(adapter.createSession({ sessionToken: big(1025), userId: u.id, expires: later() }), 'InvalidInput')
    await refused(adapter.createVerificationToken({ identifier: big(321), token: 't', expires: later() }), 'InvalidInput')
    await refused(adapter.createVerificationToken({ identifier: 'a@b.c', token: big(1025), expires: later() }), 'InvalidInput')
    await refused(
      adapter.createAuthenticator({
        credentialID: big(1025),
        userId: u.id,
        providerAccountId: 'c',
        credentialPublicKey: 'k',
        counter: 0,
        credentialDeviceType: 'singleDevice',
        credentialBackedUp: false,
      }),
      'InvalidInput',
    )
    // Messages never echo the value.
    expect(e.message).not.toContain('xxxx')
  })

  test('empty required strings and unaccepted values', async () => {
    const u = await userOf()
    await refused(adapter.createUser({ email: '   ' }), 'InvalidInput', 'email')
    await refused(adapter.createUser({ email: 'a\u202e@example.com' }), 'InvalidValue', 'email')
    await refused(adapter.createUser({ email: 'a\u0000b@example.com' }), 'InvalidValue', 'email')
    await refused(adapter.linkAccount({ userId: u.id, type: 'oauth', provider: '', providerAccountId: '1' }), 'InvalidInput')
    await refused(adapter.linkAccount({ userId: u.id, type: 'credentials', provider: 'c', providerAccountId: '1' }), 'InvalidValue')
    await refused(adapter.createSession({ sessionToken: '', userId: u.id, expires: later() }), 'InvalidInput')
  })

  test('huge lookups simply find nothing', async () => {
    const huge = 'y'.repeat(8 * 1024 * 1024)
    expect(await adapter.getUserByEmail(huge)).toBeNull()
    expect(await adapter.getSessionAndUser(huge)).toBeNull()
    expect(await adapter.getAccount(huge, huge)).toBeNull()
    expect(await adapter.useVerificationToken({ identifier: huge, token: huge })).toBeNull()
  })

  test('strange strings (lone surrogates, NULs) do not upset anything', async () => {
    for (const s of ['\ud800', '\udfff\ud800', 'a\u0000b', '\u{1F600}'.repeat(100), '\uFEFF']) {
      expect(await adapter.getUserByEmail(s)).toBeNull()
      expect(await adapter.getSessionAndUser(s)).toBeNull()
      expect(await adapter.getAuthenticator(s)).toBeNull()
    }
  })
})

describe('options', () => {
  test('AuthDbAdapter checks its options at once', () => {
    const bad = [
      [undefined, '`options` must be an object'],
      [{}, '`path` must be a string'],
      [{ path: '' }, '`path` must not be empty'],
      [{ path: 'x.redb', encryptionKey: 42 }, '`encryptionKey` must be a string'],
      [{ path: 'x.redb', encryptionKey: '' }, '`encryptionKey` must not be empty'],
      [{ path: 'x.redb', encryptionKey: 'hunter2' }, '`encryptionKey` must be a random secret of at least 32 bytes'],
      [{ path: 'x.redb', encryptionKey: new Uint8Array(31) }, 'must be 32 bytes long, got 31'],
      [{ path: 'x.redb', shareMode: 'shared' }, '`shareMode` must be'],
      [{ path: 'x.redb', shareMode: 'multi-writer', durability: 'none' }, 'cannot be combined with a shared `shareMode`'],
      [{ path: 'x.redb', durability: 'sometimes' }, '`durability`'],
      [{ path: 'x.redb', cacheSize: -1 }, '`cacheSize`'],
      [{ path: 'x.redb', verifyOnOpen: 'yes' }, '`verifyOnOpen` must be a boolean'],
      [{ path: 'x.redb', purgeIntervalSeconds: -5 }, '`purgeIntervalSeconds`'],
      [{ path: 'x.redb', secret: 'typo' }, 'unknown option `secret`'],
    ]
    for (const [opts, words] of bad) {
      expect(() => AuthDbAdapter(opts)).toThrow(TypeError)
      expect(() => AuthDbAdapter(opts)).toThrow(words)
    }
  })

  test('a path that cannot be opened rejects the calls, not the process', async () => {
    const a = AuthDbAdapter({ path: '/nonexistent-dir/for/sure/auth.redb', purgeIntervalSeconds: 0 })
    const e = await rejection(a.getUser(randomUUID()))
    expect(e.name).toBe('AuthDbError')
    expect(e.code).toBe('Storage')
    const f = await rejection(a.getUser(randomUUID())) // tried again, refused again
    expect(f.code).toBe('Storage')
  })

  test('a key given as 32 bytes works', async () => {
    const { adapter: keyed } = freshAdapter({ encryptionKey: new Uint8Array(32).fill(7) })
    const u = await keyed.createUser({ email: 'bytes@example.com', emailVerified: null })
    const linked = await keyed.linkAccount({ userId: u.id, type: 'oauth', provider: 'p', providerAccountId: '1', access_token: 'secret' })
    expect(linked.access_token).toBe('secret')
  })
})

describe('the native handle on its own', () => {
  test('refuses wrong types with an error, without crashing', async () => {
    const h = await __test.handle(adapter)
    const u = await userOf()
    const calls = [
      () => h.createUser(5),
      () => h.createUser({ email: 5 }),
      () => h.getUser(undefined),
      () => h.createSession(1, 2, 3),
      () => h.createSession('t', 'not-a-uuid', Date.now()),
      () => h.createSession('t', u.id, NaN),
      () => h.createSession('t', u.id, 1e300),
      () => h.linkAccount(u.id, null),
      () => h.linkAccount(u.id, { providerType: 'oauth', provider: 'p', providerAccountId: '1', expiresAt: Infinity }),
      () => h.linkAccount(u.id, { providerType: 'oauth', provider: 'p', providerAccountId: '1', extra: '[1,2]' }),
      () => h.linkAccount(u.id, { providerType: 'oauth', provider: 'p', providerAccountId: '1', extra: '{not json' }),
      () => h.updateUser(u.id, {}, ['id']),
      () => h.updateUser(u.id, {}, 'name'),
      () => h.updateAuthenticatorCounter('c', 'x'),
      () => h.updateAuthenticatorCounter('c', -1),
      () => h.updateAuthenticatorCounter('c', 0.5),
      () => h.createAuthenticator({ credentialId: 'c', userId: u.id }),
    ]
    for (const call of calls) {
      let error
      try {
        await call()
      } catch (e) {
        error = e
      }
      expect(error, String(call)).toBeInstanceOf(Error)
      expect(error.message.length).toBeGreaterThan(0)
    }
  })
})

describe('random garbage into every method', () => {
  test('2000 calls: each resolves or rejects with an Error; the process stays up', async () => {
    const u = await userOf()
    const values = [
      undefined,
      null,
      0,
      -1,
      1.5,
      NaN,
      Infinity,
      2 ** 64,
      '',
      'x',
      u.id,
      randomUUID(),
      '\ud800',
      'z'.repeat(5000),
      true,
      {},
      [],
      [1, 2],
      new Date(NaN),
      new Date(8.64e15),
      new Date(-8.64e15),
      later(),
      { id: u.id },
      { userId: u.id, sessionToken: 's', expires: later() },
      { provider: 'p', providerAccountId: 'x', type: 'oauth', userId: u.id },
      { identifier: 'a@b.c', token: 't', expires: later() },
      Object.create(null),
      new Proxy({}, {}),
      Symbol('s'),
      5n,
      () => {},
    ]
    const methods = Object.keys(adapter)
    expect(methods).toHaveLength(19)
    let seed = 12345
    const pick = (arr) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return arr[seed % arr.length]
    }
    let resolved = 0
    let rejected = 0
    for (let i = 0; i < 2000; i++) {
      const method = pick(methods)
      const args = [pick(values), pick(values)]
      try {
        await adapter[method](...args)
        resolved++
      } catch (e) {
        expect(e).toBeInstanceOf(Error)
        expect(typeof e.message).toBe('string')
        expect(e.message.length).toBeGreaterThan(0)
        expect(['InvalidArgument', 'InvalidInput', 'InvalidValue', 'UserNotFound', 'AuthenticatorNotFound', 'CounterNotIncreased', 'EmailTaken', 'SessionTokenTaken', 'VerificationTokenTaken', 'AccountLinkedToAnotherUser', 'AuthenticatorTaken', 'EncryptionKeyRequired']).toContain(e.code)
        rejected++
      }
    }
    expect(resolved + rejected).toBe(2000)
    expect(resolved).toBeGreaterThan(0)
    const report = await __test.checkIntegrity(adapter)
    expect(report.problems).toEqual([])
  })
})
