import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import postgres from 'postgres'
import { generateApiKey } from '../../src/platform/auth/api-keys.ts'
import { withTenant } from '../../src/platform/db/tenant.ts'
import { addUser, createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'
import { repoRoot } from '../helpers/processes.ts'

interface Event {
  id: string
  at: string
  actor_type: string
  actor_id: string | null
  action: string
  target_type: string | null
  target_id: string | null
  request_id: string | null
  ip: string | null
  details: Record<string, unknown>
}
interface EventPage {
  items: Event[]
  next_cursor: string | null
}

/** Runs `npm run admin -- <args>` against the test database, as an operator would. */
function admin(args: string[], databaseUrl: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'saas-admin-'))
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, USER: 'ops-alice', NODE_ENV: 'test', DATABASE_URL: databaseUrl, DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...env }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/admin.ts', ...args], { cwd: repoRoot, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.once('error', reject)
    child.once('close', (code) => {
      rmSync(dataDir, { recursive: true, force: true })
      resolve({ code, stdout, stderr })
    })
  })
}

describe('audit events', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
  })
  after(async () => t.close())

  const events = (who: TestTenant, query = '') => t.app.inject({ method: 'GET', url: `/v1/tenants/${who.tenantId}/audit-events${query}`, headers: who.auth })
  const page = async (who: TestTenant, query = ''): Promise<EventPage> => {
    const res = await events(who, query)
    assert.equal(res.statusCode, 200, res.body)
    return res.json<EventPage>()
  }

  it('when a member creates, updates and deletes a project and a task, then the admin reads each change newest first with actor, target, request id and IP', async () => {
    const owner = await createTenant(t)
    const member = await addUser(t, owner, 'member')
    const base = `/v1/tenants/${owner.tenantId}`
    const send = (method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
      t.app.inject({ method, url: `${base}${url}`, headers: { ...member.auth, 'x-request-id': `audit-${method.toLowerCase()}-${url.length}` }, remoteAddress: '198.51.100.7', ...(payload ? { payload } : {}) })
    const project = (await send('POST', '/projects', { name: 'Audited' })).json<{ id: string }>()
    const task = (await send('POST', `/projects/${project.id}/tasks`, { title: 'Audited task' })).json<{ id: string }>()
    assert.equal((await send('PATCH', `/tasks/${task.id}`, { status: 'done' })).statusCode, 200)
    assert.equal((await send('DELETE', `/tasks/${task.id}`)).statusCode, 204)
    assert.equal((await send('PATCH', `/projects/${project.id}`, { name: 'Renamed', description: 'x' })).statusCode, 200)
    assert.equal((await send('DELETE', `/projects/${project.id}`)).statusCode, 204)

    const { items } = await page(owner)
    assert.deepEqual(items.map((e) => e.action), ['project.deleted', 'project.updated', 'task.deleted', 'task.updated', 'task.created', 'project.created'])
    for (const e of items) {
      assert.equal(e.actor_type, 'user')
      assert.equal(e.actor_id, member.userId)
      assert.equal(e.ip, '198.51.100.7')
      assert.match(e.request_id ?? '', /^audit-/)
    }
    assert.deepEqual(items.map((e) => e.target_id), [project.id, project.id, task.id, task.id, task.id, project.id])
    // Field names, never the values (they are the tenant's data, not audit facts).
    assert.deepEqual(items[1]?.details, { fields: ['name', 'description'] })
    const times = items.map((e) => Date.parse(e.at))
    assert.deepEqual(times, [...times].sort((a, b) => b - a))
  })

  it('when an admin patches the tenant, then tenant.updated is recorded; a refused change records nothing', async () => {
    const owner = await createTenant(t)
    const viewer = await addUser(t, owner, 'viewer')
    assert.equal((await t.app.inject({ method: 'PATCH', url: `/v1/tenants/${owner.tenantId}`, headers: owner.auth, payload: { name: 'New name' } })).statusCode, 200)
    assert.equal((await t.app.inject({ method: 'POST', url: `/v1/tenants/${owner.tenantId}/projects`, headers: viewer.auth, payload: { name: 'nope' } })).statusCode, 403)
    const { items } = await page(owner)
    assert.deepEqual(items.map((e) => [e.action, e.target_type, e.target_id]), [['tenant.updated', 'tenant', owner.tenantId]])
  })

  it('when a task is created in one batch, then its event is written once with it, and not at all when the task is refused', async () => {
    const owner = await createTenant(t)
    const other = await createTenant(t)
    const project = await t.app.inject({ method: 'POST', url: `/v1/tenants/${owner.tenantId}/projects`, headers: owner.auth, payload: { name: 'p' } })
    const projectId = project.json<{ id: string }>().id
    const create = (pid: string, payload: Record<string, unknown>) =>
      t.app.inject({ method: 'POST', url: `/v1/tenants/${owner.tenantId}/projects/${pid}/tasks`, headers: owner.auth, payload })
    assert.equal((await create(randomUUID(), { title: 'no such project' })).statusCode, 404)
    assert.equal((await create(projectId, { title: 'foreign assignee', assignee_id: other.userId })).statusCode, 422)
    assert.equal((await page(owner, '?action=task.created')).items.length, 0, 'a refused task leaves no event')
    const created = await create(projectId, { title: 'kept' })
    assert.equal(created.statusCode, 201, created.body)
    const items = (await page(owner, '?action=task.created')).items
    assert.deepEqual(items.map((e) => e.target_id), [created.json<{ id: string }>().id])
  })

  it('when the log is filtered by action and since, and paged with a cursor, then it returns exactly the matching events once each', async () => {
    const owner = await createTenant(t)
    for (let i = 0; i < 5; i++) await t.app.inject({ method: 'POST', url: `/v1/tenants/${owner.tenantId}/projects`, headers: owner.auth, payload: { name: `p${i}` } })
    const [{ at: cut } = { at: '' }] = await t.admin<{ at: string }[]>`
      select to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at from audit_events where tenant_id = ${owner.tenantId} order by at, id offset 2 limit 1`
    const first = await page(owner, '?action=project.created&limit=2')
    assert.equal(first.items.length, 2)
    assert.ok(first.next_cursor)
    const seen = [...first.items]
    let cursor: string | null = first.next_cursor
    while (cursor) {
      const next = await page(owner, `?action=project.created&limit=2&cursor=${cursor}`)
      seen.push(...next.items)
      cursor = next.next_cursor
    }
    assert.equal(seen.length, 5)
    assert.equal(new Set(seen.map((e) => e.id)).size, 5)
    assert.equal((await page(owner, '?action=task.created')).items.length, 0)
    const since = await page(owner, `?since=${encodeURIComponent(cut)}`)
    assert.equal(since.items.length, 3)
    assert.ok(since.items.every((e) => Date.parse(e.at) >= Date.parse(cut)))
    // A cursor issued for one filter is refused for another.
    const bad = await events(owner, `?action=project.deleted&limit=2&cursor=${first.next_cursor}`)
    assert.equal(bad.statusCode, 400, bad.body)
  })

  it('when the filters are malformed, then 400 validation_failed names them', async () => {
    const owner = await createTenant(t)
    for (const query of ['?action=Project.Created', '?action=project', '?since=yesterday', '?actor=me']) {
      const res = await events(owner, query)
      assert.equal(res.statusCode, 400, `${query}: ${res.body}`)
      assert.equal(res.json<{ code: string }>().code, 'validation_failed')
    }
  })

  it('when a member, an API key or another tenant asks for the audit log, then it is refused and nothing leaks', async () => {
    const owner = await createTenant(t)
    const member = await addUser(t, owner, 'member')
    assert.equal((await events(member)).statusCode, 403)
    const key = generateApiKey(owner.tenantId)
    await t.admin`insert into api_keys (tenant_id, id, name, prefix, secret_hash, scopes) values (${owner.tenantId}, ${key.id}, 'ci', ${key.prefix}, ${key.secretHash}, ${['projects:read', 'projects:write', 'tasks:read', 'tasks:write']})`
    const byKey = await t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}/audit-events`, headers: { authorization: `Bearer ${key.key}` } })
    assert.equal(byKey.statusCode, 403, byKey.body)
    const other = await createTenant(t)
    const cross = await t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}/audit-events`, headers: other.auth })
    assert.equal(cross.statusCode, 403)
    assert.equal(cross.json<{ code: string }>().code, 'tenant_mismatch')
    // Another tenant's own log never holds this tenant's events.
    await t.app.inject({ method: 'POST', url: `/v1/tenants/${owner.tenantId}/projects`, headers: owner.auth, payload: { name: 'mine' } })
    assert.equal((await page(other)).items.length, 0)
  })

  it('when code running as the runtime role tries to edit or erase audit events, then the database refuses (append-only)', async () => {
    const owner = await createTenant(t)
    await t.app.inject({ method: 'POST', url: `/v1/tenants/${owner.tenantId}/projects`, headers: owner.auth, payload: { name: 'evidence' } })
    for (const attempt of [
      (tx: postgres.ISql) => tx`update audit_events set action = 'project.nothing' where tenant_id = ${owner.tenantId}`,
      (tx: postgres.ISql) => tx`delete from audit_events where tenant_id = ${owner.tenantId}`,
      (tx: postgres.ISql) => tx`select count(*) from operator_events`,
    ]) {
      await assert.rejects(
        withTenant(t.deps.db.sql, { tenantId: owner.tenantId }, (tt) => attempt(tt.sql)),
        (err: unknown) => err instanceof postgres.PostgresError && err.code === '42501',
      )
    }
    const [row] = await t.admin<{ n: number }[]>`select count(*)::int as n from audit_events where tenant_id = ${owner.tenantId} and action = 'project.created'`
    assert.equal(row?.n, 1)
  })

  it('when the runtime role inserts an event for another tenant, then row-level security refuses it', async () => {
    const owner = await createTenant(t)
    const other = await createTenant(t)
    await assert.rejects(
      withTenant(t.deps.db.sql, { tenantId: owner.tenantId }, (tt) => tt.sql`insert into audit_events (tenant_id, id, actor_type, action) values (${other.tenantId}, gen_random_uuid(), 'system', 'project.created')`),
      (err: unknown) => err instanceof postgres.PostgresError && err.code === '42501',
    )
  })

  describe('tenant suspension by the operator', () => {
    it('when the operator suspends a tenant, then its tokens and API keys get 403 tenant_suspended from the next request, resume restores them, and both actions are in the audit log', async () => {
      const owner = await createTenant(t)
      const key = generateApiKey(owner.tenantId)
      await t.admin`insert into api_keys (tenant_id, id, name, prefix, secret_hash, scopes) values (${owner.tenantId}, ${key.id}, 'ci', ${key.prefix}, ${key.secretHash}, ${['projects:read']})`
      const byToken = () => t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}/projects`, headers: owner.auth })
      const byKey = () => t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}/projects`, headers: { authorization: `Bearer ${key.key}` } })
      assert.equal((await byToken()).statusCode, 200)
      assert.equal((await byKey()).statusCode, 200)

      const suspended = await admin(['tenant', 'suspend', owner.slug], t.db.url)
      assert.equal(suspended.code, 0, suspended.stderr)
      assert.match(suspended.stdout, /active -> suspended/)
      assert.match(suspended.stdout, /recorded in the tenant's audit log as tenant\.suspended by operator ops-alice/)
      for (const res of [await byToken(), await byKey(), await events(owner)]) {
        assert.equal(res.statusCode, 403, res.body)
        assert.equal(res.json<{ code: string }>().code, 'tenant_suspended')
      }
      // Refused before any change: a write while suspended leaves no project and no event.
      const write = await t.app.inject({ method: 'POST', url: `/v1/tenants/${owner.tenantId}/projects`, headers: owner.auth, payload: { name: 'during suspension' } })
      assert.equal(write.statusCode, 403)

      const resumed = await admin(['tenant', 'resume', owner.slug], t.db.url)
      assert.equal(resumed.code, 0, resumed.stderr)
      assert.equal((await byToken()).statusCode, 200)
      assert.equal((await byKey()).statusCode, 200)

      const { items } = await page(owner)
      assert.deepEqual(items.map((e) => [e.action, e.actor_type, e.actor_id, e.target_id, e.request_id]), [
        ['tenant.resumed', 'operator', 'ops-alice', owner.tenantId, null],
        ['tenant.suspended', 'operator', 'ops-alice', owner.tenantId, null],
      ])
      assert.deepEqual(items[1]?.details, { slug: owner.slug, previous_status: 'active' })
      const ops = await t.admin<{ action: string; target_id: string }[]>`select action, target_id from operator_events where target_id = ${owner.tenantId} order by at, id`
      assert.deepEqual(ops.map((o) => o.action), ['tenant.suspended', 'tenant.resumed'])
    })

    it('when the operator names a tenant that does not exist, then nothing is recorded and the command fails', async () => {
      const before = await t.admin<{ n: number }[]>`select count(*)::int as n from operator_events`
      const res = await admin(['tenant', 'suspend', 'no-such-tenant-here'], t.db.url)
      assert.equal(res.code, 1)
      assert.match(res.stderr, /no tenant with slug/)
      const afterRows = await t.admin<{ n: number }[]>`select count(*)::int as n from operator_events`
      assert.equal(afterRows[0]?.n, before[0]?.n)
    })
  })
})
