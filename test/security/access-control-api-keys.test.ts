import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { HTTPMethods, LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import type { Access } from '../../src/platform/access.ts'
import { permissions } from '../../src/platform/permissions.ts'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

/**
 * API keys as an attacker holds them: a stolen or leaked key must stay inside its tenant, its
 * scopes and its lifetime, never reach an admin or user endpoint, and a guessed or edited key must
 * look exactly like any unknown key.
 */

interface Key {
  id: string
  key: string
  prefix: string
}

interface CollectedRoute {
  method: string
  url: string
  access: Access
}

const allScopes = ['projects:read', 'projects:write', 'tasks:read', 'tasks:write']
const hex = (uuid: string) => uuid.replaceAll('-', '')
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
/** A problem body without its per-request id, to compare two refusals. */
const sameParts = (res: LightMyRequestResponse) => {
  const body = res.json<Record<string, unknown>>()
  delete body.request_id
  return { status: res.statusCode, body, wwwAuthenticate: res.headers['www-authenticate'] }
}

describe('API keys: access control attacks', () => {
  let t: TestApp
  let A: TestTenant
  let B: TestTenant
  let bProjectId: string
  let bTaskId: string
  let aProjectId: string
  let aTaskId: string
  const routes: CollectedRoute[] = []

  before(async () => {
    t = await startTestApp({}, undefined, {
      onRoute: (r) => {
        const access = r.config?.access
        if (access) for (const method of [r.method].flat()) routes.push({ method: String(method), url: r.url, access })
      },
    })
    A = await createTenant(t)
    B = await createTenant(t)
    const post = async (tenant: TestTenant, url: string, payload: object) => {
      const res = await t.app.inject({ method: 'POST', url: `/v1/tenants/${tenant.tenantId}${url}`, headers: tenant.auth, payload })
      assert.equal(res.statusCode, 201, res.body)
      return res.json<{ id: string }>().id
    }
    aProjectId = await post(A, '/projects', { name: 'A secret project' })
    aTaskId = await post(A, `/projects/${aProjectId}/tasks`, { title: 'A secret task' })
    bProjectId = await post(B, '/projects', { name: 'B secret project' })
    bTaskId = await post(B, `/projects/${bProjectId}/tasks`, { title: 'B secret task' })
  })
  after(async () => t.close())

  async function createKey(tenant: TestTenant, scopes: string[]): Promise<Key> {
    const res = await t.app.inject({ method: 'POST', url: `/v1/tenants/${tenant.tenantId}/api-keys`, headers: tenant.auth, payload: { name: 'attack', scopes } })
    assert.equal(res.statusCode, 201, res.body)
    return res.json<Key>()
  }

  /** Every row of every table an attack could touch, as one digest. */
  async function snapshot(): Promise<string> {
    const [row] = await t.admin<{ h: string }[]>`
      select md5(
        coalesce((select string_agg(x::text, '|' order by x.id) from tenants x), '') ||
        coalesce((select string_agg(x::text, '|' order by x.id) from users x), '') ||
        coalesce((select string_agg(x::text, '|' order by x.id) from projects x), '') ||
        coalesce((select string_agg(x::text, '|' order by x.id) from tasks x), '') ||
        coalesce((select string_agg((x.id, x.revoked_at, x.expires_at, x.scopes)::text, '|' order by x.id) from api_keys x), '')) as h`
    return row?.h ?? ''
  }

  const projects = (tenant: TestTenant) => `/v1/tenants/${tenant.tenantId}/projects`
  const unknownKeyBody = async () => sameParts(await t.app.inject({ method: 'GET', url: projects(A), headers: bearer(`sk_${hex(A.tenantId)}${hex(randomUUID())}_${'A'.repeat(43)}`) }))

  it("when tenant A's key is used on tenant B's paths, then 403 tenant_mismatch, nothing of B is read and nothing changes", async () => {
    const { key } = await createKey(A, allScopes)
    const before = await snapshot()
    const attacks: [HTTPMethods, string, object?][] = [
      ['GET', projects(B)],
      ['POST', projects(B), { name: 'planted' }],
      ['GET', `${projects(B)}/${bProjectId}`],
      ['PATCH', `${projects(B)}/${bProjectId}`, { name: 'defaced' }],
      ['DELETE', `${projects(B)}/${bProjectId}`],
      ['GET', `${projects(B)}/${bProjectId}/tasks`],
      ['POST', `${projects(B)}/${bProjectId}/tasks`, { title: 'planted' }],
      ['GET', `/v1/tenants/${B.tenantId}/tasks/${bTaskId}`],
      ['PATCH', `/v1/tenants/${B.tenantId}/tasks/${bTaskId}`, { status: 'done' }],
      ['DELETE', `/v1/tenants/${B.tenantId}/tasks/${bTaskId}`],
    ]
    for (const [method, url, payload] of attacks) {
      const res = await t.app.inject({ method, url, headers: bearer(key), ...(payload ? { payload } : {}) })
      assert.equal(res.statusCode, 403, `${method} ${url}: ${res.body}`)
      assert.equal(res.json().code, 'tenant_mismatch')
      assert.ok(!res.body.includes('B secret') && !res.body.includes(bProjectId.slice(0, 8)), 'nothing of B in the answer')
    }
    assert.equal(await snapshot(), before)
  })

  it("when tenant A's key asks its own tenant path for B's rows by id, then 404 and nothing changes", async () => {
    const { key } = await createKey(A, allScopes)
    const before = await snapshot()
    for (const [method, url, payload] of [
      ['GET', `${projects(A)}/${bProjectId}`],
      ['PATCH', `${projects(A)}/${bProjectId}`, { name: 'defaced' }],
      ['DELETE', `/v1/tenants/${A.tenantId}/tasks/${bTaskId}`],
      ['GET', `${projects(A)}/${bProjectId}/tasks`],
    ] as [HTTPMethods, string, object?][]) {
      const res = await t.app.inject({ method, url, headers: bearer(key), ...(payload ? { payload } : {}) })
      assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`)
      assert.ok(!res.body.includes('B secret'))
    }
    assert.equal(await snapshot(), before)
  })

  it("when a key is forged to name tenant B with A's key id and secret, then 401 invalid_token like any unknown key", async () => {
    const k = await createKey(A, allScopes)
    const secret = k.key.slice(k.prefix.length + 1)
    const forged = `sk_${hex(B.tenantId)}${hex(k.id)}_${secret}`
    const res = await t.app.inject({ method: 'GET', url: projects(B), headers: bearer(forged) })
    assert.equal(res.statusCode, 401, res.body)
    assert.deepEqual(sameParts(res), await unknownKeyBody())
    assert.ok(!res.body.includes('B secret'))
  })

  it('when a key lacks the scope of a route, then 403 forbidden and nothing is created; a write scope does not grant read', async () => {
    const readOnly = await createKey(A, ['projects:read'])
    const writeTasksOnly = await createKey(A, ['tasks:write'])
    const before = await snapshot()
    const attempts: [Key, HTTPMethods, string, object?][] = [
      [readOnly, 'POST', projects(A), { name: 'planted' }],
      [readOnly, 'PATCH', `${projects(A)}/${aProjectId}`, { name: 'defaced' }],
      [readOnly, 'DELETE', `${projects(A)}/${aProjectId}`],
      [readOnly, 'GET', `${projects(A)}/${aProjectId}/tasks`],
      [writeTasksOnly, 'GET', `${projects(A)}/${aProjectId}/tasks`],
      [writeTasksOnly, 'GET', `/v1/tenants/${A.tenantId}/tasks/${aTaskId}`],
      [writeTasksOnly, 'GET', projects(A)],
      [writeTasksOnly, 'POST', projects(A), { name: 'planted' }],
    ]
    for (const [k, method, url, payload] of attempts) {
      const res = await t.app.inject({ method, url, headers: bearer(k.key), ...(payload ? { payload } : {}) })
      assert.equal(res.statusCode, 403, `${method} ${url}: ${res.body}`)
      assert.equal(res.json().code, 'forbidden')
      assert.ok(!res.body.includes('A secret'), 'nothing read')
    }
    assert.equal(await snapshot(), before)
  })

  it('when a revoked key is used, then 401 invalid_token with the same answer as an unknown key', async () => {
    const k = await createKey(A, allScopes)
    assert.equal((await t.app.inject({ method: 'GET', url: projects(A), headers: bearer(k.key) })).statusCode, 200)
    assert.equal((await t.app.inject({ method: 'DELETE', url: `/v1/tenants/${A.tenantId}/api-keys/${k.id}`, headers: A.auth })).statusCode, 204)
    const res = await t.app.inject({ method: 'POST', url: projects(A), headers: bearer(k.key), payload: { name: 'after revocation' } })
    assert.equal(res.statusCode, 401)
    assert.deepEqual(sameParts(res), await unknownKeyBody())
    const [row] = await t.admin<{ n: number }[]>`select count(*)::int as n from projects where name = 'after revocation'`
    assert.equal(row?.n, 0)
  })

  it('when an expired key is used, then 401 invalid_token with the same answer as an unknown key', async () => {
    const k = await createKey(A, allScopes)
    assert.equal((await t.app.inject({ method: 'GET', url: projects(A), headers: bearer(k.key) })).statusCode, 200)
    await t.admin`update api_keys set expires_at = now() - interval '1 second' where id = ${k.id}`
    const res = await t.app.inject({ method: 'GET', url: projects(A), headers: bearer(k.key) })
    assert.equal(res.statusCode, 401)
    assert.deepEqual(sameParts(res), await unknownKeyBody())
  })

  it('when a key with every scope calls any admin, tenant-settings, users, api-keys, audit or user-only route, then 403 forbidden and nothing changes', async () => {
    const k = await createKey(A, allScopes)
    // Bodies valid for each route with one, so that the refusal, not validation, is what answers.
    const bodies: Record<string, object> = {
      'PATCH /v1/tenants/:tenantId': { name: 'hijacked' },
      'POST /v1/tenants/:tenantId/users': { email: 'planted@example.com', password: 'a long enough password', role: 'admin' },
      'PATCH /v1/tenants/:tenantId/users/:id': { role: 'owner' },
      'POST /v1/tenants/:tenantId/api-keys': { name: 'more keys', scopes: allScopes },
    }
    const refused = routes.filter(
      (r) => r.method !== 'HEAD' && (r.access.kind === 'user' || (r.access.kind === 'tenant' && permissions[r.access.permission].apiKeyScope === null)),
    )
    const walked = new Set(refused.map((r) => `${r.method} ${r.url}`))
    for (const must of ['PATCH /v1/tenants/:tenantId', 'GET /v1/tenants/:tenantId/users', 'POST /v1/tenants/:tenantId/users', 'GET /v1/tenants/:tenantId/api-keys',
      'POST /v1/tenants/:tenantId/api-keys', 'DELETE /v1/tenants/:tenantId/api-keys/:id', 'GET /v1/tenants/:tenantId/audit-events', 'POST /v1/auth/logout'])
      assert.ok(walked.has(must), `the walk covers ${must}`)
    const before = await snapshot()
    for (const r of refused) {
      const route = `${r.method} ${r.url}`
      const hasBody = ['POST', 'PATCH', 'PUT'].includes(r.method)
      if (r.access.kind === 'tenant' && hasBody) assert.ok(bodies[route], `add a valid body for ${route} to this test`)
      const url = r.url.replace(':tenantId', A.tenantId).replace(':id', A.userId).replace(/:[A-Za-z]+/g, randomUUID())
      const res = await t.app.inject({ method: r.method, url, headers: bearer(k.key), ...(hasBody ? { payload: bodies[route] ?? {} } : {}) })
      assert.equal(res.statusCode, 403, `${route}: ${res.body}`)
      assert.equal(res.json().code, 'forbidden', route)
    }
    assert.equal(await snapshot(), before)
  })

  it('when a key is sent to logout, then 403 forbidden and the key keeps working (it cannot revoke itself or anyone)', async () => {
    const k = await createKey(A, allScopes)
    const res = await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(k.key), payload: {} })
    assert.equal(res.statusCode, 403, res.body)
    assert.equal(res.json().code, 'forbidden')
    assert.equal((await t.app.inject({ method: 'GET', url: projects(A), headers: bearer(k.key) })).statusCode, 200)
    assert.equal((await t.app.inject({ method: 'GET', url: projects(A), headers: A.auth })).statusCode, 200)
  })

  it('when one character of a key is changed, then 401 with the same answer as an unknown key', async () => {
    const k = await createKey(A, allScopes)
    const unknown = await unknownKeyBody()
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'a' ? 'b' : 'a') + s.slice(i + 1)
    // The last and first characters of the secret, and one in each of the tenant and key ids.
    for (const i of [k.key.length - 1, k.prefix.length + 1, 3 + 5, 3 + 32 + 5]) {
      const tampered = flip(k.key, i)
      assert.notEqual(tampered, k.key)
      const res = await t.app.inject({ method: 'GET', url: projects(A), headers: bearer(tampered) })
      assert.equal(res.statusCode, 401, `position ${i}: ${res.body}`)
      assert.deepEqual(sameParts(res), unknown)
    }
    for (const malformed of [k.key.slice(0, -1), `${k.key}A`, k.key.toUpperCase().replace('SK_', 'sk_'), 'sk_', 'sk_live']) {
      const res = await t.app.inject({ method: 'GET', url: projects(A), headers: bearer(malformed) })
      assert.equal(res.statusCode, 401, malformed)
      assert.deepEqual(sameParts(res), unknown)
    }
  })

  it('when the tenant of a key is suspended, then its key gets 403 tenant_suspended while a forged one still gets 401, and resuming restores it', async () => {
    const C = await createTenant(t)
    const k = await createKey(C, allScopes)
    const url = projects(C)
    assert.equal((await t.app.inject({ method: 'GET', url, headers: bearer(k.key) })).statusCode, 200)
    await t.admin`update tenants set status = 'suspended' where id = ${C.tenantId}`
    try {
      const res = await t.app.inject({ method: 'GET', url, headers: bearer(k.key) })
      assert.equal(res.statusCode, 403, res.body)
      assert.equal(res.json().code, 'tenant_suspended')
      const write = await t.app.inject({ method: 'POST', url, headers: bearer(k.key), payload: { name: 'while suspended' } })
      assert.equal(write.statusCode, 403)
      assert.equal(write.json().code, 'tenant_suspended')
      // Whoever does not hold a live key of C cannot learn that C is suspended.
      const secret = k.key.slice(k.prefix.length + 1)
      for (const guess of [`sk_${hex(C.tenantId)}${hex(randomUUID())}_${secret}`, `${k.prefix}_${'A'.repeat(43)}`]) {
        const forged = await t.app.inject({ method: 'GET', url, headers: bearer(guess) })
        assert.equal(forged.statusCode, 401, forged.body)
        assert.deepEqual(sameParts(forged), await unknownKeyBody())
      }
      await t.admin`update api_keys set revoked_at = now() where id = ${k.id}`
      assert.equal((await t.app.inject({ method: 'GET', url, headers: bearer(k.key) })).statusCode, 401, 'a revoked key of a suspended tenant is just invalid')
      await t.admin`update api_keys set revoked_at = null where id = ${k.id}`
    } finally {
      await t.admin`update tenants set status = 'active' where id = ${C.tenantId}`
    }
    assert.equal((await t.app.inject({ method: 'GET', url, headers: bearer(k.key) })).statusCode, 200)
  })

  it('when the verifier compares a presented secret, then it uses a constant-time comparison, never ==, equals() or SQL equality', () => {
    const source = readFileSync(new URL('../../src/platform/auth/api-keys.ts', import.meta.url), 'utf8')
    assert.match(source, /import \{[^}]*\btimingSafeEqual\b[^}]*\} from 'node:crypto'/)
    assert.match(source, /timingSafeEqual\(candidate, presented\)/)
    assert.doesNotMatch(source, /\.equals\(|secret_hash\s*=|[!=]==?\s*presented(?!\.length)|presented\s*[!=]==?/)
  })
})
