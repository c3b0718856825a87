import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import type { Deps } from './deps.ts'

const Readiness = Type.Object(
  {
    status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unavailable')]),
    database: Type.Union([Type.Literal('up'), Type.Literal('down')]),
    redis: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('embedded')]),
  },
  { additionalProperties: false },
)

/** A probe that hangs counts as down: a load balancer must not wait on a stuck dependency. */
const probeTimeoutMs = 2_000

async function probe(check: PromiseLike<unknown>): Promise<'up' | 'down'> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'down'>((resolve) => (timer = setTimeout(() => resolve('down'), probeTimeoutMs)))
  try {
    return await Promise.race([Promise.resolve(check).then(() => 'up' as const, () => 'down' as const), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** /healthz: the process is up. /readyz: the database answers (503 if not); Redis down is only "degraded". */
export function healthRoutes(app: FastifyInstance, deps: Deps): void {
  const publicAccess = { access: { kind: 'public' as const } }
  app.get(
    '/healthz',
    {
      config: publicAccess,
      schema: { tags: ['operations'], summary: 'Liveness', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false }) } },
    },
    async () => ({ status: 'ok' as const }),
  )
  app.get(
    '/readyz',
    { config: publicAccess, schema: { tags: ['operations'], summary: 'Readiness', security: [], response: { 200: Readiness, 503: Readiness } } },
    async (_request, reply) => {
      const [database, redis] = await Promise.all([
        probe(deps.db.sql`select 1`),
        deps.redis ? probe(deps.redis.ping()) : ('embedded' as const),
      ])
      const status = database === 'down' ? 'unavailable' : redis === 'down' ? 'degraded' : 'ok'
      return reply.code(database === 'up' ? 200 : 503).send({ status, database, redis })
    },
  )
}
