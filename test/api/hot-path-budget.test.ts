/**
 * The hot path's round-trip budget (issue 4, point 6): not a timing, a count. For each hot request
 * it counts the Redis commands and the PostgreSQL statements and round trips the request makes, and
 * fails when a change adds one. Lower a budget here when a change removes one.
 *
 * How it counts, deterministically (requests are made one at a time):
 * - PostgreSQL: postgres.js publishes every query on the `postgres:query` diagnostics channel and
 *   every lease of a connection on `postgres:pool`. Every statement sent while the request runs is
 *   counted, except those on a connection leased by sql.begin(): the periodic reloads of signing
 *   keys and rate-limit overrides run there (withoutTenant), and the hot path never does (withTenant
 *   reserves its connection, withTenantRead sends one batch on the pool).
 *   A batch is one query with one result per statement. A round trip is a run of statements sent
 *   before any answer came back: a statement sent after an answer starts the next one. Statements
 *   sent without awaiting go out in the same turn of the event loop, before any answer can be read,
 *   so this does not depend on timing.
 * - Redis: every command the app's ioredis client sends (sendCommand) while the request runs.
 * (An AsyncLocalStorage around app.inject() would be simpler, but Fastify's inject does not carry
 * the caller's async context into the request.)
 *
 * pg_stat_statements is not loaded on this PostgreSQL (shared_preload_libraries is empty), hence the
 * driver-side count.
 */
import assert from 'node:assert/strict'
import dc from 'node:diagnostics_channel'
import { after, before, describe, it } from 'node:test'
import type { InjectOptions } from 'fastify'
import type { Redis } from 'ioredis'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

type Entry = { kind: 'start' | 'end'; ctx: { connection?: number | null; query?: string | null; result?: unknown } } | { kind: 'lease' | 'release'; connection: number }
let recording: Entry[] | undefined
let redisCommands: string[] | undefined

const queries = dc.tracingChannel('postgres:query')
const subscriber = {
  start(ctx: object) {
    recording?.push({ kind: 'start', ctx })
  },
  asyncEnd(ctx: object) {
    recording?.push({ kind: 'end', ctx })
  },
  end() {},
  asyncStart() {},
  error() {},
}
const onPool = (message: unknown) => {
  const m = message as { event: string; kind?: string; connection: number }
  if (m.kind === 'transaction' && (m.event === 'lease' || m.event === 'release')) recording?.push({ kind: m.event, connection: m.connection })
}

interface Tally {
  statements: number
  roundTrips: number
  redis: string[]
}

/** Replays the log: statements and round trips, leaving out sql.begin() transactions. */
function tallyOf(log: Entry[], redis: string[]): Tally {
  const inBegin = new Set<number>()
  const counted = new Set<object>()
  let statements = 0
  let roundTrips = 0
  let answered = true
  for (const e of log) {
    if (e.kind === 'lease') inBegin.add(e.connection)
    else if (e.kind === 'release') inBegin.delete(e.connection)
    else if (e.kind === 'start') {
      // Everything counts except statements on a connection leased by sql.begin(): the background
      // reloads. (withTenant reserves its connection; withTenantRead and plain queries use the pool.)
      if (e.ctx.connection != null && inBegin.has(e.ctx.connection)) continue
      counted.add(e.ctx)
      if (answered) roundTrips++
      answered = false
    } else if (e.kind === 'end' && counted.has(e.ctx)) {
      answered = true
      // A batch (query null) resolves with one result per statement.
      statements += e.ctx.query == null && Array.isArray(e.ctx.result) ? e.ctx.result.length : 1
    }
  }
  return { statements, roundTrips, redis }
}

