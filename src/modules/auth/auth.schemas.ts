import { Type } from 'typebox'
import type { Static } from 'typebox'
import { Uuid, noNul, strict } from '../../platform/schemas.ts'

const Slug = Type.String({ minLength: 3, maxLength: 63, pattern: '^[a-z0-9-]{3,63}$', description: '3–63 characters of a–z, 0–9 and "-"' })
const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254 })
/** Long passphrases are fine; the 256 cap bounds the hashing cost of a single request. */
const NewPassword = Type.String({ minLength: 12, maxLength: 256, description: '12–256 characters' })
/** Login does not re-apply the signup rule: a wrong password is a wrong password (401), whatever its length. */
const AnyPassword = Type.String({ minLength: 1, maxLength: 256 })
const RefreshToken = Type.String({ minLength: 1, maxLength: 200, description: 'Opaque refresh token (rt_…)' })

export const SignupBody = Type.Object(
  { tenant_name: Type.String({ minLength: 1, maxLength: 200, pattern: noNul }), tenant_slug: Slug, email: Email, password: NewPassword },
  strict,
)

const Otp = Type.String({ minLength: 6, maxLength: 6, pattern: '^[0-9]{6}$', description: 'The 6-digit TOTP code shown now; each code is accepted once' })

export const LoginBody = Type.Object(
  {
    tenant_slug: Slug,
    email: Email,
    password: AnyPassword,
    otp: Type.Optional({ ...Otp, description: 'TOTP code, required once the user has enrolled TOTP (ignored otherwise); each code is accepted once' }),
  },
  strict,
)

export const RefreshBody = Type.Object({ refresh_token: RefreshToken }, strict)

export const LogoutBody = Type.Object(
  { refresh_token: Type.Optional({ ...RefreshToken, description: 'Also revoke this refresh token’s login (it must be the caller’s)' }) },
  { ...strict, description: 'Optional; an empty body without Content-Type is accepted' },
)

/** "No body": an empty request, or an empty JSON object; anything else is refused. */
export const NoBody = Type.Object({}, { ...strict, description: 'No body (an empty JSON object is accepted too)' })

export const TotpEnrolmentResponse = Type.Object(
  {
    secret: Type.String({ minLength: 16, maxLength: 64, pattern: '^[A-Z2-7]+$', description: 'Base32 TOTP secret (SHA-1, 6 digits, 30 s); shown this once' }),
    otpauth_url: Type.String({ maxLength: 1024, pattern: '^otpauth://totp/', description: 'The same secret as an otpauth:// URI, for a QR code' }),
  },
  { ...strict, description: 'A pending enrolment: TOTP is on only after POST /v1/auth/mfa/totp/confirm' },
)

export const ConfirmTotpBody = Type.Object({ otp: Otp }, strict)

export const TokenResponse = Type.Object(
  {
    access_token: Type.String({ maxLength: 4096, description: 'JWT (typ at+jwt)' }),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer({ minimum: 1, maximum: 86_400, description: 'Access-token lifetime in seconds' }),
    refresh_token: Type.String({ maxLength: 200, description: 'Opaque; single use: every refresh returns a new one' }),
  },
  strict,
)

export const SignupResponse = Type.Object(
  {
    tenant: Type.Object({ id: Uuid, slug: Type.String({ maxLength: 63 }), name: Type.String({ maxLength: 200 }) }, strict),
    user: Type.Object({ id: Uuid, email: Type.String({ maxLength: 254 }), role: Type.Literal('owner') }, strict),
    ...TokenResponse.properties,
  },
  strict,
)

const JwkField = Type.Optional(Type.String({ maxLength: 2048 }))
export const Jwks = Type.Object(
  {
    keys: Type.Array(
      Type.Object(
        { kty: Type.String({ maxLength: 16 }), crv: JwkField, x: JwkField, y: JwkField, n: JwkField, e: JwkField, kid: Type.String({ maxLength: 128 }), alg: JwkField, use: JwkField },
        strict,
      ),
      { maxItems: 100 },
    ),
  },
  { ...strict, description: 'Public keys that verify access tokens (empty with HS256, whose secret is never published)' },
)

export type SignupInput = Static<typeof SignupBody>
export type LoginInput = Static<typeof LoginBody>
export type RefreshInput = Static<typeof RefreshBody>
export type LogoutInput = Static<typeof LogoutBody>
export type TokenPair = Static<typeof TokenResponse>
export type SignupResult = Static<typeof SignupResponse>
export type JwksResult = Static<typeof Jwks>
export type TotpEnrolment = Static<typeof TotpEnrolmentResponse>
export type ConfirmTotpInput = Static<typeof ConfirmTotpBody>
