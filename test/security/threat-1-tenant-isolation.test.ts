import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import type { Sql } from 'postgres'
import { buildApp } from '../../src/app.ts'
import { createPool } from '../../src/platform/db/connect.ts'
import { withTenant } from '../../src/platform/db/tenant.ts'
import { addUser, createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

/**
 * Threat 1, tenant data isolation bypass: tenant A attacks tenant B through every tenant endpoint,
 * and the database itself is checked to hide B's rows from a query that forgets its filter.
 */

interface World {
  tenant: TestTenant
  projectIds: string[]
  taskIds: string[]
}

const tenantTables = ['tenants', 'users', 'projects', 'tasks', 'refresh_tokens', 'revoked_tokens', 'api_keys', 'audit_events'] as const

describe('threat 1: tenant isolation', () => {
  let t: TestApp
  let A: World
  let B: World
  let bUser: TestTenant

  async function arrange(tenant: TestTenant, assignee: string): Promise<World> {
    const projectIds: string[] = []
    const taskIds: string[] = []
    for (let i = 0; i < 3; i++) {
      const p = await t.app.inject({ method: 'POST', url: `/v1/tenants/${tenant.tenantId}/projects`, headers: tenant.auth, payload: { name: `${tenant.slug} p${i}` } })
      assert.equal(p.statusCode, 201, p.body)
      const projectId = p.json<{ id: string }>().id
      projectIds.push(projectId)
      for (let j = 0; j < 2; j++) {
        const task = await t.app.inject({ method: 'POST', url: `/v1/tenants/${tenant.tenantId}/projects/${projectId}/tasks`, headers: tenant.auth, payload: { title: `${tenant.slug} t${i}.${j}`, assignee_id: assignee } })
        assert.equal(task.statusCode, 201, task.body)
        taskIds.push(task.json<{ id: string }>().id)
      }
    }
    return { tenant, projectIds, taskIds }
  }

  /** A digest of every tenant-owned row: an attack that changes anything changes it. */
  async function snapshot(): Promise<string> {
    const [row] = await t.admin<{ h: string }[]>`
      select md5(
        coalesce((select string_agg(x::text, '|' order by x.id) from tenants x), '') ||
        coalesce((select string_agg(x::text, '|' order by x.id) from users x), '') ||
        coalesce((select string_agg(x::text, '|' order by x.id) from projects x), '') ||
        coalesce((select string_agg(x::text, '|' order by x.id) from tasks x), '')) as h`
    return row?.h ?? ''
  }

  async function unchanged(send: () => Promise<LightMyRequestResponse>, status: number, code: string): Promise<LightMyRequestResponse> {
    const before = await snapshot()
    const res = await send()
    assert.equal(res.statusCode, status, res.body)
    assert.equal(res.json().code, code)
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
    assert.equal(await snapshot(), before, 'the attack changed the database')
    return res
  }

  const as = (who: TestTenant, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    t.app.inject({ method, url, headers: who.auth, ...(payload ? { payload } : {}) })

  before(async () => {
    t = await startTestApp()
    const a = await createTenant(t)
    const b = await createTenant(t)
    bUser = await addUser(t, b, 'member')
    A = await arrange(a, a.userId)
    B = await arrange(b, bUser.userId)
  })
  after(async () => t.close())

  const first = (ids: string[]) => ids[0] ?? assert.fail('no id arranged')

  describe('another tenant\'s ids under one\'s own tenant path', () => {
    for (const [resource, idsOf] of [['project', (w: World) => w.projectIds], ['task', (w: World) => w.taskIds]] as const) {
      it(`when A GETs B's ${resource} by id, then 404 not_found`, async () => {
        await unchanged(() => as(A.tenant, 'GET', `/v1/tenants/${A.tenant.tenantId}/${resource}s/${first(idsOf(B))}`), 404, 'not_found')
      })
      it(`when A PATCHes B's ${resource}, then 404 not_found and the row is unchanged`, async () => {
        const body = resource === 'project' ? { name: 'pwned' } : { title: 'pwned' }
        await unchanged(() => as(A.tenant, 'PATCH', `/v1/tenants/${A.tenant.tenantId}/${resource}s/${first(idsOf(B))}`, body), 404, 'not_found')
      })
      it(`when A DELETEs B's ${resource}, then 404 not_found and the row still exists`, async () => {
        await unchanged(() => as(A.tenant, 'DELETE', `/v1/tenants/${A.tenant.tenantId}/${resource}s/${first(idsOf(B))}`), 404, 'not_found')
        const table = resource === 'project' ? t.admin`select 1 from projects where id = ${first(idsOf(B))}` : t.admin`select 1 from tasks where id = ${first(idsOf(B))}`
        assert.equal((await table).length, 1)
      })
    }

    it("when A lists the tasks of B's project, then 404 not_found", async () => {
      await unchanged(() => as(A.tenant, 'GET', `/v1/tenants/${A.tenant.tenantId}/projects/${first(B.projectIds)}/tasks`), 404, 'not_found')
    })

    it("when A creates a task in B's project, then 404 not_found and nothing is written", async () => {
      await unchanged(() => as(A.tenant, 'POST', `/v1/tenants/${A.tenant.tenantId}/projects/${first(B.projectIds)}/tasks`, { title: 'planted' }), 404, 'not_found')
    })

    it("when A creates a task assigned to B's user, then 422 invalid_reference and nothing is written", async () => {
      await unchanged(() => as(A.tenant, 'POST', `/v1/tenants/${A.tenant.tenantId}/projects/${first(A.projectIds)}/tasks`, { title: 'x', assignee_id: bUser.userId }), 422, 'invalid_reference')
    })

    it("when A assigns its task to B's user by PATCH, then 422 invalid_reference and the task is unchanged", async () => {
      await unchanged(() => as(A.tenant, 'PATCH', `/v1/tenants/${A.tenant.tenantId}/tasks/${first(A.taskIds)}`, { assignee_id: bUser.userId, title: 'changed' }), 422, 'invalid_reference')
    })

    it("when A moves its task into B's project by PATCH, then 422 invalid_reference and the task is unchanged", async () => {
      await unchanged(() => as(A.tenant, 'PATCH', `/v1/tenants/${A.tenant.tenantId}/tasks/${first(A.taskIds)}`, { project_id: first(B.projectIds) }), 422, 'invalid_reference')
    })

    it("when A lists its own projects and tasks, then none of B's rows appear", async () => {
      const projects = await as(A.tenant, 'GET', `/v1/tenants/${A.tenant.tenantId}/projects?limit=100`)
      assert.deepEqual(projects.json<{ items: { id: string }[] }>().items.map((p) => p.id).sort(), [...A.projectIds].sort())
      for (const projectId of A.projectIds) {
        const tasks = await as(A.tenant, 'GET', `/v1/tenants/${A.tenant.tenantId}/projects/${projectId}/tasks?limit=100`)
        for (const task of tasks.json<{ items: { id: string }[] }>().items) assert.ok(A.taskIds.includes(task.id))
      }
    })
  })

  describe("A's token on B's tenant path: 403 tenant_mismatch before any data is read", () => {
    const routes: [string, 'GET' | 'POST' | 'PATCH' | 'DELETE', (b: World) => string, object?][] = [
      ['GET tenant', 'GET', (b) => `/v1/tenants/${b.tenant.tenantId}`],
      ['PATCH tenant', 'PATCH', (b) => `/v1/tenants/${b.tenant.tenantId}`, { name: 'pwned' }],
      ['list projects', 'GET', (b) => `/v1/tenants/${b.tenant.tenantId}/projects`],
      ['create project', 'POST', (b) => `/v1/tenants/${b.tenant.tenantId}/projects`, { name: 'planted' }],
      ['GET project', 'GET', (b) => `/v1/tenants/${b.tenant.tenantId}/projects/${first(b.projectIds)}`],
      ['PATCH project', 'PATCH', (b) => `/v1/tenants/${b.tenant.tenantId}/projects/${first(b.projectIds)}`, { name: 'pwned' }],
      ['DELETE project', 'DELETE', (b) => `/v1/tenants/${b.tenant.tenantId}/projects/${first(b.projectIds)}`],
      ['list tasks', 'GET', (b) => `/v1/tenants/${b.tenant.tenantId}/projects/${first(b.projectIds)}/tasks`],
      ['create task', 'POST', (b) => `/v1/tenants/${b.tenant.tenantId}/projects/${first(b.projectIds)}/tasks`, { title: 'planted' }],
      ['GET task', 'GET', (b) => `/v1/tenants/${b.tenant.tenantId}/tasks/${first(b.taskIds)}`],
      ['PATCH task', 'PATCH', (b) => `/v1/tenants/${b.tenant.tenantId}/tasks/${first(b.taskIds)}`, { title: 'pwned' }],
      ['DELETE task', 'DELETE', (b) => `/v1/tenants/${b.tenant.tenantId}/tasks/${first(b.taskIds)}`],
    ]
    for (const [name, method, url, body] of routes) {
      it(`when A's token calls ${name} of B, then 403 tenant_mismatch and nothing is written`, async () => {
        const res = await unchanged(() => as(A.tenant, method, url(B), body), 403, 'tenant_mismatch')
        assert.ok(!res.body.includes(B.tenant.slug))
      })
    }

    it('when the path tenant differs only in letter case, then it is still the same tenant (UUIDs are case-insensitive)', async () => {
      const res = await as(A.tenant, 'GET', `/v1/tenants/${A.tenant.tenantId.toUpperCase()}/projects`)
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(res.json<{ items: { id: string }[] }>().items.map((p) => p.id).sort(), [...A.projectIds].sort())
    })
  })

  describe('tenant_id, id and role in bodies', () => {
    const cases: [string, 'POST' | 'PATCH', (a: World) => string, (b: World) => object][] = [
      ['create project with tenant_id', 'POST', (a) => `/v1/tenants/${a.tenant.tenantId}/projects`, (b) => ({ name: 'x', tenant_id: b.tenant.tenantId })],
      ['create project with id', 'POST', (a) => `/v1/tenants/${a.tenant.tenantId}/projects`, (b) => ({ name: 'x', id: first(b.projectIds) })],
      ['PATCH project with tenant_id', 'PATCH', (a) => `/v1/tenants/${a.tenant.tenantId}/projects/${first(a.projectIds)}`, (b) => ({ name: 'x', tenant_id: b.tenant.tenantId })],
      ['create task with tenant_id', 'POST', (a) => `/v1/tenants/${a.tenant.tenantId}/projects/${first(a.projectIds)}/tasks`, (b) => ({ title: 'x', tenant_id: b.tenant.tenantId })],
      ['create task with id', 'POST', (a) => `/v1/tenants/${a.tenant.tenantId}/projects/${first(a.projectIds)}/tasks`, (b) => ({ title: 'x', id: first(b.taskIds) })],
      ['PATCH task with tenant_id', 'PATCH', (a) => `/v1/tenants/${a.tenant.tenantId}/tasks/${first(a.taskIds)}`, (b) => ({ title: 'x', tenant_id: b.tenant.tenantId })],
      ['PATCH task with id', 'PATCH', (a) => `/v1/tenants/${a.tenant.tenantId}/tasks/${first(a.taskIds)}`, (b) => ({ id: first(b.taskIds) })],
      ['PATCH tenant with id', 'PATCH', (a) => `/v1/tenants/${a.tenant.tenantId}`, (b) => ({ name: 'x', id: b.tenant.tenantId })],
      ['PATCH tenant with role', 'PATCH', (a) => `/v1/tenants/${a.tenant.tenantId}`, () => ({ name: 'x', role: 'owner' })],
    ]
    for (const [name, method, url, body] of cases) {
      it(`when A sends ${name}, then 400 validation_failed and nothing is written`, async () => {
        await unchanged(() => as(A.tenant, method, url(A), body(B)), 400, 'validation_failed')
      })
    }
  })

  describe('cursors', () => {
    async function cursorOf(who: World, url: string): Promise<string> {
      const res = await as(who.tenant, 'GET', `${url}?limit=1`)
      assert.equal(res.statusCode, 200, res.body)
      const cursor = res.json<{ next_cursor: string | null }>().next_cursor
      assert.ok(cursor, 'expected a next page')
      return cursor
    }

    it("when a cursor from A's project list is replayed on B's project list with B's token, then 400", async () => {
      const cursor = await cursorOf(A, `/v1/tenants/${A.tenant.tenantId}/projects`)
      const res = await as(B.tenant, 'GET', `/v1/tenants/${B.tenant.tenantId}/projects?limit=1&cursor=${cursor}`)
      assert.equal(res.statusCode, 400, res.body)
      assert.equal(res.json().code, 'validation_failed')
    })

    it("when a cursor from A's task list is replayed on B's task list with B's token, then 400", async () => {
      const cursor = await cursorOf(A, `/v1/tenants/${A.tenant.tenantId}/projects/${first(A.projectIds)}/tasks`)
      const res = await as(B.tenant, 'GET', `/v1/tenants/${B.tenant.tenantId}/projects/${first(B.projectIds)}/tasks?limit=1&cursor=${cursor}`)
      assert.equal(res.statusCode, 400, res.body)
      assert.equal(res.json().code, 'validation_failed')
    })

    it('when a cursor is edited (payload or tag), then 400', async () => {
      for (const url of [`/v1/tenants/${A.tenant.tenantId}/projects`, `/v1/tenants/${A.tenant.tenantId}/projects/${first(A.projectIds)}/tasks`]) {
        const cursor = await cursorOf(A, url)
        const [payload = '', tag = ''] = cursor.split('.')
        const position = JSON.parse(Buffer.from(payload, 'base64url').toString()) as string[]
        const forgedPayload = Buffer.from(JSON.stringify([position[0], first(B.projectIds)])).toString('base64url')
        const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1)
        for (const edited of [`${forgedPayload}.${tag}`, `${payload}.${flip(tag)}`, `${flip(payload)}.${tag}`, `${payload}.`, `${payload}.${tag}.${tag}`, payload]) {
          const res = await as(A.tenant, 'GET', `${url}?limit=1&cursor=${encodeURIComponent(edited)}`)
          assert.equal(res.statusCode, 400, `${edited}: ${res.body}`)
          assert.equal(res.json().code, 'validation_failed')
        }
      }
    })
  })

  describe('one pooled connection shared by two tenants', () => {
    let pool: Sql
    before(() => {
      pool = createPool(t.db.url, { max: 1, applicationName: 'isolation-test' })
    })
    after(async () => pool.end({ timeout: 5 }))

    it('when withTenant() calls of A and B interleave on a pool of one connection, then each sees only its own rows', async () => {
      const worlds = [A, B]
      const runs = Array.from({ length: 200 }, async (_, i) => {
        const w = worlds[i % 2] ?? A
        const scope = { tenantId: w.tenant.tenantId, userId: w.tenant.userId }
        // Every fifth transaction fails after reading: a rollback must not leave context behind either.
        const fail = i % 5 === 0
        try {
          const [projects, tasks, users, tenants] = await withTenant(pool, scope, (tx) =>
            Promise.all([
              tx.sql<{ tenant_id: string }[]>`select tenant_id from projects`,
              tx.sql<{ tenant_id: string }[]>`select tenant_id from tasks`,
              tx.sql<{ tenant_id: string }[]>`select tenant_id from users`,
              tx.sql<{ id: string }[]>`select id from tenants`,
            ]).then((r) => {
              if (fail) throw Object.assign(new Error('planned failure'), { rows: r })
              return r
            }),
          )
          assert.equal(projects.length, w.projectIds.length)
          assert.equal(tasks.length, w.taskIds.length)
          for (const r of [...projects, ...tasks, ...users]) assert.equal(r.tenant_id, w.tenant.tenantId)
          assert.deepEqual(tenants.map((r) => r.id), [w.tenant.tenantId])
        } catch (err) {
          if (!fail) throw err
          assert.equal((err as Error).message, 'planned failure')
        }
      })
      await Promise.all(runs)
      // After the burst the connection carries neither a tenant nor the runtime role.
      const [state] = await pool<{ tenant: string | null; role: string }[]>`select current_setting('app.tenant_id', true) as tenant, current_user as role`
      assert.ok(state?.tenant === '' || state?.tenant === null, `leftover tenant context: ${String(state?.tenant)}`)
      assert.notEqual(state?.role, 'saas_runtime')
    })

    describe('a second app whose pool has one connection', () => {
      let app: FastifyInstance
      before(async () => {
        app = await buildApp({ ...t.deps, db: { ...t.deps.db, sql: pool } })
        await app.ready()
      })
      after(async () => app.close())

      it('when A and B requests (reads, writes that fail, 404s) interleave, then no response carries the other tenant\'s rows', async () => {
        const requests = Array.from({ length: 120 }, async (_, i) => {
          const [me, other] = i % 2 === 0 ? [A, B] : [B, A]
          const base = `/v1/tenants/${me.tenant.tenantId}`
          const kind = i % 6
          if (kind === 0 || kind === 1) {
            const res = await app.inject({ method: 'GET', url: `${base}/projects?limit=100`, headers: me.tenant.auth })
            assert.equal(res.statusCode, 200, res.body)
            assert.deepEqual(res.json<{ items: { id: string }[] }>().items.map((p) => p.id).sort(), [...me.projectIds].sort())
          } else if (kind === 2) {
            const projectId = me.projectIds[i % me.projectIds.length] ?? ''
            const res = await app.inject({ method: 'GET', url: `${base}/projects/${projectId}/tasks?limit=100`, headers: me.tenant.auth })
            assert.equal(res.statusCode, 200, res.body)
            for (const task of res.json<{ items: { id: string; project_id: string }[] }>().items) {
              assert.ok(me.taskIds.includes(task.id))
              assert.equal(task.project_id, projectId)
            }
          } else if (kind === 3) {
            const res = await app.inject({ method: 'GET', url: `${base}/tasks/${first(other.taskIds)}`, headers: me.tenant.auth })
            assert.equal(res.statusCode, 404, res.body)
          } else if (kind === 4) {
            // Fails inside the transaction (422) and must roll back cleanly.
            const res = await app.inject({ method: 'PATCH', url: `${base}/tasks/${first(me.taskIds)}`, headers: me.tenant.auth, payload: { project_id: first(other.projectIds) } })
            assert.equal(res.statusCode, 422, res.body)
          } else {
            const res = await app.inject({ method: 'GET', url: base, headers: me.tenant.auth })
            assert.equal(res.statusCode, 200, res.body)
            assert.equal(res.json<{ id: string }>().id, me.tenant.tenantId)
          }
        })
        await Promise.all(requests)
      })
    })
  })

  describe('the database on its own (runtime role, no application code)', () => {
    it('when the runtime role has no tenant set, then every tenant table reads as empty', async () => {
      await t.admin.begin(async (tx) => {
        await tx`set local role saas_runtime`
        for (const table of tenantTables) {
          const [row] = await tx<{ n: number }[]>`select count(*)::int as n from ${tx(table)}`
          assert.equal(row?.n, 0, table)
        }
      })
    })

    it("when the runtime role's app.tenant_id is '' (a spent transaction-local setting), then every table reads as empty, not an error", async () => {
      await t.admin.begin(async (tx) => {
        await tx`set local role saas_runtime`
        await tx`select set_config('app.tenant_id', '', true)`
        for (const table of tenantTables) {
          const [row] = await tx<{ n: number }[]>`select count(*)::int as n from ${tx(table)}`
          assert.equal(row?.n, 0, table)
        }
      })
    })

    it('when the runtime role is set to A, then it sees only A even without a tenant filter', async () => {
      await t.admin.begin(async (tx) => {
        await tx`set local role saas_runtime`
        await tx`select set_config('app.tenant_id', ${A.tenant.tenantId}, true)`
        const rows = await tx<{ tenant_id: string }[]>`select tenant_id from projects`
        assert.equal(rows.length, A.projectIds.length)
        for (const r of rows) assert.equal(r.tenant_id, A.tenant.tenantId)
      })
    })

    const asRuntimeOfA = async (fn: (tx: Sql) => Promise<unknown>) =>
      t.admin.begin(async (tx) => {
        await tx`set local role saas_runtime`
        await tx`select set_config('app.tenant_id', ${A.tenant.tenantId}, true)`
        return fn(tx as unknown as Sql)
      })

    it("when the runtime role (set to A) inserts a row with B's tenant_id, then row-level security refuses it", async () => {
      const before = await snapshot()
      await assert.rejects(asRuntimeOfA((tx) => tx`insert into projects (tenant_id, id, name) values (${B.tenant.tenantId}, ${randomUUID()}, 'planted')`), { code: '42501' })
      await assert.rejects(
        asRuntimeOfA((tx) => tx`insert into tasks (tenant_id, id, project_id, title) values (${B.tenant.tenantId}, ${randomUUID()}, ${first(B.projectIds)}, 'planted')`),
        { code: '42501' },
      )
      await assert.rejects(asRuntimeOfA((tx) => tx`insert into users (tenant_id, id, email, password_hash, role) values (${B.tenant.tenantId}, ${randomUUID()}, 'x@example.com', 'x', 'owner')`), { code: '42501' })
      assert.equal(await snapshot(), before)
    })

    it("when the runtime role (set to A) moves A's row to B or touches B's rows, then it is refused or reaches nothing", async () => {
      const before = await snapshot()
      await assert.rejects(asRuntimeOfA((tx) => tx`update projects set tenant_id = ${B.tenant.tenantId} where id = ${first(A.projectIds)}`), { code: '42501' })
      const updated = await asRuntimeOfA((tx) => tx`update projects set name = 'pwned' where tenant_id = ${B.tenant.tenantId}`)
      assert.equal((updated as { count: number }).count, 0)
      const deleted = await asRuntimeOfA((tx) => tx`delete from tasks where tenant_id = ${B.tenant.tenantId}`)
      assert.equal((deleted as { count: number }).count, 0)
      const tenants = await asRuntimeOfA((tx) => tx`update tenants set name = 'hijacked' where id = ${B.tenant.tenantId}`)
      assert.equal((tenants as { count: number }).count, 0)
      assert.equal(await snapshot(), before)
    })

    it("when the runtime role tries to lift its own tenant's suspension, then the column privilege refuses it", async () => {
      await assert.rejects(
        asRuntimeOfA((tx) => tx`update tenants set status = 'active' where id = ${A.tenant.tenantId}`),
        (err: { code?: string }) => err.code === '42501',
      )
    })

    it('when app.tenant_id is set to a value that is not a UUID, then the query errors instead of returning rows', async () => {
      await assert.rejects(
        t.admin.begin(async (tx) => {
          await tx`set local role saas_runtime`
          await tx`select set_config('app.tenant_id', 'not-a-uuid', true)`
          return tx`select count(*) from projects`
        }),
        { code: '22P02' },
      )
      await assert.rejects(withTenant(t.deps.db.sql, { tenantId: 'not-a-uuid' }, (tx) => tx.sql`select id from projects`))
    })
  })
})
