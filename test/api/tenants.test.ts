import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { addUser, createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

describe('tenants', () => {
  let t: TestApp
  let owner: TestTenant
  let admin: TestTenant
  let member: TestTenant
  let viewer: TestTenant
  let url: string

  const tenantRow = async () => {
    const [row] = await t.admin<{ name: string; slug: string; settings: unknown }[]>`select name, slug, settings from tenants where id = ${owner.tenantId}`
    return row
  }
  const patch = (who: TestTenant, payload: unknown) => t.app.inject({ method: 'PATCH', url, headers: who.auth, payload: payload as object })

  before(async () => {
    t = await startTestApp()
    owner = await createTenant(t)
    admin = await addUser(t, owner, 'admin')
    member = await addUser(t, owner, 'member')
    viewer = await addUser(t, owner, 'viewer')
    url = `/v1/tenants/${owner.tenantId}`
  })
  after(async () => t.close())

  it('when a viewer reads the tenant, then 403 forbidden (the contract gives tenant reads to members)', async () => {
    const res = await t.app.inject({ method: 'GET', url, headers: viewer.auth })
    assert.equal(res.statusCode, 403, res.body)
    assert.equal(res.json().code, 'forbidden')
  })

  it('when a member reads the tenant, then it gets id, slug, name, settings and created_at only', async () => {
    const res = await t.app.inject({ method: 'GET', url, headers: member.auth })
    assert.equal(res.statusCode, 200, res.body)
    const body = res.json()
    assert.deepEqual(Object.keys(body).sort(), ['created_at', 'id', 'name', 'settings', 'slug'])
    assert.equal(body.id, owner.tenantId)
    assert.equal(body.slug, owner.slug)
    assert.deepEqual(body.settings, {})
    assert.match(body.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/)
  })

  it('when an admin renames the tenant and sets settings, then the answer and the database both show them', async () => {
    const settings = { theme: 'dark', seats: 12, beta: true, note: null }
    const res = await patch(admin, { name: 'Renamed Inc', settings })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().name, 'Renamed Inc')
    assert.deepEqual(res.json().settings, settings)
    const row = await tenantRow()
    assert.equal(row?.name, 'Renamed Inc')
    assert.deepEqual(row?.settings, settings)
    const got = await t.app.inject({ method: 'GET', url, headers: member.auth })
    assert.deepEqual(got.json(), res.json())
  })

  it('when settings are patched again, then the whole object is replaced, not merged', async () => {
    await patch(owner, { settings: { a: 1, b: 2 } })
    const res = await patch(owner, { settings: { c: 'x' } })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json().settings, { c: 'x' })
    assert.deepEqual((await tenantRow())?.settings, { c: 'x' })
  })

  it('when only the name is patched, then the settings are kept', async () => {
    await patch(owner, { settings: { keep: 'me' } })
    const res = await patch(owner, { name: 'Only Name' })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json().settings, { keep: 'me' })
  })

  for (const role of ['member', 'viewer'] as const) {
    it(`when a ${role} patches the tenant, then 403 forbidden and nothing changes`, async () => {
      const before = await tenantRow()
      const res = await patch(role === 'member' ? member : viewer, { name: 'Hijacked' })
      assert.equal(res.statusCode, 403, res.body)
      assert.equal(res.json().code, 'forbidden')
      assert.deepEqual(await tenantRow(), before)
    })
  }

  it('when the slug is patched, then 400 names it as an unknown property and the slug stays', async () => {
    const res = await patch(owner, { slug: 'new-slug' })
    assert.equal(res.statusCode, 400, res.body)
    assert.equal(res.json().code, 'validation_failed')
    assert.ok(res.json<{ errors: { path: string }[] }>().errors.some((e) => e.path === '/body/slug'), res.body)
    assert.equal((await tenantRow())?.slug, owner.slug)
  })

  it('when the patch is empty, then 400', async () => {
    const res = await patch(owner, {})
    assert.equal(res.statusCode, 400, res.body)
  })

  const tooMuch: [string, unknown][] = [
    ['51 keys', Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]))],
    ['a 65-character key', { ['k'.repeat(65)]: 1 }],
    ['an empty key', { '': 1 }],
    ['a key with a space', { 'a b': 1 }],
    ['a 1001-character value', { k: 'v'.repeat(1001) }],
    ['a nested object', { k: { nested: true } }],
    ['an array value', { k: [1, 2] }],
    ['an array instead of an object', [1, 2]],
    ['a string instead of an object', 'settings'],
  ]
  for (const [what, settings] of tooMuch) {
    it(`when settings carry ${what}, then 400 and nothing changes`, async () => {
      const before = await tenantRow()
      const res = await patch(owner, { settings })
      assert.equal(res.statusCode, 400, res.body)
      assert.equal(res.json().code, 'validation_failed')
      assert.deepEqual(await tenantRow(), before)
    })
  }

  it('when a settings number overflows to Infinity, then 400 rather than a silently stored null', async () => {
    const before = await tenantRow()
    const res = await t.app.inject({ method: 'PATCH', url, headers: { ...owner.auth, 'content-type': 'application/json' }, payload: '{"settings":{"k":1e400}}' })
    assert.equal(res.statusCode, 400, res.body)
    assert.deepEqual(await tenantRow(), before)
  })

  it('when settings are exactly at their bounds (50 keys of 64 characters, 1000-character values), then they are stored', async () => {
    const settings = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`${String(i).padStart(2, '0')}${'k'.repeat(62)}`, 'v'.repeat(1000)]))
    const res = await patch(owner, { settings })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual((await tenantRow())?.settings, settings)
  })

  it('when the name is empty or longer than 200 characters, then 400 and nothing changes', async () => {
    const before = await tenantRow()
    for (const name of ['', 'n'.repeat(201)]) {
      const res = await patch(owner, { name })
      assert.equal(res.statusCode, 400, res.body)
    }
    assert.deepEqual(await tenantRow(), before)
  })

  describe('with REQUIRE_MFA_FOR_ADMIN=true', () => {
    let m: TestApp
    before(async () => {
      // Same database, so the same key-encryption key: the signing keys stored there must decrypt.
      m = await startTestApp({ REQUIRE_MFA_FOR_ADMIN: 'true', KEY_ENCRYPTION_KEY: t.deps.config.keyEncryptionKey?.toString('base64') }, t.db)
    })
    after(async () => m.close())

    it('when an admin without an OTP login patches the tenant, then 403 mfa_step_up_required and nothing changes', async () => {
      const before = await tenantRow()
      const issued = await m.deps.tokens.issue({ userId: admin.userId, tenantId: owner.tenantId, role: 'admin', amr: ['pwd'] })
      const res = await m.app.inject({ method: 'PATCH', url, headers: { authorization: `Bearer ${issued.token}` }, payload: { name: 'No OTP' } })
      assert.equal(res.statusCode, 403, res.body)
      assert.equal(res.json().code, 'mfa_step_up_required')
      assert.deepEqual(await tenantRow(), before)
    })

    it('when an admin with an OTP login patches the tenant, then it is changed', async () => {
      const issued = await m.deps.tokens.issue({ userId: admin.userId, tenantId: owner.tenantId, role: 'admin', amr: ['pwd', 'otp'] })
      const res = await m.app.inject({ method: 'PATCH', url, headers: { authorization: `Bearer ${issued.token}` }, payload: { name: 'With OTP' } })
      assert.equal(res.statusCode, 200, res.body)
      assert.equal((await tenantRow())?.name, 'With OTP')
    })
  })
})

describe('tenants: roles are re-checked in the database', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
  })
  after(async () => t.close())

  it('when an admin is demoted, then the token it already holds loses admin rights on the next request', async () => {
    const owner = await createTenant(t)
    const admin = await addUser(t, owner, 'admin')
    const patch = () => t.app.inject({ method: 'PATCH', url: `/v1/tenants/${owner.tenantId}`, headers: admin.auth, payload: { name: 'Renamed' } })
    assert.equal((await patch()).statusCode, 200)
    await t.admin`update users set role = 'member' where id = ${admin.userId}`
    const res = await patch()
    assert.equal(res.statusCode, 403)
    assert.equal(res.json().code, 'forbidden')
    // Reads a member may make still work with the same token.
    assert.equal((await t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}`, headers: admin.auth })).statusCode, 200)
  })
})
