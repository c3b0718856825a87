import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import postgres from 'postgres'
import { buildApp } from '../../src/app.ts'
import type { BuildOptions } from '../../src/app.ts'
import type { Role } from '../../src/platform/auth/access-tokens.ts'
import { hashPassword } from '../../src/platform/auth/passwords.ts'
import { loadConfig } from '../../src/platform/config.ts'
import { openDeps } from '../../src/platform/deps.ts'
import type { Deps } from '../../src/platform/deps.ts'

/** The machine's PostgreSQL (trust auth) and Redis; CI starts both. */
export const adminDatabaseUrl = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const testRedisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export interface TestDatabase {
  url: string
  name: string
  drop(): Promise<void>
}

/** A fresh database per test file, dropped at the end, so runs never trip over each other. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `saas_test_${randomBytes(6).toString('hex')}`
  const admin = postgres(adminDatabaseUrl, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${name}`)
  await admin.end()
  const url = adminDatabaseUrl.replace(/\/[^/]*$/, `/${name}`)
  return {
    url,
    name,
    async drop() {
      const a = postgres(adminDatabaseUrl, { max: 1, onnotice: () => {} })
      await a.unsafe(`drop database if exists ${name} with (force)`)
      await a.end()
    },
  }
}

export interface TestApp {
  app: FastifyInstance
  deps: Deps
  db: TestDatabase
  /** Superuser connection to the test database, for arranging data and checking state. */
  admin: postgres.Sql
  close(): Promise<void>
}


/** Builds the real app on the real PostgreSQL and Redis, with env overrides. */
export async function startTestApp(
  env: Record<string, string | undefined> = {},
  existing?: TestDatabase,
  options: BuildOptions & { depsLogger?: unknown } = {},
): Promise<TestApp> {
  const db = existing ?? (await createTestDatabase())
  const dataDir = mkdtempSync(path.join(tmpdir(), 'saas-test-'))
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    REDIS_URL: testRedisUrl,
    DATA_DIR: dataDir,
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'silent',
    JWT_ISSUER: 'https://api.test',
    RATE_LIMIT_AUTH_PER_MINUTE: '1000',
    ...env,
  })
  const silent = { warn() {}, info() {}, error() {}, debug() {}, trace() {}, fatal() {}, child() { return silent }, level: 'silent', silent() {} }
  const { depsLogger, ...buildOptions } = options
  const deps = await openDeps(config, (depsLogger ?? silent) as never)
  const app = await buildApp(deps, buildOptions)
  await app.ready()
  const admin = postgres(db.url, { max: 2, onnotice: () => {} })
  return {
    app,
    deps,
    db,
    admin,
    async close() {
      await app.close()
      await deps.close()
      await admin.end()
      if (!existing) await db.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export interface TestTenant {
  tenantId: string
  slug: string
  userId: string
  email: string
  password: string
  token: string
  jti: string
  auth: { authorization: string }
}

let hashOnce: Promise<string> | undefined
export const testPassword = 'correct horse battery staple'

/** Arranges a tenant and one user directly in the database and issues that user a token. */
export async function createTenant(t: TestApp, role: Role = 'owner'): Promise<TestTenant> {
  hashOnce ??= hashPassword(testPassword)
  const tenantId = randomUUID()
  const userId = randomUUID()
  const slug = `t-${tenantId.slice(0, 8)}`
  const email = `${role}-${userId.slice(0, 8)}@example.com`
  await t.admin`insert into tenants (id, slug, name) values (${tenantId}, ${slug}, ${'Tenant ' + slug})`
  await t.admin`insert into users (tenant_id, id, email, password_hash, role) values (${tenantId}, ${userId}, ${email}, ${await hashOnce}, ${role})`
  const issued = await t.deps.tokens.issue({ userId, tenantId, role, amr: ['pwd'] })
  return { tenantId, slug, userId, email, password: testPassword, token: issued.token, jti: issued.jti, auth: { authorization: `Bearer ${issued.token}` } }
}

/** Adds a user with a role to an existing tenant and issues a token. */
export async function addUser(t: TestApp, tenant: Pick<TestTenant, 'tenantId'>, role: Role): Promise<TestTenant & { role: Role }> {
  hashOnce ??= hashPassword(testPassword)
  const userId = randomUUID()
  const email = `${role}-${userId.slice(0, 8)}@example.com`
  await t.admin`insert into users (tenant_id, id, email, password_hash, role) values (${tenant.tenantId}, ${userId}, ${email}, ${await hashOnce}, ${role})`
  const issued = await t.deps.tokens.issue({ userId, tenantId: tenant.tenantId, role, amr: ['pwd'] })
  const [row] = await t.admin<{ slug: string }[]>`select slug from tenants where id = ${tenant.tenantId}`
  return { tenantId: tenant.tenantId, slug: row?.slug ?? '', userId, email, password: testPassword, token: issued.token, jti: issued.jti, auth: { authorization: `Bearer ${issued.token}` }, role }
}

