/**
 * `npm run seed -- --tenants N --projects M --tasks K --out FILE`
 *
 * Fills the database with synthetic tenants: one owner each, M projects per tenant, K tasks per
 * project, and writes [{ tenant_id, tenant_slug, email, password }] to FILE. Migrates first.
 *
 * Fast by construction: one argon2 hash shared by every seeded owner (they all get the same
 * generated password), ids generated in JS as UUIDv7, and per tenant one transaction of four
 * set-based inserts (unnest over arrays). Each tenant is written through withTenant(), as the
 * runtime role under RLS, like any request: the seed needs no power that bypasses isolation.
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { uuidv7 } from 'uuidv7'
import { hashPassword } from '../src/platform/auth/passwords.ts'
import { UsageError, prepare } from './cli.ts'
import { openDatabase } from '../src/platform/db/connect.ts'
import { migrate } from '../src/platform/db/migrate.ts'
import { withTenant } from '../src/platform/db/tenant.ts'

const usage = 'usage: npm run seed -- --tenants N --projects M --tasks K --out FILE'
/** Bounds that keep one run within memory: ids for one tenant's tasks are held in arrays. */
const limits = { tenants: 100_000, projects: 10_000, tasks: 1_000 } as const

interface SeedArgs {
  tenants: number
  projects: number
  tasks: number
  out: string
}

function count(raw: string | undefined, name: keyof typeof limits, min: number): number {
  if (raw === undefined) throw new UsageError(`--${name} is required`)
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got "${raw}"`)
  const n = Number(raw)
  if (n < min || n > limits[name]) throw new UsageError(`--${name} must be between ${min} and ${limits[name]}, got ${n}`)
  return n
}

function parseSeedArgs(argv: string[]): SeedArgs {
  let values
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: { tenants: { type: 'string' }, projects: { type: 'string' }, tasks: { type: 'string' }, out: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }))
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err))
  }
  if (!values.out) throw new UsageError('--out FILE is required (the seeded owners and their password are written there)')
  return {
    tenants: count(values.tenants, 'tenants', 1),
    projects: count(values.projects ?? '0', 'projects', 0),
    tasks: count(values.tasks ?? '0', 'tasks', 0),
    out: path.resolve(values.out),
  }
}

function userOf(url: string | undefined): string | undefined {
  return url ? decodeURIComponent(new URL(url).username) || undefined : undefined
}

interface SeededOwner {
  tenant_id: string
  tenant_slug: string
  email: string
  password: string
}

async function main(): Promise<number> {
  const prepared = await prepare(() => parseSeedArgs(process.argv.slice(2)), usage)
  if (typeof prepared === 'number') return prepared
  const { args: args, config } = prepared

  const started = Date.now()
  const db = await openDatabase(config)
  try {
    const runtimeUser = userOf(config.db.url) !== userOf(config.db.ownerUrl ?? config.db.url) ? userOf(config.db.url) : undefined
    await migrate(db.ownerSql, { runtimeUser })

    const password = `seed-${randomBytes(12).toString('base64url')}`
    const passwordHash = await hashPassword(password)
    // Slugs unique per run, so seeding twice into one database never collides.
    const run = randomBytes(4).toString('hex')
    const owners: SeededOwner[] = []
    let next = 0
    const seedOne = async () => {
      while (next < args.tenants) {
        const i = next++
        const tenantId = uuidv7()
        const slug = `seed-${run}-${i + 1}`
        const email = `owner@${slug}.example.com`
        await withTenant(db.sql, { tenantId, isNewTenant: true }, async ({ sql: tx }) => {
          await tx`insert into tenants (id, slug, name) values (${tenantId}, ${slug}, ${`Seed tenant ${i + 1}`})`
          await tx`insert into users (tenant_id, id, email, password_hash, role) values (${tenantId}, ${uuidv7()}, ${email}, ${passwordHash}, 'owner')`
          if (args.projects === 0) return
          const projectIds = Array.from({ length: args.projects }, () => uuidv7())
          await tx`insert into projects (tenant_id, id, name, status)
            select ${tenantId}::uuid, p.id, 'Project ' || p.n, case when p.n % 5 = 0 then 'archived' else 'active' end
              from unnest(${projectIds}::uuid[]) with ordinality as p(id, n)`
          if (args.tasks === 0) return
          const taskIds = Array.from({ length: args.projects * args.tasks }, () => uuidv7())
          // Task n belongs to project ceil(n / K): the K tasks of each project are consecutive.
          await tx`insert into tasks (tenant_id, id, project_id, title, status)
            select ${tenantId}::uuid, t.id, (${projectIds}::uuid[])[((t.n - 1) / ${args.tasks}) + 1],
                   'Task ' || t.n, (array['todo', 'doing', 'done'])[(t.n % 3) + 1]
              from unnest(${taskIds}::uuid[]) with ordinality as t(id, n)`
        })
        owners.push({ tenant_id: tenantId, tenant_slug: slug, email, password })
      }
    }
    // A few tenants in flight at once; the embedded database has a single connection anyway.
    const parallel = db.kind === 'embedded' ? 1 : 4
    await Promise.all(Array.from({ length: parallel }, seedOne))

    owners.sort((a, b) => a.tenant_slug.localeCompare(b.tenant_slug, 'en', { numeric: true }))
    // The file holds a password: readable by this user only.
    writeFileSync(args.out, JSON.stringify(owners, null, 2) + '\n', { mode: 0o600 })
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    console.log(
      `seeded ${args.tenants} tenant(s), ${args.tenants * args.projects} project(s), ${args.tenants * args.projects * args.tasks} task(s) ` +
        `into ${db.describe} in ${seconds} s`,
    )
    // The shared password goes to the 0600 file only, never to a terminal or a CI log.
    console.log(`owners and their password written to ${args.out}`)
    return 0
  } catch (err) {
    console.error(`Seed failed: ${err instanceof Error ? err.message : String(err)}`)
    return 1
  } finally {
    await db.close()
  }
}

process.exitCode = await main()
