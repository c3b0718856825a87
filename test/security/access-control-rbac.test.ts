/**
 * Threat: privilege escalation inside a tenant (role-based access control).
 *
 * 1. The route × role walk: every tenant route the app registers (collected by an onRoute hook,
 *    so routes added later are walked too) is called by an owner, an admin, a member and a viewer,
 *    and the answer is compared with the permission table: allowed ⇔ not 403, and a refusal is
 *    403 forbidden with nothing written anywhere in the database.
 * 2. The attacks, one `it` each: escalation by PATCH, by body fields, by a forged roles claim,
 *    demoting the last owner, and the tokens of disabled and deleted users.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { LightMyRequestResponse, RouteOptions } from 'fastify'
import { after, before, describe, it } from 'node:test'
import type { Sql } from 'postgres'
import { hasRole, roles } from '../../src/platform/auth/access-tokens.ts'
import type { Role } from '../../src/platform/auth/access-tokens.ts'
import { permissions } from '../../src/platform/permissions.ts'
import type { Permission } from '../../src/platform/permissions.ts'
import { addUser, createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

type Fixture = 'project' | 'task' | 'user' | 'apiKey'

/**
 * A well-formed request for each tenant route: the permission the contract gives it, which path
 * parameters need a fresh row, and a valid body. A tenant route without an entry fails the walk, so every new route must be added here.
 */
interface Sample {
  /** The permission the contract implies for this route (the route's config must name exactly this). */
  permission: Permission
  params?: Record<string, Fixture>
  body?: () => Record<string, unknown>
}
const unique = () => randomUUID().slice(0, 8)
const samples: Record<string, Sample> = {
  'GET /v1/tenants/:tenantId': { permission: 'tenant:read' },
  'PATCH /v1/tenants/:tenantId': { permission: 'tenant:update', body: () => ({ name: `Renamed ${unique()}` }) },
  'GET /v1/tenants/:tenantId/users': { permission: 'users:read' },
  'POST /v1/tenants/:tenantId/users': { permission: 'users:manage', body: () => ({ email: `walk-${unique()}@example.com`, password: 'a long enough passphrase', role: 'viewer' }) },
  'GET /v1/tenants/:tenantId/users/:id': { permission: 'users:read', params: { id: 'user' } },
  'PATCH /v1/tenants/:tenantId/users/:id': { permission: 'users:manage', params: { id: 'user' }, body: () => ({ role: 'viewer' }) },
  'DELETE /v1/tenants/:tenantId/users/:id': { permission: 'users:manage', params: { id: 'user' } },
  'GET /v1/tenants/:tenantId/projects': { permission: 'projects:read' },
  'POST /v1/tenants/:tenantId/projects': { permission: 'projects:write', body: () => ({ name: `walk ${unique()}` }) },
  'GET /v1/tenants/:tenantId/projects/:id': { permission: 'projects:read', params: { id: 'project' } },
  'PATCH /v1/tenants/:tenantId/projects/:id': { permission: 'projects:write', params: { id: 'project' }, body: () => ({ name: `renamed ${unique()}` }) },
  'DELETE /v1/tenants/:tenantId/projects/:id': { permission: 'projects:write', params: { id: 'project' } },
  'GET /v1/tenants/:tenantId/projects/:projectId/tasks': { permission: 'tasks:read', params: { projectId: 'project' } },
  'POST /v1/tenants/:tenantId/projects/:projectId/tasks': { permission: 'tasks:write', params: { projectId: 'project' }, body: () => ({ title: `walk ${unique()}` }) },
  'GET /v1/tenants/:tenantId/tasks/:id': { permission: 'tasks:read', params: { id: 'task' } },
  'PATCH /v1/tenants/:tenantId/tasks/:id': { permission: 'tasks:write', params: { id: 'task' }, body: () => ({ status: 'done' }) },
  'DELETE /v1/tenants/:tenantId/tasks/:id': { permission: 'tasks:write', params: { id: 'task' } },
  'GET /v1/tenants/:tenantId/api-keys': { permission: 'api-keys:manage' },
  'POST /v1/tenants/:tenantId/api-keys': { permission: 'api-keys:manage', body: () => ({ name: `walk ${unique()}`, scopes: ['projects:read'] }) },
  'DELETE /v1/tenants/:tenantId/api-keys/:id': { permission: 'api-keys:manage', params: { id: 'apiKey' } },
  'GET /v1/tenants/:tenantId/audit-events': { permission: 'audit:read' },
}

