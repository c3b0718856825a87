import { Redis } from 'ioredis'

/**
 * A Redis client that fails fast instead of queueing while Redis is down: callers fall back to
 * in-process counters and the database, and it keeps reconnecting in the background.
 */
export function createRedis(url: string): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    commandTimeout: 500,
    // Reconnect forever, backing off to 2 s: the server returns to Redis by itself.
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    lazyConnect: true,
    // Commands issued in the same turn of the event loop (and while a batch is in flight) go out
    // as one write: under load, one syscall carries many requests' rate-limit scripts.
    enableAutoPipelining: true,
  })
}

export function isRedisReady(redis: Redis | undefined): boolean {
  return redis?.status === 'ready'
}
