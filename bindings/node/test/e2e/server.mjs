// A small Node HTTP server for the end-to-end test: @auth/core's Auth() with an email
// provider and the authdb adapter, database sessions. The email provider "sends" each link by
// appending it to the file OUTBOX. Prints `{"port": N}` once it listens.
//
//   DB_PATH=/tmp/auth.redb OUTBOX=/tmp/outbox.jsonl AUTH_SECRET=... node test/e2e/server.mjs
import fs from 'node:fs'
import http from 'node:http'
import { createRequire } from 'node:module'
import { Auth } from '@auth/core'

const require = createRequire(import.meta.url)
const { AuthDbAdapter } = require('../../index.js')

const { DB_PATH, OUTBOX, AUTH_SECRET } = process.env
if (!DB_PATH || !OUTBOX || !AUTH_SECRET) throw new Error('set DB_PATH, OUTBOX and AUTH_SECRET')

const adapter = AuthDbAdapter({ path: DB_PATH, encryptionKey: AUTH_SECRET })

const config = {
  secret: AUTH_SECRET,
  trustHost: true,
  basePath: '/auth',
  adapter,
  session: { strategy: 'database' },
  providers: [
    {
      id: 'email',
      type: 'email',
      name: 'Email',
      from: 'auth@example.com',
      maxAge: 10 * 60,
      async sendVerificationRequest({ identifier, url }) {
        fs.appendFileSync(OUTBOX, `${JSON.stringify({ identifier, url })}\n`)
      },
    },
  ],
  logger: {
    error(error) {
      // Auth.js reports a refused link as an error; keep the log short.
      console.error(`[auth] ${error.name ?? 'Error'}: ${error.message}`)
    },
    warn() {},
    debug() {},
  },
}

/** Node's request as a web Request. */
async function toRequest(req) {
  const url = new URL(req.url, `http://${req.headers.host}`)
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v)
    else if (value !== undefined) headers.set(name, value)
  }
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
  return new Request(url, { method: req.method, headers, body: hasBody ? Buffer.concat(chunks) : undefined })
}

/** A web Response written to Node's response (each Set-Cookie header kept separate). */
async function send(res, response) {
  const headers = {}
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value
  })
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) headers['set-cookie'] = cookies
  res.writeHead(response.status, headers)
  res.end(Buffer.from(await response.arrayBuffer()))
}

function cookie(req, name) {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === name) return decodeURIComponent(v.join('='))
  }
  return undefined
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${req.headers.host}`)
    if (url.pathname.startsWith('/auth/')) {
      await send(res, await Auth(await toRequest(req), config))
    } else if (url.pathname === '/whoami') {
      // The database session cookie, resolved by the adapter itself.
      const token = cookie(req, 'authjs.session-token')
      const found = token ? await adapter.getSessionAndUser(token) : null
      res.writeHead(found ? 200 : 401, { 'content-type': 'application/json' })
      res.end(JSON.stringify(found))
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end('home')
    }
  } catch (e) {
    console.error(e)
    res.writeHead(500)
    res.end('internal error')
  }
})

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }))
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
