import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { userPrincipalOf } from '../../platform/access.ts'
import type { Deps } from '../../platform/deps.ts'
import { errorResponses } from '../../platform/schemas.ts'
import * as service from './auth.mfa.service.ts'
import { ConfirmTotpBody, NoBody, TotpEnrolmentResponse } from './auth.schemas.ts'

const tags = ['auth']

/** A POST without body or Content-Type is an empty request; a JSON body (even `null`) is still validated. */
async function emptyBodyIsEmptyObject(req: FastifyRequest): Promise<void> {
  if (req.body === undefined && req.headers['content-type'] === undefined) req.body = {}
}

/** TOTP enrolment for the calling user (access kind 'user': any user token of any role; API keys refused). */
export const mfaRoutes: FastifyPluginAsyncTypebox<{ deps: Deps }> = async (app, { deps }) => {
  const d = { sql: deps.db.sql, box: deps.box, limiter: deps.limiter, config: deps.config }

  app.post('/v1/auth/mfa/totp', {
    config: { access: { kind: 'user' } },
    preValidation: emptyBodyIsEmptyObject,
    schema: {
      tags,
      summary: 'Start a TOTP enrolment',
      description:
        'Returns a new secret (shown this once) and its otpauth:// URI. It is pending until confirmed with a code from it; ' +
        'calling again replaces a pending enrolment. When TOTP is already on, only a token from a login with otp may start ' +
        'a new enrolment (else 403 mfa_step_up_required), and the current secret stays in force until the new one is confirmed.',
      body: NoBody,
      response: {
        200: TotpEnrolmentResponse,
        ...errorResponses('authenticated', { 403: 'API key (forbidden), TOTP already on and this login had no otp (mfa_step_up_required), or tenant suspended' }),
      },
    },
  }, async (req) => service.enrolTotp(d, userPrincipalOf(req)))

  app.post('/v1/auth/mfa/totp/confirm', {
    config: { access: { kind: 'user' } },
    schema: {
      tags,
      summary: 'Confirm the TOTP enrolment with a current code',
      description:
        'Switches TOTP on. From then on, login needs otp, and every login of this user made without a code ends, ' +
        'this one included: log in again with otp. A wrong or already used code is 400 invalid_otp and MFA stays as it was.',
      body: ConfirmTotpBody,
      response: {
        204: { type: 'null', description: 'TOTP is on' },
        ...errorResponses('authenticated', {
          400: 'Validation failed (validation_failed, malformed_json), or the code is wrong or used (invalid_otp)',
          403: 'API key (forbidden) or tenant suspended (tenant_suspended)',
          409: 'No enrolment is waiting for confirmation (conflict)',
        }),
      },
    },
  }, async (req, reply) => {
    await service.confirmTotp(d, userPrincipalOf(req), req.body)
    return reply.code(204).send(null)
  })
}
