'use strict'
// @authdb/authjs-adapter: an Auth.js (next-auth v4, @auth/core v5) adapter on authdb.
//
//   const { AuthDbAdapter } = require('@authdb/authjs-adapter')
//   adapter: AuthDbAdapter({ path: './auth.redb', encryptionKey: process.env.AUTH_SECRET })
//
// See README.md. Test hooks live in '@authdb/authjs-adapter/testing', not here.

const { AuthDbAdapter } = require('./lib/adapter')

module.exports = { AuthDbAdapter }
