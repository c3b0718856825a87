import assert from 'node:assert/strict'
import type { LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

/**
 * Threat 6, SQL injection: hostile text in every string field is stored literally (and reads back
 * equal) or refused with 400; hostile text in sort, filters, cursors, limits and path ids is 400.
 * Never a 500, and the other tenant's rows and every table survive.
 */

const hostile: string[] = [
  "' OR 1=1 --",
  "' OR '1'='1",
  "'; DROP TABLE projects; --",
  "Robert'); DROP TABLE tasks;--",
  '"; DROP TABLE tenants; --',
  "1; SELECT pg_sleep(5)",
  "' UNION SELECT id, slug, name, null, null, now(), now() FROM tenants --",
  '$$; DELETE FROM users; $$',
  '$1',
  '$1::text',
  '${1}',
  '%',
  '_',
  "%' AND name LIKE '%",
  '\\',
  "\\'; --",
  "E'\\x27'",
  '*/ /* --',
  "'); COMMIT; DROP TABLE projects; BEGIN; --",
  'Ünïcödé ✓ — 中文 — العربية — 👩‍👩‍👧 — \u202Eevil\u202C — zero\u200Bwidth',
  '\u0001\u0007\u001b[31m\t\r\n',
  "'".repeat(200),
]
/** PostgreSQL cannot store U+0000: these must be refused with 400, not crash with 500. */
const nul = ['a\u0000b', '\u0000', "'\u0000; DROP TABLE projects; --"]

interface Field {
  name: string
  max: number
  /** Writes the value; returns the answer. */
  write(value: string): Promise<LightMyRequestResponse>
  /** Reads the stored value back through the API. */
  read(res: LightMyRequestResponse): Promise<unknown>
}

describe('threat 6: SQL injection', () => {
  let t: TestApp
  let a: TestTenant
  let b: TestTenant
  let base: string
  let projectId: string
  let taskId: string
  let bCounts: Record<string, number>

  const inject = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) => t.app.inject({ method, url, headers: a.auth, ...(payload ? { payload } : {}) })

  async function countsOf(tenantId: string): Promise<Record<string, number>> {
    const [row] = await t.admin<Record<string, number>[]>`
      select (select count(*)::int from projects where tenant_id = ${tenantId}) as projects,
             (select count(*)::int from tasks where tenant_id = ${tenantId}) as tasks,
             (select count(*)::int from users where tenant_id = ${tenantId}) as users,
             (select count(*)::int from tenants where id = ${tenantId}) as tenants`
    return row ?? {}
  }

  before(async () => {
    t = await startTestApp()
    a = await createTenant(t)
    b = await createTenant(t)
    base = `/v1/tenants/${a.tenantId}`
    projectId = (await inject('POST', `${base}/projects`, { name: 'target' })).json<{ id: string }>().id
    taskId = (await inject('POST', `${base}/projects/${projectId}/tasks`, { title: 'target' })).json<{ id: string }>().id
    const bp = await t.app.inject({ method: 'POST', url: `/v1/tenants/${b.tenantId}/projects`, headers: b.auth, payload: { name: 'B project' } })
    await t.app.inject({ method: 'POST', url: `/v1/tenants/${b.tenantId}/projects/${bp.json<{ id: string }>().id}/tasks`, headers: b.auth, payload: { title: 'B task' } })
    bCounts = await countsOf(b.tenantId)
  })
  after(async () => t.close())

  const readJson = async (url: string) => (await inject('GET', url)).json<Record<string, unknown>>()
  const fields: Field[] = [
    {
      name: 'project name (create)',
      max: 200,
      write: (v) => inject('POST', `${base}/projects`, { name: v }),
      read: async (res) => (await readJson(`${base}/projects/${res.json<{ id: string }>().id}`)).name,
    },
    {
      name: 'project description (patch)',
      max: 10_000,
      write: (v) => inject('PATCH', `${base}/projects/${projectId}`, { description: v }),
      read: async () => (await readJson(`${base}/projects/${projectId}`)).description,
    },
    {
      name: 'task title (create)',
      max: 500,
      write: (v) => inject('POST', `${base}/projects/${projectId}/tasks`, { title: v }),
      read: async (res) => (await readJson(`${base}/tasks/${res.json<{ id: string }>().id}`)).title,
    },
    {
      name: 'task description (patch)',
      max: 10_000,
      write: (v) => inject('PATCH', `${base}/tasks/${taskId}`, { description: v }),
      read: async () => (await readJson(`${base}/tasks/${taskId}`)).description,
    },
    {
      name: 'tenant name',
      max: 200,
      write: (v) => inject('PATCH', base, { name: v }),
      read: async () => (await readJson(base)).name,
    },
    {
      name: 'tenant settings value',
      max: 1000,
      write: (v) => inject('PATCH', base, { settings: { note: v } }),
      read: async () => ((await readJson(base)).settings as Record<string, unknown>).note,
    },
  ]

  function assertNot500(res: LightMyRequestResponse, what: string): void {
    assert.ok(res.statusCode < 500, `${what}: ${res.statusCode} ${res.body}`)
  }

  for (const f of fields) {
    it(`when hostile text is written to the ${f.name}, then it is stored literally or refused with 400, never 500`, async () => {
      for (const value of [...hostile, "' OR 1=1 --".repeat(Math.floor(f.max / 11))]) {
        const res = await f.write(value)
        assertNot500(res, JSON.stringify(value))
        if (res.statusCode === 400) continue
        assert.ok(res.statusCode === 200 || res.statusCode === 201, `${JSON.stringify(value)}: ${res.body}`)
        assert.equal(await f.read(res), value, `${JSON.stringify(value)} did not read back equal`)
      }
    })

    it(`when the ${f.name} holds a NUL character, then 400 validation_failed naming the field`, async () => {
      for (const value of nul) {
        const res = await f.write(value)
        assert.equal(res.statusCode, 400, `${JSON.stringify(value)}: ${res.body}`)
        assert.equal(res.json().code, 'validation_failed')
        // Refused by the schema, with the field named, not by the database with an empty list.
        assert.ok((res.json().errors as unknown[]).length >= 1, res.body)
      }
    })

    it(`when the ${f.name} is one character over its limit, then 400`, async () => {
      const res = await f.write("'".repeat(f.max + 1))
      assert.equal(res.statusCode, 400, res.body)
    })
  }

  it('when a settings key is hostile, then 400 (keys are 1–64 of [A-Za-z0-9_.-]), or stored literally when it happens to fit', async () => {
    for (const key of [...hostile, ...nul]) {
      const res = await inject('PATCH', base, { settings: { [key]: 'x' } })
      if (/^[A-Za-z0-9_.-]{1,64}$/.test(key)) {
        assert.equal(res.statusCode, 200, res.body)
        assert.deepEqual((await readJson(base)).settings, { [key]: 'x' })
      } else {
        assert.equal(res.statusCode, 400, `${JSON.stringify(key)}: ${res.body}`)
      }
    }
  })

  describe('hostile query parameters and path ids', () => {
    const lists = () => [`${base}/projects`, `${base}/projects/${projectId}/tasks`]
    const queryValues = [...hostile, ...nul, 'created_at; DROP TABLE projects', 'name desc', '-created_at,id', '(select 1)']

    for (const param of ['sort', 'status', 'cursor', 'limit', 'assignee_id']) {
      it(`when ?${param}= carries hostile text, then 400`, async () => {
        for (const url of lists()) {
          for (const value of queryValues) {
            const res = await t.app.inject({ method: 'GET', url, headers: a.auth, query: { [param]: value } })
            assert.equal(res.statusCode, 400, `${url}?${param}=${JSON.stringify(value)}: ${res.body}`)
          }
        }
      })
    }

    it('when a path id carries hostile text, then 400, never 404 or 500', async () => {
      const routes = (v: string): [('GET' | 'PATCH' | 'POST' | 'DELETE')[], string][] => [
        [['GET', 'PATCH'], `/v1/tenants/${v}`],
        [['GET', 'POST'], `/v1/tenants/${v}/projects`],
        [['GET', 'PATCH', 'DELETE'], `${base}/projects/${v}`],
        [['GET', 'POST'], `${base}/projects/${v}/tasks`],
        [['GET', 'PATCH', 'DELETE'], `${base}/tasks/${v}`],
      ]
      for (const value of [...hostile, ...nul].filter((v) => v.length <= 200)) {
        for (const [methods, url] of routes(encodeURIComponent(value))) {
          for (const method of methods) {
            const payload = method === 'POST' || method === 'PATCH' ? { payload: url.includes('/tasks') ? { title: 'x' } : { name: 'x' } } : {}
            const res = await t.app.inject({ method, url, headers: a.auth, ...payload })
            assert.equal(res.statusCode, 400, `${method} ${url}: ${res.body}`)
          }
        }
      }
    })
  })

  it('when every attack has run, then the other tenant has all its rows and every table still exists', async () => {
    assert.deepEqual(await countsOf(b.tenantId), bCounts)
    const [row] = await t.admin<{ missing: string[] }[]>`
      select array(select unnest(array['tenants', 'users', 'projects', 'tasks', 'refresh_tokens', 'revoked_tokens', 'signing_keys', 'schema_migrations'])
                   except select tablename::text from pg_tables where schemaname = 'public') as missing`
    assert.deepEqual(row?.missing, [])
    const [aRow] = await t.admin<{ n: number }[]>`select count(*)::int as n from projects where tenant_id = ${a.tenantId} and id = ${projectId}`
    assert.equal(aRow?.n, 1)
  })
})
