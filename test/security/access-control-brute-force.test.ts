import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import { createMetrics } from '../../src/platform/metrics.ts'
import { isExceeded } from '../../src/platform/ratelimit/counters.ts'
import { credentialKeys, lockCapMs, lockMsFor } from '../../src/platform/ratelimit/credentials.ts'
import { RateLimiter } from '../../src/platform/ratelimit/limiter.ts'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

/**
 * Brute-force defence on POST /v1/auth/login (issue 3, point 7): failures lock the (account,
 * address) pair for growing times; failures across addresses are limited per account, except for
 * an address the account has logged in from; answers and locks never tell whether an account exists.
 */

const limit = 3

/** A random IPv6 address per attacker or victim: tests run in parallel on one Redis. */
const randomIp = () => `2001:db8:${[0, 0, 0, 0].map(() => randomBytes(2).toString('hex')).join(':')}::1`
const wrongPassword = 'not the password, but long'
const unknownEmail = () => `ghost-${randomBytes(4).toString('hex')}@example.com`

function assertRefused(res: LightMyRequestResponse, limitName: string): number {
  assert.equal(res.statusCode, 429, res.body)
  const body = res.json<{ code: string; detail: string }>()
  assert.equal(body.code, 'rate_limited')
  assert.match(body.detail, new RegExp(`\\(${limitName} limit\\)`))
  return Number(res.headers['retry-after'])
}

