'use strict'
// The Auth.js adapter over the native handle: argument checks, Auth.js's shapes in and out.
//
// The native half (src/lib.rs) speaks in plain records: timestamps in milliseconds since 1970
// (`expires_at` in seconds), extra fields as JSON text, `null` for "not found". This file
// turns Auth.js's objects into those records and back:
//   - Dates become milliseconds and come back as Dates;
//   - fields Auth.js does not name (a user's `role`, a provider's `refresh_token_expires_in`)
//     travel as one JSON object (`extra`) and come back as fields of their own;
//   - optional fields that are not stored are absent from what is returned, and fields that
//     Auth.js's types require (`email`, `emailVerified`) are `null` when not stored.
// Wrong argument types are TypeErrors with `code: 'InvalidArgument'`; refusals of the store
// (a taken email, an oversized field, an unknown user) are Errors with `name: 'AuthDbError'`
// and `code` naming authdb's error (`EmailTaken`, `InvalidInput`, `UserNotFound`, ...).

const native = require('./native')

/** adapter object -> function returning (a promise of) its native handle; for testing.js. */
const handleOf = new WeakMap()

// ---------------------------------------------------------------------------------------------
// Argument checks

function argError(method, message) {
  const e = new TypeError(`@authdb/authjs-adapter ${method}: ${message}`)
  e.code = 'InvalidArgument'
  return e
}

function describe(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'object') return Object.prototype.toString.call(v).slice(8, -1)
  return typeof v
}

function object(method, name, v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw argError(method, `\`${name}\` must be an object, got ${describe(v)}`)
  }
  return v
}

function string(method, name, v) {
  if (typeof v !== 'string') {
    throw argError(method, `\`${name}\` must be a string, got ${describe(v)}`)
  }
  return v
}

/** A string, or `undefined` for null/undefined. */
function optString(method, name, v) {
  return v === undefined || v === null ? undefined : string(method, name, v)
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A user id the store must find: a UUID (authdb makes every user id). */
function userId(method, name, v) {
  string(method, name, v)
  if (!UUID.test(v)) {
    throw argError(method, `\`${name}\` must be a user id made by authdb (a UUID), got ${JSON.stringify(v.slice(0, 64))}`)
  }
  return v
}

/** A Date (of any realm) as milliseconds since 1970. */
function dateMs(method, name, v) {
  let t
  try {
    t = Date.prototype.getTime.call(v) // throws for anything that is not a real Date
  } catch {
    throw argError(method, `\`${name}\` must be a Date, got ${describe(v)}`)
  }
  if (Number.isNaN(t)) throw argError(method, `\`${name}\` is an invalid Date`)
  return t
}

function optDateMs(method, name, v) {
  return v === undefined || v === null ? undefined : dateMs(method, name, v)
}

function optFiniteNumber(method, name, v) {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw argError(method, `\`${name}\` must be a finite number, got ${describe(v)}`)
  }
  return v
}

function counter(method, name, v) {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw argError(method, `\`${name}\` must be a non-negative integer, got ${typeof v === 'number' ? v : describe(v)}`)
  }
  return v
}

function boolean(method, name, v) {
  if (typeof v !== 'boolean') throw argError(method, `\`${name}\` must be a boolean, got ${describe(v)}`)
  return v
}

/**
 * The fields of `obj` outside `known` whose values are not `undefined`, as JSON text (or
 * `undefined` when there are none).
 */
function extraJson(method, obj, known) {
  let extra
  for (const key of Object.keys(obj)) {
    if (known.has(key)) continue
    const v = obj[key]
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue
    extra ??= {}
    Object.defineProperty(extra, key, { value: v, enumerable: true, writable: true, configurable: true })
  }
  if (extra === undefined) return undefined
  try {
    return JSON.stringify(extra)
  } catch (e) {
    throw argError(method, `extra fields must be JSON-serializable (${e.message})`)
  }
}

