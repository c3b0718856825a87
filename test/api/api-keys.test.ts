import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import { addUser, createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

interface CreatedKey {
  id: string
  name: string
  scopes: string[]
  prefix: string
  key: string
  expires_at: string | null
  created_at: string
}

const allScopes = ['projects:read', 'projects:write', 'tasks:read', 'tasks:write']

describe('API keys', () => {
  let t: TestApp
  let a: TestTenant

  before(async () => {
    t = await startTestApp()
    a = await createTenant(t)
  })
  after(async () => t.close())

  const keysUrl = (tenant: TestTenant) => `/v1/tenants/${tenant.tenantId}/api-keys`
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

  async function createKey(tenant: TestTenant, payload: Record<string, unknown>): Promise<CreatedKey> {
    const res = await t.app.inject({ method: 'POST', url: keysUrl(tenant), headers: tenant.auth, payload })
    assert.equal(res.statusCode, 201, res.body)
    return res.json<CreatedKey>()
  }

  async function listKeys(tenant: TestTenant, query: Record<string, string> = {}): Promise<{ items: Record<string, unknown>[]; next_cursor: string | null }> {
    const res = await t.app.inject({ method: 'GET', url: keysUrl(tenant), headers: tenant.auth, query })
    assert.equal(res.statusCode, 200, res.body)
    return res.json()
  }

  async function keyRow(id: string): Promise<Record<string, unknown>> {
    const [row] = await t.admin<Record<string, unknown>[]>`select * from api_keys where id = ${id}`
    assert.ok(row, 'the key row exists')
    return row
  }

  it('when an owner creates a key, then 201 shows the key once with its prefix, Location and scopes', async () => {
    const res = await t.app.inject({ method: 'POST', url: keysUrl(a), headers: a.auth, payload: { name: 'ci deploy', scopes: ['projects:read', 'tasks:write'] } })
    assert.equal(res.statusCode, 201, res.body)
    const body = res.json<CreatedKey>()
    assert.deepEqual(Object.keys(body).sort(), ['created_at', 'expires_at', 'id', 'key', 'name', 'prefix', 'scopes'])
    assert.equal(res.headers.location, `/v1/tenants/${a.tenantId}/api-keys/${body.id}`)
    assert.equal(body.name, 'ci deploy')
    assert.deepEqual(body.scopes, ['projects:read', 'tasks:write'])
    assert.equal(body.expires_at, null)
    assert.match(body.key, /^sk_[0-9a-f]{64}_[A-Za-z0-9_-]{43}$/)
    assert.ok(body.key.startsWith(`${body.prefix}_`), 'the prefix is how the key starts')
    assert.ok(Math.abs(Date.parse(body.created_at) - Date.now()) < 60_000)
  })

  it('when keys are listed, then each shows prefix, scopes and dates but never the key or its hash', async () => {
    const created = await createKey(a, { name: 'listed', scopes: ['tasks:read'] })
    const { items } = await listKeys(a)
    const listed = items.find((k) => k.id === created.id)
    assert.ok(listed, 'the new key is listed')
    assert.deepEqual(listed, {
      id: created.id,
      name: 'listed',
      scopes: ['tasks:read'],
      prefix: created.prefix,
      expires_at: null,
      created_at: created.created_at,
      last_used_at: null,
      revoked_at: null,
    })
    const text = JSON.stringify(items)
    assert.ok(!text.includes(created.key.slice(created.prefix.length + 1)), 'no secret in the list')
    assert.ok(!/hash|"key"/.test(text))
  })

  it('when there are more keys than the limit, then pages follow next_cursor newest first without repeats', async () => {
    const b = await createTenant(t)
    const made: string[] = []
    for (let i = 0; i < 5; i++) made.push((await createKey(b, { name: `k${i}`, scopes: ['projects:read'] })).id)
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page = await listKeys(b, { limit: '2', ...(cursor ? { cursor } : {}) })
      assert.ok(page.items.length <= 2)
      seen.push(...page.items.map((k) => String(k.id)))
      cursor = page.next_cursor
    } while (cursor)
    assert.deepEqual(seen, [...made].reverse())
  })

  it('when a key has all four scopes, then it reads and writes projects and tasks', async () => {
    const { key } = await createKey(a, { name: 'robot', scopes: allScopes })
    const project = await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects`, headers: bearer(key), payload: { name: 'made by a key' } })
    assert.equal(project.statusCode, 201, project.body)
    const projectId = project.json<{ id: string }>().id
    const projects = await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: bearer(key) })
    assert.equal(projects.statusCode, 200, projects.body)
    assert.ok(projects.json<{ items: { id: string }[] }>().items.some((p) => p.id === projectId))
    const task = await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects/${projectId}/tasks`, headers: bearer(key), payload: { title: 'a task' } })
    assert.equal(task.statusCode, 201, task.body)
    const taskId = task.json<{ id: string }>().id
    const tasks = await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects/${projectId}/tasks`, headers: bearer(key) })
    assert.equal(tasks.statusCode, 200, tasks.body)
    assert.deepEqual(tasks.json<{ items: { id: string }[] }>().items.map((x) => x.id), [taskId])
    const one = await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/tasks/${taskId}`, headers: bearer(key) })
    assert.equal(one.statusCode, 200, one.body)
  })

  it('when a key has only read scopes, then it reads but cannot write', async () => {
    const { key } = await createKey(a, { name: 'reader', scopes: ['projects:read', 'tasks:read'] })
    assert.equal((await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: bearer(key) })).statusCode, 200)
    const write = await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects`, headers: bearer(key), payload: { name: 'nope' } })
    assert.equal(write.statusCode, 403)
    assert.equal(write.json().code, 'forbidden')
  })

  it('when a key is stored, then its row holds the SHA-256 of the secret and no column holds the secret', async () => {
    const created = await createKey(a, { name: 'stored', scopes: ['projects:read'] })
    const secret = created.key.slice(created.prefix.length + 1)
    const row = await keyRow(created.id)
    assert.deepEqual(row.secret_hash, createHash('sha256').update(secret).digest())
    assert.equal(row.prefix, created.prefix)
    for (const [column, value] of Object.entries(row)) {
      const text = Buffer.isBuffer(value) ? `${value.toString('hex')} ${value.toString('base64')} ${value.toString('base64url')} ${value.toString('latin1')}` : JSON.stringify(value)
      assert.ok(!text.includes(secret), `column ${column} holds the secret`)
    }
  })

  it('when a key is used, then last_used_at is set, and a second use within a minute does not write it again', async () => {
    const created = await createKey(a, { name: 'used', scopes: ['projects:read'] })
    assert.equal((await keyRow(created.id)).last_used_at, null)
    assert.equal((await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: bearer(created.key) })).statusCode, 200)
    const first = (await keyRow(created.id)).last_used_at
    assert.ok(first instanceof Date && Math.abs(first.getTime() - Date.now()) < 60_000)
    assert.equal((await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: bearer(created.key) })).statusCode, 200)
    assert.deepEqual((await keyRow(created.id)).last_used_at, first)
    const listed = (await listKeys(a)).items.find((k) => k.id === created.id)
    assert.equal(listed?.last_used_at, first.toISOString())
    // An hour later (moved back by hand), the next use writes it again.
    await t.admin`update api_keys set last_used_at = now() - interval '1 hour' where id = ${created.id}`
    assert.equal((await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: bearer(created.key) })).statusCode, 200)
    const later = (await keyRow(created.id)).last_used_at
    assert.ok(later instanceof Date && Math.abs(later.getTime() - Date.now()) < 60_000)
  })

  it('when a key has an expiry in the future, then it works until then and is refused with 401 once it has passed', async () => {
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
    const created = await createKey(a, { name: 'temporary', scopes: ['projects:read'], expires_at: expiresAt })
    assert.equal(created.expires_at, expiresAt)
    const url = `/v1/tenants/${a.tenantId}/projects`
    assert.equal((await t.app.inject({ method: 'GET', url, headers: bearer(created.key) })).statusCode, 200)
    await t.admin`update api_keys set expires_at = now() - interval '1 second' where id = ${created.id}`
    const res = await t.app.inject({ method: 'GET', url, headers: bearer(created.key) })
    assert.equal(res.statusCode, 401)
    assert.equal(res.json().code, 'invalid_token')
    assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  })

  it('when an expiry is given with an offset, then it is stored and shown in UTC', async () => {
    const at = new Date(Date.now() + 86_400_000)
    at.setUTCMilliseconds(0)
    const local = `${new Date(at.getTime() + 2 * 3_600_000).toISOString().slice(0, 19)}+02:00`
    const created = await createKey(a, { name: 'offset', scopes: ['tasks:read'], expires_at: local })
    assert.equal(created.expires_at, at.toISOString())
  })

  it('when a key is revoked, then DELETE answers 204, the key is refused, it stays listed with revoked_at, and a second DELETE is 404', async () => {
    const created = await createKey(a, { name: 'to revoke', scopes: ['projects:read'] })
    const url = `/v1/tenants/${a.tenantId}/projects`
    assert.equal((await t.app.inject({ method: 'GET', url, headers: bearer(created.key) })).statusCode, 200)
    const del = await t.app.inject({ method: 'DELETE', url: `${keysUrl(a)}/${created.id}`, headers: a.auth })
    assert.equal(del.statusCode, 204, del.body)
    assert.equal(del.body, '')
    const refused = await t.app.inject({ method: 'GET', url, headers: bearer(created.key) })
    assert.equal(refused.statusCode, 401)
    assert.equal(refused.json().code, 'invalid_token')
    const listed = (await listKeys(a)).items.find((k) => k.id === created.id)
    assert.ok(listed && typeof listed.revoked_at === 'string')
    const again = await t.app.inject({ method: 'DELETE', url: `${keysUrl(a)}/${created.id}`, headers: a.auth })
    assert.equal(again.statusCode, 404)
    assert.equal(again.json().code, 'not_found')
    assert.equal((await listKeys(a)).items.find((k) => k.id === created.id)?.revoked_at, listed.revoked_at, 'the first revocation time stays')
  })

  it('when a key is created and revoked, then both are in the audit log with the actor and without the secret', async () => {
    const created = await createKey(a, { name: 'audited', scopes: ['tasks:read'] })
    assert.equal((await t.app.inject({ method: 'DELETE', url: `${keysUrl(a)}/${created.id}`, headers: a.auth })).statusCode, 204)
    const events = await t.admin<{ action: string; actor_type: string; actor_id: string; tenant_id: string; details: unknown }[]>`
      select action, actor_type, actor_id, tenant_id, details from audit_events where target_type = 'api_key' and target_id = ${created.id} order by at, id`
    assert.deepEqual(events.map((e) => e.action), ['api_key.created', 'api_key.revoked'])
    for (const e of events) {
      assert.equal(e.actor_type, 'user')
      assert.equal(e.actor_id, a.userId)
      assert.equal(e.tenant_id, a.tenantId)
      assert.ok(!JSON.stringify(e.details).includes(created.key.slice(created.prefix.length + 1)))
    }
  })

  it("when another tenant's key id or an unknown id is deleted, then 404 and that key keeps working", async () => {
    const b = await createTenant(t)
    const bKey = await createKey(b, { name: 'b key', scopes: ['projects:read'] })
    for (const id of [bKey.id, randomUUID()]) {
      const res = await t.app.inject({ method: 'DELETE', url: `${keysUrl(a)}/${id}`, headers: a.auth })
      assert.equal(res.statusCode, 404)
      assert.equal(res.json().code, 'not_found')
    }
    assert.equal((await keyRow(bKey.id)).revoked_at, null)
    assert.equal((await t.app.inject({ method: 'GET', url: `/v1/tenants/${b.tenantId}/projects`, headers: bearer(bKey.key) })).statusCode, 200)
    assert.ok(!(await listKeys(a)).items.some((k) => k.id === bKey.id), "B's key is not in A's list")
  })

  it('when a member or viewer manages keys, then 403 forbidden; an admin may', async () => {
    for (const role of ['member', 'viewer'] as const) {
      const u = await addUser(t, a, role)
      for (const [method, url, payload] of [
        ['GET', keysUrl(a), undefined],
        ['POST', keysUrl(a), { name: 'x', scopes: ['projects:read'] }],
        ['DELETE', `${keysUrl(a)}/${randomUUID()}`, undefined],
      ] as const) {
        const res = await t.app.inject({ method, url, headers: u.auth, ...(payload ? { payload } : {}) })
        assert.equal(res.statusCode, 403, `${role} ${method}`)
        assert.equal(res.json().code, 'forbidden')
      }
    }
    const admin = await addUser(t, a, 'admin')
    assert.equal((await t.app.inject({ method: 'POST', url: keysUrl(a), headers: admin.auth, payload: { name: 'by admin', scopes: ['tasks:read'] } })).statusCode, 201)
  })

  describe('bad input', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['an unknown scope', { name: 'k', scopes: ['projects:admin'] }, '/body/scopes/0'],
      ['duplicate scopes', { name: 'k', scopes: ['tasks:read', 'tasks:read'] }, '/body/scopes'],
      ['empty scopes', { name: 'k', scopes: [] }, '/body/scopes'],
      ['scopes as a string', { name: 'k', scopes: 'tasks:read' }, '/body/scopes'],
      ['no scopes', { name: 'k' }, '/body'],
      ['an empty name', { name: '', scopes: ['tasks:read'] }, '/body/name'],
      ['a name of 101 characters', { name: 'n'.repeat(101), scopes: ['tasks:read'] }, '/body/name'],
      ['a NUL in the name', { name: 'a\u0000b', scopes: ['tasks:read'] }, '/body/name'],
      ['expires_at in the past', { name: 'k', scopes: ['tasks:read'], expires_at: '2020-01-01T00:00:00Z' }, '/body/expires_at'],
      ['expires_at that is not a date-time', { name: 'k', scopes: ['tasks:read'], expires_at: 'tomorrow' }, '/body/expires_at'],
      ['a date without a time', { name: 'k', scopes: ['tasks:read'], expires_at: '2999-01-01' }, '/body/expires_at'],
      ['an extra field', { name: 'k', scopes: ['tasks:read'], tenant_id: randomUUID() }, '/body/tenant_id'],
      ['a key of its own', { name: 'k', scopes: ['tasks:read'], key: 'sk_mine' }, '/body/key'],
      ['an id of its own', { name: 'k', scopes: ['tasks:read'], id: randomUUID() }, '/body/id'],
    ]
    for (const [what, payload, path] of cases)
      it(`when the body has ${what}, then 400 validation_failed names ${path} and nothing is stored`, async () => {
        const [before] = await t.admin<{ n: number }[]>`select count(*)::int as n from api_keys`
        const res: LightMyRequestResponse = await t.app.inject({ method: 'POST', url: keysUrl(a), headers: a.auth, payload })
        assert.equal(res.statusCode, 400, res.body)
        const body = res.json<{ code: string; errors: { path: string }[] }>()
        assert.equal(body.code, 'validation_failed')
        assert.ok(body.errors.some((e) => e.path === path), JSON.stringify(body.errors))
        const [after] = await t.admin<{ n: number }[]>`select count(*)::int as n from api_keys`
        assert.equal(after?.n, before?.n)
      })

    it('when the list has an unknown query parameter or a forged cursor, then 400', async () => {
      const queries: Record<string, string>[] = [{ name: 'x' }, { cursor: 'abc.def' }, { limit: '101' }]
      for (const query of queries) {
        const res = await t.app.inject({ method: 'GET', url: keysUrl(a), headers: a.auth, query })
        assert.equal(res.statusCode, 400, JSON.stringify(query))
        assert.equal(res.json().code, 'validation_failed')
      }
    })

    it('when the key id in DELETE is not a UUID, then 400', async () => {
      const res = await t.app.inject({ method: 'DELETE', url: `${keysUrl(a)}/not-a-uuid`, headers: a.auth })
      assert.equal(res.statusCode, 400)
      assert.equal(res.json().code, 'validation_failed')
    })
  })
})
