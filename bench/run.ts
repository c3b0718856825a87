/**
 * `npm run bench [-- options]`: the load benchmark (see bench/README.md).
 *
 * Creates a throwaway database and a plain login role on the machine's PostgreSQL, seeds
 * 100 tenants × 200 projects × 5 tasks with scripts/seed.ts, starts the service in PRODUCTION mode
 * (every control on) and the bare baseline (bench/baseline/server.ts) as child processes, logs one
 * owner per tenant in, and drives each scenario with autocannon from this one process, baseline
 * and service in alternating rounds. Prints the table and writes bench/results/latest.{json,md}.
 * Removes the database, the role and the processes it made, also on failure or Ctrl-C.
 *
 * Options:
 *   --duration S        measured seconds per scenario and server (15)
 *   --rounds N          alternating rounds the measured seconds are split into (3)
 *   --warmup S          unmeasured seconds before each measurement (3)
 *   --connections N     keep-alive connections (32)
 *   --scenarios a,b     any of list,get,create,mixed (all)
 *   --tenants N --projects M --tasks K   small dataset (100 × 200 × 5)
 *   --memory            adds the memory run: `mixed` for --memory-minutes (5), RSS at 1 min and at the end
 *   --scale             adds the scale run: a second database of the same shape bulk-loaded to
 *                       --scale-tenants (10 000) tenants (10 M tasks) with its own service; list/get
 *                       p99 against the small one in alternating rounds; EXPLAIN the hot queries
 *   --profile           runs the service with --cpu-prof (profile written to bench/results/profiles/)
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { adminDatabaseUrl, benchRedisUrl, createBenchDatabase, loginAll, projectIdsByTenant, seed, serverFacts } from './lib/dataset.ts'
import type { BenchDatabase, SeededOwner } from './lib/dataset.ts'
import { cpuPerRequest, cpuTimes } from './lib/cpu.ts'
import type { CpuTimes } from './lib/cpu.ts'
import { allScenarios, drive, mergeRuns, runLoad } from './lib/load.ts'
import type { LoadResult, LoadTenant, Scenario } from './lib/load.ts'
import { freePort, repoRoot, rssOf, startNode } from './lib/processes.ts'
import type { NodeProcess } from './lib/processes.ts'
import { atLeast, atMost, errorsOf, evaluate, f1, markdownTable, scenarioTable, textTable, verdict } from './lib/report.ts'
import type { ScenarioRow } from './lib/report.ts'

const cpuLine = (c: CpuTimes | undefined) =>
  c ? `server ${Math.round(c.server)}, postgres ${Math.round(c.postgres)}, redis ${Math.round(c.redis)}, load generator ${Math.round(c.loadGenerator)}` : '—'
import { startNodeFlags } from '../scripts/node-flags.ts'
import { bulkLoad, explainHotQueries, tableCounts } from './lib/scale.ts'
import type { Explained } from './lib/scale.ts'

/**
 * V8 flags of the service as deployed: those of `npm start` (the Dockerfile has the same; a test
 * checks it). The baseline gets them too, so that the ratio measures the controls, not the tuning.
 * BENCH_NODE_ARGS adds flags to both servers, for diagnosis (e.g. `--trace-gc`).
 */
const v8Flags = [...startNodeFlags(), ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)]

const usage = 'usage: npm run bench -- [--duration S] [--rounds N] [--warmup S] [--connections N] [--scenarios list,get,create,mixed] [--memory] [--scale] [--profile]'