/** Copies the fields of a stored `extra` object onto `out`, never over a field it has. */
function spreadExtra(out, json) {
  if (!json) return out
  const extra = JSON.parse(json)
  for (const key of Object.keys(extra)) {
    if (Object.prototype.hasOwnProperty.call(out, key)) continue
    Object.defineProperty(out, key, { value: extra[key], enumerable: true, writable: true, configurable: true })
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Shapes

const USER_FIELDS = new Set(['id', 'name', 'email', 'image', 'emailVerified'])
const ACCOUNT_FIELDS = new Set([
  'userId',
  'type',
  'provider',
  'providerAccountId',
  'refresh_token',
  'access_token',
  'expires_at',
  'token_type',
  'scope',
  'id_token',
  'session_state',
])
// Auth.js's optional account fields and their names in the native records.
const ACCOUNT_OPTIONAL = [
  ['refresh_token', 'refreshToken'],
  ['access_token', 'accessToken'],
  ['expires_at', 'expiresAt'],
  ['token_type', 'tokenType'],
  ['scope', 'scope'],
  ['id_token', 'idToken'],
  ['session_state', 'sessionState'],
]

function toUser(r) {
  const u = { id: r.id }
  if (r.name != null) u.name = r.name
  u.email = r.email ?? null
  u.emailVerified = r.emailVerified != null ? new Date(r.emailVerified) : null
  if (r.image != null) u.image = r.image
  return spreadExtra(u, r.extra)
}

function toAccount(r) {
  const a = {
    userId: r.userId,
    type: r.providerType,
    provider: r.provider,
    providerAccountId: r.providerAccountId,
  }
  for (const [field, raw] of ACCOUNT_OPTIONAL) {
    if (r[raw] != null) a[field] = r[raw]
  }
  return spreadExtra(a, r.extra)
}

function toSession(r) {
  return { sessionToken: r.sessionToken, userId: r.userId, expires: new Date(r.expires) }
}

function toVerificationToken(r) {
  return { identifier: r.identifier, token: r.token, expires: new Date(r.expires) }
}

function toAuthenticator(r) {
  const a = {
    credentialID: r.credentialId,
    userId: r.userId,
    providerAccountId: r.providerAccountId,
    credentialPublicKey: r.credentialPublicKey,
    counter: r.counter,
    credentialDeviceType: r.credentialDeviceType,
    credentialBackedUp: r.credentialBackedUp,
  }
  if (r.transports != null) a.transports = r.transports
  return a
}

// ---------------------------------------------------------------------------------------------
// Options

const OPTION_FIELDS = new Set([
  'path',
  'encryptionKey',
  'durability',
  'shareMode',
  'cacheSize',
  'verifyOnOpen',
  'purgeIntervalSeconds',
])
const SHARE_MODES = new Set(['exclusive', 'single-writer', 'multi-writer'])
/** authdb derives the key from a secret with HKDF, which does not slow guessing down. */
const MIN_SECRET_BYTES = 32

function openOptions(options) {
  const m = 'AuthDbAdapter'
  object(m, 'options', options)
  for (const key of Object.keys(options)) {
    if (!OPTION_FIELDS.has(key)) throw argError(m, `unknown option \`${key}\``)
  }
  const path = string(m, 'path', options.path)
  if (path.length === 0) throw argError(m, '`path` must not be empty')
  const out = { path }
  const key = options.encryptionKey
  if (typeof key === 'string') {
    if (key.length === 0) throw argError(m, '`encryptionKey` must not be empty')
    if (Buffer.byteLength(key) < MIN_SECRET_BYTES) {
      throw argError(
        m,
        `\`encryptionKey\` must be a random secret of at least ${MIN_SECRET_BYTES} bytes (e.g. \`openssl rand -base64 32\`), got ${Buffer.byteLength(key)}`,
      )
    }
    out.encryptionSecret = key
  } else if (ArrayBuffer.isView(key) && key.BYTES_PER_ELEMENT === 1) {
    if (key.length !== 32) throw argError(m, `\`encryptionKey\` as bytes must be 32 bytes long, got ${key.length}`)
    out.encryptionKeyHex = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')
  } else if (key !== undefined && key !== null) {
    throw argError(m, `\`encryptionKey\` must be a string (a long random secret) or 32 bytes, got ${describe(key)}`)
  }
  if (options.durability !== undefined) {
    if (options.durability !== 'immediate' && options.durability !== 'none') {
      throw argError(m, '`durability` must be "immediate" or "none"')
    }
    out.durability = options.durability
  }
  if (options.shareMode !== undefined) {
    if (!SHARE_MODES.has(options.shareMode)) {
      throw argError(m, '`shareMode` must be "exclusive", "single-writer" or "multi-writer"')
    }
    out.shareMode = options.shareMode
    if (options.shareMode !== 'exclusive' && options.durability === 'none') {
      throw argError(m, '`durability: "none"` cannot be combined with a shared `shareMode` (other processes would not see the commits)')
    }
  }
  if (options.cacheSize !== undefined) {
    if (!Number.isSafeInteger(options.cacheSize) || options.cacheSize < 0) {
      throw argError(m, '`cacheSize` must be a non-negative integer (bytes)')
    }
    out.cacheSize = options.cacheSize
  }
  if (options.verifyOnOpen !== undefined) out.verifyOnOpen = boolean(m, 'verifyOnOpen', options.verifyOnOpen)
  if (options.purgeIntervalSeconds !== undefined) {
    const s = options.purgeIntervalSeconds
    if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) {
      throw argError(m, '`purgeIntervalSeconds` must be a number of seconds (0 turns purging off)')
    }
    out.purgeIntervalSeconds = s
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// The adapter

/**
 * Errors napi throws before queueing work (a value it could not convert: its statuses are
 * `InvalidArg` and `...Expected`) become TypeErrors like ours; everything else (AuthDbErrors,
 * our own TypeErrors) passes through unchanged.
 */
function rethrow(method, e) {
  if (e && typeof e.code === 'string' && /^(InvalidArg|[A-Za-z]+Expected)$/.test(e.code)) {
    throw argError(method, e.message)
  }
  throw e
}

function AuthDbAdapter(options) {
  const opts = openOptions(options)
  let handle = null
  let opening = null

  /** The native handle: opened on first use (off the JavaScript thread), then kept. */
  function open() {
    if (opening === null) {
      opening = native.open(opts).then(
        (h) => {
          handle = h
          return h
        },
        (e) => {
          opening = null // a later call tries again (the file may have been released)
          throw e
        },
      )
    }
    return opening
  }

  const adapter = {
    async createUser(user) {
      const m = 'createUser'
      try {
        object(m, 'user', user)
        const input = {
          name: optString(m, 'name', user.name),
          email: optString(m, 'email', user.email),
          image: optString(m, 'image', user.image),
          emailVerified: optDateMs(m, 'emailVerified', user.emailVerified),
          extra: extraJson(m, user, USER_FIELDS),
        }
        const h = handle ?? (await open())
        return toUser(await h.createUser(input))
      } catch (e) {
        rethrow(m, e)
      }
    },

    async getUser(id) {
      const m = 'getUser'
      try {
        string(m, 'id', id)
        const h = handle ?? (await open())
        const r = await h.getUser(id)
        return r ? toUser(r) : null
      } catch (e) {
        rethrow(m, e)
      }
    },

    async getUserByEmail(email) {
      const m = 'getUserByEmail'
      try {
        string(m, 'email', email)
        const h = handle ?? (await open())
        const r = await h.getUserByEmail(email)
        return r ? toUser(r) : null
      } catch (e) {
        rethrow(m, e)
      }
    },

    async getUserByAccount(account) {
      const m = 'getUserByAccount'
      try {
        object(m, 'account', account)
        const provider = string(m, 'provider', account.provider)
        const providerAccountId = string(m, 'providerAccountId', account.providerAccountId)
        const h = handle ?? (await open())
        const r = await h.getUserByAccount(provider, providerAccountId)
        return r ? toUser(r) : null
      } catch (e) {
        rethrow(m, e)
      }
    },

    async updateUser(user) {
      const m = 'updateUser'
      try {
        object(m, 'user', user)
        const id = userId(m, 'id', user.id)
        const set = {}
        const clear = []
        for (const key of ['name', 'email', 'image']) {
          const v = user[key]
          if (v === undefined) continue
          if (v === null) clear.push(key)
          else set[key] = string(m, key, v)
        }
        if (user.emailVerified === null) clear.push('emailVerified')
        else if (user.emailVerified !== undefined) set.emailVerified = dateMs(m, 'emailVerified', user.emailVerified)
        set.extra = extraJson(m, user, USER_FIELDS)
        const h = handle ?? (await open())
        return toUser(await h.updateUser(id, set, clear))
      } catch (e) {
        rethrow(m, e)
      }
    },

    async deleteUser(id) {
      const m = 'deleteUser'
      try {
        userId(m, 'userId', id)
        const h = handle ?? (await open())
        await h.deleteUser(id)
      } catch (e) {
        rethrow(m, e)
      }
    },

    async linkAccount(account) {
      const m = 'linkAccount'
      try {
        object(m, 'account', account)
        const uid = userId(m, 'userId', account.userId)
        const input = {
          providerType: string(m, 'type', account.type),
          provider: string(m, 'provider', account.provider),
          providerAccountId: string(m, 'providerAccountId', account.providerAccountId),
          refreshToken: optString(m, 'refresh_token', account.refresh_token),
          accessToken: optString(m, 'access_token', account.access_token),
          expiresAt: optFiniteNumber(m, 'expires_at', account.expires_at),
          tokenType: optString(m, 'token_type', account.token_type),
          scope: optString(m, 'scope', account.scope),
          idToken: optString(m, 'id_token', account.id_token),
          sessionState: optString(m, 'session_state', account.session_state),
          extra: extraJson(m, account, ACCOUNT_FIELDS),
        }
        const h = handle ?? (await open())
        return toAccount(await h.linkAccount(uid, input))
      } catch (e) {
        rethrow(m, e)
      }
    },

    async unlinkAccount(account) {
      const m = 'unlinkAccount'
      try {
        object(m, 'account', account)
        const provider = string(m, 'provider', account.provider)
        const providerAccountId = string(m, 'providerAccountId', account.providerAccountId)
        const h = handle ?? (await open())
        const r = await h.unlinkAccount(provider, providerAccountId)
        return r ? toAccount(r) : undefined
      } catch (e) {
        rethrow(m, e)
      }
    },

    // Auth.js passes these two the other way round from every other account call.
    async getAccount(providerAccountId, provider) {
      const m = 'getAccount'
      try {
        string(m, 'providerAccountId', providerAccountId)
        string(m, 'provider', provider)
        const h = handle ?? (await open())
        const r = await h.getAccount(provider, providerAccountId)
        return r ? toAccount(r) : null
      } catch (e) {
        rethrow(m, e)
      }
    },

    async createSession(session) {
      const m = 'createSession'
      try {
        object(m, 'session', session)
        const token = string(m, 'sessionToken', session.sessionToken)
        const uid = userId(m, 'userId', session.userId)
        const expires = dateMs(m, 'expires', session.expires)
        const h = handle ?? (await open())
        return toSession(await h.createSession(token, uid, expires))
      } catch (e) {
        rethrow(m, e)
      }
    },

    async getSessionAndUser(sessionToken) {
      const m = 'getSessionAndUser'
      try {
        string(m, 'sessionToken', sessionToken)
        const h = handle ?? (await open())
        const r = await h.getSessionAndUser(sessionToken)
        return r ? { session: toSession(r.session), user: toUser(r.user) } : null
      } catch (e) {
        rethrow(m, e)
      }
    },

    async updateSession(session) {
      const m = 'updateSession'
      try {
        object(m, 'session', session)
        const token = string(m, 'sessionToken', session.sessionToken)
        const expires = optDateMs(m, 'expires', session.expires)
        const uid = session.userId == null ? undefined : userId(m, 'userId', session.userId)
        const h = handle ?? (await open())
        if (uid !== undefined || expires === undefined) {
          // Only the expiry can change; check the rest against what is stored.
          const current = await h.getSessionAndUser(token)
          if (!current) return null
          if (uid !== undefined && current.session.userId !== uid) {
            throw argError(m, 'a session cannot be moved to another user (`userId` differs from the stored one)')
          }
          if (expires === undefined) return toSession(current.session)
        }
        const r = await h.updateSession(token, expires)
        return r ? toSession(r) : null
      } catch (e) {
        rethrow(m, e)
      }
    },

    async deleteSession(sessionToken) {
      const m = 'deleteSession'
      try {
        string(m, 'sessionToken', sessionToken)
        const h = handle ?? (await open())
        const r = await h.deleteSession(sessionToken)
        return r ? toSession(r) : null
      } catch (e) {
        rethrow(m, e)
      }
    },

    async createVerificationToken(verificationToken) {
      const m = 'createVerificationToken'
      try {
        object(m, 'verificationToken', verificationToken)
        const identifier = string(m, 'identifier', verificationToken.identifier)
        const token = string(m, 'token', verificationToken.token)
        const expires = dateMs(m, 'expires', verificationToken.expires)
        const h = handle ?? (await open())
        return toVerificationToken(await h.createVerificationToken(identifier, token, expires))
      } catch (e) {
        rethrow(m, e)
      }
    },

    async useVerificationToken(params) {
      const m = 'useVerificationToken'
      try {
        object(m, 'params', params)
        const identifier = string(m, 'identifier', params.identifier)
        const token = string(m, 'token', params.token)
        const h = handle ?? (await open())
        const r = await h.useVerificationToken(identifier, token)
        return r ? toVerificationToken(r) : null
      } catch (e) {
        rethrow(m, e)
      }
    },

    async createAuthenticator(authenticator) {
      const m = 'createAuthenticator'
      try {
        object(m, 'authenticator', authenticator)
        const input = {
          credentialId: string(m, 'credentialID', authenticator.credentialID),
          userId: userId(m, 'userId', authenticator.userId),
          providerAccountId: string(m, 'providerAccountId', authenticator.providerAccountId),
          credentialPublicKey: string(m, 'credentialPublicKey', authenticator.credentialPublicKey),
          counter: counter(m, 'counter', authenticator.counter),
          credentialDeviceType: string(m, 'credentialDeviceType', authenticator.credentialDeviceType),
          credentialBackedUp: boolean(m, 'credentialBackedUp', authenticator.credentialBackedUp),
          transports: optString(m, 'transports', authenticator.transports),
        }
        const h = handle ?? (await open())
        return toAuthenticator(await h.createAuthenticator(input))
      } catch (e) {
        rethrow(m, e)
      }
    },

    async getAuthenticator(credentialID) {
      const m = 'getAuthenticator'
      try {
        string(m, 'credentialID', credentialID)
        const h = handle ?? (await open())
        const r = await h.getAuthenticator(credentialID)
        return r ? toAuthenticator(r) : null
      } catch (e) {
        rethrow(m, e)
      }
    },

    async listAuthenticatorsByUserId(id) {
      const m = 'listAuthenticatorsByUserId'
      try {
        string(m, 'userId', id)
        const h = handle ?? (await open())
        return (await h.listAuthenticators(id)).map(toAuthenticator)
      } catch (e) {
        rethrow(m, e)
      }
    },

    async updateAuthenticatorCounter(credentialID, newCounter) {
      const m = 'updateAuthenticatorCounter'
      try {
        string(m, 'credentialID', credentialID)
        counter(m, 'newCounter', newCounter)
        const h = handle ?? (await open())
        return toAuthenticator(await h.updateAuthenticatorCounter(credentialID, newCounter))
      } catch (e) {
        rethrow(m, e)
      }
    },
  }

  handleOf.set(adapter, () => handle ?? open())
  return adapter
}

module.exports = { AuthDbAdapter, handleOf, native }
