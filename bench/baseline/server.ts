/**
 * The baseline: the same reads and the same insert as the service's hot path, served by a bare
 * Fastify + postgres.js server with NO authentication, NO rate limit and NO RLS. It connects as
 * the database owner (a superuser in the benchmark, which bypasses RLS) and filters with a plain
 * `where tenant_id = $1`. It is the ceiling a Node server reaches for this work on this machine;
 * the benchmark reports the service as a ratio of it. Never deploy it: it trusts the URL.
 *
 *   BASELINE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/db PORT=3100 node --import tsx bench/baseline/server.ts
 *
 * Same routes and roughly the same answers as the service:
 *   GET  /v1/tenants/:tenantId/projects?limit=20     newest first by (created_at, id), { items, next_cursor }
 *   GET  /v1/tenants/:tenantId/projects/:projectId   one project by (tenant_id, id), or 404
 *   POST /v1/tenants/:tenantId/projects/:projectId/tasks   { title } → 201 and the inserted task row
 * Same pool size as the service (src/platform/db/connect.ts: max 10).
 */
import Fastify from 'fastify'
import postgres from 'postgres'
import { uuidv7 } from 'uuidv7'

const url = process.env.BASELINE_DATABASE_URL
if (!url) {
  console.error('BASELINE_DATABASE_URL is required')
  process.exit(78)
}
const port = Number(process.env.PORT ?? 3100)
const sql = postgres(url, { max: 10, idle_timeout: 30, connect_timeout: 5, onnotice: () => {} })
const app = Fastify({ logger: false })

interface TenantParams {
  tenantId: string
}
interface ProjectParams extends TenantParams {
  projectId: string
}

app.get<{ Params: TenantParams; Querystring: { limit?: string } }>('/v1/tenants/:tenantId/projects', async (req) => {
  const limit = Math.min(Math.max(Number(req.query.limit ?? 20) || 20, 1), 100)
  const rows = await sql`
    select id, name, description, status, created_at, updated_at
      from projects
     where tenant_id = ${req.params.tenantId}
     order by created_at desc, id desc
     limit ${limit + 1}`
  const items = rows.slice(0, limit)
  return { items, next_cursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null }
})

app.get<{ Params: ProjectParams }>('/v1/tenants/:tenantId/projects/:projectId', async (req, reply) => {
  const [row] = await sql`
    select id, name, description, status, created_at, updated_at
      from projects where tenant_id = ${req.params.tenantId} and id = ${req.params.projectId}`
  if (!row) return reply.code(404).send({ title: 'Not Found', status: 404 })
  return row
})

app.post<{ Params: ProjectParams; Body: { title: string } }>('/v1/tenants/:tenantId/projects/:projectId/tasks', async (req, reply) => {
  const [row] = await sql`
    insert into tasks (tenant_id, id, project_id, title, status)
    values (${req.params.tenantId}, ${uuidv7()}, ${req.params.projectId}, ${req.body.title}, 'todo')
    returning id, project_id, title, description, status, assignee_id, due_date::text, created_at, updated_at`
  return reply.code(201).send(row)
})

app.get('/healthz', async () => ({ status: 'ok' }))

const stop = async () => {
  await app.close()
  await sql.end({ timeout: 5 })
  process.exit(0)
}
process.once('SIGTERM', () => void stop())
process.once('SIGINT', () => void stop())

await app.listen({ port, host: '127.0.0.1' })
