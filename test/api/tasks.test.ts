import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import { addUser, createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

interface TaskBody {
  id: string
  project_id: string
  title: string
  description: string | null
  status: string
  assignee_id: string | null
  due_date: string | null
  created_at: string
  updated_at: string
}

describe('tasks', () => {
  let t: TestApp
  let owner: TestTenant
  let member: TestTenant
  let viewer: TestTenant
  let base: string

  const newProject = async (name = 'Project') => {
    const res = await t.app.inject({ method: 'POST', url: `${base}/projects`, headers: owner.auth, payload: { name } })
    assert.equal(res.statusCode, 201, res.body)
    return res.json<{ id: string }>().id
  }
  const createTask = async (projectId: string, payload: object, who: TestTenant = member) =>
    t.app.inject({ method: 'POST', url: `${base}/projects/${projectId}/tasks`, headers: who.auth, payload })
  const taskCount = async () => (await t.admin<{ n: number }[]>`select count(*)::int as n from tasks where tenant_id = ${owner.tenantId}`)[0]?.n
  const taskRow = async (id: string) => (await t.admin`select *, due_date::text as due_date from tasks where tenant_id = ${owner.tenantId} and id = ${id}`)[0]

  /** Follows next_cursor to the end; asserts no repeats. */
  async function collect(url: string, query: Record<string, string>): Promise<TaskBody[]> {
    const items: TaskBody[] = []
    let cursor: string | null = null
    do {
      const res: LightMyRequestResponse = await t.app.inject({ method: 'GET', url, headers: viewer.auth, query: { ...query, ...(cursor ? { cursor } : {}) } })
      assert.equal(res.statusCode, 200, res.body)
      const body = res.json<{ items: TaskBody[]; next_cursor: string | null }>()
      assert.ok(body.items.length <= Number(query.limit ?? 20))
      items.push(...body.items)
      cursor = body.next_cursor
    } while (cursor)
    assert.equal(new Set(items.map((i) => i.id)).size, items.length, 'no task is returned twice')
    return items
  }

  before(async () => {
    t = await startTestApp()
    owner = await createTenant(t)
    member = await addUser(t, owner, 'member')
    viewer = await addUser(t, owner, 'viewer')
    base = `/v1/tenants/${owner.tenantId}`
  })
  after(async () => t.close())

  it('when a member creates a task with only a title, then 201 with defaults and a Location that reads it back', async () => {
    const projectId = await newProject()
    const res = await createTask(projectId, { title: 'Write tests' })
    assert.equal(res.statusCode, 201, res.body)
    const body = res.json<TaskBody>()
    assert.deepEqual(Object.keys(body).sort(), ['assignee_id', 'created_at', 'description', 'due_date', 'id', 'project_id', 'status', 'title', 'updated_at'])
    assert.equal(body.project_id, projectId)
    assert.equal(body.status, 'todo')
    assert.equal(body.description, null)
    assert.equal(body.assignee_id, null)
    assert.equal(body.due_date, null)
    assert.equal(res.headers.location, `${base}/tasks/${body.id}`)
    const got = await t.app.inject({ method: 'GET', url: String(res.headers.location), headers: viewer.auth })
    assert.equal(got.statusCode, 200, got.body)
    assert.deepEqual(got.json(), body)
  })

  it('when a task is created with every field, then each is stored and the due date stays a plain date', async () => {
    const projectId = await newProject()
    const res = await createTask(projectId, { title: 'All', description: 'd', status: 'doing', assignee_id: member.userId, due_date: '2024-02-29' })
    assert.equal(res.statusCode, 201, res.body)
    const body = res.json<TaskBody>()
    assert.equal(body.description, 'd')
    assert.equal(body.status, 'doing')
    assert.equal(body.assignee_id, member.userId)
    assert.equal(body.due_date, '2024-02-29')
    const row = await taskRow(body.id)
    assert.equal(row?.due_date, '2024-02-29')
  })

  it('when a task is patched, then only the given fields change and null clears a field', async () => {
    const projectId = await newProject()
    const created = (await createTask(projectId, { title: 'Old', description: 'keep?', assignee_id: member.userId, due_date: '2030-01-01' })).json<TaskBody>()
    const res = await t.app.inject({ method: 'PATCH', url: `${base}/tasks/${created.id}`, headers: member.auth, payload: { title: 'New', status: 'done', assignee_id: null, due_date: null } })
    assert.equal(res.statusCode, 200, res.body)
    const body = res.json<TaskBody>()
    assert.equal(body.title, 'New')
    assert.equal(body.status, 'done')
    assert.equal(body.description, 'keep?')
    assert.equal(body.assignee_id, null)
    assert.equal(body.due_date, null)
    assert.ok(body.updated_at >= created.updated_at)
    const cleared = await t.app.inject({ method: 'PATCH', url: `${base}/tasks/${created.id}`, headers: member.auth, payload: { description: null } })
    assert.equal(cleared.json().description, null)
  })

  it('when a task is moved to another project of the tenant, then project_id changes and it lists there', async () => {
    const from = await newProject()
    const to = await newProject()
    const task = (await createTask(from, { title: 'Move me' })).json<TaskBody>()
    const res = await t.app.inject({ method: 'PATCH', url: `${base}/tasks/${task.id}`, headers: member.auth, payload: { project_id: to } })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().project_id, to)
    assert.deepEqual((await collect(`${base}/projects/${to}/tasks`, {})).map((i) => i.id), [task.id])
    assert.deepEqual(await collect(`${base}/projects/${from}/tasks`, {}), [])
  })

  it('when a task is moved to a project that does not exist, then 422 invalid_reference and it stays', async () => {
    const projectId = await newProject()
    const task = (await createTask(projectId, { title: 'Stay' })).json<TaskBody>()
    const res = await t.app.inject({ method: 'PATCH', url: `${base}/tasks/${task.id}`, headers: member.auth, payload: { project_id: randomUUID(), title: 'changed' } })
    assert.equal(res.statusCode, 422, res.body)
    assert.equal(res.json().code, 'invalid_reference')
    const row = await taskRow(task.id)
    assert.equal(row?.project_id, projectId)
    assert.equal(row?.title, 'Stay')
  })

  it('when the assignee is not a user of the tenant, then 422 invalid_reference on create and patch, and nothing is written', async () => {
    const projectId = await newProject()
    const before = await taskCount()
    const res = await createTask(projectId, { title: 'Ghost', assignee_id: randomUUID() })
    assert.equal(res.statusCode, 422, res.body)
    assert.equal(res.json().code, 'invalid_reference')
    assert.deepEqual(res.json().errors, [{ path: '/assignee_id', message: 'not found in this tenant' }])
    assert.equal(await taskCount(), before)
    const task = (await createTask(projectId, { title: 'Real' })).json<TaskBody>()
    const patched = await t.app.inject({ method: 'PATCH', url: `${base}/tasks/${task.id}`, headers: member.auth, payload: { assignee_id: randomUUID() } })
    assert.equal(patched.statusCode, 422, patched.body)
    assert.equal((await taskRow(task.id))?.assignee_id, null)
  })

  it('when the project does not exist, then listing and creating its tasks answer 404 not_found', async () => {
    const missing = randomUUID()
    const before = await taskCount()
    const created = await createTask(missing, { title: 'Orphan' })
    assert.equal(created.statusCode, 404, created.body)
    assert.equal(created.json().code, 'not_found')
    const listed = await t.app.inject({ method: 'GET', url: `${base}/projects/${missing}/tasks`, headers: viewer.auth })
    assert.equal(listed.statusCode, 404, listed.body)
    assert.equal(await taskCount(), before)
  })

  it('when a task is deleted, then 204, and afterwards GET, PATCH and DELETE answer 404', async () => {
    const projectId = await newProject()
    const task = (await createTask(projectId, { title: 'Doomed' })).json<TaskBody>()
    const del = await t.app.inject({ method: 'DELETE', url: `${base}/tasks/${task.id}`, headers: member.auth })
    assert.equal(del.statusCode, 204, del.body)
    assert.equal(del.body, '')
    assert.equal(await taskRow(task.id), undefined)
    for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
      const res = await t.app.inject({ method, url: `${base}/tasks/${task.id}`, headers: member.auth, ...(method === 'PATCH' ? { payload: { title: 'x' } } : {}) })
      assert.equal(res.statusCode, 404, `${method}: ${res.body}`)
      assert.equal(res.json().code, 'not_found')
    }
  })

  it('when a project is deleted, then its tasks are gone too', async () => {
    const projectId = await newProject()
    const task = (await createTask(projectId, { title: 'Cascade' })).json<TaskBody>()
    const del = await t.app.inject({ method: 'DELETE', url: `${base}/projects/${projectId}`, headers: member.auth })
    assert.equal(del.statusCode, 204, del.body)
    const got = await t.app.inject({ method: 'GET', url: `${base}/tasks/${task.id}`, headers: viewer.auth })
    assert.equal(got.statusCode, 404)
  })

  it('when a viewer reads, then lists and single tasks answer 200', async () => {
    const projectId = await newProject()
    const task = (await createTask(projectId, { title: 'Visible' })).json<TaskBody>()
    const list = await t.app.inject({ method: 'GET', url: `${base}/projects/${projectId}/tasks`, headers: viewer.auth })
    assert.equal(list.statusCode, 200, list.body)
    assert.deepEqual(list.json<{ items: TaskBody[] }>().items.map((i) => i.id), [task.id])
    const one = await t.app.inject({ method: 'GET', url: `${base}/tasks/${task.id}`, headers: viewer.auth })
    assert.equal(one.statusCode, 200)
  })

  it('when a viewer creates, patches or deletes a task, then 403 forbidden and nothing changes', async () => {
    const projectId = await newProject()
    const task = (await createTask(projectId, { title: 'Untouchable' })).json<TaskBody>()
    const before = await taskCount()
    const attempts = [
      await createTask(projectId, { title: 'Nope' }, viewer),
      await t.app.inject({ method: 'PATCH', url: `${base}/tasks/${task.id}`, headers: viewer.auth, payload: { title: 'Nope' } }),
      await t.app.inject({ method: 'DELETE', url: `${base}/tasks/${task.id}`, headers: viewer.auth }),
    ]
    for (const res of attempts) {
      assert.equal(res.statusCode, 403, res.body)
      assert.equal(res.json().code, 'forbidden')
    }
    assert.equal(await taskCount(), before)
    assert.equal((await taskRow(task.id))?.title, 'Untouchable')
  })

  it('when a viewer creates a project, then 403, while a member may', async () => {
    const denied = await t.app.inject({ method: 'POST', url: `${base}/projects`, headers: viewer.auth, payload: { name: 'v' } })
    assert.equal(denied.statusCode, 403, denied.body)
    const allowed = await t.app.inject({ method: 'POST', url: `${base}/projects`, headers: member.auth, payload: { name: 'm' } })
    assert.equal(allowed.statusCode, 201, allowed.body)
  })

  it('when the due date is not a real calendar date, then 400', async () => {
    const projectId = await newProject()
    for (const due_date of ['2023-02-29', '2024-13-01', '24-01-01', '2024-1-1', '2024-01-01T00:00:00Z']) {
      const res = await createTask(projectId, { title: 'bad date', due_date })
      assert.equal(res.statusCode, 400, `${due_date}: ${res.body}`)
    }
  })

  describe('listing', () => {
    let projectId: string
    let all: TaskBody[]
    before(async () => {
      projectId = await newProject('Listing')
      const specs = [
        { title: 't0', due_date: '2030-05-01', status: 'todo' },
        { title: 't1', due_date: null, status: 'doing', assignee_id: member.userId },
        { title: 't2', due_date: '2030-01-01', status: 'todo', assignee_id: member.userId },
        { title: 't3', due_date: '2030-05-01', status: 'done' },
        { title: 't4', status: 'todo' },
        { title: 't5', due_date: '2029-12-31', status: 'todo', assignee_id: owner.userId },
      ]
      all = []
      for (const s of specs) all.push((await createTask(projectId, s)).json<TaskBody>())
    })

    it('when paging by 2, then next_cursor walks every task, newest first by default', async () => {
      const items = await collect(`${base}/projects/${projectId}/tasks`, { limit: '2' })
      assert.deepEqual(items.map((i) => i.title), ['t5', 't4', 't3', 't2', 't1', 't0'])
      const last = await t.app.inject({ method: 'GET', url: `${base}/projects/${projectId}/tasks`, headers: viewer.auth, query: { limit: '6' } })
      assert.equal(last.json().next_cursor, null)
    })

    it('when sorted by created_at, then oldest first', async () => {
      const items = await collect(`${base}/projects/${projectId}/tasks`, { limit: '4', sort: 'created_at' })
      assert.deepEqual(items.map((i) => i.title), ['t0', 't1', 't2', 't3', 't4', 't5'])
    })

    it('when sorted by due_date, then earliest first, ties by creation, undated last', async () => {
      const items = await collect(`${base}/projects/${projectId}/tasks`, { limit: '2', sort: 'due_date' })
      assert.deepEqual(items.map((i) => i.title), ['t5', 't2', 't0', 't3', 't1', 't4'])
    })

    it('when sorted by -due_date, then undated first, then latest first', async () => {
      const items = await collect(`${base}/projects/${projectId}/tasks`, { limit: '1', sort: '-due_date' })
      assert.deepEqual(items.map((i) => i.title), ['t4', 't1', 't3', 't0', 't2', 't5'])
    })

    it('when filtered by status or assignee, then only matching tasks, across pages', async () => {
      const todo = await collect(`${base}/projects/${projectId}/tasks`, { limit: '1', status: 'todo', sort: 'created_at' })
      assert.deepEqual(todo.map((i) => i.title), ['t0', 't2', 't4', 't5'])
      const mine = await collect(`${base}/projects/${projectId}/tasks`, { limit: '1', assignee_id: member.userId, sort: 'created_at' })
      assert.deepEqual(mine.map((i) => i.title), ['t1', 't2'])
      const both = await collect(`${base}/projects/${projectId}/tasks`, { status: 'todo', assignee_id: member.userId })
      assert.deepEqual(both.map((i) => i.title), ['t2'])
    })

    it('when a cursor is reused with another sort, filter or project, then 400 validation_failed', async () => {
      const first = await t.app.inject({ method: 'GET', url: `${base}/projects/${projectId}/tasks`, headers: viewer.auth, query: { limit: '1', sort: 'created_at' } })
      const cursor = first.json().next_cursor as string
      assert.ok(cursor)
      const other = await newProject()
      const variants: { url: string; query: Record<string, string> }[] = [
        { url: `${base}/projects/${projectId}/tasks`, query: { cursor, sort: '-created_at' } },
        { url: `${base}/projects/${projectId}/tasks`, query: { cursor, sort: 'created_at', status: 'todo' } },
        { url: `${base}/projects/${projectId}/tasks`, query: { cursor, sort: 'created_at', assignee_id: member.userId } },
        { url: `${base}/projects/${other}/tasks`, query: { cursor, sort: 'created_at' } },
        { url: `${base}/projects`, query: { cursor, sort: 'created_at' } },
      ]
      for (const v of variants) {
        const res = await t.app.inject({ method: 'GET', url: v.url, headers: viewer.auth, query: v.query })
        assert.equal(res.statusCode, 400, `${JSON.stringify(v)}: ${res.body}`)
        assert.equal(res.json().code, 'validation_failed')
      }
      const same = await t.app.inject({ method: 'GET', url: `${base}/projects/${projectId}/tasks`, headers: viewer.auth, query: { cursor, sort: 'created_at' } })
      assert.equal(same.statusCode, 200, same.body)
    })

    it('when the limit is 0 or 101, then 400', async () => {
      for (const limit of ['0', '101', '1.5', '-1']) {
        const res = await t.app.inject({ method: 'GET', url: `${base}/projects/${projectId}/tasks`, headers: viewer.auth, query: { limit } })
        assert.equal(res.statusCode, 400, `${limit}: ${res.body}`)
      }
    })
  })
})
