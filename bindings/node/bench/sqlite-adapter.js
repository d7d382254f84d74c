'use strict'
// The baseline: an Auth.js adapter written the way the official SQL adapters are (the schema
// and queries of @auth/pg-adapter: SERIAL ids, a UNIQUE session token, getSessionAndUser as
// two queries), in plain SQL on better-sqlite3. Only what the benchmark calls is here.
// Timestamps are stored as milliseconds (SQLite has no TIMESTAMPTZ).

const Database = require('better-sqlite3')

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name VARCHAR(255),
  email VARCHAR(255) UNIQUE,
  "emailVerified" INTEGER,
  image TEXT
);
CREATE TABLE IF NOT EXISTS accounts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  "userId" INTEGER NOT NULL REFERENCES users ON DELETE CASCADE,
  type VARCHAR(255) NOT NULL,
  provider VARCHAR(255) NOT NULL,
  "providerAccountId" VARCHAR(255) NOT NULL,
  refresh_token TEXT,
  access_token TEXT,
  expires_at BIGINT,
  id_token TEXT,
  scope TEXT,
  session_state TEXT,
  token_type TEXT,
  UNIQUE (provider, "providerAccountId")
);
CREATE TABLE IF NOT EXISTS sessions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  "userId" INTEGER NOT NULL REFERENCES users ON DELETE CASCADE,
  expires INTEGER NOT NULL,
  "sessionToken" VARCHAR(255) UNIQUE NOT NULL
);
CREATE TABLE IF NOT EXISTS verification_token (
  identifier TEXT NOT NULL,
  expires INTEGER NOT NULL,
  token TEXT NOT NULL,
  PRIMARY KEY (identifier, token)
);
`

/**
 * @param {string} file
 * @param {{ synchronous: 'FULL' | 'NORMAL' }} options  FULL: every commit is fsynced (like
 *   authdb's durability "immediate"); NORMAL: WAL commits are not (like "none").
 */
function SqliteAdapter(file, { synchronous }) {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${synchronous}`)
  db.pragma('foreign_keys = ON')
  db.exec(SCHEMA)

  const toUser = (r) => ({
    id: String(r.id),
    name: r.name,
    email: r.email,
    emailVerified: r.emailVerified === null ? null : new Date(r.emailVerified),
    image: r.image,
  })
  const toSession = (r) => ({ sessionToken: r.sessionToken, userId: String(r.userId), expires: new Date(r.expires) })

  const insertUser = db.prepare(
    'INSERT INTO users (name, email, "emailVerified", image) VALUES (?, ?, ?, ?) RETURNING id, name, email, "emailVerified", image',
  )
  const insertSession = db.prepare(
    'INSERT INTO sessions ("userId", expires, "sessionToken") VALUES (?, ?, ?) RETURNING id, "sessionToken", "userId", expires',
  )
  const sessionByToken = db.prepare('SELECT * FROM sessions WHERE "sessionToken" = ?')
  const userById = db.prepare('SELECT * FROM users WHERE id = ?')

  return {
    async createUser(user) {
      return toUser(
        insertUser.get(user.name ?? null, user.email ?? null, user.emailVerified ? user.emailVerified.getTime() : null, user.image ?? null),
      )
    },
    async createSession({ sessionToken, userId, expires }) {
      return toSession(insertSession.get(Number(userId), expires.getTime(), sessionToken))
    },
    async getSessionAndUser(sessionToken) {
      const s = sessionByToken.get(sessionToken)
      if (!s) return null
      const u = userById.get(s.userId)
      if (!u) return null
      return { session: toSession(s), user: toUser(u) }
    },
    close() {
      db.close()
    },
  }
}

module.exports = { SqliteAdapter }
