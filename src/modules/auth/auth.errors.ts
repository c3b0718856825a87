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
  /** Only ever after the password was verified, so it tells nothing to someone without the password. */
  mfaRequired: () =>
    new AppError('mfa_required', 'This account uses a one-time code: send the current 6-digit TOTP code as otp (each code works once).', 401, undefined, { 'WWW-Authenticate': 'Bearer' }),
  invalidOtp: () => new AppError('invalid_otp', 'The one-time code is not right for this enrolment (or was already used). MFA stays off.', 400),
  noPendingEnrolment: () => errors.conflict('No TOTP enrolment is waiting for confirmation: POST /v1/auth/mfa/totp first.'),
  reenrolNeedsOtp: () =>
    new AppError('mfa_step_up_required', 'TOTP is already on: replacing it needs a login with the current one-time code (otp).', 403),
}
