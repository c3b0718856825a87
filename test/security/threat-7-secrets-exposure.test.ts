import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { statSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createSecretBox } from '../../src/platform/auth/secret-box.ts'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

describe('threat 7: secrets exposure', () => {
  let t: TestApp
  let a: TestTenant
  const logLines: string[] = []

  before(async () => {
    t = await startTestApp({ LOG_LEVEL: 'trace' }, undefined, { logStream: { write: (line) => void logLines.push(line) } })
    a = await createTenant(t)
  })
  after(async () => t.close())

  it('when signing keys are stored, then only AES-GCM ciphertext is in the database and another KEK cannot open it', async () => {
    const rows = await t.admin<{ kid: string; private_enc: string; kek_id: string }[]>`select kid, private_enc, kek_id from signing_keys`
    assert.ok(rows.length >= 1)
    for (const row of rows) {
      assert.doesNotMatch(row.private_enc, /PRIVATE KEY|BEGIN/)
      assert.equal(row.kek_id, t.deps.box.keyId)
      assert.match(t.deps.box.open(row.private_enc, `signing-key:${row.kid}`).toString(), /BEGIN PRIVATE KEY/)
      const other = createSecretBox(randomBytes(32))
      assert.throws(() => other.open(row.private_enc, `signing-key:${row.kid}`))
      // The ciphertext is bound to its row: moved to another kid, it does not open.
      assert.throws(() => t.deps.box.open(row.private_enc, 'signing-key:another'))
    }
  })

  it('when requests carry a bearer token and a password, then neither reaches the logs', async () => {
    const secretPassword = `pw-${randomBytes(12).toString('hex')}`
    await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth })
    await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects?limit=0`, headers: a.auth })
    await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects?access_token=${a.token}` })
    await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { tenant_slug: a.slug, email: a.email, password: secretPassword } })
    await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects`, headers: { ...a.auth, 'content-type': 'application/json' }, payload: `{"name": "${secretPassword}` })
    const text = logLines.join('')
    assert.ok(text.length > 0, 'logs were captured')
    assert.ok(!text.includes(a.token), 'the access token appears in the logs')
    assert.ok(!text.includes(a.token.split('.')[2] ?? 'x'), 'the token signature appears in the logs')
    assert.ok(!text.includes(secretPassword), 'the password appears in the logs')
  })

  it('when the JWKS is published, then it carries no private or symmetric key material', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    if (res.statusCode === 404) return assert.fail('JWKS route missing')
    const { keys } = res.json<{ keys: Record<string, unknown>[] }>()
    assert.ok(keys.length >= 1)
    for (const k of keys) for (const field of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(k[field], undefined, `JWK field ${field}`)
  })

  it('when the server runs on HS256, then the JWKS publishes no key at all', async () => {
    const hs = await startTestApp({ JWT_ALG: 'HS256', JWT_SECRET: randomBytes(32).toString('base64') })
    try {
      const res = await hs.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
      assert.equal(res.statusCode, 200)
      assert.deepEqual(res.json(), { keys: [] })
    } finally {
      await hs.close()
    }
  })

  it('when development generates a key-encryption key, then its file is readable by its owner only', async () => {
    const dev = await startTestApp({ KEY_ENCRYPTION_KEY: undefined })
    try {
      const file = path.join(dev.deps.config.db.dataDir, 'key-encryption-key')
      assert.equal(statSync(file).mode & 0o077, 0, 'group/other bits are set')
    } finally {
      await dev.close()
    }
  })

  it('when an error is unexpected, then the body says nothing of its cause', async () => {
    const res = await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth, query: { cursor: 'a.b' } })
    assert.equal(res.statusCode, 400)
    assert.doesNotMatch(res.body, /postgres|select |stack|\.ts:|node_modules/i)
  })
})
