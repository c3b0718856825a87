import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { windowMs } from './counters.ts'
import type { LimitState } from './counters.ts'

/**
 * Brute-force defence for credentials routes (signup, login, refresh). Three counters:
 *
 * - ip: every attempt from one client address, RATE_LIMIT_AUTH_PER_MINUTE per minute (fixed window).
 * - account: FAILED attempts on one account from all addresses, RATE_LIMIT_AUTH_PER_MINUTE per minute.
 *   An attempt is counted when it starts (so parallel attempts cannot slip past) and refunded when it
 *   does not fail. Past the limit, attempts on that account are refused (429) — except, on lockout
 *   routes (login), from an address that has logged into this account successfully in the last 30
 *   days: an attacker at other addresses cannot keep the victim out of their usual place.
 * - account from one address (lockout routes only): every RATE_LIMIT_AUTH_PER_MINUTE failures of
 *   the same (account, address) pair lock that pair for 1, 2, 4, … minutes (capped at 15). That
 *   pair is the one an attacker controls, so the lock only ever holds back the attacker (or whoever
 *   shares its address). A successful login clears it; a day without failures forgets it.
 *
 * An unknown account is counted exactly like a known one: the counters are keyed on what the
 * client sent, never on what exists, so neither the answers nor the locks tell them apart.
 * Account names and addresses are stored hashed: Redis never holds an email address.
 */

export const lockBaseMs = 60_000
export const lockCapMs = 15 * 60_000
/** Failures of a pair are forgotten after this long without another failure. */
export const pairMemoryMs = 24 * 3_600_000
/** How long a successful login makes an address known for that account. */
export const knownSourceMs = 30 * 24 * 3_600_000

export interface CredentialAttempt {
  /** The route's account key (e.g. login:<slug>:<email>), from the validated body. */
  readonly account: string
  readonly ip: string
  readonly max: number
  /** Login: per-pair locks and known-source exemption. Signup and refresh: the plain limits. */
  readonly lockout: boolean
}

export type CredentialOutcome = 'failure' | 'success' | 'neither'

/** What the gate read, before any decision. */
export interface GateReading {
  readonly ipCount: number
  readonly ipTtlMs: number
  readonly accountCount: number
  readonly accountTtlMs: number
  /** Remaining lock of the (account, address) pair; 0 when not locked. */
  readonly lockTtlMs: number
  readonly known: boolean
}

const h = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 22)

/** The Redis keys of an attempt; exported so tests can make time pass for one account. */
export function credentialKeys(account: string, ip: string) {
  const pair = h(`${account}\n${ip}`)
  return {
    ip: `saas:rl:ip:${ip}`,
    account: `saas:bf:acct:${h(account)}`,
    pairFailures: `saas:bf:fail:${pair}`,
    pairLock: `saas:bf:lock:${pair}`,
    known: `saas:bf:known:${pair}`,
  }
}

/** Turns a reading into limit states; `exceeded` marks those that refuse this attempt. */
export function decide(a: CredentialAttempt, r: GateReading): LimitState[] {
  const keys = credentialKeys(a.account, a.ip)
  const exempt = a.lockout && r.known
  const states: LimitState[] = [
    { limit: { name: 'ip', key: keys.ip, max: a.max }, count: r.ipCount, resetMs: r.ipTtlMs },
    // An exempt source still sees the account's count in its headers; it is just not refused.
    { limit: { name: 'account', key: keys.account, max: a.max }, count: r.accountCount, resetMs: r.accountTtlMs, exceeded: !exempt && r.accountCount > a.max },
  ]
  if (a.lockout && r.lockTtlMs > 0) states.push({ limit: { name: 'account_ip', key: keys.pairLock, max: a.max }, count: a.max + 1, resetMs: r.lockTtlMs, exceeded: true })
  return states
}

/** Lock length after the n-th full round of failures of one pair: 1, 2, 4 … minutes, capped. */
export function lockMsFor(round: number): number {
  return Math.min(lockCapMs, lockBaseMs * 2 ** Math.max(0, round - 1))
}

/**
 * One round trip before the attempt: count it per address and per account, read the pair's lock
 * and whether the address is known for the account. KEYS: ip, account, pairLock, known.
 */
const gateScript = `
local window = tonumber(ARGV[1])
local out = {}
for i = 1, 2 do
  local c = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[i], window) ttl = window end
  out[#out + 1] = c
  out[#out + 1] = ttl
end
local lock = redis.call('PTTL', KEYS[3])
if lock < 0 then lock = 0 end
out[#out + 1] = lock
out[#out + 1] = redis.call('EXISTS', KEYS[4])
return out
`

