import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { userPrincipalOf } from '../../platform/access.ts'
import type { Deps } from '../../platform/deps.ts'
import { errorResponses } from '../../platform/schemas.ts'
import { Jwks, LoginBody, LogoutBody, RefreshBody, SignupBody, SignupResponse, TokenResponse } from './auth.schemas.ts'
import type { LoginInput, RefreshInput, SignupInput } from './auth.schemas.ts'
import { mfaRoutes } from './auth.mfa.routes.ts'
import * as service from './auth.service.ts'
import { refreshAccountKey } from './refresh-tokens.ts'

const tags = ['auth']
// Per-account keys for the credentials rate limit; namespaced per route. The body is already validated.
const signupAccount = (body: unknown) => `signup:${(body as SignupInput).tenant_slug}`
const loginAccount = (body: unknown) => `login:${(body as LoginInput).tenant_slug}:${(body as LoginInput).email.toLowerCase()}`
const refreshAccount = (body: unknown) => `refresh:${refreshAccountKey((body as RefreshInput).refresh_token)}`

export const authRoutes: FastifyPluginAsyncTypebox<{ deps: Deps }> = async (app, { deps }) => {
  const d = { sql: deps.db.sql, tokens: deps.tokens, limiter: deps.limiter, config: deps.config, box: deps.box }

  // With SIGNUP_ENABLED=false the route does not exist at all: 404 not_found, and absent from the OpenAPI.
  if (deps.config.signupEnabled)
    app.post('/v1/signup', {
      config: { access: { kind: 'credentials', account: signupAccount } },
      schema: {
        tags, summary: 'Create a tenant and its owner, and log the owner in', security: [], body: SignupBody,
        response: { 201: SignupResponse, ...errorResponses('public', { 409: 'tenant_slug is taken (conflict)' }) },
      },
    }, async (req, reply) => {
      const result = await service.signup(d, req.body)
      return reply.code(201).header('Location', `/v1/tenants/${result.tenant.id}`).send(result)
    })

  app.post('/v1/auth/login', {
    config: { access: { kind: 'credentials', account: loginAccount } },
    schema: {
      tags, summary: 'Log in with a password (and a TOTP code once enrolled)', security: [], body: LoginBody,
      description: 'The access token carries amr ["pwd"], or ["pwd","otp"] when a TOTP code was checked; admin actions need the latter when REQUIRE_MFA_FOR_ADMIN=true.',
      response: {
        200: TokenResponse,
        ...errorResponses('public', {
          401: 'Unknown tenant or email, wrong password, or account disabled: all alike (invalid_credentials); right password but no, wrong or reused otp for a TOTP user (mfa_required)',
        }),
      },
    },
  }, async (req) => service.login(d, req.body))

  app.post('/v1/auth/refresh', {
    config: { access: { kind: 'credentials', account: refreshAccount } },
    schema: {
      tags, summary: 'Exchange a refresh token for a new pair (the old one is spent)', security: [], body: RefreshBody,
      response: {
        200: TokenResponse,
        ...errorResponses('public', {
          401: 'Unknown, expired or revoked refresh token (invalid_token), or a spent one (refresh_token_reused: the whole login is ended)',
          403: 'The tenant is suspended (tenant_suspended)',
        }),
      },
    },
  }, async (req) => service.refresh(d, req.body))

  app.post('/v1/auth/logout', {
    config: { access: { kind: 'user' } },
    // Clients often send no body and no Content-Type; that is an empty request, not an error.
    // A JSON body (even `null`) is still validated strictly.
    preValidation: async (req) => {
      if (req.body === undefined && req.headers['content-type'] === undefined) req.body = {}
    },
    schema: {
      tags, summary: 'Log out: revoke this access token and its login', body: LogoutBody,
      response: { 204: { type: 'null', description: 'Logged out' }, ...errorResponses('authenticated', { 403: 'The tenant is suspended (tenant_suspended)' }) },
    },
  }, async (req, reply) => {
    await service.logout(d, userPrincipalOf(req), req.body)
    return reply.code(204).send(null)
  })

  await app.register(mfaRoutes, { deps })

  app.get('/.well-known/jwks.json', {
    config: { access: { kind: 'public' } },
    schema: { tags, summary: 'Public keys that verify access tokens', security: [], response: { 200: Jwks, ...errorResponses('public') } },
  }, async (_req, reply) => reply.header('Cache-Control', 'public, max-age=300').send(service.publicKeys(deps.keyRing)))
}