/** "Tenant scope" of the API contract: who may do what, independently of the code's table. */
const contractMinRole: Record<Permission, Role> = {
  'tenant:read': 'member',
  'tenant:update': 'admin',
  'users:read': 'member',
  'users:manage': 'admin',
  'projects:read': 'viewer',
  'projects:write': 'member',
  'tasks:read': 'viewer',
  'tasks:write': 'member',
  'api-keys:manage': 'admin',
  'audit:read': 'admin',
}

interface TenantRoute {
  method: string
  url: string
  permission: Permission
}

/** HEAD answers like the GET it shadows, so it shares the GET's sample. */
const sampleFor = (r: TenantRoute) => samples[`${r.method === 'HEAD' ? 'GET' : r.method} ${r.url}`]

/** Every row of every table, hashed: equal before and after a request means it wrote nothing. */
async function fingerprint(sql: Sql): Promise<string> {
  const tables = await sql<{ name: string }[]>`select tablename as name from pg_tables where schemaname = 'public' order by 1`
  const parts: string[] = []
  for (const { name } of tables) {
    const [row] = await sql<{ h: string | null }[]>`select md5(string_agg(x::text, ',' order by x::text)) as h from ${sql(name)} x`
    parts.push(`${name}:${row?.h ?? 'empty'}`)
  }
  return parts.join('\n')
}