describe('brute-force defence on login', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp({ RATE_LIMIT_AUTH_PER_MINUTE: String(limit) })
  })
  after(async () => t.close())

  const login = (tenant: Pick<TestTenant, 'slug'>, email: string, password: string, ip: string) =>
    t.app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress: ip, payload: { tenant_slug: tenant.slug, email, password } })
  const fail = async (tenant: TestTenant, email: string, ip: string) => {
    const res = await login(tenant, email, wrongPassword, ip)
    assert.equal(res.statusCode, 401, res.body)
    assert.equal(res.json<{ code: string }>().code, 'invalid_credentials')
  }
  /** Makes the minute (and any lock) pass for one account at one address, as Redis would after the TTL. */
  const elapse = async (tenant: TestTenant, email: string, ip: string) => {
    const k = credentialKeys(`login:${tenant.slug}:${email.toLowerCase()}`, ip)
    const redis = t.deps.redis
    assert.ok(redis)
    await Promise.all([k.ip, k.account, k.pairLock].map((key) => redis.pexpire(key, 1)))
    await new Promise((resolve) => setTimeout(resolve, 5))
  }

  it('when an attacker guesses one account\'s password from one address, then each round of failures locks that pair for longer (1, 2, 4 minutes), even for the right password', async () => {
    const victim = await createTenant(t)
    const attacker = randomIp()
    for (let round = 1; round <= 3; round++) {
      for (let i = 0; i < limit; i++) await fail(victim, victim.email, attacker)
      const retry = assertRefused(await login(victim, victim.email, wrongPassword, attacker), 'account_ip')
      const expected = lockMsFor(round) / 1000
      assert.ok(retry <= expected && retry >= expected - 2, `round ${round}: Retry-After ${retry}, expected about ${expected}`)
      // The lock holds whatever the password: guessing right during the lock does not get in.
      assertRefused(await login(victim, victim.email, victim.password, attacker), 'account_ip')
      await elapse(victim, victim.email, attacker)
    }
    assert.equal(lockMsFor(100), lockCapMs)
  })

  it('when an attacker rotates addresses against one account, then after RATE_LIMIT_AUTH_PER_MINUTE failures every new address is refused for that account, and other accounts are untouched', async () => {
    const victim = await createTenant(t)
    for (let i = 0; i < limit; i++) await fail(victim, victim.email, randomIp())
    const retry = assertRefused(await login(victim, victim.email, wrongPassword, randomIp()), 'account')
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`)
    // The right password from a never-seen address waits too: otherwise rotating addresses would be unlimited guessing.
    assertRefused(await login(victim, victim.email, victim.password, randomIp()), 'account')
    const bystander = await createTenant(t)
    assert.equal((await login(bystander, bystander.email, bystander.password, randomIp())).statusCode, 200)
  })

  it('when an attacker fails on the victim\'s account from other addresses, then the victim\'s right password from their usual address still logs in', async () => {
    const victim = await createTenant(t)
    const home = randomIp()
    assert.equal((await login(victim, victim.email, victim.password, home)).statusCode, 200)
    const attacker = randomIp()
    // The attacker's failures exhaust the account's minute and lock the attacker's own pair.
    for (let i = 0; i < limit; i++) await fail(victim, victim.email, attacker)
    assertRefused(await login(victim, victim.email, wrongPassword, attacker), 'account_ip')
    assertRefused(await login(victim, victim.email, wrongPassword, randomIp()), 'account')
    assertRefused(await login(victim, victim.email, victim.password, randomIp()), 'account')
    for (let i = 0; i < 2; i++) {
      const res = await login(victim, victim.email, victim.password, home)
      assert.equal(res.statusCode, 200, res.body)
    }
  })

  it('when the same attempts hit an existing and a non-existent account, then status, body (but request_id), rate-limit headers and the lock are identical', async () => {
    const tenant = await createTenant(t)
    const run = async (email: string, slug: string) => {
      const ip = randomIp()
      const out: unknown[] = []
      for (let i = 0; i < limit + 2; i++) {
        const res = await login({ slug }, email, wrongPassword, ip)
        const body = res.json<Record<string, unknown>>()
        assert.equal(typeof body.request_id, 'string')
        delete body.request_id
        const retry = res.headers['retry-after']
        out.push({
          status: res.statusCode,
          body,
          limit: res.headers['ratelimit-limit'],
          remaining: res.headers['ratelimit-remaining'],
          // Seconds until a reset: allow for the second ticking over between the two runs.
          reset: Math.round(Number(res.headers['ratelimit-reset']) / 5),
          retry: retry === undefined ? undefined : Math.round(Number(retry) / 5),
        })
      }
      return out
    }
    const known = await run(tenant.email, tenant.slug)
    assert.deepEqual(await run(unknownEmail(), tenant.slug), known)
    assert.deepEqual(await run(unknownEmail(), `nope-${randomBytes(3).toString('hex')}`), known)
    assert.deepEqual((known as { status: number }[]).map((r) => r.status), [...Array<number>(limit).fill(401), 429, 429])
  })

  it('when the lock has expired, then the right password from the same address logs in and the pair\'s failures are forgotten', async () => {
    const user = await createTenant(t)
    const ip = randomIp()
    for (let i = 0; i < limit; i++) await fail(user, user.email, ip)
    assertRefused(await login(user, user.email, user.password, ip), 'account_ip')
    await elapse(user, user.email, ip)
    const res = await login(user, user.email, user.password, ip)
    assert.equal(res.statusCode, 200, res.body)
    const k = credentialKeys(`login:${user.slug}:${user.email}`, ip)
    assert.equal(await t.deps.redis?.exists(k.pairFailures, k.pairLock), 0)
    // A fresh start: limit - 1 failures do not lock (they would if the earlier round still counted).
    await elapse(user, user.email, ip)
    for (let i = 0; i < limit - 1; i++) await fail(user, user.email, ip)
    assert.equal((await login(user, user.email, user.password, ip)).statusCode, 200)
  })
})

describe('brute-force defence without Redis (in-process counters)', () => {
  const silent = { warn() {}, info() {}, error() {}, debug() {}, trace() {}, fatal() {}, child() { return silent }, level: 'silent', silent() {} }
  const limiter = new RateLimiter(undefined, createMetrics(), silent as never)
  after(() => limiter.close())
  const attempt = (account: string, ip: string) => ({ account, ip, max: limit, lockout: true })
  const refusedBy = async (account: string, ip: string) => (await limiter.checkCredentials(attempt(account, ip))).filter(isExceeded).map((s) => s.limit.name)

  it('when Redis is absent and one address keeps failing, then the pair is locked and a known address stays exempt from the account limit', async () => {
    const account = 'login:acme:victim@example.com'
    const home = randomIp()
    assert.deepEqual(await refusedBy(account, home), [])
    await limiter.reportCredentials(attempt(account, home), 'success')
    const attacker = randomIp()
    for (let i = 0; i < limit; i++) {
      assert.deepEqual(await refusedBy(account, attacker), [])
      await limiter.reportCredentials(attempt(account, attacker), 'failure')
    }
    const states = await limiter.checkCredentials(attempt(account, attacker))
    const lock = states.find((s) => s.limit.name === 'account_ip')
    assert.ok(lock && isExceeded(lock) && lock.resetMs > 55_000 && lock.resetMs <= 60_000, JSON.stringify(states))
    await limiter.reportCredentials(attempt(account, attacker), 'neither')
    assert.ok((await refusedBy(account, randomIp())).includes('account'))
    await limiter.reportCredentials(attempt(account, randomIp()), 'neither')
    assert.deepEqual(await refusedBy(account, home), [])
  })
})
