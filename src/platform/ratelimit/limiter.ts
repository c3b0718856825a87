import type { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { Metrics } from '../metrics.ts'
import { MemoryCounters, countInRedis, defineGate, revocationKey } from './counters.ts'
import type { GateResult, Limit } from './counters.ts'

/**
 * Counts requests against their limits in Redis (shared by every server process), or in this
 * process while Redis is unreachable, and says whether the token is in the revocation cache.
 * It never fails a request because Redis is down: the revocation check then rests on PostgreSQL,
 * which every tenant transaction consults anyway.
 */
export class RateLimiter {
  private readonly memory = new MemoryCounters()
  private degraded = false

  constructor(
    private readonly redis: Redis | undefined,
    private readonly metrics: Metrics,
    private readonly log: FastifyBaseLogger,
  ) {
    if (redis) defineGate(redis)
    metrics.redisUp.set(redis ? 1 : 0)
  }

  get store(): 'redis' | 'memory' {
    return this.redis && !this.degraded ? 'redis' : 'memory'
  }

  async check(limits: readonly Limit[], jti?: string): Promise<GateResult> {
    if (this.redis) {
      try {
        const result = await countInRedis(this.redis, limits, jti)
        if (this.degraded) this.setDegraded(false)
        return result
      } catch (err) {
        if (!this.degraded) this.setDegraded(true, err)
        this.metrics.redisFallback.inc()
      }
    }
    return this.memory.count(limits)
  }

  /** Caches a revocation until the token would have expired anyway. Best effort: PostgreSQL holds the truth. */
  async cacheRevocation(jti: string, expiresAtSec: number): Promise<void> {
    const ttlMs = expiresAtSec * 1000 - Date.now()
    if (!this.redis || ttlMs <= 0) return
    try {
      await this.redis.set(revocationKey(jti), '1', 'PX', ttlMs)
    } catch {
      this.metrics.redisFallback.inc()
    }
  }

  private setDegraded(on: boolean, err?: unknown): void {
    this.degraded = on
    this.metrics.redisUp.set(on ? 0 : 1)
    if (on)
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Redis unreachable: rate limits on per-process counters, revocation checks on PostgreSQL')
    else this.log.info('Redis is back: rate limits shared again')
  }
}
