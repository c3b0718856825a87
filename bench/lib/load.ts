import autocannon from 'autocannon'
import type { RequestData } from 'autocannon'
import type { CpuTimes } from './cpu.ts'

export type Scenario = 'list' | 'get' | 'create' | 'mixed'
export const allScenarios: readonly Scenario[] = ['list', 'get', 'create', 'mixed']

/** One seeded tenant as the load generator sees it: its id, a bearer token, its project ids. */
export interface LoadTenant {
  tenantId: string
  /** Full header value, "Bearer …"; empty for the baseline (it checks nothing). */
  authorization: string
  projectIds: readonly string[]
}

/** mulberry32: a small deterministic PRNG, so the service and the baseline get the same request mix. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const createBody = JSON.stringify({ title: 'bench' })

/**
 * A request generator for one scenario: every request picks a tenant at random (all tenants), and
 * for get/create a random project of that tenant, with that tenant's token. Mixed: 40 % list,
 * 40 % get, 20 % create.
 */
export function requestGenerator(scenario: Scenario, tenants: readonly LoadTenant[], seed = 42): (req: RequestData) => RequestData {
  const rand = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const headersOf = (t: LoadTenant, json: boolean): Record<string, string> => {
    const h: Record<string, string> = {}
    if (t.authorization) h.authorization = t.authorization
    if (json) h['content-type'] = 'application/json'
    return h
  }
  const list = (req: RequestData, t: LoadTenant): RequestData => {
    req.method = 'GET'
    req.path = `/v1/tenants/${t.tenantId}/projects?limit=20`
    req.headers = headersOf(t, false)
    req.body = undefined
    return req
  }
  const get = (req: RequestData, t: LoadTenant): RequestData => {
    req.method = 'GET'
    req.path = `/v1/tenants/${t.tenantId}/projects/${pick(t.projectIds)}`
    req.headers = headersOf(t, false)
    req.body = undefined
    return req
  }
  const create = (req: RequestData, t: LoadTenant): RequestData => {
    req.method = 'POST'
    req.path = `/v1/tenants/${t.tenantId}/projects/${pick(t.projectIds)}/tasks`
    req.headers = headersOf(t, true)
    req.body = createBody
    return req
  }
  return (req) => {
    const t = pick(tenants)
    switch (scenario) {
      case 'list':
        return list(req, t)
      case 'get':
        return get(req, t)
      case 'create':
        return create(req, t)
      case 'mixed': {
        const r = rand()
        return r < 0.4 ? list(req, t) : r < 0.8 ? get(req, t) : create(req, t)
      }
    }
  }
}

export interface LoadResult {
  /** Completed requests per second over the measured window (all status codes). */
  rps: number
  /** Latency of 2xx answers in milliseconds, from every sample (not autocannon's integer histogram). */
  p50: number
  p99: number
  requests: number
  non2xx: number
  errors: number
  timeouts: number
  statusCodes: Record<string, number>
  durationSec: number
  /** CPU time per request of the server, PostgreSQL, Redis and the load generator (set by the harness). */
  cpuUsPerRequest?: CpuTimes | undefined
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}

/**
 * Drives one autocannon run in THIS process (no workers: the load generator is one process), for
 * `durationSec` seconds with `connections` keep-alive connections. Calls onTick every second with
 * the elapsed seconds (RSS sampling).
 */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  return (await drive(opts)).result
}

interface LoadOptions {
  url: string
  scenario: Scenario
  tenants: readonly LoadTenant[]
  connections: number
  durationSec: number
  seed?: number
  onTick?: (elapsedSec: number) => void
}

/** runLoad, keeping the 2xx latencies (sorted) so that runs can be merged. */
export async function drive(opts: LoadOptions): Promise<{ result: LoadResult; latencies: Float64Array }> {
  const setupRequest = requestGenerator(opts.scenario, opts.tenants, opts.seed)
  const samples: number[] = []
  const instance = autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.durationSec,
    timeout: 10,
    requests: [{ setupRequest }],
  })
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode >= 200 && statusCode < 300) samples.push(responseTime)
  })
  const started = Date.now()
  const timer = opts.onTick ? setInterval(() => opts.onTick?.((Date.now() - started) / 1000), 1000) : undefined
  try {
    const r = await instance
    const sorted = Float64Array.from(samples).sort()
    const statusCodes: Record<string, number> = {}
    for (const [code, { count }] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = count
    const total = Object.values(statusCodes).reduce((a, b) => a + b, 0)
    const result: LoadResult = {
      rps: total / r.duration,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      requests: total,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      statusCodes,
      durationSec: r.duration,
    }
    return { result, latencies: sorted }
  } finally {
    if (timer) clearInterval(timer)
  }
}

/**
 * One result from several runs against the same server (the rounds of a scenario): requests/s over
 * their summed duration, percentiles over all their latencies, counts summed, and CPU per request
 * weighted by each run's requests.
 */
export function mergeRuns(runs: readonly { result: LoadResult; latencies: Float64Array }[]): LoadResult {
  const results = runs.map((r) => r.result)
  const sum = (f: (r: LoadResult) => number) => results.reduce((acc, r) => acc + f(r), 0)
  const latencies = new Float64Array(sum((r) => r.requests) > 0 ? runs.reduce((n, r) => n + r.latencies.length, 0) : 0)
  let at = 0
  for (const r of runs) {
    latencies.set(r.latencies, at)
    at += r.latencies.length
  }
  latencies.sort()
  const statusCodes: Record<string, number> = {}
  for (const r of results) for (const [code, n] of Object.entries(r.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n
  const requests = sum((r) => r.requests)
  const durationSec = sum((r) => r.durationSec)
  const withCpu = results.filter((r) => r.cpuUsPerRequest)
  const cpuUsPerRequest: CpuTimes | undefined =
    withCpu.length && requests > 0
      ? {
          server: sum((r) => (r.cpuUsPerRequest?.server ?? 0) * r.requests) / requests,
          postgres: sum((r) => (r.cpuUsPerRequest?.postgres ?? 0) * r.requests) / requests,
          redis: sum((r) => (r.cpuUsPerRequest?.redis ?? 0) * r.requests) / requests,
          loadGenerator: sum((r) => (r.cpuUsPerRequest?.loadGenerator ?? 0) * r.requests) / requests,
        }
      : undefined
  return {
    rps: durationSec > 0 ? requests / durationSec : 0,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    requests,
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    statusCodes,
    durationSec,
    cpuUsPerRequest,
  }
}
