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
      const database = await deps.db.sql`select 1`.then(
        () => 'up' as const,
        () => 'down' as const,
      )
      let redis: 'up' | 'down' | 'embedded' = 'embedded'
      if (deps.redis) redis = await deps.redis.ping().then(() => 'up' as const, () => 'down' as const)
      const status = database === 'down' ? 'unavailable' : redis === 'down' ? 'degraded' : 'ok'
      return reply.code(database === 'up' ? 200 : 503).send({ status, database, redis })
    },
  )
}
