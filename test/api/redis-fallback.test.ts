import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { createTenant } from '../helpers/app.ts'
import type { TestTenant } from '../helpers/app.ts'
import { privateRedis, startAppWithLogs, waitFor } from '../helpers/processes.ts'
import type { PrivateRedis } from '../helpers/processes.ts'

/**
 * Contract, "Rate limits": Redis is never the only copy of anything that matters. With Redis
 * unreachable, limits fall back to per-process counters and revocation checks to the database,
 * a warning is logged and counted, no request fails, and the server returns to Redis by itself.
 */
describe('redis fallback', () => {
  const limit = 3
  let redis: PrivateRedis
  let t: Awaited<ReturnType<typeof startAppWithLogs>>

  before(async () => {
    redis = await privateRedis()
    await redis.start()
    t = await startAppWithLogs({ REDIS_URL: redis.url, RATE_LIMIT_PRINCIPAL_PER_MINUTE: String(limit) })
  })
  after(async () => {
    await t.close()
    await redis.stop()
  })

  const list = (who: TestTenant) => t.app.inject({ method: 'GET', url: `/v1/tenants/${who.tenantId}/projects`, headers: who.auth })
  const readyz = async () => {
    const res = await t.app.inject({ method: 'GET', url: '/readyz' })
    return { status: res.statusCode, body: res.json() }
  }
  const fallbackCount = async () => (await t.deps.metrics.registry.getSingleMetric('redis_fallback_total')?.get())?.values[0]?.value ?? 0
  const revoke = (who: TestTenant) => t.admin`insert into revoked_tokens (tenant_id, jti, expires_at) values (${who.tenantId}, ${who.jti}, now() + interval '15 minutes')`

  it('when Redis is up, then readiness is ok and counters live in Redis', async () => {
    assert.deepEqual(await readyz(), { status: 200, body: { status: 'ok', database: 'up', redis: 'up' } })
    const a = await createTenant(t)
    assert.equal((await list(a)).statusCode, 200)
    const probe = new Redis(redis.url)
    try {
      assert.equal(await probe.get(`saas:rl:u:${a.userId}`), '1')
    } finally {
      probe.disconnect()
    }
  })

  it('when Redis dies, then requests still succeed, limits fall back to in-process counters, readiness is degraded, and it is logged and counted', async () => {
    const a = await createTenant(t)
    const before = await fallbackCount()
    await redis.stop()
    for (let i = 1; i <= limit; i++) {
      const res = await list(a)
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.headers['ratelimit-remaining'], String(limit - i))
    }
    const refused = await list(a)
    assert.equal(refused.statusCode, 429, refused.body)
    assert.equal(refused.json().code, 'rate_limited')
    assert.ok(Number(refused.headers['retry-after']) >= 1)

    assert.deepEqual(await readyz(), { status: 200, body: { status: 'degraded', database: 'up', redis: 'down' } })
    assert.ok((await fallbackCount()) >= before + limit + 1, 'redis_fallback_total counts the requests served on the fallback')
    const warnings = t.logs.filter((l) => l.level === 'warn' && /Redis unreachable/.test(l.msg ?? ''))
    assert.equal(warnings.length, 1, 'one warning per outage, not one per request')
    assert.equal(t.deps.limiter.store, 'memory')
  })

  it('when Redis is down and a token is revoked, then that token is still refused with 401 token_revoked', async () => {
    const a = await createTenant(t)
    assert.equal((await list(a)).statusCode, 200)
    await revoke(a)
    const res = await list(a)
    assert.equal(res.statusCode, 401, res.body)
    assert.equal(res.json().code, 'token_revoked')
  })

  it('when Redis comes back on the same address, then the server returns to it by itself and counters are shared again', async () => {
    await redis.start()
    await waitFor('readiness back to ok', async () => (await readyz()).body.status === 'ok', 15_000, 200)
    const a = await createTenant(t)
    assert.equal((await list(a)).statusCode, 200)
    assert.equal(t.deps.limiter.store, 'redis')
    const probe = new Redis(redis.url)
    try {
      assert.equal(await probe.get(`saas:rl:u:${a.userId}`), '1', 'the request was counted in Redis')
    } finally {
      probe.disconnect()
    }
    assert.ok(t.logs.some((l) => l.level === 'info' && /Redis is back/.test(l.msg ?? '')))
  })

  it('when Redis comes back empty (flushed), then a revoked token does not become valid again', async () => {
    const a = await createTenant(t)
    await revoke(a)
    const exp = Math.floor(Date.now() / 1000) + 600
    await t.deps.limiter.cacheRevocation(a.jti, exp)
    const cached = await list(a)
    assert.equal(cached.statusCode, 401)
    assert.equal(cached.json().code, 'token_revoked')

    const probe = new Redis(redis.url)
    try {
      await probe.flushall()
    } finally {
      probe.disconnect()
    }
    const res = await list(a)
    assert.equal(res.statusCode, 401, res.body)
    assert.equal(res.json().code, 'token_revoked')
  })
})

describe('redis down at start', () => {
  let redis: PrivateRedis
  let t: Awaited<ReturnType<typeof startAppWithLogs>>

  before(async () => {
    redis = await privateRedis()
    t = await startAppWithLogs({ REDIS_URL: redis.url })
  })
  after(async () => {
    await t.close()
    await redis.stop()
  })

  it('when Redis is unreachable at start, then the server starts on the fallback and moves to Redis once it appears', async () => {
    const a = await createTenant(t)
    const res = await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal((await t.app.inject({ method: 'GET', url: '/readyz' })).json().redis, 'down')
    assert.ok(t.logs.some((l) => l.level === 'warn' && /Redis unreachable/.test(l.msg ?? '')))
    await redis.start()
    await waitFor('Redis in use', async () => (await t.app.inject({ method: 'GET', url: '/readyz' })).json().status === 'ok', 15_000, 200)
    await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth })
    assert.equal(t.deps.limiter.store, 'redis')
  })
})
