import Fastify from 'fastify'
import type { FastifyInstance, RouteOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { access } from './platform/access.ts'
import type { Deps } from './platform/deps.ts'
import { registerDocs } from './platform/docs.ts'
import { AppError, errors } from './platform/errors.ts'
import { healthRoutes } from './platform/health.ts'
import { loggerOptions } from './platform/logger.ts'
import { handleError, sendProblem, writeClientError } from './platform/problem.ts'
import { requestIdFor } from './platform/request-id.ts'
import { securityHeaders } from './platform/security-headers.ts'
import { validatorCompiler } from './platform/validation.ts'
import { Problem } from './platform/schemas.ts'
import { authModule } from './modules/auth/index.ts'
import { projectsModule } from './modules/projects/index.ts'
import { tasksModule } from './modules/tasks/index.ts'
import { tenantsModule } from './modules/tenants/index.ts'
import { usersModule } from './modules/users/index.ts'
import { apiKeysModule } from './modules/api-keys/index.ts'
import { auditEventsModule } from './modules/audit-events/index.ts'

export interface BuildOptions {
  /** Where request logs go (default stdout); tests capture them to prove secrets are redacted. */
  readonly logStream?: { write(line: string): void }
  /** Sees every route as it is registered; the route × role test collects the app's routes with it. */
  readonly onRoute?: (route: RouteOptions) => void
}

const noQuery = { type: 'object', properties: {}, additionalProperties: false } as const

/** Builds the HTTP app on already-opened dependencies. No I/O happens here. */
export async function buildApp(deps: Deps, options: BuildOptions = {}): Promise<FastifyInstance> {
  const { config } = deps
  const app = Fastify({
    logger: options.logStream ? { ...loggerOptions(config), stream: options.logStream } : loggerOptions(config),
    genReqId: requestIdFor,
    requestIdHeader: false,
    bodyLimit: 1024 * 1024,
    trustProxy: config.http.trustedProxies.length ? [...config.http.trustedProxies] : false,
    // Fastify answers 404 for "/x/" when only "/x" exists; one URL per resource.
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Errors from Node's HTTP parser (bad framing, oversized headers) still answer problem+json.
    clientErrorHandler: writeClientError,
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 72_000,
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.setValidatorCompiler(validatorCompiler)
  app.addSchema(Problem)
  app.setErrorHandler(handleError)
  // Fastify parses text/plain by default; the API takes JSON only, so anything else is 415.
  app.removeContentTypeParser('text/plain')
  app.setNotFoundHandler((request, reply) => {
    const path = (request.url.split('?')[0] ?? '').slice(0, 100)
    return sendProblem(reply, errors.notFound(`route ${request.method} ${path}`))
  })

  if (options.onRoute) app.addHook('onRoute', options.onRoute)
  // Fail closed: a /v1 route that forgot to declare who may call it does not start.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/v1') && !route.config?.access) throw new Error(`route ${String(route.method)} ${route.url} declares no access rule`)
    // A route that declares no query parameters accepts none: unknown ones are refused, not ignored.
    if (route.url.startsWith('/v1') && !route.schema?.querystring) route.schema = { ...route.schema, querystring: noQuery }
  })
  // helmet's headers, computed once. The API serves JSON only; /docs gets its own, looser policy below.
  const security = securityHeaders({
    contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    hsts: { maxAge: 63_072_000, includeSubDomains: true },
    referrerPolicy: { policy: 'no-referrer' },
  })
  // Hooks that never wait are written with `done`: no promise per request for each of them.
  app.addHook('onRequest', (request, reply, done) => {
    void reply.headers(security).header('X-Request-Id', request.id)
    // JSON is UTF-8 (RFC 8259); a body declared in another charset would be misread, so refuse it.
    const charset = /;\s*charset=("?)([^";\s]+)\1/i.exec(request.headers['content-type'] ?? '')?.[2]
    if (charset && !/^utf-?8$/i.test(charset)) return done(new AppError('unsupported_media_type', 'Send the body as application/json in UTF-8.', 415))
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched'
    deps.metrics.requests.inc({ method: request.method, route, status: reply.statusCode })
    deps.metrics.latency.observe({ method: request.method, route }, reply.elapsedTime / 1000)
    done()
  })

  app.addHook('onSend', (request, reply, payload, done) => {
    if (request.url.startsWith('/docs'))
      void reply.header('Content-Security-Policy', "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
    else if (!reply.hasHeader('Cache-Control')) void reply.header('Cache-Control', 'no-store')
    done(null, payload)
  })

  await app.register(access, { config, tokens: deps.tokens, apiKeys: deps.apiKeys, limiter: deps.limiter, metrics: deps.metrics })
  await registerDocs(app, config)
  healthRoutes(app, deps)

  await app.register(authModule, { deps })
  await app.register(tenantsModule, { deps, prefix: '/v1/tenants' })
  await app.register(projectsModule, { deps, prefix: '/v1/tenants' })
  await app.register(tasksModule, { deps, prefix: '/v1/tenants' })
  await app.register(usersModule, { deps, prefix: '/v1/tenants' })
  await app.register(apiKeysModule, { deps, prefix: '/v1/tenants' })
  await app.register(auditEventsModule, { deps, prefix: '/v1/tenants' })
  return app
}

