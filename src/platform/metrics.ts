import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** One registry per app instance, so tests can build several apps in one process. */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    requests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by route template, method and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route template',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'rate_limit_rejections_total',
      help: 'Requests refused with 429, by limit',
      labelNames: ['limit'] as const,
      registers: [registry],
    }),
    redisFallback: new Counter({
      name: 'redis_fallback_total',
      help: 'Requests served on in-process counters because Redis was unreachable',
      registers: [registry],
    }),
    redisUp: new Gauge({ name: 'redis_up', help: '1 when Redis answers, 0 when the fallback is in use', registers: [registry] }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