/**
 * The budgets.
 * - GET list / GET one: 2 statements (the settings with the actor gate, the query) in one batch,
 *   one round trip (withTenantRead: one implicit read-only transaction; was 4 statements in 4
 *   round trips before pipelining, then 3 in one).
 * - POST task: 2 statements (the settings with the actor gate; the insert-if-referenced with its
 *   audit insert as a CTE of the same statement) in one batch, one round trip (withTenantBatch: one
 *   implicit transaction that commits at the batch's Sync; was 6 statements in 6 round trips, then
 *   in 2, then 3 statements in one).
 * - Redis: one command per request, the rate-limit and revocation script (EVALSHA).
 */
const budget = {
  list: { statements: 2, roundTrips: 1, redis: 1 },
  get: { statements: 2, roundTrips: 1, redis: 1 },
  createTask: { statements: 2, roundTrips: 1, redis: 1 },
}

describe('hot path round-trip budget', () => {
  let t: TestApp
  let tenant: TestTenant
  let projectId: string
  let restoreRedis: (() => void) | undefined

  before(async () => {
    t = await startTestApp()
    tenant = await createTenant(t)
    queries.subscribe(subscriber)
    dc.subscribe('postgres:pool', onPool)
    const redis: Redis | undefined = t.deps.redis
    assert.ok(redis, 'the budget is measured with Redis, as in production')
    const send = redis.sendCommand.bind(redis)
    redis.sendCommand = (command, stream) => {
      redisCommands?.push(command.name)
      return send(command, stream)
    }
    restoreRedis = () => {
      redis.sendCommand = send
    }
    const created = await t.app.inject({ method: 'POST', url: `/v1/tenants/${tenant.tenantId}/projects`, headers: tenant.auth, payload: { name: 'budget' } })
    assert.equal(created.statusCode, 201)
    projectId = created.json<{ id: string }>().id
  })

  after(async () => {
    queries.unsubscribe(subscriber)
    dc.unsubscribe('postgres:pool', onPool)
    restoreRedis?.()
    await t.close()
  })

  async function measure(request: InjectOptions, status: number): Promise<Tally> {
    // Warm-up: scripts loaded, statements prepared, connections open; then the counted request.
    for (let i = 0; i < 2; i++) assert.equal((await t.app.inject(request)).statusCode, status)
    const log: Entry[] = []
    const redis: string[] = []
    recording = log
    redisCommands = redis
    try {
      const res = await t.app.inject(request)
      assert.equal(res.statusCode, status, res.body)
    } finally {
      recording = undefined
      redisCommands = undefined
    }
    return tallyOf(log, redis)
  }

  function check(name: keyof typeof budget, got: Tally) {
    const want = budget[name]
    assert.ok(got.redis.length <= want.redis, `${name}: ${got.redis.length} Redis commands (${got.redis.join(', ')}), budget ${want.redis}`)
    assert.ok(got.redis.every((c) => c === 'evalsha'), `${name}: Redis commands ${got.redis.join(', ')}, expected only the script (evalsha)`)
    assert.deepEqual(
      { statements: got.statements, roundTrips: got.roundTrips },
      { statements: want.statements, roundTrips: want.roundTrips },
      `${name}: PostgreSQL work changed; if it went down, lower the budget in this file`,
    )
  }

  it('when a project list is requested, then it costs one Redis command, 2 statements and 1 PostgreSQL round trip', async () => {
    check('list', await measure({ method: 'GET', url: `/v1/tenants/${tenant.tenantId}/projects?limit=20`, headers: tenant.auth }, 200))
  })

  it('when one project is requested, then it costs one Redis command, 2 statements and 1 PostgreSQL round trip', async () => {
    check('get', await measure({ method: 'GET', url: `/v1/tenants/${tenant.tenantId}/projects/${projectId}`, headers: tenant.auth }, 200))
  })

  it('when a task is created, then it costs one Redis command, 2 statements and 1 PostgreSQL round trip', async () => {
    check('createTask', await measure({ method: 'POST', url: `/v1/tenants/${tenant.tenantId}/projects/${projectId}/tasks`, headers: tenant.auth, payload: { title: 'counted' } }, 201))
  })
})
