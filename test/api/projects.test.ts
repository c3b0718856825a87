import assert from 'node:assert/strict'
import type { LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

describe('projects', () => {
  let t: TestApp
  let a: TestTenant
  before(async () => {
    t = await startTestApp()
    a = await createTenant(t)
  })
  after(async () => t.close())

  it('when a member creates a project, then it is returned with 201 and a Location, and can be read back', async () => {
    const res = await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth, payload: { name: 'Apollo' } })
    assert.equal(res.statusCode, 201, res.body)
    const body = res.json()
    assert.equal(body.name, 'Apollo')
    assert.equal(body.status, 'active')
    assert.equal(res.headers.location, `/v1/tenants/${a.tenantId}/projects/${body.id}`)
    const got = await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects/${body.id}`, headers: a.auth })
    assert.equal(got.statusCode, 200)
    assert.deepEqual(got.json(), body)
  })

  it('when listing with a small limit, then pages follow next_cursor without repeats', async () => {
    for (let i = 0; i < 5; i++) await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth, payload: { name: `p${i}` } })
    const seen = new Set<string>()
    let cursor: string | null = null
    do {
      const res: LightMyRequestResponse = await t.app.inject({ method: "GET", url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth, query: { limit: '2', sort: 'name', ...(cursor ? { cursor } : {}) } })
      assert.equal(res.statusCode, 200, res.body)
      const body = res.json()
      for (const p of body.items) {
        assert.ok(!seen.has(p.id))
        seen.add(p.id)
      }
      cursor = body.next_cursor
    } while (cursor)
    assert.ok(seen.size >= 5)
  })

  it('when names are long and full of characters JSON escapes, then name-sorted pages still carry a usable next_cursor', async () => {
    const b = await createTenant(t)
    for (const name of ['"'.repeat(200), '\\'.repeat(100) + '😀'.repeat(50), '😀'.repeat(100)])
      assert.equal((await t.app.inject({ method: 'POST', url: `/v1/tenants/${b.tenantId}/projects`, headers: b.auth, payload: { name } })).statusCode, 201)
    for (const sort of ['name', '-name']) {
      let cursor: string | null = null
      let seen = 0
      do {
        const res: LightMyRequestResponse = await t.app.inject({ method: 'GET', url: `/v1/tenants/${b.tenantId}/projects`, headers: b.auth, query: { sort, limit: '1', ...(cursor ? { cursor } : {}) } })
        assert.equal(res.statusCode, 200, res.body)
        seen += res.json().items.length
        cursor = res.json().next_cursor
      } while (cursor)
      assert.equal(seen, 3)
    }
  })
})
