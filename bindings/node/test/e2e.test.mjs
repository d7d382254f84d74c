// End to end: a real Node HTTP server running @auth/core's Auth() with an email provider and
// the authdb adapter (test/e2e/server.mjs, its own process), driven over HTTP on 127.0.0.1
// like a browser: ask for a sign-in link, open it, get a database-session cookie that resolves
// to the user; opening the same link again is refused.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { AuthDbAdapter, __test, cleanup, tempDbPath } from './helpers.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const dbPath = tempDbPath()
const outbox = path.join(path.dirname(dbPath), 'outbox.jsonl')
const secret = 'e2e secret: a long random string in real life'

let server
let base
let serverLog = ''

beforeAll(async () => {
  server = spawn(process.execPath, [path.join(here, 'e2e', 'server.mjs')], {
    env: { ...process.env, DB_PATH: dbPath, OUTBOX: outbox, AUTH_SECRET: secret },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  server.stderr.on('data', (d) => {
    serverLog += d
  })
  const port = await new Promise((resolve, reject) => {
    let out = ''
    server.stdout.on('data', (d) => {
      out += d
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line) resolve(JSON.parse(line).port)
    })
    server.once('exit', (code) => reject(new Error(`server exited (${code}): ${serverLog}`)))
  })
  base = `http://127.0.0.1:${port}`
})

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve))
    server.kill('SIGTERM')
    await exited
  }
  cleanup()
})

/** A browser's cookie jar, enough for one host. */
class Jar {
  cookies = new Map()
  take(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a))
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }
}

async function get(jar, url) {
  const r = await fetch(new URL(url, base), { headers: { cookie: jar.header() }, redirect: 'manual' })
  jar.take(r)
  return r
}

function lastLink(identifier) {
  const lines = fs.readFileSync(outbox, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  const mine = lines.filter((l) => l.identifier === identifier)
  return mine[mine.length - 1]?.url
}

test('email sign-in: link → database session → the user; the link works once', async () => {
  const jar = new Jar()
  const email = 'ada@example.com'

  // 1. The sign-in form's CSRF token.
  const csrf = await get(jar, '/auth/csrf')
  expect(csrf.status).toBe(200)
  const { csrfToken } = await csrf.json()
  expect(typeof csrfToken).toBe('string')

  // 2. Ask for a link.
  const ask = await fetch(new URL('/auth/signin/email', base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
    body: new URLSearchParams({ email, csrfToken, callbackUrl: `${base}/dashboard` }),
    redirect: 'manual',
  })
  jar.take(ask)
  expect(ask.status).toBe(302)
  expect(ask.headers.get('location')).toContain('/auth/verify-request')
  const link = lastLink(email)
  expect(link).toMatch(/\/auth\/callback\/email\?/)
  expect(new URL(link).searchParams.get('email')).toBe(email)

  // 3. Open it: signed in, redirected to the callback URL, with a database-session cookie.
  const open = await get(jar, link)
  expect(open.status).toBe(302)
  expect(open.headers.get('location')).toBe(`${base}/dashboard`)
  const sessionToken = jar.cookies.get('authjs.session-token')
  expect(sessionToken).toMatch(/^[0-9a-f-]{36}$/) // a database session's token, not a JWT

  // 4. The cookie resolves to the user, through Auth.js and through the adapter.
  const session = await (await get(jar, '/auth/session')).json()
  expect(session.user.email).toBe(email)
  expect(new Date(session.expires).getTime()).toBeGreaterThan(Date.now())
  const who = await get(jar, '/whoami')
  expect(who.status).toBe(200)
  const { user, session: stored } = await who.json()
  expect(user.email).toBe(email)
  expect(user.emailVerified).not.toBeNull()
  expect(stored.sessionToken).toBe(sessionToken)
  expect(stored.userId).toBe(user.id)

  // 5. The same link again is refused and signs no one in.
  const other = new Jar()
  const again = await get(other, link)
  expect(again.status).toBe(302)
  expect(again.headers.get('location')).toMatch(/\/auth\/error\?error=Verification/)
  expect(other.cookies.has('authjs.session-token')).toBe(false)

  // 6. Signing out deletes the database session.
  const csrf2 = await (await get(jar, '/auth/csrf')).json()
  const out = await fetch(new URL('/auth/signout', base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
    body: new URLSearchParams({ csrfToken: csrf2.csrfToken }),
    redirect: 'manual',
  })
  jar.take(out)
  expect(out.status).toBe(302)
  const whoAfter = await fetch(new URL('/whoami', base), { headers: { cookie: `authjs.session-token=${sessionToken}` } })
  expect(whoAfter.status).toBe(401)
})

test('a second sign-in by email finds the same user', async () => {
  const jar = new Jar()
  const { csrfToken } = await (await get(jar, '/auth/csrf')).json()
  const ask = await fetch(new URL('/auth/signin/email', base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
    body: new URLSearchParams({ email: 'ADA@example.com', csrfToken, callbackUrl: base }),
    redirect: 'manual',
  })
  jar.take(ask)
  expect(ask.status).toBe(302)
  await get(jar, lastLink('ada@example.com'))
  const who = await (await get(jar, '/whoami')).json()
  expect(who.user.email).toBe('ada@example.com')

  // Stop the server, then read the file it wrote: one user, clean indexes.
  const exited = new Promise((resolve) => server.once('exit', resolve))
  server.kill('SIGTERM')
  await exited
  const adapter = AuthDbAdapter({ path: dbPath, encryptionKey: secret, purgeIntervalSeconds: 0 })
  const report = await __test.checkIntegrity(adapter)
  expect(report.problems).toEqual([])
  expect(report.users).toBe(1)
  expect(report.sessions).toBe(1)
  expect(await adapter.getUserByEmail('ada@example.com')).toMatchObject({ id: who.user.id })
})