function parseOptions() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    allowPositionals: false,
    options: {
      duration: { type: 'string', default: '15' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '32' },
      scenarios: { type: 'string', default: allScenarios.join(',') },
      tenants: { type: 'string', default: '100' },
      projects: { type: 'string', default: '200' },
      tasks: { type: 'string', default: '5' },
      memory: { type: 'boolean', default: false },
      'memory-minutes': { type: 'string', default: '5' },
      scale: { type: 'boolean', default: false },
      'scale-tenants': { type: 'string', default: '10000' },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    console.log(usage)
    process.exit(0)
  }
  const num = (name: string, raw: string, min: number, max: number) => {
    const n = Number(raw)
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number between ${min} and ${max}, got "${raw}"`)
    return n
  }
  const scenarios = values.scenarios.split(',').map((s) => s.trim()) as Scenario[]
  for (const s of scenarios) if (!allScenarios.includes(s)) throw new Error(`--scenarios: unknown scenario "${s}" (one of ${allScenarios.join(', ')})`)
  const o = {
    duration: num('duration', values.duration, 1, 3600),
    rounds: num('rounds', values.rounds, 1, 100),
    warmup: num('warmup', values.warmup, 0, 600),
    connections: num('connections', values.connections, 1, 1000),
    scenarios,
    tenants: num('tenants', values.tenants, 1, 10_000),
    projects: num('projects', values.projects, 1, 10_000),
    tasks: num('tasks', values.tasks, 0, 1000),
    memory: values.memory,
    memoryMinutes: num('memory-minutes', values['memory-minutes'], 1.5, 120),
    scale: values.scale,
    scaleTenants: num('scale-tenants', values['scale-tenants'], 1, 1_000_000),
    profile: values.profile,
  }
  if (o.scale && o.scaleTenants <= o.tenants) throw new Error(`--scale-tenants (${o.scaleTenants}) must exceed --tenants (${o.tenants})`)
  return o
}

const mib = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / 1024 / 1024)
const log = (msg: string) => console.log(msg)

/** Cleanup actions, run in reverse order once, on success, failure or a signal. */
const cleanups: (() => Promise<void>)[] = []
let cleaning: Promise<void> | undefined
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn()
      } catch (err) {
        console.error(`cleanup: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
  })()
  return cleaning
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: cleaning up…`)
    void cleanup().finally(() => process.exit(130))
  })
}

interface MemoryResult {
  minutes: number
  rssStartMiB: number | undefined
  /** Lowest RSS of the 30 s window ending at 1 min: what stays resident once the collector has run. */
  rssAt1MinMiB: number | undefined
  /** Lowest RSS of the last 30 s. */
  rssEndMiB: number | undefined
  /** Highest RSS of the same windows (shown, not judged: V8 grows and returns its heap in spikes). */
  rssAt1MinPeakMiB: number | undefined
  rssEndPeakMiB: number | undefined
  rssAt1MinInstantMiB: number | undefined
  rssEndInstantMiB: number | undefined
  /** (end − 1 min) / 1 min, on the window floors: the target. */
  growth: number | undefined
  /** The same on the window peaks. */
  peakGrowth: number | undefined
  samples: { t: number; rssMiB: number }[]
  load: LoadResult
  pass: boolean | undefined
}

interface ScaleResult {
  tenants: number
  projects: number
  tasks: number
  loadSeconds: number
  rows: { scenario: Scenario; smallP99: number; scaleP99: number; ratio: number; scaleRps: number; smallRps: number; errors: number; pass: boolean }[]
  explain: Explained[]
  pass: boolean
}

async function main(): Promise<number> {
  let o: ReturnType<typeof parseOptions>
  try {
    o = parseOptions()
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${usage}`)
    return 64
  }
  const startedAt = new Date()
  const machine = {
    node: process.version,
    cores: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? '?',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()}`,
  }
  log(`saas-api benchmark — ${startedAt.toISOString()}`)
  log(`machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.platform}`)
  log(`load generator: 1 process (autocannon ${o.connections} connections, in this process), sharing the machine with the server, PostgreSQL and Redis`)

  // 1. Database, role, seed.
  const db: BenchDatabase = await createBenchDatabase()
  cleanups.push(() => db.drop())
  log(`database ${db.name}, runtime login role ${db.role} (dropped at the end)`)
  const facts = await serverFacts(db.ownerUrl)
  log(`${facts.postgres}, shared_buffers ${facts.sharedBuffers}; Redis ${benchRedisUrl}`)
  const seeded = await seed(db, o.tenants, o.projects, o.tasks)
  log(seeded.log.split('\n')[0] ?? '')
  const owners: SeededOwner[] = seeded.owners

  // 2. The service in production mode, every control on, and the baseline.
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'saas-bench-data-'))
  cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }))
  const profileDir = path.join(repoRoot, 'bench/results/profiles')
  if (o.profile) mkdirSync(profileDir, { recursive: true })
  const jwtPrivateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const keyEncryptionKey = randomBytes(32).toString('base64')
  /** The service in production mode on a database, every control on; stopped at the end. */
  const startService = async (name: string, on: BenchDatabase, profile = false): Promise<NodeProcess> => {
    const port = await freePort()
    const started = await startNode(
      name,
      'src/main.ts',
      {
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: String(port),
        METRICS_PORT: String(await freePort()),
        DATABASE_URL: on.runtimeUrl,
        REDIS_URL: benchRedisUrl,
        DATA_DIR: dataDir,
        KEY_ENCRYPTION_KEY: keyEncryptionKey,
        JWT_PRIVATE_KEY: jwtPrivateKey,
        JWT_ALG: 'ES256',
        ACCESS_TOKEN_TTL_SECONDS: '900',
        // High enough that the benchmark measures the limiter's cost, not its 429s; it still runs.
        RATE_LIMIT_TENANT_PER_MINUTE: '10000000',
        RATE_LIMIT_PRINCIPAL_PER_MINUTE: '10000000',
        RATE_LIMIT_AUTH_PER_MINUTE: '100000',
        LOG_LEVEL: 'warn',
      },
      port,
      [...v8Flags, ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])],
    )
    cleanups.push(() => started.stop())
    return started
  }
  const service = await startService('service', db, o.profile)
  const baselinePort = await freePort()
  const baseline: NodeProcess = await startNode('baseline', 'bench/baseline/server.ts', { PORT: String(baselinePort), BASELINE_DATABASE_URL: db.ownerUrl }, baselinePort, v8Flags)
  cleanups.push(() => baseline.stop())
  log(`service (NODE_ENV=production) pid ${service.pid} on ${service.baseUrl}; baseline pid ${baseline.pid} on ${baseline.baseUrl}`)

  // 3. Tokens (one owner per tenant) and project ids.
  const projects = await projectIdsByTenant(
    db.ownerUrl,
    owners.map((w) => w.tenant_id),
  )
  /** One owner per tenant logged in to `target`, again well before the 15-minute tokens expire. */
  const tokenSource = (target: NodeProcess, who: readonly SeededOwner[], projectIds: Map<string, string[]>) => {
    let tokens = new Map<string, string>()
    let tokensAt = 0
    return async (): Promise<LoadTenant[]> => {
      if (Date.now() - tokensAt > 8 * 60_000) {
        const t0 = Date.now()
        tokens = await loginAll(target.baseUrl, who)
        tokensAt = Date.now()
        log(`logged in ${tokens.size} owners (${target.name}) in ${((tokensAt - t0) / 1000).toFixed(1)} s`)
      }
      return who.map((w) => ({ tenantId: w.tenant_id, authorization: tokens.get(w.tenant_id) ?? '', projectIds: projectIds.get(w.tenant_id) ?? [] }))
    }
  }
  const freshTokens = tokenSource(service, owners, projects)
  const baselineTenants: LoadTenant[] = owners.map((w) => ({ tenantId: w.tenant_id, authorization: '', projectIds: projects.get(w.tenant_id) ?? [] }))
  await freshTokens()
  log(`service RSS after start-up and logins: ${f1(mib(rssOf(service.pid)))} MiB`)

  // 4. Scenarios: baseline, then service, back to back, after one warm-up of both (JIT, plan caches,
  // pools), so that the first scenario does not pay for a cold process.
  const firstWarmup = Math.max(5, 2 * o.warmup)
  log(`\nwarm-up: mixed for ${firstWarmup} s on each server`)
  await runLoad({ url: baseline.baseUrl, scenario: 'mixed', tenants: baselineTenants, connections: o.connections, durationSec: firstWarmup })
  await runLoad({ url: service.baseUrl, scenario: 'mixed', tenants: await freshTokens(), connections: o.connections, durationSec: firstWarmup })
  type Run = Awaited<ReturnType<typeof drive>>
  /**
   * Two servers in alternating rounds (A B A B …), each round duration/rounds seconds, so that a
   * slow spell of a shared machine falls on both sides instead of on one: the ratios are what the
   * targets are about. Each side's rounds are merged.
   */
  const alternate = async (scenario: Scenario, sides: readonly { label: string; target: NodeProcess; tenants: LoadTenant[] }[]) => {
    const roundSec = o.duration / o.rounds
    const runs: Run[][] = sides.map(() => [])
    if (o.warmup > 0) for (const side of sides) await runLoad({ url: side.target.baseUrl, scenario, tenants: side.tenants, connections: o.connections, durationSec: o.warmup })
    for (let round = 0; round < o.rounds; round++) {
      for (const [i, side] of sides.entries()) {
        const before = cpuTimes(side.target.pid)
        const run = await drive({ url: side.target.baseUrl, scenario, tenants: side.tenants, connections: o.connections, durationSec: roundSec })
        run.result.cpuUsPerRequest = cpuPerRequest(before, cpuTimes(side.target.pid), run.result.requests)
        runs[i]?.push(run)
        log(`    round ${round + 1} ${side.label.padEnd(8)} ${String(Math.round(run.result.rps)).padStart(6)} req/s  p50 ${f1(run.result.p50)} ms  p99 ${f1(run.result.p99)} ms`)
      }
    }
    return runs.map((r) => mergeRuns(r))
  }
  const measurePair = async (scenario: Scenario, tenants: LoadTenant[]) => {
    const [b, s] = await alternate(scenario, [
      { label: 'baseline', target: baseline, tenants: baselineTenants },
      { label: 'service', target: service, tenants },
    ])
    if (!b || !s) throw new Error('alternate: a side has no result')
    return { b, s }
  }

  const rows: ScenarioRow[] = []
  log(`\nscenarios: ${o.scenarios.join(', ')} — ${o.warmup} s warm-up, then ${o.duration} s measured per server in ${o.rounds} alternating rounds (baseline, service, …)`)
  for (const scenario of o.scenarios) {
    const tenants = await freshTokens()
    const rssStart = rssOf(service.pid)
    const { b, s } = await measurePair(scenario, tenants)
    const rssEnd = rssOf(service.pid)
    const row: ScenarioRow = { scenario, service: s, baseline: b, ...evaluate(scenario, s, b), rssStartMiB: mib(rssStart), rssEndMiB: mib(rssEnd) }
    rows.push(row)
    const codes = Object.entries(s.statusCodes)
      .map(([c, n]) => `${c}×${n}`)
      .join(' ')
    log(
      `  ${scenario.padEnd(6)} service ${Math.round(s.rps)} req/s p99 ${f1(s.p99)} ms (${codes}; errors ${s.errors}, timeouts ${s.timeouts}) | ` +
        `baseline ${Math.round(b.rps)} req/s p99 ${f1(b.p99)} ms | ratio ${atLeast(row.rpsRatio)} req/s, ${atMost(row.p99Ratio)} p99 ${verdict(row.pass)} | ` +
        `service RSS ${f1(row.rssStartMiB)} → ${f1(row.rssEndMiB)} MiB`,
    )
    log(`         CPU µs per request, service | baseline: ${cpuLine(s.cpuUsPerRequest)} | ${cpuLine(b.cpuUsPerRequest)}`)
  }

  // 5. Memory: a long mixed run against the service.
  let memory: MemoryResult | undefined
  if (o.memory) {
    const tenants = await freshTokens()
    log(`\nmemory: mixed for ${o.memoryMinutes} min against the service…`)
    // RSS is sampled every second. V8's heap is a sawtooth, so one instant can land on a peak or a
    // trough. The compared figures are the floors (lowest sample) of two 30 s windows, the one
    // ending at 1 min and the one ending the run: a leak raises the floor, while the peaks are
    // transient heap growth V8 returns (they moved by ±15 % from window to window with no trend).
    // The peaks and the instants at 1 min and at the end are kept and printed as well.
    const samples: { t: number; rssMiB: number }[] = []
    const rssStart = mib(rssOf(service.pid))
    let rssAt1MinInstant: number | undefined
    const durationSec = Math.round(o.memoryMinutes * 60)
    const load = await runLoad({
      url: service.baseUrl,
      scenario: 'mixed',
      tenants,
      connections: o.connections,
      durationSec,
      onTick: (t) => {
        const r = mib(rssOf(service.pid))
        if (r === undefined) return
        if (rssAt1MinInstant === undefined && t >= 60) rssAt1MinInstant = r
        samples.push({ t: Number(t.toFixed(1)), rssMiB: Number(r.toFixed(1)) })
      },
    })
    const rssEndInstant = mib(rssOf(service.pid))
    const window = (from: number, to: number, pick: (xs: number[]) => number) => {
      const xs = samples.filter((x) => x.t > from && x.t <= to).map((x) => x.rssMiB)
      return xs.length ? pick(xs) : undefined
    }
    const change = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? (b - a) / a : undefined)
    const floor = (xs: number[]) => Math.min(...xs)
    const top = (xs: number[]) => Math.max(...xs)
    const rssAt1Min = window(30, 60, floor)
    const rssEnd = window(durationSec - 30, durationSec + 5, floor)
    const rssAt1MinPeak = window(30, 60, top)
    const rssEndPeak = window(durationSec - 30, durationSec + 5, top)
    const growth = change(rssAt1Min, rssEnd)
    const peakGrowth = change(rssAt1MinPeak, rssEndPeak)
    const pass = growth === undefined ? undefined : Math.abs(growth) <= 0.1 && errorsOf(load) === 0
    memory = {
      minutes: o.memoryMinutes,
      rssStartMiB: rssStart,
      rssAt1MinMiB: rssAt1Min,
      rssEndMiB: rssEnd,
      rssAt1MinPeakMiB: rssAt1MinPeak,
      rssEndPeakMiB: rssEndPeak,
      rssAt1MinInstantMiB: rssAt1MinInstant,
      rssEndInstantMiB: rssEndInstant,
      growth,
      peakGrowth,
      samples,
      load,
      pass,
    }
    const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(1)} %`)
    log(
      `  RSS ${f1(rssStart)} MiB at start; floor of 30–60 s ${f1(rssAt1Min)} MiB, floor of the last 30 s ${f1(rssEnd)} MiB: ${pct(growth)} ` +
        `(target within 10 %) ${verdict(pass)}; peaks ${f1(rssAt1MinPeak)} → ${f1(rssEndPeak)} MiB (${pct(peakGrowth)}); ` +
        `instants ${f1(rssAt1MinInstant)} MiB at 1 min, ${f1(rssEndInstant)} MiB at the end; ${Math.round(load.rps)} req/s, errors ${errorsOf(load)}`,
    )
  }

  // 6. Scale: grow to scaleTenants tenants of the same shape, measure list/get again, EXPLAIN.
  let scale: ScaleResult | undefined
  if (o.scale) {
    // A second database of the same shape, grown to scaleTenants, with its own service: the small
    // and the grown dataset are then measured in alternating rounds, like baseline and service,
    // so that the machine's drift between two measurements minutes apart is not read as a cost of scale.
    const extra = o.scaleTenants - o.tenants
    const big: BenchDatabase = await createBenchDatabase()
    cleanups.push(() => big.drop())
    log(`\nscale: database ${big.name} (dropped at the end): ${o.tenants} tenants seeded like the small one, then ${extra} more × ${o.projects} projects × ${o.tasks} tasks (generate_series, as the owner)…`)
    const bigSeed = await seed(big, o.tenants, o.projects, o.tasks)
    let reported = 0
    const loaded = await bulkLoad({
      ownerUrl: big.ownerUrl,
      tenants: extra,
      projects: o.projects,
      tasks: o.tasks,
      onProgress: (done) => {
        if (done - reported >= extra / 10 || done === extra) {
          reported = done
          log(`  ${done} / ${extra} tenants loaded`)
        }
      },
    })
    const counts = await tableCounts(big.ownerUrl)
    log(`  loaded in ${loaded.seconds.toFixed(0)} s (with VACUUM ANALYZE): ${counts.tenants} tenants, ${counts.projects} projects, ${counts.tasks} tasks`)
    const bigService = await startService('service-scale', big)
    const bigProjects = await projectIdsByTenant(
      big.ownerUrl,
      bigSeed.owners.map((w) => w.tenant_id),
    )
    const bigTokens = tokenSource(bigService, bigSeed.owners, bigProjects)
    log(`  service on the grown database: pid ${bigService.pid} on ${bigService.baseUrl}; warm-up: mixed for ${firstWarmup} s`)
    await runLoad({ url: bigService.baseUrl, scenario: 'mixed', tenants: await bigTokens(), connections: o.connections, durationSec: firstWarmup })
    log(`scale: list and get, ${o.duration} s per dataset in ${o.rounds} alternating rounds (small, scale, …), the same 100 hot tenants' shape on both`)
    const scaleRows: ScaleResult['rows'] = []
    for (const scenario of ['list', 'get'] as const) {
      const [small, grown] = await alternate(scenario, [
        { label: 'small', target: service, tenants: await freshTokens() },
        { label: 'scale', target: bigService, tenants: await bigTokens() },
      ])
      if (!small || !grown) throw new Error('alternate: a side has no result')
      const ratio = grown.p99 / small.p99
      const errors = errorsOf(grown) + errorsOf(small)
      const pass = ratio <= 1.2 && errors === 0
      scaleRows.push({ scenario, smallP99: small.p99, scaleP99: grown.p99, ratio, scaleRps: grown.rps, smallRps: small.rps, errors, pass })
      log(
        `  ${scenario.padEnd(4)} p99 ${f1(grown.p99)} ms at scale vs ${f1(small.p99)} ms small: ${atMost(ratio)}× (target ≤ 1.2×) ${verdict(pass)}; ` +
          `${Math.round(grown.rps)} vs ${Math.round(small.rps)} req/s, errors ${errors}`,
      )
    }
    const first = bigSeed.owners[0]
    const explain = first ? await explainHotQueries(big.runtimeUrl, first.tenant_id, bigProjects.get(first.tenant_id)?.[0] ?? '') : []
    for (const e of explain) {
      log(`\n  EXPLAIN (ANALYZE, BUFFERS), as ${big.role} → saas_runtime in a tenant transaction — ${e.query}: ${e.indexOnly ? 'index scans only' : 'has a non-index scan'} (${e.indexes.join(', ')})`)
      log(e.plan.replace(/^/gm, '    '))
    }
    scale = {
      tenants: counts.tenants,
      projects: counts.projects,
      tasks: counts.tasks,
      loadSeconds: loaded.seconds,
      rows: scaleRows,
      explain,
      // The target names the two hot queries; the actor check is shown for information.
      pass: scaleRows.every((r) => r.pass) && explain.filter((e) => e.hot).every((e) => e.indexOnly),
    }
  }

  // 7. Report.
  const table = scenarioTable(rows)
  log(`\n${textTable(table)}`)
  const settings = {
    connections: o.connections,
    durationSec: o.duration,
    warmupSec: o.warmup,
    dataset: `${o.tenants} tenants × ${o.projects} projects × ${o.tasks} tasks`,
    loadGenerator: `1 process: autocannon (programmatic) in the harness process, ${o.connections} connections, no workers`,
    service: 'NODE_ENV=production, every control on (ES256 token verification, tenant check, Redis rate limits + revocation cache, RLS transaction, response schemas), pool max 10, LOG_LEVEL=warn',
    baseline: 'bench/baseline/server.ts: bare Fastify + postgres.js as the owner (superuser, RLS bypassed), no auth, no rate limit, pool max 10',
    postgres: facts.postgres,
    sharedBuffers: facts.sharedBuffers,
    adminDatabaseUrl: new URL(adminDatabaseUrl).host,
  }
  const json = { startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), machine, settings, scenarios: rows, memory, scale }
  const md: string[] = [
    `# Benchmark results`,
    '',
    `${startedAt.toISOString()} — ${machine.cores} cores (${machine.cpu}), node ${machine.node}, ${facts.postgres}. ` +
      `Load generator: 1 process (autocannon, ${o.connections} connections) on the same machine as the server, PostgreSQL and Redis. ` +
      `Dataset ${settings.dataset}; ${o.warmup} s warm-up + ${o.duration} s measured per scenario and server in ${o.rounds} alternating rounds (baseline, service, …). ` +
      `p50/p99: latency of 2xx answers; errors: non-2xx + socket errors + timeouts.`,
    '',
    markdownTable(table),
  ]
  if (memory) {
    md.push(
      '',
      `Memory: \`mixed\` for ${memory.minutes} min: service RSS (floor of a 30 s window) ${f1(memory.rssAt1MinMiB)} MiB at 1 min, ${f1(memory.rssEndMiB)} MiB at the end ` +
        `(${memory.growth === undefined ? '—' : (memory.growth * 100).toFixed(1)} %, target within 10 %): **${verdict(memory.pass)}**; ` +
        `peaks of the same windows ${f1(memory.rssAt1MinPeakMiB)} and ${f1(memory.rssEndPeakMiB)} MiB (${memory.peakGrowth === undefined ? '—' : (memory.peakGrowth * 100).toFixed(1)} %).`,
    )
  }
  if (scale) {
    md.push(
      '',
      `Scale: ${scale.tenants.toLocaleString('en-US')} tenants, ${scale.projects.toLocaleString('en-US')} projects, ${scale.tasks.toLocaleString('en-US')} tasks ` +
        `in a second database with its own service (bulk-loaded in ${scale.loadSeconds.toFixed(0)} s), measured against the small one in alternating rounds:`,
      '',
      markdownTable([
        ['scenario', 'req/s small', 'req/s at scale', 'p99 small ms', 'p99 at scale ms', 'ratio p99', 'target', 'result'],
        ...scale.rows.map((r) => [r.scenario, Math.round(r.smallRps).toLocaleString('en-US'), Math.round(r.scaleRps).toLocaleString('en-US'), f1(r.smallP99), f1(r.scaleP99), atMost(r.ratio), '≤ 1.2×', verdict(r.pass)]),
      ]),
      '',
      ...scale.explain.flatMap((e) => [`EXPLAIN — ${e.query} (${e.indexOnly ? 'index scans only' : 'has a non-index scan'}${e.hot ? '' : ', for information'}):`, '', '```', e.plan, '```', '']),
    )
  }
  const resultsDir = path.join(repoRoot, 'bench/results')
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify(json, null, 2) + '\n')
  writeFileSync(path.join(resultsDir, 'latest.md'), md.join('\n') + '\n')
  writeFileSync(path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(json, null, 2) + '\n')
  log(`\nwritten: bench/results/latest.json, bench/results/latest.md`)

  const verdicts = [...rows.map((r) => r.pass), memory?.pass, scale?.pass].filter((p) => p !== undefined)
  const failed = verdicts.filter((p) => !p).length
  log(failed ? `${failed} target(s) not met` : 'every measured target met')
  return failed ? 1 : 0
}

try {
  process.exitCode = await main()
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  process.exitCode = 2
} finally {
  await cleanup()
}
