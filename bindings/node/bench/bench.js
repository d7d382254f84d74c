#!/usr/bin/env node
'use strict'
// Adapter calls per second for getSessionAndUser and createSession: @authdb/authjs-adapter
// against a plain-SQL Auth.js adapter on better-sqlite3 with @auth/pg-adapter's schema
// (sqlite-adapter.js), in one process, the two interleaved round by round (which one goes
// first alternates), so that both see the same machine state. Reports the median of the rounds.
//
//   cd bindings/node && npm run build && cd bench && npm install && node bench.js
//   node bench.js --seconds 2 --rounds 5 --users 1000 --sessions-per-user 10
//
// Two pairings:
//   durable: authdb durability "immediate" vs SQLite WAL + synchronous=FULL (every commit is
//            flushed to disk before the call returns)
//   relaxed: authdb durability "none"      vs SQLite WAL + synchronous=NORMAL (commits are not
//            flushed; a crash may lose the last ones, the file stays consistent)
// Each workload runs with 1 call in flight (each awaited before the next) and with 64 in flight
// (a busy server). authdb's calls run on libuv's thread pool (UV_THREADPOOL_SIZE, default 4);
// better-sqlite3's run on the JavaScript thread.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { AuthDbAdapter } = require('..')
const { SqliteAdapter } = require('./sqlite-adapter')

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? dflt : Number(process.argv[i + 1])
}
const SECONDS = arg('seconds', 1)
const ROUNDS = arg('rounds', 3)
const USERS = arg('users', 1000)
const SESSIONS_PER_USER = arg('sessions-per-user', 10)
const CONCURRENCY = [1, 64]

const HOUR = 60 * 60 * 1000

