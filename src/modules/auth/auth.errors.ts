import { AppError, errors } from '../../platform/errors.ts'

const bearerInvalid = { 'WWW-Authenticate': 'Bearer error="invalid_token"' }

export const authErrors = {
  /** One answer for unknown tenant, unknown email, wrong password, disabled user and suspended tenant. */
  invalidCredentials: () =>
    new AppError('invalid_credentials', 'The tenant, email or password is not right.', 401, undefined, { 'WWW-Authenticate': 'Bearer' }),
  invalidRefreshToken: () =>
    new AppError('invalid_token', 'The refresh token is not valid (unknown, expired or revoked). Log in again.', 401, undefined, bearerInvalid),
  refreshTokenReused: () =>
    new AppError('refresh_token_reused', 'This refresh token was already used, so its login has been ended. Log in again.', 401, undefined, bearerInvalid),
  slugTaken: () => errors.conflict('The tenant_slug is already taken.'),
}
