// Types of @authdb/authjs-adapter. Self-contained (no import of @auth/core or next-auth), and
// shaped so that what AuthDbAdapter returns is assignable to the `Adapter` type of
// @auth/core (v5) and of next-auth v4. Like Auth.js's own types they name no extra fields: the
// adapter keeps every field it is given (a user's `role`, a provider's
// `refresh_token_expires_in`) and returns them; type them with Auth.js's module augmentation.

/** How to open the database file. The same file with the same options shares one handle per process. */
export interface AuthDbAdapterOptions {
  /** The database file; created (mode 0600) if missing. One process owns it at a time. */
  path: string
  /**
   * Encrypts OAuth tokens, ID tokens and provider-specific account fields at rest: a random
   * secret string of at least 32 bytes (such as AUTH_SECRET; the key is derived from it) or
   * exactly 32 bytes of key. Without
   * it, linking an account that carries tokens fails with `EncryptionKeyRequired`; accounts
   * without tokens (email, WebAuthn) need none. Keep it out of the database's directory.
   */
  encryptionKey?: string | Uint8Array
  /** `"immediate"` (default): every write is on disk when its promise resolves. `"none"`: no flush (a crash may lose the last writes; the file stays consistent). */
  durability?: 'immediate' | 'none'
  /**
   * How processes share the file. `"exclusive"` (default, fastest): one process; another
   * process's open is refused (`AlreadyOpen`). `"multi-writer"`: any number of processes read
   * and write it (writes take turns). `"single-writer"`: one writing process; others would open
   * it read-only (not offered by this adapter, which writes). Every process on the file must use
   * the same mode; the shared modes need `durability: "immediate"`.
   */
  shareMode?: 'exclusive' | 'single-writer' | 'multi-writer'
  /** Bytes of page cache. Default 64 MiB. */
  cacheSize?: number
  /** Verify every page checksum when the file is opened (default true). */
  verifyOnOpen?: boolean
  /** Seconds between background purges of expired sessions and sign-in links. Default 3600; 0 turns it off. */
  purgeIntervalSeconds?: number
}

/** A user. Fields Auth.js does not name (a `role`, a `plan`) are kept as JSON values. */
export type AdapterUser = {
  /** Made by authdb: a UUID (v7). An id proposed to createUser is not used. */
  id: string
  /** `null` at run time for a user created without an email. */
  email: string
  emailVerified: Date | null
  name?: string | null
  image?: string | null
}

export type AdapterAccountType = 'oauth' | 'oidc' | 'email' | 'webauthn'

/** A provider account. Provider-specific fields (`refresh_token_expires_in`, ...) are kept. */
export type AdapterAccount = {
  userId: string
  type: AdapterAccountType
  provider: string
  providerAccountId: string
  access_token?: string
  refresh_token?: string
  /** Unix seconds. */
  expires_at?: number
  token_type?: Lowercase<string>
  scope?: string
  id_token?: string
  session_state?: string | null
}

export type AdapterSession = {
  sessionToken: string
  userId: string
  expires: Date
}

export type VerificationToken = {
  identifier: string
  /** The hash Auth.js made of the emailed token and the secret. */
  token: string
  expires: Date
}

export type AdapterAuthenticator = {
  credentialID: string
  userId: string
  providerAccountId: string
  counter: number
  credentialBackedUp: boolean
  credentialPublicKey: string
  credentialDeviceType: string
  transports?: string | null
}

/**
 * The 19 methods of Auth.js's adapter interface. Every method returns a promise and runs its
 * database work off the JavaScript thread. Not found is `null` (`undefined` for unlinkAccount,
 * `[]` for listAuthenticatorsByUserId). Rejections: a `TypeError` with `code: 'InvalidArgument'`
 * for arguments of the wrong type (or a user id that is not a UUID where a user must exist),
 * an {@link AuthDbError} when the store refuses.
 */
