import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, get } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { LightMyRequestResponse } from 'fastify'
import { after, before, describe, it } from 'node:test'
import helmet from 'helmet'
import postgres from 'postgres'
import { createTenant, createTestDatabase, startTestApp, testRedisUrl } from '../helpers/app.ts'
import type { TestApp, TestDatabase, TestTenant } from '../helpers/app.ts'
import { startNodeFlags } from '../../scripts/node-flags.ts'
import { dropDatabaseNow, es256Pem, startServerProcess, waitFor } from '../helpers/processes.ts'
import type { ServerProcess } from '../helpers/processes.ts'

function assertSecurityHeaders(res: LightMyRequestResponse): void {
  assert.equal(res.headers['x-content-type-options'], 'nosniff')
  assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/)
  assert.match(String(res.headers['content-security-policy']), /default-src 'none'/)
  assert.equal(res.headers['referrer-policy'], 'no-referrer')
  assert.equal(res.headers['cache-control'], 'no-store')
}

describe('operations', () => {
  let t: TestApp
  let a: TestTenant
  before(async () => {
    t = await startTestApp()
    a = await createTenant(t)
  })
  after(async () => t.close())

  it('when any answer leaves (2xx, 401, 404), then it carries exactly the headers helmet itself sets on a real response', async () => {
    // helmet run as middleware on a real http.ServerResponse, with the app's options.
    const server = createServer((req, res) => {
      helmet({
        contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
        hsts: { maxAge: 63_072_000, includeSubDomains: true },
        referrerPolicy: { policy: 'no-referrer' },
      })(req, res, () => res.end())
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    const expected = await new Promise<Record<string, unknown>>((resolve, reject) => get(`http://127.0.0.1:${port}/`, (res) => resolve(res.headers)).on('error', reject))
    await new Promise((resolve) => server.close(resolve))
    const helmetHeaders = Object.entries(expected).filter(([name]) => !['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(name))
    assert.ok(helmetHeaders.length >= 10, `helmet set ${helmetHeaders.length} headers`)
    for (const res of [
      await t.app.inject({ method: 'GET', url: '/healthz' }),
      await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects` }),
      await t.app.inject({ method: 'GET', url: '/v1/nothing-here' }),
    ]) {
      for (const [name, value] of helmetHeaders) assert.equal(res.headers[name], value, `${name} on a ${res.statusCode}`)
    }
  })

  it('when the process is up, then /healthz answers 200', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/healthz' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { status: 'ok' })
  })

  it('when the database and Redis answer, then /readyz is 200 ok with each dependency up', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/readyz' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { status: 'ok', database: 'up', redis: 'up' })
  })

  it('when a valid X-Request-Id is sent, then it is echoed on success and on errors', async () => {
    for (const url of ['/healthz', `/v1/tenants/${a.tenantId}/projects`, '/no/such/route']) {
      const res = await t.app.inject({ method: 'GET', url, headers: { ...a.auth, 'x-request-id': 'abc.DEF_1:2-3' } })
      assert.equal(res.headers['x-request-id'], 'abc.DEF_1:2-3', url)
    }
    const problem = await t.app.inject({ method: 'GET', url: '/no/such/route', headers: { 'x-request-id': 'trace-42' } })
    assert.equal(problem.json().request_id, 'trace-42')
  })

  it('when X-Request-Id is missing, too long or has forbidden characters, then a generated one replaces it', async () => {
    const seen = new Set<string>()
    for (const incoming of [undefined, 'x'.repeat(129), 'x'.repeat(200), 'has spaces in it', 'semi;colon', '']) {
      const res = await t.app.inject({ method: 'GET', url: '/healthz', headers: incoming === undefined ? {} : { 'x-request-id': incoming } })
      const id = String(res.headers['x-request-id'])
      assert.notEqual(id, incoming)
      assert.match(id, /^[A-Za-z0-9._:-]{1,128}$/)
      seen.add(id)
    }
    assert.equal(seen.size, 6, 'each generated id is unique')
    const longest = await t.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'y'.repeat(128) } })
    assert.equal(longest.headers['x-request-id'], 'y'.repeat(128))
  })

  it('when any API response is sent, then it carries the security headers and Cache-Control no-store', async () => {
    const ok = await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth })
    assert.equal(ok.statusCode, 200)
    assertSecurityHeaders(ok)
    assertSecurityHeaders(await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects` }))
    assertSecurityHeaders(await t.app.inject({ method: 'GET', url: '/nowhere' }))
  })

  it('when a route does not exist, then the answer is 404 problem+json not_found', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/does-not-exist' })
    assert.equal(res.statusCode, 404)
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
    const body = res.json()
    assert.equal(body.code, 'not_found')
    assert.equal(body.status, 404)
    assert.equal(body.request_id, res.headers['x-request-id'])
  })

  it('when /metrics is asked of the public port, then it is not there (404)', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/metrics' })
    assert.equal(res.statusCode, 404)
    assert.doesNotMatch(res.body, /http_requests_total/)
  })
})

describe('operations: database down', () => {
  let db: TestDatabase
  let t: TestApp
  let a: TestTenant
  before(async () => {
    db = await createTestDatabase()
    t = await startTestApp({}, db)
    a = await createTenant(t)
  })
  after(async () => {
    await t.close()
    await db.drop()
  })

  it('when the database goes away, then /readyz is 503 with database down and tenant routes answer 503 unavailable, not 500', async () => {
    assert.equal((await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth })).statusCode, 200)
    await dropDatabaseNow(db.name)
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' })
    assert.equal(ready.statusCode, 503)
    assert.deepEqual(ready.json(), { status: 'unavailable', database: 'down', redis: 'up' })

    for (const req of [
      { method: 'GET' as const, url: `/v1/tenants/${a.tenantId}/projects` },
      { method: 'POST' as const, url: `/v1/tenants/${a.tenantId}/projects`, payload: { name: 'x' } },
    ]) {
      const res = await t.app.inject({ ...req, headers: a.auth })
      assert.equal(res.statusCode, 503, res.body)
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
      assert.equal(res.json().code, 'unavailable')
      assert.doesNotMatch(res.body, /saas_test_|does not exist|postgres/i, 'no driver text or database name leaks')
    }
    assertSecurityHeaders(await t.app.inject({ method: 'GET', url: '/readyz' }))
  })
})

