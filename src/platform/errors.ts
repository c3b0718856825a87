/** Stable machine codes of the contract (api-contract.md, "Status codes"). */
export type ErrorCode =
  | 'validation_failed'
  | 'malformed_json'
  | 'invalid_otp'
  | 'unauthenticated'
  | 'invalid_token'
  | 'token_expired'
  | 'token_revoked'
  | 'invalid_credentials'
  | 'mfa_required'
  | 'refresh_token_reused'
  | 'tenant_mismatch'
  | 'forbidden'
  | 'mfa_step_up_required'
  | 'tenant_suspended'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'invalid_reference'
  | 'rate_limited'
  | 'unavailable'
  | 'internal_error'

export interface FieldError {
  path: string
  message: string
}

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

/** The one error type services throw. It carries its own status, so no instanceof chains are needed. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly statusCode: number,
    readonly errors?: FieldError[],
    /** Extra response headers, e.g. WWW-Authenticate or Retry-After. */
    readonly headers?: Record<string, string>,
  ) {
    super(message)
    this.name = 'AppError'
  }

  get title(): string {
    return titles[this.statusCode] ?? 'Error'
  }
}

const bearerInvalid = { 'WWW-Authenticate': 'Bearer error="invalid_token"' }

/** Constructors for the errors the platform raises; modules add their own beside their code. */
export const errors = {
  validation: (errs: FieldError[], message = 'The request did not pass validation.') =>
    new AppError('validation_failed', message, 400, errs),
  unauthenticated: () =>
    new AppError('unauthenticated', 'Send an access token as "Authorization: Bearer <token>" (from /v1/auth/login).', 401, undefined, {
      'WWW-Authenticate': 'Bearer',
    }),
  invalidToken: () => new AppError('invalid_token', 'The access token is not valid. Log in again.', 401, undefined, bearerInvalid),
  tokenExpired: () => new AppError('token_expired', 'The access token has expired. Refresh it.', 401, undefined, bearerInvalid),
  tokenRevoked: () => new AppError('token_revoked', 'The access token has been revoked. Log in again.', 401, undefined, bearerInvalid),
  tenantMismatch: () => new AppError('tenant_mismatch', 'The token does not belong to this tenant.', 403),
  tenantSuspended: () => new AppError('tenant_suspended', 'This tenant is suspended. Contact the operator.', 403),
  forbidden: (message = 'Your role does not allow this action.') => new AppError('forbidden', message, 403),
  notFound: (what = 'resource') => new AppError('not_found', `The ${what} does not exist.`, 404),
  conflict: (message: string) => new AppError('conflict', message, 409),
  invalidReference: (field: string) =>
    new AppError('invalid_reference', `${field} does not refer to anything in this tenant.`, 422, [
      { path: `/${field}`, message: 'not found in this tenant' },
    ]),
  unavailable: (what = 'a dependency') => new AppError('unavailable', `The service cannot reach ${what}. Retry shortly.`, 503, undefined, { 'Retry-After': '5' }),
}
