// Types of '@authdb/authjs-adapter/testing': raw reads for test suites. Not part of the adapter.
import type { AuthDbAdapterInstance } from './index'

/** A stored user as authdb keeps it. */
export interface RawUser {
  id: string
  name?: string
  email?: string
  image?: string
  /** Milliseconds since 1970. */
  emailVerified?: number
  /** JSON text of the extra fields. */
  extra?: string
  createdAt: number
  updatedAt: number
}

export interface RawSession {
  id: string
  sessionToken: string
  userId: string
  expires: number
  createdAt: number
  updatedAt: number
}

export interface RawAccount {
  id: string
  userId: string
  providerType: string
  provider: string
  providerAccountId: string
  refreshToken?: string
  accessToken?: string
  /** Unix seconds. */
  expiresAt?: number
  tokenType?: string
  scope?: string
  idToken?: string
  sessionState?: string
  extra?: string
  createdAt: number
  updatedAt: number
}

export interface RawVerificationToken {
  identifier: string
  token: string
  expires: number
}

export interface RawAuthenticator {
  credentialId: string
  userId: string
  providerAccountId: string
  credentialPublicKey: string
  counter: number
  credentialDeviceType: string
  credentialBackedUp: boolean
  transports?: string
  createdAt: number
  updatedAt: number
}

export interface RawIntegrity {
  clean: boolean
  problems: string[]
  users: number
  accounts: number
  sessions: number
  verificationTokens: number
  authenticators: number
}

export declare const __test: {
  /** The native handle behind an adapter. */
  handle(adapter: AuthDbAdapterInstance): Promise<unknown>
  user(adapter: AuthDbAdapterInstance, id: string): Promise<RawUser | null>
  /** Read in a discarded transaction: an expired session is not deleted by looking. */
  session(adapter: AuthDbAdapterInstance, sessionToken: string): Promise<RawSession | null>
  account(adapter: AuthDbAdapterInstance, key: { provider: string; providerAccountId: string }): Promise<RawAccount | null>
  /** Read in a discarded transaction: the token is not used up by looking. */
  verificationToken(adapter: AuthDbAdapterInstance, key: { identifier: string; token: string }): Promise<RawVerificationToken | null>
  authenticator(adapter: AuthDbAdapterInstance, credentialID: string): Promise<RawAuthenticator | null>
  checkIntegrity(adapter: AuthDbAdapterInstance): Promise<RawIntegrity>
  purgeExpired(adapter: AuthDbAdapterInstance): Promise<{ sessions: number; verificationTokens: number }>
  /** Drops the process-wide handle to the file at `path`; returns whether there was one. */
  forget(path: string): boolean
}
