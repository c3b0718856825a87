import assert from 'node:assert/strict'
import { randomBytes, randomInt, randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import { createTenant, createTestDatabase, addUser, startTestApp, testRedisUrl } from '../helpers/app.ts'
import type { TestApp, TestDatabase, TestTenant } from '../helpers/app.ts'
import { es256Pem, startServerProcess } from '../helpers/processes.ts'
import type { ServerProcess } from '../helpers/processes.ts'

/**
 * Threat 3, "API rate limit bypass": per-tenant and per-principal limits on tenant routes, per-IP and
 * per-account limits on credential routes, client IP from the socket unless a trusted proxy says
 * otherwise, and counters in Redis shared by every server process.
 */

const principalLimit = 5
const tenantLimit = 8
const authLimit = 4

/** IP keys live in the shared Redis for a minute: every test uses addresses of its own. */
function randomIp(prefix: string): string {
  return `${prefix}.${randomInt(0, 256)}.${randomInt(1, 255)}`
}

function assertLimitHeaders(res: LightMyRequestResponse, limit: number, remaining: number): void {
  assert.equal(res.headers['ratelimit-limit'], String(limit), `RateLimit-Limit of ${res.statusCode} ${res.body}`)
  assert.equal(res.headers['ratelimit-remaining'], String(remaining))
  const reset = Number(res.headers['ratelimit-reset'])
  assert.ok(reset >= 0 && reset <= 60, `RateLimit-Reset ${String(res.headers['ratelimit-reset'])}`)
}

function assertRateLimited(res: LightMyRequestResponse, limitName?: string): void {
  assert.equal(res.statusCode, 429, res.body)
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
  const body = res.json()
  assert.equal(body.code, 'rate_limited')
  assert.equal(body.status, 429)
  if (limitName) assert.match(body.detail, new RegExp(`\\(${limitName} limit\\)`))
  const retry = Number(res.headers['retry-after'])
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After ${String(res.headers['retry-after'])}`)
}

describe('threat 3: rate limit bypass', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp({
      RATE_LIMIT_PRINCIPAL_PER_MINUTE: String(principalLimit),
      RATE_LIMIT_TENANT_PER_MINUTE: String(tenantLimit),
      RATE_LIMIT_AUTH_PER_MINUTE: String(authLimit),
      TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8',
    })
  })
  after(async () => t.close())

  const list = (who: TestTenant) => t.app.inject({ method: 'GET', url: `/v1/tenants/${who.tenantId}/projects`, headers: who.auth })

  const login = (tenant: TestTenant, email: string, remoteAddress: string, xff?: string) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      remoteAddress,
      headers: xff ? { 'x-forwarded-for': xff } : {},
      payload: { tenant_slug: tenant.slug, email, password: 'wrong password, long enough' },
    })

  const randomEmail = () => `nobody-${randomBytes(4).toString('hex')}@example.com`

  it('when one principal floods a tenant route, then past its limit it gets 429 rate_limited with Retry-After and RateLimit headers', async () => {
    const a = await createTenant(t)
    for (let i = 1; i <= principalLimit; i++) {
      const res = await list(a)
      assert.equal(res.statusCode, 200, res.body)
      // The principal limit (5) is closer to exhaustion than the tenant limit (8): it is the one reported.
      assertLimitHeaders(res, principalLimit, principalLimit - i)
    }
    const refused = await list(a)
    assertRateLimited(refused, 'principal')
    assertLimitHeaders(refused, principalLimit, 0)
  })

  it('when a principal floods with malformed requests, then they spend its budget too (counted before validation)', async () => {
    const a = await createTenant(t)
    for (let i = 1; i <= principalLimit; i++) {
      const res = await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth, payload: { bogus: i } })
      assert.equal(res.statusCode, 400, res.body)
      assertLimitHeaders(res, principalLimit, principalLimit - i)
    }
    assertRateLimited(await list(a), 'principal')
  })

  it('when several users of one tenant share the load, then the tenant limit stops them together', async () => {
    const a = await createTenant(t)
    const b = await addUser(t, a, 'member')
    for (let i = 0; i < principalLimit; i++) assert.equal((await list(a)).statusCode, 200)
    // b has its own principal budget, but the tenant has only tenantLimit - principalLimit left.
    for (let i = principalLimit; i < tenantLimit; i++) {
      const res = await list(b)
      assert.equal(res.statusCode, 200, res.body)
      assertLimitHeaders(res, tenantLimit, tenantLimit - i - 1)
    }
    const refused = await list(b)
    assertRateLimited(refused, 'tenant')
    assertLimitHeaders(refused, tenantLimit, 0)
    // Another tenant is unaffected.
    const other = await createTenant(t)
    assert.equal((await list(other)).statusCode, 200)
  })

  it('when an operator lowers one tenant\'s limit, then that tenant is held to it and others keep the default', async () => {
    const a = await createTenant(t)
    const b = await createTenant(t)
    await t.admin`insert into rate_limit_overrides (tenant_id, principal_per_minute) values (${a.tenantId}, 2)`
    // Servers reload overrides every 30 s; the test does not wait for the timer.
    await t.deps.limiter.reloadOverrides()
    for (let i = 0; i < 2; i++) assertLimitHeaders(await list(a), 2, 1 - i)
    assertRateLimited(await list(a), 'principal')
    const res = await list(b)
    assert.equal(res.statusCode, 200)
    assertLimitHeaders(res, principalLimit, principalLimit - 1)
  })

  it('when an untrusted client spoofs X-Forwarded-For, then its bucket is still its socket address', async () => {
    const a = await createTenant(t)
    const peer = randomIp('198.18')
    for (let i = 0; i < authLimit; i++) {
      const res = await login(a, randomEmail(), peer, randomIp('203.0'))
      assert.equal(res.statusCode, 401, res.body)
      assert.equal(res.json().code, 'invalid_credentials')
    }
    assertRateLimited(await login(a, randomEmail(), peer, randomIp('203.0')), 'ip')
  })

  it('when a trusted proxy forwards rotating client addresses, then each client gets its own bucket', async () => {
    const a = await createTenant(t)
    const proxy = randomIp('10.1')
    for (let i = 0; i < authLimit * 2; i++) {
      const res = await login(a, randomEmail(), proxy, randomIp('203.0'))
      assert.equal(res.statusCode, 401, res.body)
    }
  })

  it('when a client behind a trusted proxy forges entries to the left of its own, then the right-most untrusted entry is still its bucket', async () => {
    const a = await createTenant(t)
    const proxy = randomIp('10.2')
    const client = randomIp('198.19')
    // The proxy chain appends: "<forged by the client>, <client as seen by the edge proxy>, <inner proxy>".
    const chain = () => `${randomIp('203.0')}, ${client}, ${randomIp('10.3')}`
    for (let i = 0; i < authLimit; i++) assert.equal((await login(a, randomEmail(), proxy, chain())).statusCode, 401)
    assertRateLimited(await login(a, randomEmail(), proxy, chain()), 'ip')
  })

  it('when one account is attacked from many addresses, then the per-account limit holds across IPs', async () => {
    const a = await createTenant(t)
    for (let i = 0; i < authLimit; i++) {
      const res = await login(a, a.email, randomIp('198.18'))
      assert.equal(res.statusCode, 401, res.body)
      assert.equal(res.json().code, 'invalid_credentials')
    }
    const refused = await login(a, a.email, randomIp('198.18'))
    assertRateLimited(refused, 'account')
    // The right password does not get past the limit either.
    const right = await t.app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress: randomIp('198.18'), payload: { tenant_slug: a.slug, email: a.email, password: a.password } })
    assertRateLimited(right, 'account')
  })

  it('when one address sprays many accounts, then the per-IP limit holds across accounts', async () => {
    const a = await createTenant(t)
    const attacker = randomIp('198.18')
    for (let i = 0; i < authLimit; i++) assert.equal((await login(a, randomEmail(), attacker)).statusCode, 401)
    assertRateLimited(await login(a, randomEmail(), attacker), 'ip')
    // A different client is not punished for it.
    assert.equal((await login(a, randomEmail(), randomIp('198.18'))).statusCode, 401)
  })
})

describe('threat 3: rate limits across server processes', () => {
  const limit = 6
  let db: TestDatabase
  let t: TestApp
  const servers: ServerProcess[] = []

  before(async () => {
    db = await createTestDatabase()
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: testRedisUrl,
      KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      JWT_PRIVATE_KEY: es256Pem(),
      JWT_ISSUER: 'https://api.test',
      RATE_LIMIT_PRINCIPAL_PER_MINUTE: String(limit),
    }
    // The in-process app migrates the database and mints tokens with the same key and issuer.
    t = await startTestApp(env, db)
    servers.push(...(await Promise.all([startServerProcess(env), startServerProcess(env)])))
  })
  after(async () => {
    await Promise.all(servers.map((s) => s.kill()))
    await t.close()
    await db.drop()
  })

  it('when requests alternate between two server processes on one Redis, then the total allowed is the limit, not twice it', async () => {
    const a = await createTenant(t)
    const statuses: number[] = []
    for (let i = 0; i < limit * 2; i++) {
      const server = servers[i % 2]
      assert.ok(server)
      const res = await fetch(`${server.baseUrl}/v1/tenants/${a.tenantId}/projects`, { headers: { ...a.auth, 'x-request-id': `two-proc-${randomUUID()}` } })
      statuses.push(res.status)
      await res.arrayBuffer()
    }
    assert.deepEqual(statuses, [...Array<number>(limit).fill(200), ...Array<number>(limit).fill(429)])
  })
})
