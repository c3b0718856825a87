import type { Redis } from 'ioredis'

export interface Limit {
  /** Name for headers, metrics and logs: tenant, principal, ip, account. */
  readonly name: string
  readonly key: string
  readonly max: number
}

export interface LimitState {
  readonly limit: Limit
  readonly count: number
  readonly resetMs: number
  /** Set when the decision is not simply count > max (a lock; an exempt known source). */
  readonly exceeded?: boolean | undefined
}

export function isExceeded(s: LimitState): boolean {
  return s.exceeded ?? s.count > s.limit.max
}

export interface GateResult {
  readonly states: LimitState[]
  /** The access token's jti is in the revocation cache. */
  readonly revoked: boolean
  readonly store: 'redis' | 'memory'
}

/** Fixed windows of one minute: limits are configured per minute. */
export const windowMs = 60_000

/**
 * One round trip: count every limit atomically and look up the revocation cache. KEYS are the
 * counter keys, then (optionally) the revocation key. ARGV[1] is the number of counters.
 */
const gateScript = `
local n = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local out = {}
for i = 1, n do
  local c = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[i], window) ttl = window end
  out[#out + 1] = c
  out[#out + 1] = ttl
end
if #KEYS > n then out[#out + 1] = redis.call('EXISTS', KEYS[n + 1]) else out[#out + 1] = 0 end
return out
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    saasGate(numKeys: number, ...args: (string | number)[]): Promise<number[]> & Context
  }
}

export function defineGate(redis: Redis): void {
  redis.defineCommand('saasGate', { lua: gateScript })
}

export function revocationKey(jti: string): string {
  return `saas:revoked:${jti}`
}

export async function countInRedis(redis: Redis, limits: readonly Limit[], jti: string | undefined): Promise<GateResult> {
  const keys = limits.map((l) => `saas:rl:${l.key}`)
  if (jti) keys.push(revocationKey(jti))
  const out = await redis.saasGate(keys.length, ...keys, limits.length, windowMs)
  const states = limits.map((limit, i) => ({ limit, count: Number(out[i * 2]), resetMs: Number(out[i * 2 + 1]) }))
  return { states, revoked: out[limits.length * 2] === 1, store: 'redis' }
}

/** Per-process counters: the embedded default, and the fallback while Redis is unreachable. */
export class MemoryCounters {
  private readonly windows = new Map<string, { count: number; resetAt: number }>()
  private lastSweep = Date.now()

  count(limits: readonly Limit[]): GateResult {
    const now = Date.now()
    this.sweep(now)
    const states = limits.map((limit) => {
      let w = this.windows.get(limit.key)
      if (!w || w.resetAt <= now) {
        w = { count: 0, resetAt: now + windowMs }
        this.windows.set(limit.key, w)
      }
      w.count += 1
      return { limit, count: w.count, resetMs: w.resetAt - now }
    })
    return { states, revoked: false, store: 'memory' }
  }

  /** Drops expired windows at most once a window, so memory stays bounded by active keys. */
  private sweep(now: number): void {
    if (now - this.lastSweep < windowMs) return
    this.lastSweep = now
    for (const [key, w] of this.windows) if (w.resetAt <= now) this.windows.delete(key)
  }
}
