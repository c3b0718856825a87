import swagger from '@fastify/swagger'
import apiReference from '@scalar/fastify-api-reference'
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify'
import type { Access } from './access.ts'
import type { Config } from './config.ts'

type Json = Record<string, unknown>

const rateLimitHeaders = {
  'RateLimit-Limit': { $ref: '#/components/headers/RateLimit-Limit' },
  'RateLimit-Remaining': { $ref: '#/components/headers/RateLimit-Remaining' },
  'RateLimit-Reset': { $ref: '#/components/headers/RateLimit-Reset' },
}

/** Headers shared by the responses; documented once and referenced from each response. */
const components = {
  headers: {
    'X-Request-Id': {
      description: 'Echo of a valid incoming X-Request-Id (1–128 of [A-Za-z0-9._:-]), else a generated one. Also in every problem body as request_id.',
      required: true,
      schema: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]{1,128}$' },
    },
    'RateLimit-Limit': {
      description: 'Requests allowed per window by the limit closest to exhaustion (tenant, principal, client IP or account). Sent once the request has reached the rate limiter.',
      schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 2_147_483_647 },
    },
    'RateLimit-Remaining': {
      description: 'Requests left in the current window of that limit.',
      schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 2_147_483_647 },
    },
    'RateLimit-Reset': {
      description: 'Seconds until that window resets.',
      schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 86_400 },
    },
    'Retry-After': {
      description: 'Seconds to wait before retrying.',
      required: true,
      schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 86_400 },
    },
    Location: {
      description: 'URL of the created resource.',
      required: true,
      schema: { type: 'string', format: 'uri-reference', maxLength: 2048 },
    },
  },
}