describe('RBAC: every tenant route × every role against the permission table', () => {
  let t: TestApp
  const registered: RouteOptions[] = []
  let tenantRoutes: TenantRoute[] = []
  let owner: TestTenant
  const actors = new Map<Role, string>()

  const issue = async (userId: string, tenantId: string, role: Role) =>
    `Bearer ${(await t.deps.tokens.issue({ userId, tenantId, role, amr: ['pwd', 'otp'] })).token}`

  /** A fresh row for each request, so that a DELETE or PATCH of one role never starves the next. */
  async function makeFixture(kind: Fixture): Promise<string> {
    const tid = owner.tenantId
    switch (kind) {
      case 'project': {
        const id = randomUUID()
        await t.admin`insert into projects (tenant_id, id, name) values (${tid}, ${id}, ${'walk fixture'})`
        return id
      }
      case 'task': {
        const project = await makeFixture('project')
        const id = randomUUID()
        await t.admin`insert into tasks (tenant_id, id, project_id, title) values (${tid}, ${id}, ${project}, ${'walk fixture'})`
        return id
      }
      case 'user':
        return (await addUser(t, owner, 'member')).userId
      case 'apiKey': {
        const res = await t.app.inject({
          method: 'POST',
          url: `/v1/tenants/${tid}/api-keys`,
          headers: { authorization: await issue(owner.userId, tid, 'owner') },
          payload: { name: 'walk fixture', scopes: ['projects:read'] },
        })
        assert.equal(res.statusCode, 201, `creating an API key fixture: ${res.body}`)
        return res.json().id as string
      }
    }
  }

  before(async () => {
    // Step-up on, with otp tokens: the walk sees the role rules, and admin routes really are reachable with MFA.
    t = await startTestApp({ REQUIRE_MFA_FOR_ADMIN: 'true' }, undefined, { onRoute: (route) => registered.push(route) })
    owner = await createTenant(t)
    for (const role of roles) {
      const u = role === 'owner' ? owner : await addUser(t, owner, role)
      actors.set(role, await issue(u.userId, owner.tenantId, role))
    }
    tenantRoutes = registered.flatMap((r) => {
      const access = r.config?.access
      if (access?.kind !== 'tenant') return []
      const methods = Array.isArray(r.method) ? r.method : [r.method]
      return methods.map((method) => ({ method: String(method).toUpperCase(), url: r.url, permission: access.permission }))
    })
  })
  after(async () => t.close())

  it('when the app is built, then it has tenant routes for every resource of the contract', () => {
    const urls = new Set(tenantRoutes.map((r) => r.url))
    for (const url of ['/v1/tenants/:tenantId', '/v1/tenants/:tenantId/users/:id', '/v1/tenants/:tenantId/projects', '/v1/tenants/:tenantId/tasks/:id'])
      assert.ok(urls.has(url), `${url} is not registered as a tenant route`)
  })

  it('when a route lives under /v1/tenants/:tenantId, then it is a tenant route (no weaker access kind)', () => {
    for (const r of registered) {
      if (!r.url.startsWith('/v1/tenants/')) continue
      assert.equal((r.config?.access)?.kind, 'tenant', `${String(r.method)} ${r.url}`)
    }
  })

  it('when tenant routes name permissions, then each exists in the table and every permission in the table is used', () => {
    const used = new Set(tenantRoutes.map((r) => r.permission))
    for (const r of tenantRoutes) assert.ok(Object.hasOwn(permissions, r.permission), `${r.method} ${r.url} names unknown permission ${r.permission}`)
    for (const p of Object.keys(permissions)) assert.ok(used.has(p as Permission), `permission ${p} is used by no route`)
  })

  it('when the permission table is read, then each minimum role is the one the contract gives', () => {
    for (const [p, rule] of Object.entries(permissions)) assert.equal(rule.minRole, contractMinRole[p as Permission], p)
  })

  it('when a tenant route declares its permission, then it is the one the contract implies for that route', () => {
    const wrong = tenantRoutes.filter((r) => sampleFor(r) && sampleFor(r)?.permission !== r.permission).map((r) => `${r.method} ${r.url}: ${r.permission}, expected ${sampleFor(r)?.permission}`)
    assert.deepEqual(wrong, [])
  })

  it('when a tenant route exists, then the walk has a sample request for it (add new routes to the samples table)', () => {
    const missing = tenantRoutes.filter((r) => !sampleFor(r)).map((r) => `${r.method} ${r.url}`)
    assert.deepEqual(missing, [])
    const known = new Set(tenantRoutes.map((r) => `${r.method} ${r.url}`))
    const stale = Object.keys(samples).filter((k) => !known.has(k))
    assert.deepEqual(stale, [], 'samples for routes that no longer exist')
  })

  it('when every role calls every tenant route, then allowed by the table ⇔ not 403; allowed answers 2xx, refused answers 403 forbidden and writes nothing', async () => {
    assert.ok(tenantRoutes.length > 0)
    const mismatches: string[] = []
    for (const route of tenantRoutes) {
      const sample = sampleFor(route)
      if (!sample) continue // reported by the test above
      for (const role of roles) {
        let url = route.url.replace(':tenantId', owner.tenantId)
        for (const [name, kind] of Object.entries(sample.params ?? {})) url = url.replace(`:${name}`, await makeFixture(kind))
        assert.doesNotMatch(url, /:/, `${route.method} ${route.url}: a path parameter has no fixture`)
        const allowed = hasRole(role, permissions[route.permission].minRole)
        const beforeState = allowed ? '' : await fingerprint(t.admin)
        const res: LightMyRequestResponse = await t.app.inject({
          method: route.method as 'GET',
          url,
          headers: { authorization: actors.get(role) ?? '' },
          ...(sample.body ? { payload: sample.body() } : {}),
        })
        const what = `${role} ${route.method} ${route.url} (${route.permission}, min ${permissions[route.permission].minRole}) → ${res.statusCode} ${res.body.slice(0, 200)}`
        if (allowed) {
          if (res.statusCode < 200 || res.statusCode > 299) mismatches.push(`allowed but not 2xx: ${what}`)
        } else {
          if (res.statusCode !== 403) mismatches.push(`refused but not 403: ${what}`)
          else if (route.method !== 'HEAD' && res.json().code !== 'forbidden') mismatches.push(`refused with another code: ${what}`)
          if ((await fingerprint(t.admin)) !== beforeState) mismatches.push(`refused but the database changed: ${what}`)
        }
      }
    }
    assert.deepEqual(mismatches, [])
  })
})

