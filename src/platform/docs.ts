import swagger from '@fastify/swagger'
import apiReference from '@scalar/fastify-api-reference'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.ts'

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
          'Errors are RFC 9457 problem details (application/problem+json) with a stable `code`.',
        license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
        contact: { name: 'API operators' },
      },
      servers: [{ url: config.jwt.issuer }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from /v1/auth/login or /v1/signup.' },
        },
      },
      security: [{ bearer: [] }],
      tags: [
        { name: 'auth', description: 'Signup, login, token refresh and logout' },
        { name: 'tenants', description: 'The caller’s tenant' },
        { name: 'projects', description: 'Projects of a tenant' },
        { name: 'tasks', description: 'Tasks of a project' },
        { name: 'operations', description: 'Health and discovery' },
      ],
    },
  })
  app.get('/openapi.json', { config: { access: { kind: 'public' } }, schema: { hide: true } }, () => app.swagger())
  await app.register(apiReference, { routePrefix: '/docs', configuration: { url: '/openapi.json', hideClientButton: false } })
}