const statusText: Record<string, string> = { '200': 'OK', '201': 'Created', '202': 'Accepted', '204': 'No content' }
const methods = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'] as const

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * OpenAPI asks integers to name their width. Derived from the schema's own bounds, so the document
 * never promises more than the validator enforces (ajv's strict mode would reject the format there).
 */
function addIntegerFormats(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(addIntegerFormats)
  if (!isObject(node)) return
  if (node.type === 'integer' && node.format === undefined) {
    const fits = (v: unknown) => typeof v === 'number' && v >= -2_147_483_648 && v <= 2_147_483_647
    node.format = fits(node.minimum ?? node.exclusiveMinimum) && fits(node.maximum ?? node.exclusiveMaximum) ? 'int32' : 'int64'
  }
  for (const value of Object.values(node)) addIntegerFormats(value)
}

/** "Exchange a refresh token for a new pair; the old one is spent" → exchangeRefreshTokenForNewPair. */
function camel(summary: string): string {
  const head = summary.split(/[:;,(]/)[0] ?? summary
  const words = head
    .replace(/['’]s\b/g, '')
    .replace(/[^A-Za-z0-9 ]+/g, ' ')
    .trim()
    .split(/\s+/)
    .filter((w) => !/^(a|an|the|its|this)$/i.test(w))
  return words.map((w, i) => (i === 0 ? w.toLowerCase() : w.charAt(0).toUpperCase() + w.slice(1).toLowerCase())).join('')
}

/**
 * Per route, before the document is built: who may call it decides its security requirement, so
 * public and credential routes (signup, login, refresh, health) never claim to need a token.
 */
function transformRoute({ schema, url, route }: { schema: FastifySchema; url: string; route: RouteOptions }) {
  const access = route.config?.access
  const doc = { ...(schema as Json) }
  if ((access?.kind === 'public' || access?.kind === 'credentials') && doc.security === undefined) doc.security = []
  // Remembered for transformDocument; removed from the output there.
  doc['x-access'] = access?.kind ?? 'public'
  return { schema: doc as FastifySchema, url }
}

/** Fills in what every operation shares: ids, headers, problem+json error bodies. */
function transformDocument(openapi: Json, config: Config): Json {
  const paths = (openapi.paths ?? {}) as Record<string, Json>
  const seenIds = new Set<string>()
  for (const [path, item] of Object.entries(paths)) {
    for (const method of methods) {
      const op = item[method]
      if (!isObject(op)) continue
      const access = op['x-access'] as Access['kind'] | undefined
      delete op['x-access']
      const summary = typeof op.summary === 'string' ? op.summary : `${method} ${path}`
      if (typeof op.operationId !== 'string') {
        let id = camel(summary)
        if (seenIds.has(id)) id = camel(`${method} ${path.replace(/[{}]/g, '')}`)
        op.operationId = id
      }
      seenIds.add(op.operationId as string)
      if (typeof op.description !== 'string') op.description = summary
      const limited = access !== 'public'
      const responses = (op.responses ?? {}) as Record<string, Json>
      for (const [status, response] of Object.entries(responses)) {
        if (response.description === 'Default Response') response.description = statusText[status] ?? 'Response'
        const headers: Json = { 'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' }, ...(response.headers as Json | undefined) }
        if (limited && /^[24]/.test(status)) Object.assign(headers, rateLimitHeaders)
        if (status === '429') headers['Retry-After'] = { $ref: '#/components/headers/Retry-After' }
        if (status === '201' && method === 'post') headers.Location = { $ref: '#/components/headers/Location' }
        response.headers = headers
        // Errors are RFC 9457 problem details; the route schemas describe the body, this the media type.
        const content = response.content as Json | undefined
        if (Number(status) >= 400 && content?.['application/json']) {
          content['application/problem+json'] = content['application/json']
          delete content['application/json']
        }
      }
    }
  }
  addIntegerFormats(paths)
  addIntegerFormats(openapi.components)
  const existing = (openapi.components ?? {}) as Json
  openapi.components = { ...existing, headers: components.headers }
  openapi.servers = serversFor(config)
  return openapi
}

/**
 * The documented server is the service URL (JWT_ISSUER defaults to it). Plain http is only
 * documented as a relative URL, so the published document never sends clients to cleartext.
 */
function serversFor(config: Config) {
  const issuer = config.jwt.issuer
  const environment = config.isProduction ? 'production' : config.nodeEnv === 'test' ? 'test' : 'local development'
  if (issuer.startsWith('https://')) return [{ url: issuer, description: `This service (${environment})`, 'x-internal': false }]
  return [{ url: '/', description: `This service, same origin as this document (${environment})`, 'x-internal': false }]
}

/** OpenAPI 3.1 generated from the route schemas, served at /openapi.json, and the reference page at /docs. */
export async function registerDocs(app: FastifyInstance, config: Config): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Multi-tenant SaaS API',
        version: '1.0.0',
        description:
          'Tenants, users, projects and tasks, isolated per tenant by PostgreSQL row-level security. ' +
          'Errors are RFC 9457 problem details (application/problem+json) with a stable `code`. ' +
          'Requests past authentication are rate limited per tenant and per principal (and per client IP and account on ' +
          'signup and login); those responses carry RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset, and a 429 carries Retry-After.',
        license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
        contact: { name: 'API operators' },
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description:
              'Access token (a JWS with typ at+jwt, at most 15 minutes, from /v1/auth/login, /v1/signup or /v1/auth/refresh), ' +
              'verified as RFC8725 (JWT best current practices) recommends: one configured algorithm, never none, kid, iss, aud, exp and nbf checked..',
          },
        },
      },
      security: [{ bearer: [] }],
      tags: [
        { name: 'auth', description: 'Signup, login, token refresh and logout' },
        { name: 'tenants', description: 'The caller’s tenant' },
        { name: 'projects', description: 'Projects of a tenant' },
        { name: 'tasks', description: 'Tasks of a project' },
        { name: 'users', description: 'Users of a tenant and their roles' },
        { name: 'api-keys', description: 'API keys for machine clients (Bearer sk_…), shown once at creation' },
        { name: 'audit', description: 'Audit events of a tenant, newest first' },
        { name: 'operations', description: 'Health and discovery' },
      ],
    },
    // Shared schemas keep their $id as their component name (Problem), not def-0.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    transform: transformRoute,
    transformObject: (documentObject) => ('openapiObject' in documentObject ? transformDocument(documentObject.openapiObject as Json, config) : documentObject.swaggerObject),
  })
  app.get(
    '/openapi.json',
    { config: { access: { kind: 'public' } }, schema: { tags: ['operations'], summary: 'This OpenAPI document', security: [] } },
    () => app.swagger(),
  )
  await app.register(apiReference, { routePrefix: '/docs', configuration: { url: '/openapi.json', hideClientButton: false } })
}