describe('operations: how the service is started', () => {
  it('when the image starts the service, then the Dockerfile runs node with exactly the flags of npm start (which the tests and the benchmark use)', () => {
    const flags = startNodeFlags()
    assert.ok(flags.includes('--no-allocation-site-pretenuring'), `npm start's flags: ${flags.join(' ')}`)
    const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8'))
    assert.ok(cmd?.[1], 'the Dockerfile has a CMD in exec form')
    assert.deepEqual(JSON.parse(cmd[1]), ['node', ...flags, '--import', 'tsx', 'src/main.ts'])
  })
})

describe('operations: a spawned server process', () => {
  let db: TestDatabase
  let t: TestApp
  let server: ServerProcess
  let a: TestTenant

  before(async () => {
    db = await createTestDatabase()
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: testRedisUrl,
      KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      JWT_PRIVATE_KEY: es256Pem(),
      JWT_ISSUER: 'https://api.test',
      RATE_LIMIT_PRINCIPAL_PER_MINUTE: '2',
    }
    t = await startTestApp(env, db)
    server = await startServerProcess(env)
    a = await createTenant(t)
  })
  after(async () => {
    await server.kill()
    await t.close()
    await db.drop()
  })

  const get = (path: string) => fetch(`${server.baseUrl}${path}`, { headers: a.auth })

  it('when /metrics is scraped on METRICS_PORT, then it lists requests by route and status, latency, rate-limit rejections and Redis fallbacks', async () => {
    const statuses: number[] = []
    for (const path of ['/healthz', '/no/such/route', ...Array<string>(3).fill(`/v1/tenants/${a.tenantId}/projects`)]) {
      const res = await get(path)
      await res.arrayBuffer()
      statuses.push(res.status)
    }
    assert.deepEqual(statuses, [200, 404, 200, 200, 429])
    const publicMetrics = await fetch(`${server.baseUrl}/metrics`)
    await publicMetrics.arrayBuffer()
    assert.equal(publicMetrics.status, 404)

    const res = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)
    assert.equal(res.status, 200)
    assert.match(String(res.headers.get('content-type')), /^text\/plain/)
    const text = await res.text()
    // /healthz was also polled while the process started.
    assert.match(text, /^http_requests_total\{method="GET",route="\/healthz",status="200"\} [1-9]\d*$/m)
    assert.match(text, /^http_requests_total\{method="GET",route="\/v1\/tenants\/:tenantId\/projects",status="200"\} 2$/m)
    assert.match(text, /^http_requests_total\{method="GET",route="\/v1\/tenants\/:tenantId\/projects",status="429"\} 1$/m)
    // Unmatched URLs share one label: an attacker cannot blow up the series count.
    assert.match(text, /^http_requests_total\{method="GET",route="unmatched",status="404"\} 2$/m)
    assert.doesNotMatch(text, /no\/such\/route/)
    assert.match(text, /^# TYPE http_request_duration_seconds histogram$/m)
    assert.match(text, /^http_request_duration_seconds_bucket\{le="0\.1",method="GET",route="\/healthz"\} \d+$/m)
    assert.match(text, /^rate_limit_rejections_total\{limit="principal"\} 1$/m)
    assert.match(text, /^redis_fallback_total 0$/m)
  })

  it('when SIGTERM arrives while a request is in flight, then new connections are refused, the request completes with 200 and the process exits 0', async () => {
    const lockSql = postgres(db.url, { max: 1, onnotice: () => {} })
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let locked!: () => void
    const isLocked = new Promise<void>((resolve) => (locked = resolve))
    // Hold the projects table so that a list request waits inside its transaction.
    const holder = lockSql.begin(async (tx) => {
      await tx`lock table projects in access exclusive mode`
      locked()
      await released
    })
    try {
      await isLocked
      const b = await createTenant(t)
      const inFlight = fetch(`${server.baseUrl}/v1/tenants/${b.tenantId}/projects`, { headers: b.auth })
      await waitFor('the request to wait on the lock', async () => {
        const [row] = await t.admin<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
           where datname = current_database() and wait_event_type = 'Lock' and query ilike '%from projects%'`
        return (row?.n ?? 0) > 0
      })
      server.child.kill('SIGTERM')
      await waitFor('the listener to close', async () =>
        fetch(`${server.baseUrl}/healthz`, { headers: { connection: 'close' } }).then(
          async (r) => {
            await r.arrayBuffer()
            return false
          },
          () => true,
        ),
      )
      assert.equal(server.child.exitCode, null, 'the process waits for the in-flight request')
      release()
      const res = await inFlight
      assert.equal(res.status, 200)
      assert.deepEqual(((await res.json()) as { items: unknown[] }).items, [])
      assert.equal(await server.exited, 0)
    } finally {
      release()
      await holder
      await lockSql.end()
    }
  })
})
