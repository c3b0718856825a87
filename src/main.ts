import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import pino from 'pino'
import { buildApp } from './app.ts'
import { ConfigError } from './platform/config.ts'
import { loadConfigWithSecrets } from './platform/secrets-manager.ts'
import type { Config } from './platform/config.ts'
import { openDeps } from './platform/deps.ts'
import type { Deps } from './platform/deps.ts'
import { loggerOptions } from './platform/logger.ts'

/** /metrics lives on its own port so the public listener never exposes it. */
async function startMetricsServer(deps: Deps, config: Config) {
  const metrics = Fastify({ logger: false })
  metrics.get('/metrics', async (_req, reply) => reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()))
  await metrics.listen({ port: config.metricsPort, host: config.http.host })
  return metrics
}

async function main(): Promise<void> {
  let config: Config
  try {
    config = await loadConfigWithSecrets()
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`)
      process.exit(78)
    }
    throw err
  }
  const log = pino(loggerOptions(config))
  let deps: Deps
  log.info(
    { database: config.db.url ? 'postgresql' : `embedded in ${config.db.dataDir}`, redis: config.redisUrl ? 'redis' : 'in-process counters' },
    config.db.url ? 'starting: connecting to the database' : 'starting: opening the embedded database (the first start takes a few seconds)',
  )
  try {
    deps = await openDeps(config, log)
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    log.fatal({ err: message }, 'cannot start')
    console.error(`Cannot start: ${message}`)
    process.exit(err instanceof ConfigError ? 78 : 1)
  }
  const app = await buildApp(deps)
  const metrics = await startMetricsServer(deps, config)
  await app.listen({ port: config.http.port, host: config.http.host })
  app.log.info(
    {
      env: config.nodeEnv,
      database: deps.db.describe,
      redis: config.redisUrl ? new URL(config.redisUrl).host : 'in-process counters',
      jwtAlg: config.jwt.alg,
      metricsPort: config.metricsPort,
    },
    `saas-api listening on http://${config.http.host}:${config.http.port} (docs at /docs, metrics on :${config.metricsPort}/metrics)`,
  )
  if (deps.db.kind === 'embedded' || !config.redisUrl)
    app.log.warn('running on embedded stores (PGlite and/or in-process counters): for development only, not for production')

  // SIGTERM (Kubernetes): stop accepting, let in-flight requests finish, then close the pools.
  closeWithGrace({ delay: 20_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down: draining requests')
    // Node closes idle keep-alive sockets only once, when close() starts; a response that ends
    // later would leave its socket open until keepAliveTimeout and hold the exit past the grace delay.
    const reaper = setInterval(() => {
      app.server.closeIdleConnections()
      metrics.server.closeIdleConnections()
    }, 100)
    try {
      await Promise.all([app.close(), metrics.close()])
    } finally {
      clearInterval(reaper)
    }
    await deps.close()
  })
}

await main()
