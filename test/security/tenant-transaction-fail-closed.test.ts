/**
 * withTenant() pipelines BEGIN, the tenant setting with the actor gate, and fn's first statements
 * without waiting in between; withTenantRead() and withTenantBatch() send the setting, the gate and
 * their statements as one implicit transaction. These tests break each step on purpose and check that it fails closed: fn's
 * statements see no row of any tenant (never another tenant's), the call errors, nothing is written,
 * and the connection that goes back to the pool carries no transaction, role or tenant.
 * Faults are injected through tenant.ts's testOnlyFaults (BEGIN replaced by a failing statement; a
 * role that does not exist, which makes set_config fail) and through bad input (a tenant id that is
 * not a uuid or cannot be sent). Pools of ONE connection, so "the next call" reuses what was left.
 */
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import postgres from 'postgres'
import type { Sql } from 'postgres'
import { createPool } from '../../src/platform/db/connect.ts'
import { testOnlyFaults, withTenant, withTenantBatch, withTenantRead } from '../../src/platform/db/tenant.ts'
import type { TenantTx } from '../../src/platform/db/tenant.ts'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'
import { createLoginRole, dropRole } from '../helpers/processes.ts'

const pgCode = (code: string) => (err: unknown) => err instanceof postgres.PostgresError && err.code === code
const appCode = (code: string) => (err: unknown) => (err as { code?: unknown }).code === code

/** Every project row RLS lets through: no tenant filter of our own, so RLS is the only wall. */
const visibleProjects = (t: TenantTx) => t.sql<{ tenant_id: string; name: string }[]>`select tenant_id, name from projects`

/** What a connection carries outside any transaction. */
async function leftover(pool: Sql) {
  const [row] = await pool<{ tenant: string | null; who: string; pid: number }[]>`
    select current_setting('app.tenant_id', true) as tenant, current_user as who, pg_backend_pid() as pid`
  return { tenant: row?.tenant ?? '', who: row?.who, pid: row?.pid }
}

async function withFaults<T>(faults: Partial<typeof testOnlyFaults>, run: () => Promise<T>): Promise<T> {
  Object.assign(testOnlyFaults, faults)
  try {
    return await run()
  } finally {
    testOnlyFaults.failBegin = false
    testOnlyFaults.role = undefined
  }
}

