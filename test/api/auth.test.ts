import assert from 'node:assert/strict'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import type { LightMyRequestResponse } from 'fastify'
import { revocationKey } from '../../src/platform/ratelimit/counters.ts'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp } from '../helpers/app.ts'

const password = 'a long enough passphrase'

interface Signed {
  tenant: { id: string; slug: string; name: string }
  user: { id: string; email: string; role: string }
  access_token: string
  token_type: string
  expires_in: number
  refresh_token: string
}

const uniqueSlug = () => `s-${randomBytes(6).toString('hex')}`
const uniqueEmail = () => `u-${randomBytes(4).toString('hex')}@example.com`
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const sha256 = (s: string) => createHash('sha256').update(s).digest()

async function signup(t: TestApp, overrides: Record<string, unknown> = {}): Promise<Signed & { password: string }> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/signup',
    payload: { tenant_name: 'Acme Inc', tenant_slug: uniqueSlug(), email: uniqueEmail(), password, ...overrides },
  })
  assert.equal(res.statusCode, 201, res.body)
  return { ...res.json<Signed>(), password }
}

const refresh = (t: TestApp, token: string) => t.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: token } })
const login = (t: TestApp, body: Record<string, unknown>) => t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: body })
const listProjects = (t: TestApp, tenantId: string, token: string) => t.app.inject({ method: 'GET', url: `/v1/tenants/${tenantId}/projects`, headers: bearer(token) })

function assertProblem(res: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(res.statusCode, status, res.body)
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
  assert.equal(res.json().code, code)
}

