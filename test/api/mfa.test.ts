import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { decodeJwt } from 'jose'
import type { LightMyRequestResponse } from 'fastify'
import { totpCode, totpPeriodSec } from '../../src/platform/auth/totp.ts'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const nowSec = () => Math.floor(Date.now() / 1000)
/** The code of the next 30 s step: inside the ±1 step window, and later than a step just used. */
const nextCode = (secret: string) => totpCode(secret, nowSec() + totpPeriodSec)
/** A code that no step of the ±1 window (with a margin for a step change mid-test) accepts. */
async function wrongCode(secret: string): Promise<string> {
  const valid = new Set(await Promise.all([-2, -1, 0, 1, 2].map((k) => totpCode(secret, nowSec() + k * totpPeriodSec))))
  return ['000000', '111111', '222222', '333333', '444444', '555555'].find((c) => !valid.has(c)) ?? '666666'
}

function assertProblem(res: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(res.statusCode, status, res.body)
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
  assert.equal(res.json().code, code)
}

interface Tokens {
  access_token: string
  refresh_token: string
}

describe('mfa (TOTP)', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
  })
  after(async () => t.close())

  const login = (u: TestTenant, extra: Record<string, unknown> = {}) =>
    t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { tenant_slug: u.slug, email: u.email, password: u.password, ...extra } })
  const enrol = (token: string) => t.app.inject({ method: 'POST', url: '/v1/auth/mfa/totp', headers: bearer(token) })
  const confirm = (token: string, otp: string) => t.app.inject({ method: 'POST', url: '/v1/auth/mfa/totp/confirm', headers: bearer(token), payload: { otp } })

  /** A user logged in through the API (a real login with a refresh family), password only. */
  async function loggedIn(): Promise<{ user: TestTenant; tokens: Tokens }> {
    const user = await createTenant(t, 'owner')
    const res = await login(user)
    assert.equal(res.statusCode, 200, res.body)
    return { user, tokens: res.json<Tokens>() }
  }

  /** Enrols and confirms TOTP for a fresh user; returns the secret the user's app would hold. */
  async function withTotp(): Promise<{ user: TestTenant; secret: string }> {
    const { user, tokens } = await loggedIn()
    const res = await enrol(tokens.access_token)
    assert.equal(res.statusCode, 200, res.body)
    const { secret } = res.json<{ secret: string }>()
    const ok = await confirm(tokens.access_token, await totpCode(secret))
    assert.equal(ok.statusCode, 204, ok.body)
    return { user, secret }
  }

  const totpRow = async (userId: string) => {
    const [row] = await t.admin<{ totp_enabled: boolean; totp_secret_enc: string | null; totp_pending_enc: string | null; totp_secret_kek_id: string | null }[]>`
      select totp_enabled, totp_secret_enc, totp_pending_enc, totp_secret_kek_id from users where id = ${userId}`
    assert.ok(row)
    return row
  }

  describe('enrolment', () => {
    it('when a user starts an enrolment, then 200 returns a base32 secret and its otpauth URL, and MFA is not on yet', async () => {
      const { user, tokens } = await loggedIn()
      const res = await enrol(tokens.access_token)
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.headers['cache-control'], 'no-store')
      const body = res.json<{ secret: string; otpauth_url: string }>()
      assert.deepEqual(Object.keys(body).sort(), ['otpauth_url', 'secret'])
      // 20 random bytes in base32: 32 characters of A–Z and 2–7.
      assert.match(body.secret, /^[A-Z2-7]{32}$/)
      const url = new URL(body.otpauth_url)
      assert.equal(url.protocol, 'otpauth:')
      assert.equal(url.host, 'totp')
      assert.equal(url.searchParams.get('secret'), body.secret)
      // SHA-1, 6 digits, 30 s: the Key URI format's defaults, so they may be left out.
      assert.ok([null, 'SHA1'].includes(url.searchParams.get('algorithm')))
      assert.ok([null, '6'].includes(url.searchParams.get('digits')))
      assert.ok([null, '30'].includes(url.searchParams.get('period')))
      assert.ok(decodeURIComponent(url.pathname).includes(user.email))

      const row = await totpRow(user.userId)
      assert.equal(row.totp_enabled, false)
      assert.equal(row.totp_secret_enc, null)
      assert.ok(row.totp_pending_enc)
      // Still a password-only login.
      const again = await login(user)
      assert.equal(again.statusCode, 200, again.body)
      assert.deepEqual(decodeJwt(again.json<Tokens>().access_token).amr, ['pwd'])
    })

    it('when the enrolment is confirmed with a current code, then 204, TOTP is on and a login without otp is 401 mfa_required', async () => {
      const { user, tokens } = await loggedIn()
      const { secret } = (await enrol(tokens.access_token)).json<{ secret: string }>()
      const res = await confirm(tokens.access_token, await totpCode(secret))
      assert.equal(res.statusCode, 204, res.body)
      assert.equal(res.body, '')
      const row = await totpRow(user.userId)
      assert.equal(row.totp_enabled, true)
      assert.equal(row.totp_pending_enc, null)
      assertProblem(await login(user), 401, 'mfa_required')
    })

    it('when the code at confirmation is wrong, then 400 invalid_otp and MFA stays off', async () => {
      const { user, tokens } = await loggedIn()
      const { secret } = (await enrol(tokens.access_token)).json<{ secret: string }>()
      // A code of the secret from five minutes ago is wrong too: only one step either side is accepted.
      const stale = await totpCode(secret, nowSec() - 10 * totpPeriodSec)
      const window = await Promise.all([-2, -1, 0, 1, 2].map((k) => totpCode(secret, nowSec() + k * totpPeriodSec)))
      for (const otp of [await wrongCode(secret), ...(window.includes(stale) ? [] : [stale])])
        assertProblem(await confirm(tokens.access_token, otp), 400, 'invalid_otp')
      assert.equal((await totpRow(user.userId)).totp_enabled, false)
      const again = await login(user)
      assert.equal(again.statusCode, 200, again.body)
      assert.deepEqual(decodeJwt(again.json<Tokens>().access_token).amr, ['pwd'])
    })

    it('when TOTP is enrolled and switched on, then both steps are in the tenant audit log with the amr that did them', async () => {
      const { user } = await withTotp()
      const rows = await t.admin<{ action: string; actor_id: string; details: { amr: string[] } }[]>`
        select action, actor_id, details from audit_events where tenant_id = ${user.tenantId} and target_id = ${user.userId} order by at`
      assert.deepEqual(rows.map((r) => r.action), ['auth.mfa_enrolment_started', 'auth.mfa_enabled'])
      for (const r of rows) {
        assert.equal(r.actor_id, user.userId)
        assert.deepEqual(r.details.amr, ['pwd'])
      }
    })

    it('when confirmation comes without a pending enrolment, then 409 conflict', async () => {
      const { tokens } = await loggedIn()
      assertProblem(await confirm(tokens.access_token, '123456'), 409, 'conflict')
    })

    it('when the bodies are not what the routes take, then 400 validation_failed', async () => {
      const { tokens } = await loggedIn()
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/mfa/totp', headers: bearer(tokens.access_token), payload: { secret: 'AAAAAAAAAAAAAAAA' } }), 400, 'validation_failed')
      for (const otp of ['12345', '1234567', 'abcdef', 123456])
        assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/mfa/totp/confirm', headers: bearer(tokens.access_token), payload: { otp } }), 400, 'validation_failed')
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/mfa/totp/confirm', headers: bearer(tokens.access_token), payload: { otp: '123456', enabled: true } }), 400, 'validation_failed')
    })

    it('when no token is sent, then both routes answer 401 unauthenticated', async () => {
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/mfa/totp' }), 401, 'unauthenticated')
      assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/mfa/totp/confirm', payload: { otp: '123456' } }), 401, 'unauthenticated')
    })

    it('when TOTP is switched on, then the logins made without a code end (access and refresh tokens), the confirming one included', async () => {
      const { user, tokens } = await loggedIn()
      const other = (await login(user)).json<Tokens>()
      const { secret } = (await enrol(tokens.access_token)).json<{ secret: string }>()
      assert.equal((await confirm(tokens.access_token, await totpCode(secret))).statusCode, 204)
      for (const access of [tokens.access_token, other.access_token])
        assertProblem(await t.app.inject({ method: 'GET', url: `/v1/tenants/${user.tenantId}`, headers: bearer(access) }), 401, 'token_revoked')
      for (const refresh of [tokens.refresh_token, other.refresh_token])
        assertProblem(await t.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: refresh } }), 401, 'invalid_token')
    })
  })

  describe('login', () => {
    it('when a TOTP user logs in with a correct code, then the token carries amr ["pwd","otp"], and refresh keeps it', async () => {
      const { user, secret } = await withTotp()
      const res = await login(user, { otp: await nextCode(secret) })
      assert.equal(res.statusCode, 200, res.body)
      const pair = res.json<Tokens>()
      assert.deepEqual(decodeJwt(pair.access_token).amr, ['pwd', 'otp'])
      const refreshed = await t.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: pair.refresh_token } })
      assert.equal(refreshed.statusCode, 200, refreshed.body)
      assert.deepEqual(decodeJwt(refreshed.json<Tokens>().access_token).amr, ['pwd', 'otp'])
      const [stored] = await t.admin<{ amr: string[] }[]>`select amr from refresh_tokens where user_id = ${user.userId} order by created_at desc limit 1`
      assert.deepEqual(stored?.amr, ['pwd', 'otp'])
    })

    it('when a TOTP user sends no code or a wrong one, then 401 mfa_required and no token', async () => {
      const { user, secret } = await withTotp()
      for (const extra of [{}, { otp: await wrongCode(secret) }]) {
        const res = await login(user, extra)
        assertProblem(res, 401, 'mfa_required')
        assert.equal(res.json().access_token, undefined)
      }
    })

    it('when the password is wrong, then 401 invalid_credentials whatever the otp, so mfa_required tells nothing without the password', async () => {
      const { user, secret } = await withTotp()
      for (const extra of [{}, { otp: await nextCode(secret) }, { otp: await wrongCode(secret) }])
        assertProblem(await login({ ...user, password: 'not the password at all' }, extra), 401, 'invalid_credentials')
      // The code sent with the wrong password was not used up.
      const res = await login(user, { otp: await nextCode(secret) })
      assert.equal(res.statusCode, 200, res.body)
    })

    it('when a user without TOTP sends an otp, then it is ignored: a password login with amr ["pwd"]', async () => {
      const user = await createTenant(t, 'member')
      const res = await login(user, { otp: '123456' })
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(decodeJwt(res.json<Tokens>().access_token).amr, ['pwd'])
    })
  })

  describe('the secret at rest', () => {
    it('when TOTP is on, then the database holds the secret only sealed (neither base32 nor raw bytes), bound to its user', async () => {
      const { user, secret } = await withTotp()
      const row = await totpRow(user.userId)
      assert.ok(row.totp_secret_enc)
      assert.equal(row.totp_secret_kek_id, t.deps.box.keyId)
      assert.ok(!row.totp_secret_enc.includes(secret))
      assert.ok(!row.totp_secret_enc.toUpperCase().includes(secret.slice(0, 8)))
      const [dump] = await t.admin<{ text: string }[]>`select row_to_json(u)::text as text from users u where id = ${user.userId}`
      assert.ok(!dump?.text.includes(secret))
      // Sealed with AES-GCM under KEY_ENCRYPTION_KEY and this user's context; another user's context does not open it.
      assert.equal(t.deps.box.open(row.totp_secret_enc, `totp:${user.tenantId}:${user.userId}`).toString(), secret)
      assert.throws(() => t.deps.box.open(row.totp_secret_enc ?? '', `totp:${user.tenantId}:00000000-0000-0000-0000-000000000000`))
    })

    it('when TOTP is on, then the secret is never returned again: a new enrolment needs an otp login, and no response carries it', async () => {
      const { user, secret } = await withTotp()
      const pwdOnly = await t.deps.tokens.issue({ userId: user.userId, tenantId: user.tenantId, role: 'owner', amr: ['pwd'] })
      const res = await enrol(pwdOnly.token)
      assertProblem(res, 403, 'mfa_step_up_required')
      assert.ok(!res.body.includes(secret))
      assertProblem(await confirm(pwdOnly.token, await nextCode(secret)), 409, 'conflict')
      for (const url of [`/v1/tenants/${user.tenantId}`, `/v1/tenants/${user.tenantId}/users`, `/v1/tenants/${user.tenantId}/users/${user.userId}`]) {
        const res = await t.app.inject({ method: 'GET', url, headers: bearer(pwdOnly.token) })
        assert.equal(res.statusCode, 200, `${url}: ${res.body}`)
        assert.ok(!res.body.includes(secret) && !res.body.includes('totp_secret'), url)
      }
    })

    it('when an otp login starts a new enrolment, then the current secret stays in force until the new one is confirmed', async () => {
      const { user, secret } = await withTotp()
      const before = (await totpRow(user.userId)).totp_secret_enc
      const session = (await login(user, { otp: await nextCode(secret) })).json<Tokens>()
      const res = await enrol(session.access_token)
      assert.equal(res.statusCode, 200, res.body)
      const fresh = res.json<{ secret: string }>().secret
      assert.notEqual(fresh, secret)
      const row = await totpRow(user.userId)
      assert.equal(row.totp_secret_enc, before)
      assert.equal(row.totp_enabled, true)
      assert.ok(row.totp_pending_enc)
      // Confirmed: the new secret is the active one, and the old one's codes stop working.
      assert.equal((await confirm(session.access_token, await totpCode(fresh))).statusCode, 204)
      const [old, next] = [await nextCode(secret), await nextCode(fresh)]
      if (old !== next) assertProblem(await login(user, { otp: old }), 401, 'mfa_required')
      const ok = await login(user, { otp: next })
      assert.equal(ok.statusCode, 200, ok.body)
    })
  })
})