describe('tenant transaction fails closed', () => {
  let t: TestApp
  let a: TestTenant
  let b: TestTenant
  let superPool: Sql
  let plainPool: Sql
  const plainRole = `saas_fc_${randomBytes(4).toString('hex')}`
  const scopeOf = (x: TestTenant) => ({ tenantId: x.tenantId, userId: x.userId, jti: x.jti })

  before(async () => {
    t = await startTestApp()
    a = await createTenant(t)
    b = await createTenant(t)
    for (const [tenant, names] of [[a, ['a1', 'a2', 'a3']], [b, ['b1', 'b2']]] as const) {
      for (const name of names) await t.admin`insert into projects (tenant_id, id, name) values (${tenant.tenantId}, ${randomUUID()}, ${name})`
    }
    // The development/CI login (a superuser) and a production-like one (plain login role).
    superPool = createPool(t.db.url, { max: 1 })
    await createLoginRole(plainRole)
    await t.admin`grant saas_runtime to ${t.admin(plainRole)}`
    plainPool = createPool(t.db.url.replace('postgres://postgres@', `postgres://${plainRole}@`), { max: 1 })
  })

  after(async () => {
    await superPool.end()
    await plainPool.end()
    await t.close()
    await dropRole(plainRole)
  })

  /** After any failure: the pool's one connection works, sees only its own tenant, and carries nothing. */
  async function assertPoolClean(pool: Sql, login: string) {
    const rows = await withTenant(pool, scopeOf(a), visibleProjects)
    assert.deepEqual(rows.map((r) => r.name).sort(), ['a1', 'a2', 'a3'])
    assert.ok(rows.every((r) => r.tenant_id === a.tenantId))
    const state = await leftover(pool)
    assert.equal(state.tenant, '')
    assert.equal(state.who, login)
  }

  it('when set_config fails (a role that does not exist), then fn sees no row, the call errors, and the pool is clean after', async () => {
    for (const pool of [superPool, plainPool]) {
      let seen: unknown
      let seenError: unknown
      await withFaults({ role: 'no_such_role_for_test' }, () =>
        assert.rejects(
          withTenant(pool, scopeOf(a), async (tx) => {
            try {
              seen = await visibleProjects(tx)
            } catch (error) {
              seenError = error
            }
            return seen
          }),
          pgCode('22023'),
        ),
      )
      assert.equal(seen, undefined, 'the statement pipelined behind a failed set_config returned rows')
      assert.ok(pgCode('25P02')(seenError), `expected 25P02 (transaction aborted), got ${String(seenError)}`)
      await assertPoolClean(pool, pool === superPool ? 'postgres' : plainRole)
    }
  })

  it('when the tenant id cannot be set (a NUL byte) or is not a uuid, then fn sees no row and the call errors', async () => {
    for (const [tenantId, code, isNewTenant] of [[`${b.tenantId}\u0000`, '22021', true], ['not-a-uuid', '22P02', false]] as const) {
      let seen: unknown
      await assert.rejects(
        withTenant(superPool, { tenantId, isNewTenant }, async (tx) => {
          seen = await visibleProjects(tx).catch(() => undefined)
          return seen
        }),
        pgCode(code),
      )
      assert.equal(seen, undefined)
      await assertPoolClean(superPool, 'postgres')
    }
  })

  it('when BEGIN fails on a login role that cannot bypass RLS (production), then the statement sent behind it sees no row and the next is refused', async () => {
    let seen: { name: string }[] | undefined
    let second: unknown = 'not run'
    await withFaults({ failBegin: true }, () =>
      assert.rejects(
        withTenant(plainPool, scopeOf(a), async (tx) => {
          // Outside any transaction: no role switch, no tenant setting: RLS reads '' and shows nothing.
          seen = await visibleProjects(tx)
          second = await tx.sql`insert into projects (tenant_id, id, name) values (${b.tenantId}, ${randomUUID()}, 'planted')`.catch((e: unknown) => e)
          return seen
        }),
        pgCode('22012'),
      ),
    )
    assert.equal(seen?.length, 0, 'RLS must show no row outside the transaction')
    assert.ok(second instanceof Error, 'a statement after the failed setup must be refused, not run outside the transaction')
    const [planted] = await t.admin<{ n: number }[]>`select count(*)::int as n from projects where name = 'planted'`
    assert.equal(planted?.n, 0)
    await assertPoolClean(plainPool, plainRole)
  })

  it('when BEGIN fails on a superuser login (development), then the call errors, nothing it read is returned and its next statement is refused', async () => {
    let second: unknown = 'not run'
    await withFaults({ failBegin: true }, () =>
      assert.rejects(
        withTenant(superPool, scopeOf(a), async (tx) => {
          const rows = await visibleProjects(tx)
          second = await tx.sql`insert into projects (tenant_id, id, name) values (${b.tenantId}, ${randomUUID()}, 'planted')`.catch((e: unknown) => e)
          return rows
        }),
        pgCode('22012'),
      ),
    )
    assert.ok(second instanceof Error, 'a statement after the failed setup must be refused, not run outside the transaction')
    const [planted] = await t.admin<{ n: number }[]>`select count(*)::int as n from projects where name = 'planted'`
    assert.equal(planted?.n, 0)
    await assertPoolClean(superPool, 'postgres')
  })

  it('when the actor check fails (disabled user), then fn\'s writes fail inside the aborted transaction, never commit, and the connection is kept clean', async () => {
    const { pid } = await leftover(superPool)
    await t.admin`update users set disabled = true where id = ${a.userId}`
    try {
      const ids = [randomUUID(), randomUUID()]
      let first: unknown
      let second: unknown
      await assert.rejects(
        withTenant(superPool, scopeOf(a), async (tx) => {
          // Both are sent before the gate's answer can arrive (pipelined behind the setup batch).
          ;[first, second] = await Promise.all(
            ids.map((id) => tx.sql`insert into projects (tenant_id, id, name) values (${a.tenantId}, ${id}, 'by a disabled user')`.catch((e: unknown) => e)),
          )
        }),
        appCode('invalid_token'),
      )
      assert.ok(pgCode('25P02')(first), `a write behind the refused gate must fail in the aborted transaction, got ${String(first)}`)
      assert.ok(pgCode('25P02')(second), `a write behind the refused gate must fail in the aborted transaction, got ${String(second)}`)
      const [row] = await t.admin<{ n: number }[]>`select count(*)::int as n from projects where id in ${t.admin(ids)}`
      assert.equal(row?.n, 0)
    } finally {
      await t.admin`update users set disabled = false where id = ${a.userId}`
    }
    assert.equal((await leftover(superPool)).pid, pid, 'rolled back and reused, not closed')
    await assertPoolClean(superPool, 'postgres')
  })

  it('when fn swallows a failed statement, then COMMIT answers ROLLBACK, the call errors and nothing is kept', async () => {
    const id = randomUUID()
    await assert.rejects(
      withTenant(superPool, scopeOf(a), async (tx) => {
        await tx.sql`insert into projects (tenant_id, id, name) values (${a.tenantId}, ${id}, 'kept?')`
        await tx.sql`select 1/0`.catch(() => undefined)
      }),
      /rolled back instead of committed/,
    )
    const [row] = await t.admin<{ n: number }[]>`select count(*)::int as n from projects where id = ${id}`
    assert.equal(row?.n, 0)
    await assertPoolClean(superPool, 'postgres')
  })

  it('when withTenantRead\'s setting fails, its check fails or its query writes, then no row is returned and nothing is written', async () => {
    const list = (tx: TenantTx) => tx.sql<{ tenant_id: string; name: string }[]>`select tenant_id, name from projects`
    await withFaults({ role: 'no_such_role_for_test' }, () => assert.rejects(withTenantRead(superPool, scopeOf(a), list), pgCode('22023')))
    await assert.rejects(withTenantRead(superPool, { tenantId: a.tenantId, userId: randomUUID() }, list), appCode('invalid_token'))
    await assert.rejects(
      withTenantRead(superPool, scopeOf(a), (tx) => tx.sql`insert into projects (tenant_id, id, name) values (${a.tenantId}, ${randomUUID()}, 'read-only?') returning id`),
      pgCode('25006'),
    )
    const [row] = await t.admin<{ n: number }[]>`select count(*)::int as n from projects where name = 'read-only?'`
    assert.equal(row?.n, 0)
    const rows = await withTenantRead(superPool, scopeOf(a), list)
    assert.deepEqual(rows.map((r) => r.name).sort(), ['a1', 'a2', 'a3'])
    assert.equal((await leftover(superPool)).tenant, '')
  })

  it('when the actor gate refuses, then withTenantRead throws the refusal, also for a query that has no row', async () => {
    // A query the planner proves empty must not skip the gate (it would answer [] to a refused actor).
    const none = (tx: TenantTx) => tx.sql<{ tenant_id: string; name: string }[]>`select tenant_id, name from projects where false`
    const some = visibleProjects
    const jti = randomUUID()
    const cases: [string, () => Promise<unknown>, () => Promise<unknown>, Record<string, unknown>, string][] = [
      ['unknown tenant', async () => {}, async () => {}, { tenantId: randomUUID() }, 'invalid_token'],
      ['unknown user', async () => {}, async () => {}, { userId: randomUUID() }, 'invalid_token'],
      ['disabled user', () => t.admin`update users set disabled = true where id = ${a.userId}`, () => t.admin`update users set disabled = false where id = ${a.userId}`, {}, 'invalid_token'],
      ['revoked token', () => t.admin`insert into revoked_tokens (tenant_id, jti, expires_at) values (${a.tenantId}, ${jti}, now() + interval '1 hour')`, () => t.admin`delete from revoked_tokens where jti = ${jti}`, { jti }, 'token_revoked'],
      ['role below the minimum', () => t.admin`update users set role = 'viewer' where id = ${a.userId}`, () => t.admin`update users set role = 'owner' where id = ${a.userId}`, { minRole: 'member' }, 'forbidden'],
      ['suspended tenant', () => t.admin`update tenants set status = 'suspended' where id = ${a.tenantId}`, () => t.admin`update tenants set status = 'active' where id = ${a.tenantId}`, {}, 'tenant_suspended'],
    ]
    for (const [what, setUp, tearDown, scope, code] of cases) {
      await setUp()
      try {
        // The superuser login reads the gate's rows without RLS, the plain login under it.
        for (const pool of [superPool, plainPool])
          for (const query of [none, some]) {
            await assert.rejects(withTenantRead(pool, { ...scopeOf(a), ...scope }, query), appCode(code), `${what}: expected ${code}`)
          }
      } finally {
        await tearDown()
      }
    }
    for (const pool of [superPool, plainPool]) {
      assert.equal((await withTenantRead(pool, { ...scopeOf(a), minRole: 'owner' }, none)).length, 0, 'an actor that passes gets the empty answer')
      assert.deepEqual((await withTenantRead(pool, { ...scopeOf(a), minRole: 'owner' }, some)).map((r) => r.name).sort(), ['a1', 'a2', 'a3'])
    }
    assert.equal((await leftover(superPool)).tenant, '')
  })

  it('when an API key was revoked, expired or is another tenant\'s by the time its transaction runs, then the gate refuses it (invalid_token) on reads and writes', async () => {
    // onRequest verified the key moments before; a revocation in between must not serve the request.
    const addKey = async (tenantId: string, extra: { revoked?: boolean; expired?: boolean } = {}) => {
      const id = randomUUID()
      await t.admin`
        insert into api_keys (tenant_id, id, name, prefix, secret_hash, scopes, expires_at, revoked_at)
        values (${tenantId}, ${id}, 'gate test', ${`sk_${randomBytes(32).toString('hex')}`}, ${randomBytes(32)}, ${['projects:read', 'projects:write']},
                ${extra.expired ? new Date(Date.now() - 1000) : null}, ${extra.revoked ? new Date() : null})`
      return id
    }
    const keyScope = (apiKeyId: string) => ({ tenantId: a.tenantId, apiKeyId })
    const live = await addKey(a.tenantId)
    const refused: [string, string][] = [
      ['revoked key', await addKey(a.tenantId, { revoked: true })],
      ['expired key', await addKey(a.tenantId, { expired: true })],
      ['unknown key', randomUUID()],
      ["another tenant's key", await addKey(b.tenantId)],
    ]
    const write = (tx: TenantTx) => [tx.sql`insert into projects (tenant_id, id, name) values (${tx.tenantId}, ${randomUUID()}, 'by a refused key')`] as const
    for (const pool of [superPool, plainPool]) {
      for (const [what, id] of refused) {
        await assert.rejects(withTenantRead(pool, keyScope(id), visibleProjects), appCode('invalid_token'), `${what}: read`)
        await assert.rejects(withTenantBatch(pool, keyScope(id), write), appCode('invalid_token'), `${what}: batch write`)
        await assert.rejects(withTenant(pool, keyScope(id), (tx) => write(tx)[0]), appCode('invalid_token'), `${what}: transaction`)
      }
      assert.deepEqual((await withTenantRead(pool, keyScope(live), visibleProjects)).map((r) => r.name).sort(), ['a1', 'a2', 'a3'], 'a live key passes')
      // Revoked mid-flight: passes, then the revocation lands, then the next transaction is refused.
      const soon = await addKey(a.tenantId)
      assert.equal((await withTenantRead(pool, keyScope(soon), visibleProjects)).length, 3)
      await t.admin`update api_keys set revoked_at = now() where id = ${soon}`
      await assert.rejects(withTenantRead(pool, keyScope(soon), visibleProjects), appCode('invalid_token'), 'revoked after a first use')
    }
    const [kept] = await t.admin<{ n: number }[]>`select count(*)::int as n from projects where name = 'by a refused key'`
    assert.equal(kept?.n, 0)
    assert.equal((await leftover(superPool)).tenant, '')
  })

  it('when a withTenantBatch write is refused by the gate, fails on its setting or on a later statement, then nothing of it is kept', async () => {
    const insertTwo = (name: string, ids = [randomUUID(), randomUUID()]) => (tx: TenantTx) =>
      [
        tx.sql`insert into projects (tenant_id, id, name) values (${tx.tenantId}, ${ids[0] ?? ''}, ${name})`,
        tx.sql`insert into projects (tenant_id, id, name) values (${tx.tenantId}, ${ids[1] ?? ''}, ${name})`,
      ] as const
    const kept = async (name: string) => (await t.admin<{ n: number }[]>`select count(*)::int as n from projects where name = ${name}`)[0]?.n
    await t.admin`update users set disabled = true where id = ${a.userId}`
    try {
      await assert.rejects(withTenantBatch(superPool, scopeOf(a), insertTwo('batch-refused')), appCode('invalid_token'))
    } finally {
      await t.admin`update users set disabled = false where id = ${a.userId}`
    }
    assert.equal(await kept('batch-refused'), 0)
    for (const pool of [superPool, plainPool]) {
      await withFaults({ role: 'no_such_role_for_test' }, () => assert.rejects(withTenantBatch(pool, scopeOf(a), insertTwo('batch-no-setting')), pgCode('22023')))
    }
    assert.equal(await kept('batch-no-setting'), 0)
    const same = randomUUID()
    await assert.rejects(withTenantBatch(superPool, scopeOf(a), insertTwo('batch-second-fails', [same, same])), pgCode('23505'))
    assert.equal(await kept('batch-second-fails'), 0, 'the first insert must go with the failed second one')
    await assert.rejects(
      withTenantBatch(superPool, scopeOf(a), (tx) => [tx.sql`insert into projects (tenant_id, id, name) values (${b.tenantId}, ${randomUUID()}, 'batch-cross-tenant')`] as const),
      pgCode('42501'),
    )
    assert.equal(await kept('batch-cross-tenant'), 0)
    const [first, second] = await withTenantBatch(superPool, scopeOf(a), insertTwo('batch-kept'))
    assert.equal(first.count + second.count, 2)
    assert.equal(await kept('batch-kept'), 2)
    await t.admin`delete from projects where name = 'batch-kept'`
    await assertPoolClean(superPool, 'postgres')
    await assertPoolClean(plainPool, plainRole)
  })

  it('when a refused batch and another tenant\'s batch share a fresh connection, then the other is still served, not failed', async () => {
    // A statement without string parameters is sent without waiting for its description; the
    // refused batch's Parse is discarded by the server, and the neighbour's Bind of the same
    // statement answers 26000. withTenantRead/withTenantBatch send it again (nothing was kept).
    const count = (tx: TenantTx) => tx.sql<{ n: number }[]>`select count(*)::int as n from projects`
    const refusedScope = { tenantId: randomUUID() }
    for (let round = 0; round < 2; round++) {
      const pool = createPool(t.db.url, { max: 1 })
      try {
        const refused = round === 0 ? withTenantRead(pool, refusedScope, count) : withTenantBatch(pool, refusedScope, (tx) => [count(tx)] as const)
        const served = round === 0 ? withTenantRead(pool, scopeOf(a), count) : withTenantBatch(pool, scopeOf(a), (tx) => [count(tx)] as const).then(([rows]) => rows)
        const [r1, r2] = await Promise.allSettled([refused, served])
        assert.ok(r1.status === 'rejected' && appCode('invalid_token')(r1.reason), `the unknown tenant must be refused, got ${r1.status}`)
        assert.equal(r2.status, 'fulfilled', r2.status === 'rejected' ? String(r2.reason) : '')
        assert.equal(r2.status === 'fulfilled' ? r2.value[0]?.n : -1, 3, 'tenant a sees its own three projects')
      } finally {
        await pool.end()
      }
    }
  })

  it('when set_config fails under a real request, then the request errors without any project in its body, and the next one is served', async () => {
    const url = `/v1/tenants/${a.tenantId}/projects`
    const failed = await withFaults({ role: 'no_such_role_for_test' }, () => t.app.inject({ method: 'GET', url, headers: a.auth }))
    assert.ok(failed.statusCode >= 500, `expected an error status, got ${failed.statusCode}`)
    assert.doesNotMatch(failed.body, /"a[123]"|"b[12]"/)
    const ok = await t.app.inject({ method: 'GET', url, headers: a.auth })
    assert.equal(ok.statusCode, 200)
    assert.deepEqual(ok.json<{ items: { name: string }[] }>().items.map((p) => p.name).sort(), ['a1', 'a2', 'a3'])
  })
})