function assertTokenPair(body: Record<string, unknown>): void {
  assert.equal(body.token_type, 'Bearer')
  assert.equal(typeof body.access_token, 'string')
  assert.ok(Number.isInteger(body.expires_in) && (body.expires_in as number) > 0 && (body.expires_in as number) <= 900)
  assert.match(String(body.refresh_token), /^rt_[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$/)
}

describe('auth', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
  })
  after(async () => t.close())

  describe('signup', () => {
    it('when a tenant signs up, then 201 returns the tenant, its owner and a token pair, with a Location', async () => {
      const slug = uniqueSlug()
      const email = uniqueEmail()
      const res = await t.app.inject({ method: 'POST', url: '/v1/signup', payload: { tenant_name: 'Acme Inc', tenant_slug: slug, email, password } })
      assert.equal(res.statusCode, 201, res.body)
      const body = res.json()
      assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'tenant', 'token_type', 'user'])
      assert.deepEqual(body.tenant, { id: body.tenant.id, slug, name: 'Acme Inc' })
      assert.deepEqual(body.user, { id: body.user.id, email, role: 'owner' })
      // Time-ordered UUIDs (version 7).
      assert.match(body.tenant.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      assert.match(body.user.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      assert.equal(res.headers.location, `/v1/tenants/${body.tenant.id}`)
      assertTokenPair(body)
      assert.equal(res.headers['cache-control'], 'no-store')
      const claims = decodeJwt(body.access_token)
      assert.equal(claims.sub, body.user.id)
      assert.equal(claims.tid, body.tenant.id)
      assert.deepEqual(claims.roles, ['owner'])
      assert.deepEqual(claims.amr, ['pwd'])
      assert.equal(decodeProtectedHeader(body.access_token).typ, 'at+jwt')
      assert.equal((await listProjects(t, body.tenant.id, body.access_token)).statusCode, 200)
      const [user] = await t.admin<{ role: string; password_hash: string }[]>`select role, password_hash from users where id = ${body.user.id}`
      assert.equal(user?.role, 'owner')
      assert.match(user?.password_hash ?? '', /^\$argon2id\$/)
    })

    it('when the refresh token is issued, then the database holds only its SHA-256 hash, never the token', async () => {
      const s = await signup(t)
      const rows = await t.admin<{ token_hash: Buffer; row_text: string }[]>`
        select token_hash, r::text as row_text from refresh_tokens r where tenant_id = ${s.tenant.id}`
      assert.equal(rows.length, 1)
      assert.deepEqual(rows[0]?.token_hash, sha256(s.refresh_token))
      const secret = s.refresh_token.split('.')[1] ?? ''
      assert.ok(secret.length === 43)
      assert.ok(!rows[0]?.row_text.includes(secret))
      assert.ok(!rows[0]?.row_text.includes(Buffer.from(secret, 'base64url').toString('hex')))
    })

    it('when the slug is taken, then 409 conflict and nothing new is stored', async () => {
      const s = await signup(t)
      const res = await t.app.inject({ method: 'POST', url: '/v1/signup', payload: { tenant_name: 'Other', tenant_slug: s.tenant.slug, email: uniqueEmail(), password } })
      assertProblem(res, 409, 'conflict')
      const [row] = await t.admin<{ n: number }[]>`select count(*)::int as n from tenants where slug = ${s.tenant.slug}`
      assert.equal(row?.n, 1)
    })

    it('when the body is incomplete, carries role or tenant_id, or breaks a rule, then 400 validation_failed', async () => {
      const valid = { tenant_name: 'Acme', tenant_slug: uniqueSlug(), email: uniqueEmail(), password }
      const bad: Record<string, unknown>[] = [
        { tenant_name: 'Acme', email: uniqueEmail(), password },
        { ...valid, role: 'admin' },
        { ...valid, tenant_id: randomUUID() },
        { ...valid, password: 'short-11chr' },
        { ...valid, password: 'x'.repeat(257) },
        { ...valid, tenant_slug: 'Has Spaces' },
        { ...valid, tenant_slug: 'ab' },
        { ...valid, tenant_name: '' },
        { ...valid, tenant_name: 'n'.repeat(201) },
        { ...valid, email: 'not-an-email' },
        { ...valid, email: `${'a'.repeat(250)}@example.com` },
        { ...valid, password: 123456789012345 },
      ]
      for (const payload of bad) {
        const res = await t.app.inject({ method: 'POST', url: '/v1/signup', payload })
        assertProblem(res, 400, 'validation_failed')
        assert.ok(Array.isArray(res.json().errors) && res.json().errors.length > 0)
      }
      const [row] = await t.admin<{ n: number }[]>`select count(*)::int as n from tenants where slug = ${valid.tenant_slug}`
      assert.equal(row?.n, 0)
    })

    it('when the body is not JSON, then 400 malformed_json; when it is another media type, then 415', async () => {
      const broken = await t.app.inject({ method: 'POST', url: '/v1/signup', headers: { 'content-type': 'application/json' }, payload: '{"tenant_slug": ' })
      assertProblem(broken, 400, 'malformed_json')
      const form = await t.app.inject({ method: 'POST', url: '/v1/signup', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'tenant_slug=x' })
      assertProblem(form, 415, 'unsupported_media_type')
    })

    it('when SIGNUP_ENABLED=false, then signup answers 404 not_found and creates nothing', async () => {
      const off = await startTestApp({ SIGNUP_ENABLED: 'false' })
      try {
        const slug = uniqueSlug()
        const res = await off.app.inject({ method: 'POST', url: '/v1/signup', payload: { tenant_name: 'Acme', tenant_slug: slug, email: uniqueEmail(), password } })
        assertProblem(res, 404, 'not_found')
        const [row] = await off.admin<{ n: number }[]>`select count(*)::int as n from tenants`
        assert.equal(row?.n, 0)
      } finally {
        await off.close()
      }
    })
  })

  describe('login', () => {
    it('when the credentials are right, then 200 returns a token pair for that user (email case-insensitive)', async () => {
      const s = await signup(t)
      const res = await login(t, { tenant_slug: s.tenant.slug, email: s.user.email.toUpperCase(), password })
      assert.equal(res.statusCode, 200, res.body)
      const body = res.json()
      assertTokenPair(body)
      assert.equal(res.headers['cache-control'], 'no-store')
      const claims = decodeJwt(body.access_token)
      assert.equal(claims.sub, s.user.id)
      assert.equal(claims.tid, s.tenant.id)
      assert.deepEqual(claims.amr, ['pwd'])
      assert.equal((await listProjects(t, s.tenant.id, body.access_token)).statusCode, 200)
      // Each login is its own family.
      const [row] = await t.admin<{ n: number }[]>`select count(distinct family_id)::int as n from refresh_tokens where tenant_id = ${s.tenant.id}`
      assert.equal(row?.n, 2)
    })

    it('when otp is sent while TOTP is not enrolled, then it is accepted and ignored; a malformed otp is 400', async () => {
      const s = await signup(t)
      assert.equal((await login(t, { tenant_slug: s.tenant.slug, email: s.user.email, password, otp: '123456' })).statusCode, 200)
      assertProblem(await login(t, { tenant_slug: s.tenant.slug, email: s.user.email, password, otp: '12345a' }), 400, 'validation_failed')
    })

    it('when the tenant, email or password is wrong, or the user is disabled or the tenant suspended, then the same 401 invalid_credentials', async () => {
      const s = await signup(t)
      const disabled = await signup(t)
      await t.admin`update users set disabled = true where id = ${disabled.user.id}`
      const suspended = await signup(t)
      await t.admin`update tenants set status = 'suspended' where id = ${suspended.tenant.id}`
      const attempts = [
        { tenant_slug: uniqueSlug(), email: s.user.email, password },
        { tenant_slug: s.tenant.slug, email: uniqueEmail(), password },
        { tenant_slug: s.tenant.slug, email: s.user.email, password: `${password}!` },
        { tenant_slug: disabled.tenant.slug, email: disabled.user.email, password },
        { tenant_slug: suspended.tenant.slug, email: suspended.user.email, password },
      ]
      const bodies: unknown[] = []
      for (const attempt of attempts) {
        const res = await login(t, attempt)
        assertProblem(res, 401, 'invalid_credentials')
        const { request_id, ...rest } = res.json()
        assert.equal(typeof request_id, 'string')
        bodies.push({ ...rest, www: res.headers['www-authenticate'] })
      }
      for (const b of bodies) assert.deepEqual(b, bodies[0])
    })

    it('when the tenant or email is unknown, then the answer takes about as long as for a wrong password', async () => {
      const s = await signup(t)
      const median = async (body: Record<string, unknown>) => {
        const times: number[] = []
        for (let i = 0; i < 5; i++) {
          const start = process.hrtime.bigint()
          assertProblem(await login(t, body), 401, 'invalid_credentials')
          times.push(Number(process.hrtime.bigint() - start) / 1e6)
        }
        return times.sort((a, b) => a - b)[2] ?? 0
      }
      const wrongPassword = await median({ tenant_slug: s.tenant.slug, email: s.user.email, password: 'not the password at all' })
      const unknownTenant = await median({ tenant_slug: uniqueSlug(), email: s.user.email, password })
      const unknownEmail = await median({ tenant_slug: s.tenant.slug, email: uniqueEmail(), password })
      // A password hash is verified in every case; skipping it would make these ~10x faster.
      assert.ok(unknownTenant > wrongPassword * 0.4, `unknown tenant ${unknownTenant} ms vs wrong password ${wrongPassword} ms`)
      assert.ok(unknownEmail > wrongPassword * 0.4, `unknown email ${unknownEmail} ms vs wrong password ${wrongPassword} ms`)
    })

    it('when the login body is incomplete or carries extra fields, then 400 validation_failed', async () => {
      for (const payload of [{ email: uniqueEmail(), password }, { tenant_slug: uniqueSlug(), email: uniqueEmail(), password, role: 'owner' }, { tenant_slug: uniqueSlug(), email: uniqueEmail(), password: '' }])
        assertProblem(await login(t, payload), 400, 'validation_failed')
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: 'nope' }), 400, 'malformed_json')
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/login', headers: { 'content-type': 'text/plain' }, payload: 'nope' }), 415, 'unsupported_media_type')
    })
  })

  describe('refresh', () => {
    it('when a refresh token is exchanged, then a new pair comes back, the old token is spent and the login keeps its amr', async () => {
      const s = await signup(t)
      const res = await refresh(t, s.refresh_token)
      assert.equal(res.statusCode, 200, res.body)
      const body = res.json()
      assertTokenPair(body)
      assert.notEqual(body.refresh_token, s.refresh_token)
      assert.notEqual(body.access_token, s.access_token)
      assert.deepEqual(decodeJwt(body.access_token).amr, ['pwd'])
      assert.equal((await listProjects(t, s.tenant.id, body.access_token)).statusCode, 200)
      const rows = await t.admin<{ token_hash: Buffer; spent_at: Date | null; family_id: string }[]>`
        select token_hash, spent_at, family_id from refresh_tokens where tenant_id = ${s.tenant.id} order by created_at`
      assert.equal(rows.length, 2)
      assert.deepEqual(rows[0]?.token_hash, sha256(s.refresh_token))
      assert.ok(rows[0]?.spent_at instanceof Date)
      assert.equal(rows[1]?.spent_at, null)
      assert.equal(rows[0]?.family_id, rows[1]?.family_id)
      // The next rotation works as well.
      assert.equal((await refresh(t, body.refresh_token)).statusCode, 200)
    })

    it('when the user’s role changed since login, then the refreshed access token carries the current role', async () => {
      const s = await signup(t)
      await t.admin`update users set role = 'viewer' where id = ${s.user.id}`
      const res = await refresh(t, s.refresh_token)
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(decodeJwt(res.json().access_token).roles, ['viewer'])
    })

    it('when a spent refresh token is presented again, then 401 refresh_token_reused and the whole login ends', async () => {
      const s = await signup(t)
      const first = (await refresh(t, s.refresh_token)).json()
      const reuse = await refresh(t, s.refresh_token)
      assertProblem(reuse, 401, 'refresh_token_reused')
      assert.equal(reuse.headers['www-authenticate'], 'Bearer error="invalid_token"')
      // The newest refresh token of that login no longer works, nor the access tokens it issued.
      assertProblem(await refresh(t, first.refresh_token), 401, 'invalid_token')
      assertProblem(await listProjects(t, s.tenant.id, first.access_token), 401, 'token_revoked')
      const [row] = await t.admin<{ n: number }[]>`select count(*)::int as n from refresh_tokens where tenant_id = ${s.tenant.id} and revoked_at is null`
      assert.equal(row?.n, 0)
      // Another login of the same user is untouched.
      const other = (await login(t, { tenant_slug: s.tenant.slug, email: s.user.email, password })).json()
      assert.equal((await refresh(t, other.refresh_token)).statusCode, 200)
    })

    it('when the refresh token is unknown, forged, malformed, expired or revoked, then 401 invalid_token', async () => {
      const s = await signup(t)
      const hexTenant = s.tenant.id.replaceAll('-', '')
      const secret = s.refresh_token.split('.')[1] ?? ''
      const forgedTenant = `rt_${randomUUID().replaceAll('-', '')}.${secret}`
      for (const token of [`rt_${hexTenant}.${randomBytes(32).toString('base64url')}`, forgedTenant, 'rt_nothing', 'x'.repeat(80)]) {
        const res = await refresh(t, token)
        assertProblem(res, 401, 'invalid_token')
        assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
      }
      const expired = await signup(t)
      await t.admin`update refresh_tokens set expires_at = now() - interval '1 second' where tenant_id = ${expired.tenant.id}`
      assertProblem(await refresh(t, expired.refresh_token), 401, 'invalid_token')
      const revoked = await signup(t)
      await t.admin`update refresh_tokens set revoked_at = now() where tenant_id = ${revoked.tenant.id}`
      assertProblem(await refresh(t, revoked.refresh_token), 401, 'invalid_token')
    })

    it('when the user was disabled or deleted, then refresh answers 401 invalid_token', async () => {
      const disabled = await signup(t)
      await t.admin`update users set disabled = true where id = ${disabled.user.id}`
      assertProblem(await refresh(t, disabled.refresh_token), 401, 'invalid_token')
      await t.admin`update users set disabled = false where id = ${disabled.user.id}`
      // The family was ended when the disabled user tried: re-enabling does not revive it.
      assertProblem(await refresh(t, disabled.refresh_token), 401, 'invalid_token')
    })

    it('when the tenant is suspended, then refresh answers exactly as for a forged token, revealing nothing', async () => {
      const s = await signup(t)
      await t.admin`update tenants set status = 'suspended' where id = ${s.tenant.id}`
      const real = await refresh(t, s.refresh_token)
      assertProblem(real, 401, 'invalid_token')
      // A forged token naming the suspended tenant, and one naming no tenant, get the same answer.
      const forged = (tenantId: string) => `rt_${tenantId.replaceAll('-', '')}.${'A'.repeat(43)}`
      const suspended = await refresh(t, forged(s.tenant.id))
      const missing = await refresh(t, forged(randomUUID()))
      const strip = (r: { json(): Record<string, unknown> }) => ({ ...r.json(), request_id: undefined })
      assert.deepEqual(strip(suspended), strip(missing))
      assert.equal(suspended.statusCode, missing.statusCode)
    })

    it('when the body is missing its token or carries extra fields, then 400 validation_failed', async () => {
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: {} }), 400, 'validation_failed')
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: 'rt_x', tenant_id: randomUUID() } }), 400, 'validation_failed')
    })

    it('when refresh is rate limited per account, then the key is a hash, never the token', async () => {
      const s = await signup(t)
      assert.equal((await refresh(t, s.refresh_token)).statusCode, 200)
      const keys = await t.deps.redis?.keys('saas:bf:acct:*')
      assert.ok(keys && keys.length > 0)
      const secret = s.refresh_token.split('.')[1] ?? ''
      for (const k of keys) assert.ok(!k.includes(secret) && !k.includes(s.refresh_token))
    })
  })

  describe('refresh with a reuse grace window', () => {
    let g: TestApp
    before(async () => {
      g = await startTestApp({ REFRESH_REUSE_GRACE_SECONDS: '30' })
    })
    after(async () => g.close())

    it('when a client retries a rotation whose answer it lost, then it gets a valid pair of the same login', async () => {
      const s = await signup(g)
      const lost = (await refresh(g, s.refresh_token)).json()
      const retry = await refresh(g, s.refresh_token)
      assert.equal(retry.statusCode, 200, retry.body)
      const pair = retry.json()
      assertTokenPair(pair)
      assert.notEqual(pair.refresh_token, lost.refresh_token)
      // The retry's token works; the lost one was spent in its place, so it cannot be used later.
      const next = await refresh(g, pair.refresh_token)
      assert.equal(next.statusCode, 200, next.body)
      const families = await g.admin<{ n: number }[]>`select count(distinct family_id)::int as n from refresh_tokens where tenant_id = ${s.tenant.id}`
      assert.equal(families[0]?.n, 1)
      assertProblem(await refresh(g, lost.refresh_token), 401, 'refresh_token_reused')
      assertProblem(await refresh(g, next.json().refresh_token), 401, 'invalid_token')
    })

    it('when the token a rotation issued was already used, then replaying the old one is reuse even inside the window', async () => {
      const s = await signup(g)
      const second = (await refresh(g, s.refresh_token)).json()
      const third = (await refresh(g, second.refresh_token)).json()
      assertProblem(await refresh(g, s.refresh_token), 401, 'refresh_token_reused')
      assertProblem(await refresh(g, third.refresh_token), 401, 'invalid_token')
    })

    it('when the retry comes after the window, then it is reuse and the login ends', async () => {
      const s = await signup(g)
      const second = (await refresh(g, s.refresh_token)).json()
      await g.admin`update refresh_tokens set spent_at = now() - interval '31 seconds' where tenant_id = ${s.tenant.id} and spent_at is not null`
      assertProblem(await refresh(g, s.refresh_token), 401, 'refresh_token_reused')
      assertProblem(await refresh(g, second.refresh_token), 401, 'invalid_token')
    })
  })

  describe('logout', () => {
    it('when a user logs out with no body and no Content-Type, then 204, the access token is revoked everywhere and its login ends', async () => {
      const s = await signup(t)
      const res = await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(s.access_token) })
      assert.equal(res.statusCode, 204, res.body)
      assert.equal(res.body, '')
      const denied = await listProjects(t, s.tenant.id, s.access_token)
      assertProblem(denied, 401, 'token_revoked')
      assert.equal(denied.headers['www-authenticate'], 'Bearer error="invalid_token"')
      assertProblem(await refresh(t, s.refresh_token), 401, 'invalid_token')
      const jti = String(decodeJwt(s.access_token).jti)
      const [row] = await t.admin<{ expires_at: Date }[]>`select expires_at from revoked_tokens where jti = ${jti}`
      assert.ok(row && row.expires_at.getTime() >= Number(decodeJwt(s.access_token).exp) * 1000)
      assert.equal(await t.deps.redis?.exists(revocationKey(jti)), 1)
      // Logging out twice with the same token: it is already refused.
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(s.access_token) }), 401, 'token_revoked')
    })

    it('when the Redis copy of a revocation is lost, then PostgreSQL still refuses the token', async () => {
      const s = await signup(t)
      assert.equal((await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(s.access_token) })).statusCode, 204)
      await t.deps.redis?.del(revocationKey(String(decodeJwt(s.access_token).jti)))
      assertProblem(await listProjects(t, s.tenant.id, s.access_token), 401, 'token_revoked')
    })

    it('when logout names another login’s refresh token of the same user, then that login ends too', async () => {
      const s = await signup(t)
      const other = (await login(t, { tenant_slug: s.tenant.slug, email: s.user.email, password })).json()
      const res = await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(s.access_token), payload: { refresh_token: other.refresh_token } })
      assert.equal(res.statusCode, 204, res.body)
      assertProblem(await refresh(t, other.refresh_token), 401, 'invalid_token')
      assertProblem(await listProjects(t, s.tenant.id, other.access_token), 401, 'token_revoked')
    })

    it('when logout names someone else’s refresh token, then that token keeps working', async () => {
      const s = await signup(t)
      const victim = await signup(t)
      const res = await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(s.access_token), payload: { refresh_token: victim.refresh_token } })
      assert.equal(res.statusCode, 204, res.body)
      assert.equal((await refresh(t, victim.refresh_token)).statusCode, 200)
    })

    it('when a token issued outside any login (no refresh family) logs out, then the access token alone is revoked', async () => {
      const a = await createTenant(t)
      assert.equal((await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: a.auth })).statusCode, 204)
      assertProblem(await listProjects(t, a.tenantId, a.token), 401, 'token_revoked')
    })

    it('when logout has no token, a JSON body with unknown fields, bad JSON or another media type, then it is refused', async () => {
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/logout' }), 401, 'unauthenticated')
      const s = await signup(t)
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(s.access_token), payload: { everything: true } }), 400, 'validation_failed')
      assertProblem(
        await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: { ...bearer(s.access_token), 'content-type': 'application/json' }, payload: '{' }),
        400,
        'malformed_json',
      )
      assertProblem(
        await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: { ...bearer(s.access_token), 'content-type': 'text/plain' }, payload: 'bye' }),
        415,
        'unsupported_media_type',
      )
      assertProblem(
        await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: { ...bearer(s.access_token), 'content-type': 'application/json' }, payload: 'null' }),
        400,
        'validation_failed',
      )
      // None of the refused calls logged the user out.
      assert.equal((await listProjects(t, s.tenant.id, s.access_token)).statusCode, 200)
      // An empty JSON object is a plain logout.
      assert.equal((await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(s.access_token), payload: {} })).statusCode, 204)
    })
  })

  describe('jwks and OpenAPI', () => {
    it('when the JWKS is fetched, then it lists the signing key with its kid, and login tokens verify against it', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['cache-control'], 'public, max-age=300')
      const jwks = res.json<{ keys: Record<string, string>[] }>()
      assert.ok(jwks.keys.length >= 1)
      for (const k of jwks.keys) {
        assert.equal(typeof k.kid, 'string')
        assert.equal(k.d, undefined, 'no private part')
        assert.equal(k.kty, 'EC')
        assert.equal(k.alg, 'ES256')
      }
      const s = await signup(t)
      const { payload, protectedHeader } = await jwtVerify(s.access_token, createLocalJWKSet(jwks), { issuer: 'https://api.test', audience: 'saas-api', typ: 'at+jwt' })
      assert.equal(payload.sub, s.user.id)
      assert.ok(jwks.keys.some((k) => k.kid === protectedHeader.kid))
    })

    it('when the OpenAPI document is read, then the auth routes are tagged, need no bearer where public, and declare their errors', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/openapi.json' })
      assert.equal(res.statusCode, 200)
      const paths = res.json().paths
      for (const [path, status] of [['/v1/signup', '409'], ['/v1/auth/login', '401'], ['/v1/auth/refresh', '401']] as const) {
        const op = paths[path].post
        assert.deepEqual(op.tags, ['auth'])
        assert.deepEqual(op.security, [])
        assert.ok(op.responses[status], `${path} declares ${status}`)
      }
      const logout = paths['/v1/auth/logout'].post
      assert.ok(logout.responses['204'] && logout.responses['401'])
      assert.notDeepEqual(logout.security, [])
      assert.deepEqual(paths['/.well-known/jwks.json'].get.security, [])
    })
  })
})
