import type { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { Metrics } from '../metrics.ts'
import { MemoryCounters, countInRedis, defineGate, revocationKey } from './counters.ts'
import type { GateResult, Limit, LimitState } from './counters.ts'
import { MemoryCredentials, decide, defineCredentialScripts, gateInRedis, reportInRedis } from './credentials.ts'
import type { CredentialAttempt, CredentialOutcome } from './credentials.ts'
import type { LimitOverrides, TenantLimits } from './overrides.ts'

/** After a Redis failure, skip it for this long: a hung Redis must not add its timeout to every request. */
const retryAfterFailureMs = 1_000

/**
 * Counts requests against their limits in Redis (shared by every server process), or in this
 * process while Redis is unreachable, and says whether the token is in the revocation cache.
 * It never fails a request because Redis is down: the revocation check then rests on PostgreSQL,
 * which every tenant transaction consults anyway.
 */
export class RateLimiter {
  private readonly memory = new MemoryCounters()
  private readonly memoryCredentials = new MemoryCredentials()
  private degraded = false
  private lastFailureAt = 0

  constructor(
    private readonly redis: Redis | undefined,
    private readonly metrics: Metrics,
    private readonly log: FastifyBaseLogger,
    private readonly overrides?: LimitOverrides,
    private readonly defaults: TenantLimits = { tenantPerMinute: Number.MAX_SAFE_INTEGER, principalPerMinute: Number.MAX_SAFE_INTEGER },
  ) {
    if (redis) {
      defineGate(redis)
      defineCredentialScripts(redis)
      // ioredis emits an error on every failed reconnect; warn once per outage, not per attempt.
      redis.on('error', (err: Error) => {
        if (!this.degraded) this.setDegraded(true, err)
      })
      redis.on('ready', () => {
        // A fresh connection answered: the back-off after a failure (meant for a hung Redis) ends now.
        this.lastFailureAt = 0
        if (this.degraded) this.setDegraded(false)
        else metrics.redisUp.set(1)
      })
    }
    metrics.redisUp.set(redis?.status === 'ready' ? 1 : 0)
  }

  get store(): 'redis' | 'memory' {
    return this.redis && !this.degraded ? 'redis' : 'memory'
  }

  /** The configured limits, or the operator's override for this tenant (applied within 30 s). */
  limitsFor(tenantId: string): TenantLimits {
    return this.overrides?.limitsFor(tenantId) ?? this.defaults
  }

  /** Re-reads the operator's overrides now instead of at the next 30 s tick. */
  async reloadOverrides(): Promise<void> {
    await this.overrides?.reload()
  }

  async check(limits: readonly Limit[], jti?: string): Promise<GateResult> {
    return this.inRedisOr((redis) => countInRedis(redis, limits, jti), () => this.memory.count(limits))
  }

  /** Before a credentials attempt (see credentials.ts): one round trip, and the states that decide it. */
  async checkCredentials(a: CredentialAttempt): Promise<LimitState[]> {
    const reading = await this.inRedisOr((redis) => gateInRedis(redis, a), () => this.memoryCredentials.gate(a))
    return decide(a, reading)
  }

  /** After a credentials attempt: a failure locks, a success clears; anything else refunds the account count. */
  async reportCredentials(a: CredentialAttempt, outcome: CredentialOutcome): Promise<void> {
    await this.inRedisOr((redis) => reportInRedis(redis, a, outcome), () => this.memoryCredentials.report(a, outcome))
  }

  /** Runs op in Redis when it is usable, else (or when it fails) the in-process fallback. */
  private async inRedisOr<T>(op: (redis: Redis) => Promise<T>, fallback: () => T): Promise<T> {
    if (this.redis) {
      // Not connected: fail over at once. ioredis keeps reconnecting in the background.
      const usable = this.redis.status === 'ready' && Date.now() - this.lastFailureAt >= retryAfterFailureMs
      if (usable) {
        try {
          const result = await op(this.redis)
          if (this.degraded) this.setDegraded(false)
          return result
        } catch (err) {
          this.lastFailureAt = Date.now()
          if (!this.degraded) this.setDegraded(true, err)
        }
      } else if (!this.degraded) {
        this.setDegraded(true, new Error(`Redis connection is ${this.redis.status}`))
      }
      this.metrics.redisFallback.inc()
    }
    return fallback()
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

  close(): void {
    this.overrides?.close()
  }

  private setDegraded(on: boolean, err?: unknown): void {
    this.degraded = on
    this.metrics.redisUp.set(on ? 0 : 1)
    if (on)
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Redis unreachable: rate limits on per-process counters, revocation checks on PostgreSQL')
    else this.log.info('Redis is back: rate limits shared again')
  }
}