async function measure(call, concurrency) {
  let n = 0
  const started = performance.now()
  const end = started + SECONDS * 1000
  async function worker() {
    while (performance.now() < end) await call(n++)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return n / ((performance.now() - started) / 1000)
}

/** Fills an adapter with users and sessions; returns the session tokens. */
async function populate(adapter, tag) {
  const tokens = []
  const expires = new Date(Date.now() + 30 * 24 * HOUR)
  for (let u = 0; u < USERS; u++) {
    const user = await adapter.createUser({
      name: `User ${u}`,
      email: `user${u}@example.com`,
      image: `https://example.com/avatars/${u}.png`,
      emailVerified: new Date(),
    })
    const batch = []
    for (let s = 0; s < SESSIONS_PER_USER; s++) {
      const token = `${tag}-seed-${u}-${s}-${Math.random().toString(36).slice(2)}`
      tokens.push(token)
      batch.push(adapter.createSession({ sessionToken: token, userId: user.id, expires }))
    }
    await Promise.all(batch)
  }
  return tokens
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

// The disk's flush latency now, in the data directory: 20 untimed flushes, then the median of
// 100 times "overwrite 4 KiB and fdatasync" (the same probe as the Rust benches). Durable
// numbers move with it; a run whose two probes differ by more than 1.3x is not to be trusted.
function probe(dir) {
  const file = path.join(dir, 'fsync-probe')
  const fd = fs.openSync(file, 'w')
  const page = Buffer.alloc(4096)
  fs.writeSync(fd, Buffer.alloc(65536), 0, 65536, 0)
  fs.fsyncSync(fd)
  const times = []
  for (let i = 0; i < 120; i++) {
    page.fill(i & 0xff)
    const t = process.hrtime.bigint()
    fs.writeSync(fd, page, 0, 4096, (i % 16) * 4096)
    fs.fdatasyncSync(fd)
    if (i >= 20) times.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  fs.closeSync(fd)
  fs.rmSync(file)
  return median(times)
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'authdb-bench-'))
  const probeBefore = probe(dir)
  const pairs = [
    {
      mode: 'durable',
      authdb: AuthDbAdapter({ path: path.join(dir, 'durable.redb'), durability: 'immediate', purgeIntervalSeconds: 0 }),
      sqlite: SqliteAdapter(path.join(dir, 'durable.sqlite'), { synchronous: 'FULL' }),
    },
    {
      mode: 'relaxed',
      authdb: AuthDbAdapter({ path: path.join(dir, 'relaxed.redb'), durability: 'none', purgeIntervalSeconds: 0 }),
      sqlite: SqliteAdapter(path.join(dir, 'relaxed.sqlite'), { synchronous: 'NORMAL' }),
    },
  ]

  console.log(`node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}`)
  console.log(`load average at the start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  console.log(`data: ${USERS} users x ${SESSIONS_PER_USER} sessions per store; ${ROUNDS} rounds of ${SECONDS} s per measurement; files in ${dir}`)

  const results = {} // key -> array of calls/s
  const record = (key, v) => (results[key] ??= []).push(v)

  for (const pair of pairs) {
    pair.tokens = {}
    for (const name of ['authdb', 'sqlite']) {
      const t0 = performance.now()
      pair.tokens[name] = await populate(pair[name], `${pair.mode}-${name}`)
      console.log(`populated ${pair.mode}/${name} in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    }
  }

  let serial = 0
  for (let round = 0; round < ROUNDS; round++) {
    for (const pair of pairs) {
      for (const concurrency of CONCURRENCY) {
        const order = round % 2 === 0 ? ['authdb', 'sqlite'] : ['sqlite', 'authdb']
        for (const name of order) {
          const adapter = pair[name]
          const tokens = pair.tokens[name]
          let x = 12345
          const rate = await measure(async () => {
            x = (x * 1103515245 + 12345) % 2147483648
            const found = await adapter.getSessionAndUser(tokens[x % tokens.length])
            if (!found) throw new Error('a seeded session was not found')
          }, concurrency)
          record(`${pair.mode}|getSessionAndUser|${concurrency}|${name}`, rate)
        }
        for (const name of order) {
          const adapter = pair[name]
          const tokens = pair.tokens[name]
          const found = await adapter.getSessionAndUser(tokens[0])
          const userId = found.user.id
          const expires = new Date(Date.now() + 30 * 24 * HOUR)
          const rate = await measure(
            () => adapter.createSession({ sessionToken: `${pair.mode}-${name}-new-${serial++}`, userId, expires }),
            concurrency,
          )
          record(`${pair.mode}|createSession|${concurrency}|${name}`, rate)
        }
      }
    }
    console.log(`round ${round + 1}/${ROUNDS} done`)
  }

  const rows = []
  for (const pair of pairs) {
    for (const op of ['getSessionAndUser', 'createSession']) {
      for (const c of CONCURRENCY) {
        const as = results[`${pair.mode}|${op}|${c}|authdb`]
        const ss = results[`${pair.mode}|${op}|${c}|sqlite`]
        // The ratio of each round's pair (measured back to back), then the median of those.
        const ratio = median(as.map((a, i) => a / ss[i]))
        rows.push({ mode: pair.mode, op, inFlight: c, authdb: median(as), sqlite: median(ss), ratio })
      }
    }
  }
  const fmt = (n) => Math.round(n).toLocaleString('en-US')
  const probeAfter = probe(dir)
  const agree = Math.max(probeBefore, probeAfter) <= 1.3 * Math.min(probeBefore, probeAfter)
  console.log(`\nflush probe (median fdatasync of 4 KiB): ${probeBefore.toFixed(3)} ms before, ${probeAfter.toFixed(3)} ms after: ${agree ? 'agree' : 'DISAGREE (durable rows not to be trusted)'}`)
  console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  console.log('medians of the rounds; the last column is the median of the per-round ratios')
  console.log('| pairing | operation | calls in flight | authdb calls/s | better-sqlite3 calls/s | authdb / sqlite |')
  console.log('|---|---|---:|---:|---:|---:|')
  for (const r of rows) {
    console.log(`| ${r.mode} | ${r.op} | ${r.inFlight} | ${fmt(r.authdb)} | ${fmt(r.sqlite)} | ${r.ratio.toFixed(2)} |`)
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify({ rows, raw: results }))

  for (const pair of pairs) pair.sqlite.close()
  fs.rmSync(dir, { recursive: true, force: true })
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
