import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import type { Role } from '../../src/platform/auth/access-tokens.ts'
import { addUser, createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

const userFields = ['created_at', 'disabled', 'email', 'id', 'mfa_enabled', 'role', 'updated_at']

describe('users', () => {
  let t: TestApp
  let owner: TestTenant
  let admin: TestTenant
  let member: TestTenant
  let viewer: TestTenant
  let base: string

  const usersUrl = (tenantId: string) => `/v1/tenants/${tenantId}/users`
  const patch = (who: Pick<TestTenant, 'auth' | 'tenantId'>, id: string, payload: unknown) =>
    t.app.inject({ method: 'PATCH', url: `${usersUrl(who.tenantId)}/${id}`, headers: who.auth, payload: payload as object })
  const del = (who: Pick<TestTenant, 'auth' | 'tenantId'>, id: string) => t.app.inject({ method: 'DELETE', url: `${usersUrl(who.tenantId)}/${id}`, headers: who.auth })
  const create = (who: Pick<TestTenant, 'auth' | 'tenantId'>, payload: unknown) =>
    t.app.inject({ method: 'POST', url: usersUrl(who.tenantId), headers: who.auth, payload: payload as object })
  const dbUser = async (id: string) => {
    const [row] = await t.admin<{ role: Role; disabled: boolean }[]>`select role, disabled from users where id = ${id}`
    return row
  }
  const login = (who: TestTenant) =>
    t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { tenant_slug: who.slug, email: who.email, password: who.password } })
  const refresh = (token: string) => t.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: token } })
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
    base = usersUrl(owner.tenantId)
  })
  after(async () => t.close())

  describe('reading', () => {
    it('when a member lists users, then each item has exactly the whitelisted fields and never a hash or secret', async () => {
      const res = await t.app.inject({ method: 'GET', url: base, headers: member.auth })
      assert.equal(res.statusCode, 200, res.body)
      const body = res.json<{ items: Record<string, unknown>[] }>()
      assert.ok(body.items.length >= 4)
      for (const u of body.items) assert.deepEqual(Object.keys(u).sort(), userFields)
      assert.doesNotMatch(res.body, /argon2|password|totp_secret/i)
      const me = body.items.find((u) => u.id === owner.userId)
      assert.equal(me?.role, 'owner')
      assert.equal(me?.disabled, false)
      assert.equal(me?.mfa_enabled, false)
    })

    it('when listing with limit 1, then pages follow next_cursor in creation order without repeats', async () => {
      const seen: string[] = []
      let cursor: string | null = null
      do {
        const res: LightMyRequestResponse = await t.app.inject({ method: 'GET', url: base, headers: owner.auth, query: { limit: '1', ...(cursor ? { cursor } : {}) } })
        assert.equal(res.statusCode, 200, res.body)
        const body = res.json<{ items: { id: string }[]; next_cursor: string | null }>()
        assert.ok(body.items.length <= 1)
        seen.push(...body.items.map((u) => u.id))
        cursor = body.next_cursor
      } while (cursor)
      const [row] = await t.admin<{ n: number }[]>`select count(*)::int as n from users where tenant_id = ${owner.tenantId}`
      assert.equal(seen.length, row?.n)
      assert.equal(new Set(seen).size, seen.length)
    })

    it("when a cursor from another tenant's list is replayed, then 400 validation_failed", async () => {
      const other = await createTenant(t)
      await addUser(t, other, 'member')
      const res = await t.app.inject({ method: 'GET', url: usersUrl(other.tenantId), headers: other.auth, query: { limit: '1' } })
      const cursor = res.json().next_cursor as string
      assert.ok(cursor)
      expectProblem(await t.app.inject({ method: 'GET', url: base, headers: owner.auth, query: { cursor } }), 400, 'validation_failed')
    })

    it('when a member gets one user, then 200 with the whitelisted fields; an unknown id is 404', async () => {
      const res = await t.app.inject({ method: 'GET', url: `${base}/${viewer.userId}`, headers: member.auth })
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(Object.keys(res.json()).sort(), userFields)
      assert.equal(res.json().email, viewer.email)
      expectProblem(await t.app.inject({ method: 'GET', url: `${base}/${randomUUID()}`, headers: member.auth }), 404, 'not_found')
    })

    it('when a viewer lists users, then 403 forbidden (the contract gives user reads to members)', async () => {
      expectProblem(await t.app.inject({ method: 'GET', url: base, headers: viewer.auth }), 403, 'forbidden')
    })

    it("when a user of another tenant is read, patched or deleted through one's own tenant path, then 404 and nothing changes", async () => {
      const other = await createTenant(t)
      const victim = await addUser(t, other, 'member')
      expectProblem(await t.app.inject({ method: 'GET', url: `${base}/${victim.userId}`, headers: owner.auth }), 404, 'not_found')
      expectProblem(await patch(owner, victim.userId, { role: 'viewer' }), 404, 'not_found')
      expectProblem(await del(owner, victim.userId), 404, 'not_found')
      assert.deepEqual(await dbUser(victim.userId), { role: 'member', disabled: false })
    })
  })

  describe('creating', () => {
    it('when an admin adds a user, then 201 with a Location, the password is stored as argon2id, and the user can log in', async () => {
      const email = `New.Person-${randomUUID().slice(0, 6)}@Example.com`
      const res = await create(admin, { email, password: 'a long enough passphrase', role: 'member' })
      assert.equal(res.statusCode, 201, res.body)
      const body = res.json()
      assert.deepEqual(Object.keys(body).sort(), userFields)
      assert.equal(body.role, 'member')
      assert.equal(res.headers.location, `${base}/${body.id}`)
      const [row] = await t.admin<{ password_hash: string }[]>`select password_hash from users where id = ${body.id}`
      assert.match(row?.password_hash ?? '', /^\$argon2id\$/)
      const got = await t.app.inject({ method: 'GET', url: res.headers.location, headers: member.auth })
      assert.deepEqual(got.json(), body)
      const logged = await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { tenant_slug: owner.slug, email: email.toLowerCase(), password: 'a long enough passphrase' } })
      assert.equal(logged.statusCode, 200, logged.body)
    })

    it('when the email is already a user of the tenant in another case, then 409 conflict; another tenant may use it', async () => {
      const email = `dup-${randomUUID().slice(0, 6)}@example.com`
      assert.equal((await create(owner, { email, password: 'a long enough passphrase', role: 'viewer' })).statusCode, 201)
      expectProblem(await create(admin, { email: email.toUpperCase(), password: 'a long enough passphrase', role: 'viewer' }), 409, 'conflict')
      const other = await createTenant(t)
      assert.equal((await create(other, { email, password: 'a long enough passphrase', role: 'viewer' })).statusCode, 201)
    })

    it('when the body is bad (owner role, unknown field, tenant_id, id, short or long password, bad email), then 400 and no user is added', async () => {
      const [before] = await t.admin<{ n: number }[]>`select count(*)::int as n from users`
      const good = { email: `x-${randomUUID().slice(0, 6)}@example.com`, password: 'a long enough passphrase', role: 'member' }
      for (const payload of [
        { ...good, role: 'owner' },
        { ...good, role: 'superuser' },
        { ...good, nickname: 'x' },
        { ...good, tenant_id: randomUUID() },
        { ...good, id: randomUUID() },
        { ...good, disabled: false },
        { ...good, password: 'short' },
        { ...good, password: 'x'.repeat(257) },
        { ...good, email: 'not an email' },
        { email: good.email, password: good.password },
      ]) {
        const res = await create(owner, payload)
        expectProblem(res, 400, 'validation_failed')
        assert.ok(Array.isArray(res.json().errors), res.body)
      }
      const [afterward] = await t.admin<{ n: number }[]>`select count(*)::int as n from users`
      assert.equal(afterward?.n, before?.n)
    })

    it('when a member adds a user, then 403 forbidden', async () => {
      expectProblem(await create(member, { email: `m-${randomUUID().slice(0, 6)}@example.com`, password: 'a long enough passphrase', role: 'viewer' }), 403, 'forbidden')
    })

    it('when a user is added, then an audit event user.created names the actor and the role, never the password', async () => {
      const res = await create(admin, { email: `aud-${randomUUID().slice(0, 6)}@example.com`, password: 'a long enough passphrase', role: 'viewer' })
      const id = res.json().id as string
      const [ev] = await t.admin<{ actor_id: string; details: unknown }[]>`select actor_id, details from audit_events where action = 'user.created' and target_id = ${id}`
      assert.equal(ev?.actor_id, admin.userId)
      assert.deepEqual(ev?.details, { role: 'viewer' })
    })
  })

  describe('changing roles', () => {
    it('when an owner promotes a member to admin and then to owner, then both succeed', async () => {
      const u = await addUser(t, owner, 'member')
      const res = await patch(owner, u.userId, { role: 'admin' })
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.json().role, 'admin')
      assert.equal((await patch(owner, u.userId, { role: 'owner' })).statusCode, 200)
      assert.equal((await dbUser(u.userId))?.role, 'owner')
    })

    it('when an admin grants admin to a member and demotes another admin, then both succeed', async () => {
      const u = await addUser(t, owner, 'member')
      const other = await addUser(t, owner, 'admin')
      assert.equal((await patch(admin, u.userId, { role: 'admin' })).statusCode, 200)
      assert.equal((await patch(admin, other.userId, { role: 'viewer' })).statusCode, 200)
      assert.equal((await dbUser(other.userId))?.role, 'viewer')
    })

    it('when anyone changes their own role, up or down, then 403 and the role stays', async () => {
      const secondOwner = await addUser(t, owner, 'owner')
      const a = await addUser(t, owner, 'admin')
      expectProblem(await patch(a, a.userId, { role: 'owner' }), 403, 'forbidden')
      expectProblem(await patch(a, a.userId, { role: 'member' }), 403, 'forbidden')
      // Lowering is refused too, even with another owner left to keep the tenant.
      expectProblem(await patch(secondOwner, secondOwner.userId, { role: 'admin' }), 403, 'forbidden')
      assert.equal((await dbUser(a.userId))?.role, 'admin')
      assert.equal((await dbUser(secondOwner.userId))?.role, 'owner')
      // Naming one's current role changes nothing, so it is not refused.
      assert.equal((await patch(a, a.userId, { role: 'admin' })).statusCode, 200)
    })

    it('when anyone disables themselves, then 403 and they stay enabled', async () => {
      const a = await addUser(t, owner, 'admin')
      expectProblem(await patch(a, a.userId, { disabled: true }), 403, 'forbidden')
      assert.equal((await dbUser(a.userId))?.disabled, false)
    })

    it('when an admin grants owner, then 403 and the role stays', async () => {
      const u = await addUser(t, owner, 'member')
      expectProblem(await patch(admin, u.userId, { role: 'owner' }), 403, 'forbidden')
      assert.equal((await dbUser(u.userId))?.role, 'member')
    })

    it('when an admin demotes, disables or deletes an owner (not the last one), then 403 and the owner is untouched', async () => {
      const o = await addUser(t, owner, 'owner')
      expectProblem(await patch(admin, o.userId, { role: 'member' }), 403, 'forbidden')
      expectProblem(await patch(admin, o.userId, { disabled: true }), 403, 'forbidden')
      expectProblem(await del(admin, o.userId), 403, 'forbidden')
      assert.deepEqual(await dbUser(o.userId), { role: 'owner', disabled: false })
    })

    it('when a member patches anyone, then 403 forbidden and nothing changes', async () => {
      expectProblem(await patch(member, viewer.userId, { role: 'member' }), 403, 'forbidden')
      expectProblem(await patch(member, member.userId, { role: 'admin' }), 403, 'forbidden')
      assert.equal((await dbUser(viewer.userId))?.role, 'viewer')
      assert.equal((await dbUser(member.userId))?.role, 'member')
    })

    it('when the last enabled owner would be demoted, disabled or deleted, then 409 conflict and the owner stays', async () => {
      const solo = await createTenant(t)
      const soloAdmin = await addUser(t, solo, 'admin')
      // A disabled owner does not count: the tenant needs one who can act.
      const dormant = await addUser(t, solo, 'owner')
      await t.admin`update users set disabled = true where id = ${dormant.userId}`
      expectProblem(await patch(soloAdmin, solo.userId, { role: 'admin' }), 409, 'conflict')
      expectProblem(await patch(soloAdmin, solo.userId, { disabled: true }), 409, 'conflict')
      expectProblem(await del(soloAdmin, solo.userId), 409, 'conflict')
      assert.deepEqual(await dbUser(solo.userId), { role: 'owner', disabled: false })
      // Re-enabling the dormant owner makes the first one no longer the last.
      assert.equal((await patch(solo, dormant.userId, { disabled: false })).statusCode, 200)
      const res = await patch(dormant, solo.userId, { role: 'admin' })
      assert.equal(res.statusCode, 200, res.body)
    })

    it('when two owners demote each other at the same moment, then exactly one succeeds and the other gets 409 (the tenant keeps an owner)', async () => {
      for (let round = 0; round < 5; round++) {
        const a = await createTenant(t)
        const b = await addUser(t, a, 'owner')
        const results = await Promise.all([patch(a, b.userId, { role: 'admin' }), patch(b, a.userId, { role: 'admin' })])
        assert.deepEqual(results.map((r) => r.statusCode).sort(), [200, 409], results.map((r) => r.body).join('\n'))
        const loser = results.find((r) => r.statusCode === 409)
        assert.equal(loser?.json().code, 'conflict')
        const owners = await t.admin<{ id: string }[]>`select id from users where tenant_id = ${a.tenantId} and role = 'owner' and not disabled`
        assert.equal(owners.length, 1)
      }
    })

    it('when the PATCH body is bad (empty, unknown field, tenant_id, id, email, wrong types, unknown role), then 400 and nothing changes', async () => {
      for (const payload of [{}, { nickname: 'x' }, { tenant_id: randomUUID() }, { id: randomUUID() }, { email: 'x@example.com' }, { password: 'a long enough passphrase' }, { disabled: 'yes' }, { role: 'root' }, { role: null }]) {
        const res = await patch(owner, member.userId, payload)
        expectProblem(res, 400, 'validation_failed')
      }
      expectProblem(await patch(owner, 'not-a-uuid', { role: 'viewer' }), 400, 'validation_failed')
      assert.deepEqual(await dbUser(member.userId), { role: 'member', disabled: false })
    })

    it('when a role changes, then an audit event user.updated records the before and after', async () => {
      const u = await addUser(t, owner, 'viewer')
      assert.equal((await patch(owner, u.userId, { role: 'member' })).statusCode, 200)
      const [ev] = await t.admin<{ actor_id: string; details: unknown }[]>`select actor_id, details from audit_events where action = 'user.updated' and target_id = ${u.userId}`
      assert.equal(ev?.actor_id, owner.userId)
      assert.deepEqual(ev?.details, { from: { role: 'viewer', disabled: false }, to: { role: 'member', disabled: false } })
    })
  })

  describe('disabling', () => {
    it("when a user is disabled, then their access token and refresh token fail on the next request and they cannot log in; re-enabled, they log in again but the old login stays ended", async () => {
      const u = await addUser(t, owner, 'member')
      const logged = await login(u)
      assert.equal(logged.statusCode, 200, logged.body)
      const { access_token: access, refresh_token: refreshToken } = logged.json()
      const projects = (token: string) => t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}/projects`, headers: { authorization: `Bearer ${token}` } })
      assert.equal((await projects(access)).statusCode, 200)

      const res = await patch(admin, u.userId, { disabled: true })
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.json().disabled, true)

      // The token minted without a login (no refresh family) is refused by the enabled check itself.
      const direct = await t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}/projects`, headers: u.auth })
      assert.equal(direct.statusCode, 401, direct.body)
      assert.equal((await projects(access)).statusCode, 401)
      assert.equal((await refresh(refreshToken)).statusCode, 401)
      expectProblem(await login(u), 401, 'invalid_credentials')

      assert.equal((await patch(admin, u.userId, { disabled: false })).statusCode, 200)
      expectProblem(await projects(access), 401, 'token_revoked')
      assert.equal((await refresh(refreshToken)).statusCode, 401)
      const again = await login(u)
      assert.equal(again.statusCode, 200, again.body)
      assert.equal((await projects(again.json().access_token)).statusCode, 200)
    })

    it('when a user is disabled while their refresh token is still unused, then refresh is refused (checked, not only revoked)', async () => {
      const u = await addUser(t, owner, 'viewer')
      const logged = (await login(u)).json()
      // Disabled behind the API's back: refresh must check the flag itself, not rely on the revocation PATCH does.
      await t.admin`update users set disabled = true where id = ${u.userId}`
      assert.equal((await refresh(logged.refresh_token)).statusCode, 401)
      await t.admin`update users set disabled = false where id = ${u.userId}`
    })
  })

  describe('deleting', () => {
    it('when an admin deletes a member, then 204, their tokens stop working, their refresh tokens are gone and their tasks become unassigned', async () => {
      const u = await addUser(t, owner, 'member')
      const logged = (await login(u)).json()
      const project = await t.app.inject({ method: 'POST', url: `/v1/tenants/${owner.tenantId}/projects`, headers: owner.auth, payload: { name: 'p' } })
      const task = await t.app.inject({
        method: 'POST',
        url: `/v1/tenants/${owner.tenantId}/projects/${project.json().id}/tasks`,
        headers: owner.auth,
        payload: { title: 'assigned', assignee_id: u.userId },
      })
      assert.equal(task.statusCode, 201, task.body)

      const res = await del(admin, u.userId)
      assert.equal(res.statusCode, 204, res.body)
      assert.equal(res.body, '')

      assert.equal((await t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}/projects`, headers: u.auth })).statusCode, 401)
      assert.equal((await refresh(logged.refresh_token)).statusCode, 401)
      const [rt] = await t.admin<{ n: number }[]>`select count(*)::int as n from refresh_tokens where user_id = ${u.userId}`
      assert.equal(rt?.n, 0)
      const [row] = await t.admin<{ assignee_id: string | null; title: string }[]>`select assignee_id, title from tasks where id = ${task.json().id}`
      assert.deepEqual(row, { assignee_id: null, title: 'assigned' })
      expectProblem(await t.app.inject({ method: 'GET', url: `${base}/${u.userId}`, headers: owner.auth }), 404, 'not_found')
      expectProblem(await del(admin, u.userId), 404, 'not_found')
      const [ev] = await t.admin<{ actor_id: string }[]>`select actor_id from audit_events where action = 'user.deleted' and target_id = ${u.userId}`
      assert.equal(ev?.actor_id, admin.userId)
    })

    it('when anyone deletes themselves, then 403 and they stay', async () => {
      const secondOwner = await addUser(t, owner, 'owner')
      expectProblem(await del(secondOwner, secondOwner.userId), 403, 'forbidden')
      expectProblem(await del(admin, admin.userId), 403, 'forbidden')
      assert.ok(await dbUser(secondOwner.userId))
      assert.ok(await dbUser(admin.userId))
    })

    it('when an owner deletes another owner, then 204; a member deleting anyone gets 403', async () => {
      const o = await addUser(t, owner, 'owner')
      assert.equal((await del(owner, o.userId)).statusCode, 204)
      const v = await addUser(t, owner, 'viewer')
      expectProblem(await del(member, v.userId), 403, 'forbidden')
      assert.ok(await dbUser(v.userId))
    })
  })
})