describe('RBAC attacks', () => {
  let t: TestApp
  let owner: TestTenant
  let admin: TestTenant
  let member: TestTenant
  let viewer: TestTenant
  let usersUrl: string

  const roleOf = async (id: string) => (await t.admin<{ role: Role }[]>`select role from users where id = ${id}`)[0]?.role
  const patchUser = (who: TestTenant, id: string, payload: Record<string, unknown>) =>
    t.app.inject({ method: 'PATCH', url: `${usersUrl}/${id}`, headers: who.auth, payload })
  const expectProblem = (res: LightMyRequestResponse, status: number, code: string) => {
    assert.equal(res.statusCode, status, res.body)
    assert.equal(res.json().code, code, res.body)
  }

  before(async () => {
    t = await startTestApp({ REQUIRE_MFA_FOR_ADMIN: 'false' })
    owner = await createTenant(t)
    admin = await addUser(t, owner, 'admin')
    member = await addUser(t, owner, 'member')
    viewer = await addUser(t, owner, 'viewer')
    usersUrl = `/v1/tenants/${owner.tenantId}/users`
  })
  after(async () => t.close())

  it('role escalation by PATCH of your own role: an admin making themselves owner and a member making themselves admin are refused', async () => {
    expectProblem(await patchUser(admin, admin.userId, { role: 'owner' }), 403, 'forbidden')
    expectProblem(await patchUser(member, member.userId, { role: 'admin' }), 403, 'forbidden')
    expectProblem(await patchUser(viewer, viewer.userId, { role: 'member' }), 403, 'forbidden')
    assert.equal(await roleOf(admin.userId), 'admin')
    assert.equal(await roleOf(member.userId), 'member')
    assert.equal(await roleOf(viewer.userId), 'viewer')
  })

  it('an admin granting owner to someone else is refused', async () => {
    const accomplice = await addUser(t, owner, 'member')
    expectProblem(await patchUser(admin, accomplice.userId, { role: 'owner' }), 403, 'forbidden')
    assert.equal(await roleOf(accomplice.userId), 'member')
  })

  it("a member PATCHing someone else's role is refused", async () => {
    expectProblem(await patchUser(member, viewer.userId, { role: 'admin' }), 403, 'forbidden')
    expectProblem(await patchUser(member, owner.userId, { role: 'viewer' }), 403, 'forbidden')
    assert.equal(await roleOf(viewer.userId), 'viewer')
    assert.equal(await roleOf(owner.userId), 'owner')
  })

  it('role, tenant_id or id smuggled in a body is refused with 400, not ignored', async () => {
    const other = await createTenant(t)
    const [before] = await t.admin<{ n: number }[]>`select ((select count(*) from users) + (select count(*) from projects))::int as n`
    const password = 'a long enough passphrase'
    const attempts = [
      { url: usersUrl, method: 'POST' as const, payload: { email: `a-${unique()}@example.com`, password, role: 'owner' } },
      { url: usersUrl, method: 'POST' as const, payload: { email: `a-${unique()}@example.com`, password, role: 'member', tenant_id: other.tenantId } },
      { url: usersUrl, method: 'POST' as const, payload: { email: `a-${unique()}@example.com`, password, role: 'member', id: randomUUID() } },
      { url: `${usersUrl}/${member.userId}`, method: 'PATCH' as const, payload: { role: 'viewer', tenant_id: other.tenantId } },
      { url: `${usersUrl}/${member.userId}`, method: 'PATCH' as const, payload: { id: randomUUID() } },
      { url: `/v1/tenants/${owner.tenantId}/projects`, method: 'POST' as const, payload: { name: 'x', tenant_id: other.tenantId } },
      { url: `/v1/tenants/${owner.tenantId}/projects`, method: 'POST' as const, payload: { name: 'x', role: 'owner' } },
    ]
    for (const a of attempts) expectProblem(await t.app.inject({ ...a, headers: owner.auth }), 400, 'validation_failed')
    const [afterward] = await t.admin<{ n: number }[]>`select ((select count(*) from users) + (select count(*) from projects))::int as n`
    assert.equal(afterward?.n, before?.n)
    assert.equal(await roleOf(member.userId), 'member')
  })

  it('a forged roles claim (a validly signed token saying owner for a user who is a viewer) is refused on admin and write routes by the database re-check', async () => {
    const forged = await t.deps.tokens.issue({ userId: viewer.userId, tenantId: owner.tenantId, role: 'owner', amr: ['pwd', 'otp'] })
    const headers = { authorization: `Bearer ${forged.token}` }
    const before = await t.admin<{ n: number }[]>`select ((select count(*) from users) + (select count(*) from projects) + (select count(*) from audit_events))::int as n`
    const attempts = [
      { method: 'PATCH' as const, url: `${usersUrl}/${viewer.userId}`, payload: { role: 'owner' } },
      { method: 'POST' as const, url: usersUrl, payload: { email: `f-${unique()}@example.com`, password: 'a long enough passphrase', role: 'admin' } },
      { method: 'DELETE' as const, url: `${usersUrl}/${member.userId}` },
      { method: 'PATCH' as const, url: `/v1/tenants/${owner.tenantId}`, payload: { name: 'Pwned' } },
      { method: 'GET' as const, url: `/v1/tenants/${owner.tenantId}/audit-events` },
      { method: 'POST' as const, url: `/v1/tenants/${owner.tenantId}/projects`, payload: { name: 'forged' } },
    ]
    for (const a of attempts) expectProblem(await t.app.inject({ ...a, headers }), 403, 'forbidden')
    // What a viewer may do, the forged token may do too: it is the user's current role that counts.
    assert.equal((await t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}/projects`, headers })).statusCode, 200)
    const afterward = await t.admin<{ n: number }[]>`select ((select count(*) from users) + (select count(*) from projects) + (select count(*) from audit_events))::int as n`
    assert.deepEqual(afterward, before)
    assert.equal(await roleOf(viewer.userId), 'viewer')
  })

  it('a demoted admin keeps a token that still says admin: it is refused on admin routes at once', async () => {
    const demoted = await addUser(t, owner, 'admin')
    assert.equal((await patchUser(owner, demoted.userId, { role: 'member' })).statusCode, 200)
    expectProblem(await patchUser(demoted, member.userId, { role: 'viewer' }), 403, 'forbidden')
    expectProblem(await t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}/audit-events`, headers: demoted.auth }), 403, 'forbidden')
  })

  it('demoting, disabling or deleting the last owner is refused with 409, whoever tries', async () => {
    expectProblem(await patchUser(admin, owner.userId, { role: 'member' }), 409, 'conflict')
    expectProblem(await patchUser(admin, owner.userId, { disabled: true }), 409, 'conflict')
    expectProblem(await t.app.inject({ method: 'DELETE', url: `${usersUrl}/${owner.userId}`, headers: admin.auth }), 409, 'conflict')
    // The owner cannot step down alone either (their own role is not theirs to change).
    expectProblem(await patchUser(owner, owner.userId, { role: 'admin' }), 403, 'forbidden')
    const owners = await t.admin<{ id: string }[]>`select id from users where tenant_id = ${owner.tenantId} and role = 'owner' and not disabled`
    assert.deepEqual(owners.map((o) => o.id), [owner.userId])
  })

  it("a disabled user's token is refused on the next request, on every kind of route", async () => {
    const victim = await addUser(t, owner, 'admin')
    assert.equal((await t.app.inject({ method: 'GET', url: usersUrl, headers: victim.auth })).statusCode, 200)
    assert.equal((await patchUser(owner, victim.userId, { disabled: true })).statusCode, 200)
    for (const req of [
      { method: 'GET' as const, url: usersUrl },
      { method: 'GET' as const, url: `/v1/tenants/${owner.tenantId}/projects` },
      { method: 'PATCH' as const, url: `${usersUrl}/${victim.userId}`, payload: { disabled: false } },
      { method: 'POST' as const, url: '/v1/auth/logout' },
    ]) {
      const res = await t.app.inject({ ...req, headers: victim.auth })
      assert.equal(res.statusCode, 401, `${req.method} ${req.url}: ${res.body}`)
    }
    const [row] = await t.admin<{ disabled: boolean }[]>`select disabled from users where id = ${victim.userId}`
    assert.equal(row?.disabled, true)
  })

  it("a deleted user's token is refused on the next request", async () => {
    const victim = await addUser(t, owner, 'admin')
    assert.equal((await t.app.inject({ method: 'GET', url: usersUrl, headers: victim.auth })).statusCode, 200)
    assert.equal((await t.app.inject({ method: 'DELETE', url: `${usersUrl}/${victim.userId}`, headers: owner.auth })).statusCode, 204)
    for (const req of [
      { method: 'GET' as const, url: usersUrl },
      { method: 'POST' as const, url: `/v1/tenants/${owner.tenantId}/projects`, payload: { name: 'ghost' } },
      { method: 'POST' as const, url: usersUrl, payload: { email: `g-${unique()}@example.com`, password: 'a long enough passphrase', role: 'admin' } },
    ]) {
      const res = await t.app.inject({ ...req, headers: victim.auth })
      expectProblem(res, 401, 'invalid_token')
    }
    const [n] = await t.admin<{ n: number }[]>`select count(*)::int as n from projects where name = 'ghost'`
    assert.equal(n?.n, 0)
  })
})
