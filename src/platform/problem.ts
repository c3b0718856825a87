import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { AppError, errors } from './errors.ts'
import type { FieldError } from './errors.ts'

/** Body of every error response (RFC 9457). */
export function problemBody(err: AppError, requestId: string) {
  return {
    type: `urn:saas-api:problem:${err.code}`,
    title: err.title,
    status: err.statusCode,
    detail: err.message,
    code: err.code,
    request_id: requestId,
    ...(err.errors ? { errors: err.errors } : {}),
  }
}

export function sendProblem(reply: FastifyReply, err: AppError): FastifyReply {
  if (err.headers) void reply.headers(err.headers)
  return reply.code(err.statusCode).type('application/problem+json').send(problemBody(err, String(reply.request.id)))
}

interface AjvIssue {
  instancePath: string
  message?: string
  keyword: string
  params: Record<string, unknown>
}

function fieldErrors(issues: AjvIssue[], part: string): FieldError[] {
  return issues.map((i) => {
    const extra = i.keyword === 'additionalProperties' ? `/${String(i.params.additionalProperty)}` : ''
    const message = i.keyword === 'additionalProperties' ? 'is not an accepted property' : (i.message ?? 'is invalid')
    return { path: `/${part}${i.instancePath}${extra}`, message }
  })
}

/** PostgreSQL SQLSTATEs that are the client's doing, and connection failures that are ours. */
const connectionCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'EPIPE'])

/** Maps anything thrown to the AppError the client sees; unknown errors become a bare 500. */
export function toAppError(err: FastifyError & { validation?: AjvIssue[]; validationContext?: string }): AppError {
  if (err instanceof AppError) return err
  if (err.validation) return errors.validation(fieldErrors(err.validation, err.validationContext ?? 'body'))
  const code = String(err.code ?? '')
  switch (code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported_media_type', 'Send the body as application/json.', 415)
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload_too_large', 'The body is larger than 1 MiB.', 413)
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError('malformed_json', 'The body is not valid JSON.', 400)
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return errors.validation([], 'The Content-Length header does not match the body.')
    case '23505':
      return errors.conflict('A resource with these values already exists.')
    case '23503':
      return new AppError('invalid_reference', 'A referenced id is not in this tenant.', 422)
    // 22021/22P05: a NUL character in text or jsonb, which PostgreSQL cannot store.
    case '22P02':
    case '22007':
    case '22008':
    case '23514':
    case '22001':
    case '22021':
    case '22P05':
      return errors.validation([], 'A value is not acceptable.')
    case '42501':
      // Row-level security refused the row: it belongs to no tenant the caller can see.
      return errors.notFound()
  }
  // Also a database that was dropped (3D000) or refuses our login (class 28): the dependency is unusable.
  if (connectionCodes.has(code) || code.startsWith('08') || code.startsWith('57P') || code === '53300' || code === '3D000' || code.startsWith('28'))
    return errors.unavailable('the database')
  // Fastify's JSON parser raises a SyntaxError (also for __proto__ keys) with status 400.
  if (err instanceof SyntaxError || (err.statusCode === 400 && code.startsWith('FST_'))) return new AppError('malformed_json', 'The body is not valid JSON.', 400)
  return new AppError('internal_error', 'Something went wrong on our side. Quote the request_id if you report it.', 500)
}

export function handleError(this: unknown, err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const app = toAppError(err)
  if (app.statusCode >= 500) request.log.error({ err }, 'request failed')
  else if (!(err instanceof AppError)) request.log.info({ code: err.code, msg: err.message }, 'request refused')
  return sendProblem(reply, app)
}
