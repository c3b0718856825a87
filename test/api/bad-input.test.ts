import assert from 'node:assert/strict'
import type { LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

/** Refusals of malformed input on every projects, tasks and tenants endpoint; nothing is written by any of them. */

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE'
interface Ids {
  tenantId: string
  projectId: string
  taskId: string
}
interface Endpoint {
  name: string
  method: Method
  url: (ids: Ids) => string
  /** Path parameters the URL uses, each to be replaced by a malformed UUID. */
  params: (keyof Ids)[]
  /** A valid body, for endpoints that take one. */
  body?: Record<string, unknown>
  /** A string field and its maximum length. */
  text?: { field: string; max: number }
}

const endpoints: Endpoint[] = [
  { name: 'GET tenant', method: 'GET', url: (i) => `/v1/tenants/${i.tenantId}`, params: ['tenantId'] },
  { name: 'PATCH tenant', method: 'PATCH', url: (i) => `/v1/tenants/${i.tenantId}`, params: ['tenantId'], body: { name: 'Renamed' }, text: { field: 'name', max: 200 } },
  { name: 'GET projects', method: 'GET', url: (i) => `/v1/tenants/${i.tenantId}/projects`, params: ['tenantId'] },
  { name: 'POST projects', method: 'POST', url: (i) => `/v1/tenants/${i.tenantId}/projects`, params: ['tenantId'], body: { name: 'New' }, text: { field: 'name', max: 200 } },
  { name: 'GET project', method: 'GET', url: (i) => `/v1/tenants/${i.tenantId}/projects/${i.projectId}`, params: ['tenantId', 'projectId'] },
  { name: 'PATCH project', method: 'PATCH', url: (i) => `/v1/tenants/${i.tenantId}/projects/${i.projectId}`, params: ['tenantId', 'projectId'], body: { name: 'Renamed' }, text: { field: 'description', max: 10_000 } },
  { name: 'DELETE project', method: 'DELETE', url: (i) => `/v1/tenants/${i.tenantId}/projects/${i.projectId}`, params: ['tenantId', 'projectId'] },
  { name: 'GET tasks', method: 'GET', url: (i) => `/v1/tenants/${i.tenantId}/projects/${i.projectId}/tasks`, params: ['tenantId', 'projectId'] },
  { name: 'POST tasks', method: 'POST', url: (i) => `/v1/tenants/${i.tenantId}/projects/${i.projectId}/tasks`, params: ['tenantId', 'projectId'], body: { title: 'New' }, text: { field: 'title', max: 500 } },
  { name: 'GET task', method: 'GET', url: (i) => `/v1/tenants/${i.tenantId}/tasks/${i.taskId}`, params: ['tenantId', 'taskId'] },
  { name: 'PATCH task', method: 'PATCH', url: (i) => `/v1/tenants/${i.tenantId}/tasks/${i.taskId}`, params: ['tenantId', 'taskId'], body: { title: 'Renamed' }, text: { field: 'description', max: 10_000 } },
  { name: 'DELETE task', method: 'DELETE', url: (i) => `/v1/tenants/${i.tenantId}/tasks/${i.taskId}`, params: ['tenantId', 'taskId'] },
]

/** Text that must never reach a client: driver names, SQL, stack frames, source paths. */
const leaks = ['postgres', 'select', 'at /', '.ts:', 'node_modules', 'stack']

export function assertProblem(res: LightMyRequestResponse, status: number, code?: string): void {
  assert.equal(res.statusCode, status, res.body)
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
  const body = res.json<Record<string, unknown>>()
  for (const field of ['type', 'title', 'status', 'detail', 'code', 'request_id']) assert.ok(field in body, `problem lacks ${field}: ${res.body}`)
  assert.equal(body.status, status)
  assert.equal(body.request_id, res.headers['x-request-id'])
  if (code) assert.equal(body.code, code)
  const text = res.body.toLowerCase()
  for (const leak of leaks) assert.ok(!text.includes(leak), `problem leaks "${leak}": ${res.body}`)
}

function errorPaths(res: LightMyRequestResponse): string[] {
  return (res.json<{ errors?: { path: string }[] }>().errors ?? []).map((e) => e.path)
}

describe('bad input on every endpoint', () => {
  let t: TestApp
  let a: TestTenant
  let b: TestTenant
  let ids: Ids
  let otherTenantIds: Ids

  /** A digest of every tenant, user, project and task row: any write changes it. */
  async function snapshot(): Promise<string> {
    const [row] = await t.admin<{ h: string }[]>`
      select md5(
        coalesce((select string_agg(x::text, '|' order by x.id) from tenants x), '') ||
        coalesce((select string_agg(x::text, '|' order by x.id) from users x), '') ||
        coalesce((select string_agg(x::text, '|' order by x.id) from projects x), '') ||
        coalesce((select string_agg(x::text, '|' order by x.id) from tasks x), '')) as h`
    return row?.h ?? ''
  }

  /** Sends the request and asserts the problem answer and that the database did not change. */
  async function refused(send: () => Promise<LightMyRequestResponse>, status: number, code?: string): Promise<LightMyRequestResponse> {
    const before = await snapshot()
    const res = await send()
    assertProblem(res, status, code)
    assert.equal(await snapshot(), before, 'the database changed')
    return res
  }

  before(async () => {
    t = await startTestApp()
    a = await createTenant(t)
    b = await createTenant(t)
    const project = await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth, payload: { name: 'P' } })
    const projectId = project.json<{ id: string }>().id
    const task = await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects/${projectId}/tasks`, headers: a.auth, payload: { title: 'T' } })
    ids = { tenantId: a.tenantId, projectId, taskId: task.json<{ id: string }>().id }
    otherTenantIds = { ...ids, tenantId: b.tenantId }
  })
  after(async () => t.close())

  for (const e of endpoints) {
    describe(e.name, () => {
      const send = (opts: { url?: string; payload?: string | object; contentType?: string }) =>
        t.app.inject({
          method: e.method,
          url: opts.url ?? e.url(ids),
          headers: { ...a.auth, ...(opts.contentType ? { 'content-type': opts.contentType } : {}) },
          ...(opts.payload !== undefined ? { payload: opts.payload } : {}),
        })

      it('when an unknown query parameter is sent, then 400 validation_failed naming it', async () => {
        const res = await refused(() => send({ url: `${e.url(ids)}?bogus=1`, ...(e.body ? { payload: e.body } : {}) }), 400, 'validation_failed')
        assert.ok(errorPaths(res).includes('/querystring/bogus'), res.body)
      })

      it('when a query parameter is repeated, then 400 validation_failed', async () => {
        await refused(() => send({ url: `${e.url(ids)}?limit=1&limit=2`, ...(e.body ? { payload: e.body } : {}) }), 400, 'validation_failed')
      })

      for (const param of e.params) {
        for (const bad of ['not-a-uuid', '00000000-0000-0000-0000-00000000000g', '01a23d28-273a-73b0-9799-fee1732aa0691', "1' OR '1'='1"]) {
          it(`when ${param} is "${bad}", then 400 validation_failed before any tenant check`, async () => {
            for (const base of [ids, otherTenantIds]) {
              const res = await refused(() => send({ url: e.url({ ...base, [param]: encodeURIComponent(bad) }), ...(e.body ? { payload: e.body } : {}) }), 400, 'validation_failed')
              assert.ok(errorPaths(res).some((p) => p.startsWith('/params')), res.body)
            }
          })
        }
      }

      if (e.method === 'GET') return

      it('when the body is not valid JSON, then 400 malformed_json', async () => {
        await refused(() => send({ payload: '{"name": ', contentType: 'application/json' }), 400, 'malformed_json')
      })

      it('when the body is text/plain, then 415 unsupported_media_type', async () => {
        await refused(() => send({ payload: JSON.stringify(e.body ?? {}), contentType: 'text/plain' }), 415, 'unsupported_media_type')
      })

      it('when the body is larger than 1 MiB, then 413 payload_too_large', async () => {
        const payload = JSON.stringify({ ...(e.body ?? {}), padding: 'x'.repeat(1024 * 1024) })
        await refused(() => send({ payload, contentType: 'application/json' }), 413, 'payload_too_large')
      })

      const body = e.body
      if (!body) return

      it('when the body carries an unknown property, then 400 validation_failed naming it', async () => {
        const res = await refused(() => send({ payload: { ...body, bogus: true } }), 400, 'validation_failed')
        assert.ok(errorPaths(res).includes('/body/bogus'), res.body)
      })

      for (const field of ['tenant_id', 'id', 'role']) {
        it(`when the body carries ${field}, then 400 validation_failed naming it, not silently ignored`, async () => {
          const res = await refused(() => send({ payload: { ...body, [field]: field === 'role' ? 'owner' : otherTenantIds.tenantId } }), 400, 'validation_failed')
          assert.ok(errorPaths(res).includes(`/body/${field}`), res.body)
        })
      }

      it('when a field has the wrong type, then 400 validation_failed', async () => {
        const [field] = Object.keys(body)
        await refused(() => send({ payload: { [field ?? 'name']: 123 } }), 400, 'validation_failed')
        await refused(() => send({ payload: { [field ?? 'name']: ['a'] } }), 400, 'validation_failed')
        await refused(() => send({ payload: { [field ?? 'name']: { a: 1 } } }), 400, 'validation_failed')
      })

      it('when the body is an array, null, a number or a string, then 400', async () => {
        for (const payload of ['[]', 'null', '42', '"x"']) await refused(() => send({ payload, contentType: 'application/json' }), 400)
      })

      it('when a string is one character too long, then 400 validation_failed naming it', async () => {
        const text = e.text
        assert.ok(text)
        const res = await refused(() => send({ payload: { ...body, [text.field]: 'x'.repeat(text.max + 1) } }), 400, 'validation_failed')
        assert.ok(errorPaths(res).includes(`/body/${text.field}`), res.body)
      })

      it('when the body sets __proto__ or constructor.prototype, then a 4xx problem', async () => {
        for (const payload of [`{"__proto__": {"isAdmin": true}, ${JSON.stringify(body).slice(1)}`, `{"constructor": {"prototype": {"isAdmin": true}}, ${JSON.stringify(body).slice(1)}`]) {
          const before = await snapshot()
          const res = await send({ payload, contentType: 'application/json' })
          assert.ok(res.statusCode >= 400 && res.statusCode < 500, res.body)
          assertProblem(res, res.statusCode)
          assert.equal(await snapshot(), before)
          assert.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype was polluted')
        }
      })
    })
  }
})