/**
 * One round trip after the attempt. KEYS: account, pairFailures, pairLock, known.
 * ARGV: outcome (failure|success|neither), lockout (1|0), threshold, lockBaseMs, lockCapMs, pairMemoryMs, knownSourceMs.
 * A failure keeps the account count and counts the pair (locking it at each full round); anything
 * else refunds the account count; a success also clears the pair and marks the address known.
 */
const resultScript = `
local outcome = ARGV[1]
local lockout = ARGV[2] == '1'
if outcome ~= 'failure' then
  if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then redis.call('DECR', KEYS[1]) end
  if outcome == 'success' and lockout then
    redis.call('DEL', KEYS[2], KEYS[3])
    redis.call('SET', KEYS[4], '1', 'PX', tonumber(ARGV[7]))
  end
  return 0
end
if not lockout then return 0 end
local c = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]))
local threshold = tonumber(ARGV[3])
if c % threshold == 0 then
  local lock = math.floor(math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ (c / threshold - 1)))
  redis.call('SET', KEYS[3], '1', 'PX', lock)
  return lock
end
return 0
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    saasCredGate(numKeys: number, ...args: (string | number)[]): Promise<number[]> & Context
    saasCredResult(numKeys: number, ...args: (string | number)[]): Promise<number> & Context
  }
}

export function defineCredentialScripts(redis: Redis): void {
  redis.defineCommand('saasCredGate', { lua: gateScript })
  redis.defineCommand('saasCredResult', { lua: resultScript })
}

export async function gateInRedis(redis: Redis, a: CredentialAttempt): Promise<GateReading> {
  const k = credentialKeys(a.account, a.ip)
  const out = await redis.saasCredGate(4, k.ip, k.account, k.pairLock, k.known, windowMs)
  return {
    ipCount: Number(out[0]),
    ipTtlMs: Number(out[1]),
    accountCount: Number(out[2]),
    accountTtlMs: Number(out[3]),
    lockTtlMs: Number(out[4]),
    known: Number(out[5]) === 1,
  }
}

export async function reportInRedis(redis: Redis, a: CredentialAttempt, outcome: CredentialOutcome): Promise<void> {
  const k = credentialKeys(a.account, a.ip)
  await redis.saasCredResult(4, k.account, k.pairFailures, k.pairLock, k.known, outcome, a.lockout ? 1 : 0, Math.max(1, a.max), lockBaseMs, lockCapMs, pairMemoryMs, knownSourceMs)
}

/** The same counters in this process: the embedded default, and the fallback while Redis is down. */
export class MemoryCredentials {
  private readonly entries = new Map<string, { n: number; expiresAt: number }>()
  private lastSweep = Date.now()

  gate(a: CredentialAttempt): GateReading {
    const now = Date.now()
    this.sweep(now)
    const k = credentialKeys(a.account, a.ip)
    const ip = this.incr(k.ip, now, windowMs, false)
    const account = this.incr(k.account, now, windowMs, false)
    const lock = this.live(k.pairLock, now)
    return {
      ipCount: ip.n,
      ipTtlMs: ip.expiresAt - now,
      accountCount: account.n,
      accountTtlMs: account.expiresAt - now,
      lockTtlMs: lock ? lock.expiresAt - now : 0,
      known: this.live(k.known, now) !== undefined,
    }
  }

  report(a: CredentialAttempt, outcome: CredentialOutcome): void {
    const now = Date.now()
    const k = credentialKeys(a.account, a.ip)
    if (outcome !== 'failure') {
      const account = this.live(k.account, now)
      if (account && account.n > 0) account.n -= 1
      if (outcome === 'success' && a.lockout) {
        this.entries.delete(k.pairFailures)
        this.entries.delete(k.pairLock)
        this.entries.set(k.known, { n: 1, expiresAt: now + knownSourceMs })
      }
      return
    }
    if (!a.lockout) return
    const failures = this.incr(k.pairFailures, now, pairMemoryMs, true)
    const threshold = Math.max(1, a.max)
    if (failures.n % threshold === 0) this.entries.set(k.pairLock, { n: 1, expiresAt: now + lockMsFor(failures.n / threshold) })
  }

  private live(key: string, now: number) {
    const e = this.entries.get(key)
    return e && e.expiresAt > now ? e : undefined
  }

  /** Fixed window (sliding = false) or a TTL renewed on every increment (sliding = true). */
  private incr(key: string, now: number, ttlMs: number, sliding: boolean) {
    let e = this.live(key, now)
    if (!e) {
      e = { n: 0, expiresAt: now + ttlMs }
      this.entries.set(key, e)
    }
    e.n += 1
    if (sliding) e.expiresAt = now + ttlMs
    return e
  }

  /** Drops expired entries at most once a minute, so memory stays bounded by active keys. */
  private sweep(now: number): void {
    if (now - this.lastSweep < windowMs) return
    this.lastSweep = now
    for (const [key, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(key)
  }
}
