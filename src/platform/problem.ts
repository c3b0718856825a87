import { randomUUID } from 'node:crypto'
import type { Duplex } from 'node:stream'
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

/** A body with thousands of unknown keys must not become a response (and a log line) of megabytes. */
export const maxFieldErrors = 100

function describe(i: AjvIssue): string {
  if (i.keyword === 'additionalProperties') return 'is not an accepted property'
  if (i.keyword === 'format' && i.params.format === 'date') return 'must be a date, YYYY-MM-DD'
  return i.message ?? 'is invalid'
}

/**
 * Turns ajv's issues into one message per field. For a choice (anyOf), the alternatives' noise
 * ("must be equal to constant" ×4, "must be null") becomes one line naming what is allowed.
 */
function fieldErrors(issues: AjvIssue[], part: string): FieldError[] {
  const choicePaths = new Set(issues.filter((i) => i.keyword === 'anyOf').map((i) => i.instancePath))
  const out: FieldError[] = []
  const seen = new Set<string>()
  for (const i of issues) {
    const path = `/${part}${i.instancePath}${i.keyword === 'additionalProperties' ? `/${String(i.params.additionalProperty)}` : ''}`
    let message = describe(i)
    if (choicePaths.has(i.instancePath) && i.keyword !== 'additionalProperties') {
      const alternatives = issues.filter((j) => j.instancePath === i.instancePath && j.keyword !== 'anyOf')
      const allowed = alternatives.filter((j) => j.keyword === 'const').map((j) => JSON.stringify(j.params.allowedValue))
      const nullable = alternatives.some((j) => j.keyword === 'type' && j.params.type === 'null')
      const others = alternatives.filter((j) => j.keyword !== 'const' && !(j.keyword === 'type' && j.params.type === 'null')).map(describe)
      message = [allowed.length ? `must be one of ${allowed.join(', ')}` : others.join('; '), nullable ? 'or null' : ''].filter(Boolean).join(' ')
    }
    const key = `${path}\n${message}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ path, message })
    if (out.length === maxFieldErrors) break
  }
  return out
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

export function handleError(this: unknown, err: FastifyError & { validation?: AjvIssue[] }, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const app = toAppError(err)
  if (app.statusCode >= 500) request.log.error({ err }, 'request failed')
  else if (!(err instanceof AppError)) request.log.info({ code: app.code, fastifyCode: err.code, fieldErrors: err.validation?.length }, 'request refused')
  return sendProblem(reply, app)
}

/**
 * Answers a request Node's HTTP parser refused (conflicting Content-Length/Transfer-Encoding,
 * headers too large, a malformed request line) with problem+json instead of Node's bare text.
 */
export function writeClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW'
  const status = tooLarge ? 431 : 400
  const requestId = randomUUID()
  const body = JSON.stringify({
    type: 'urn:saas-api:problem:validation_failed',
    title: tooLarge ? 'Request Header Fields Too Large' : 'Bad Request',
    status,
    detail: tooLarge ? 'The request headers are too large.' : 'The request is not well-formed HTTP.',
    code: 'validation_failed',
    request_id: requestId,
  })
  socket.end(
    `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `Content-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  )
}