export interface AuthDbAdapterInstance {
  /** authdb makes the id; one given here is not used. */
  createUser(user: AdapterUser): Promise<AdapterUser>
  /** `null` for an unknown id, including one that is not a UUID. */
  getUser(id: string): Promise<AdapterUser | null>
  /** Compared after NFKC, lowercasing and trimming. */
  getUserByEmail(email: string): Promise<AdapterUser | null>
  getUserByAccount(account: Pick<AdapterAccount, 'provider' | 'providerAccountId'>): Promise<AdapterUser | null>
  /** Partial: fields left out are kept, `null` clears one; extra fields merge (`null` removes one). */
  updateUser(user: Partial<AdapterUser> & Pick<AdapterUser, 'id'>): Promise<AdapterUser>
  /** Also removes the user's accounts, sessions and authenticators, in one transaction. */
  deleteUser(userId: string): Promise<void>
  /**
   * Linking the same account to the same user again refreshes its tokens. Resolves with the
   * stored account (typed `void` so that the adapter fits next-auth v4's types, whose accounts
   * have no `webauthn` type).
   */
  linkAccount(account: AdapterAccount): Promise<void>
  /** Resolves with the removed account, or `undefined` (typed `void`, as linkAccount). */
  unlinkAccount(account: Pick<AdapterAccount, 'provider' | 'providerAccountId'>): Promise<void>
  /** Note Auth.js's argument order: the provider's account id first. */
  getAccount(providerAccountId: string, provider: string): Promise<AdapterAccount | null>
  /** Only the SHA-256 of the token is stored. */
  createSession(session: AdapterSession): Promise<AdapterSession>
  /** An expired session is `null` (and deleted). */
  getSessionAndUser(sessionToken: string): Promise<{ session: AdapterSession; user: AdapterUser } | null>
  /** Writes the given expiry; a missing or expired session is `null` and is not revived. */
  updateSession(session: Partial<AdapterSession> & Pick<AdapterSession, 'sessionToken'>): Promise<AdapterSession | null>
  deleteSession(sessionToken: string): Promise<AdapterSession | null>
  createVerificationToken(verificationToken: VerificationToken): Promise<VerificationToken>
  /** Single use, atomically: of two concurrent calls for one link only one gets it. */
  useVerificationToken(params: { identifier: string; token: string }): Promise<VerificationToken | null>
  createAuthenticator(authenticator: AdapterAuthenticator): Promise<AdapterAuthenticator>
  getAuthenticator(credentialID: string): Promise<AdapterAuthenticator | null>
  /** Oldest first; `[]` for an unknown user. */
  listAuthenticatorsByUserId(userId: string): Promise<AdapterAuthenticator[]>
  /** Refuses (`CounterNotIncreased`) a counter that does not increase while either is non-zero. */
  updateAuthenticatorCounter(credentialID: string, newCounter: number): Promise<AdapterAuthenticator>
}

/** The codes of {@link AuthDbError}: authdb's error variants (docs/behaviour.md, section 7). */
export type AuthDbErrorCode =
  | 'EmailTaken'
  | 'AccountLinkedToAnotherUser'
  | 'VerificationTokenTaken'
  | 'SessionTokenTaken'
  | 'AuthenticatorTaken'
  | 'AuthenticatorNotFound'
  | 'CounterNotIncreased'
  | 'UserNotFound'
  | 'InvalidInput'
  | 'InvalidValue'
  | 'InvalidConfig'
  | 'EncryptionKeyRequired'
  | 'AlreadyOpen'
  | 'MigrationFailed'
  | 'UnsupportedSchemaVersion'
  | 'Corrupt'
  | 'Storage'
  | 'ReadOnly'
  | 'Internal'
  | (string & {})

/** What a refused call rejects with: an `Error` whose `name` is `'AuthDbError'`. Messages never contain a token, password or secret. */
export interface AuthDbError extends Error {
  name: 'AuthDbError'
  code: AuthDbErrorCode
  /** For `InvalidInput` and `InvalidValue`: the field authdb refused (authdb's name for it, e.g. `provider_id`). */
  field?: string
}

/**
 * An Auth.js adapter on the authdb file at `options.path`. The file is opened on the first
 * call (off the JavaScript thread) and shared by every adapter on it in this process. Throws a
 * `TypeError` at once for invalid options.
 */
export function AuthDbAdapter(options: AuthDbAdapterOptions): AuthDbAdapterInstance
