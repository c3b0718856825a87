import { randomUUID } from 'node:crypto'
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose'
import type { JWTHeaderParameters } from 'jose'
import type { Config } from '../config.ts'
import { errors } from '../errors.ts'
import { clockToleranceSec } from './key-ring.ts'
import type { KeyRing } from './key-ring.ts'

export const roles = ['owner', 'admin', 'member', 'viewer'] as const
export type Role = (typeof roles)[number]

const rank: Record<Role, number> = { viewer: 1, member: 2, admin: 3, owner: 4 }

/** owner > admin > member > viewer. */
export function hasRole(role: Role, minRole: Role): boolean {
  return rank[role] >= rank[minRole]
}
export type AuthMethod = 'pwd' | 'otp'

export interface AccessClaims {
  readonly sub: string
  readonly tid: string
  readonly roles: readonly Role[]
  readonly amr: readonly AuthMethod[]
  readonly jti: string
  readonly exp: number
}

export interface IssuedToken {
  readonly token: string
  readonly jti: string
  readonly expiresIn: number
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const requiredClaims = ['iss', 'aud', 'sub', 'tid', 'roles', 'amr', 'iat', 'nbf', 'exp', 'jti']

export class AccessTokens {
  constructor(
    private readonly config: Config,
    private readonly ring: KeyRing,
  ) {}

  /** Signs a short-lived access token with the newest signing key. */
  async issue(subject: { userId: string; tenantId: string; role: Role; amr: readonly AuthMethod[] }): Promise<IssuedToken> {
    const key = this.ring.signer()
    if (!key) throw errors.unavailable('a signing key')
    const jti = randomUUID()
    const now = Math.floor(Date.now() / 1000)
    const ttl = this.config.jwt.accessTtlSec
    const token = await new SignJWT({ tid: subject.tenantId, roles: [subject.role], amr: [...subject.amr] })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(this.config.jwt.issuer)
      .setAudience(this.config.jwt.audience)
      .setSubject(subject.userId)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + ttl)
      .setJti(jti)
      .sign(key.signKey)
    return { token, jti, expiresIn: ttl }
  }

  /**
   * Verifies signature, algorithm (only the configured one: no `none`, no HS256-with-public-key),
   * `typ`, `kid`, `iss`, `aud`, `exp`, `nbf` and the presence and shape of every claim.
   */
  async verify(token: string): Promise<AccessClaims> {
    let payload: Record<string, unknown>
    try {
      ;({ payload } = await jwtVerify(token, (header: JWTHeaderParameters) => this.keyFor(header), {
        algorithms: [this.config.jwt.alg],
        issuer: this.config.jwt.issuer,
        audience: this.config.jwt.audience,
        typ: 'at+jwt',
        clockTolerance: clockToleranceSec,
        requiredClaims,
      }))
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw errors.tokenExpired()
      throw errors.invalidToken()
    }
    const { sub, tid, jti, exp, amr } = payload
    const claimedRoles = payload.roles
    if (
      typeof sub !== 'string' || !uuidPattern.test(sub) ||
      typeof tid !== 'string' || !uuidPattern.test(tid) ||
      typeof jti !== 'string' || !uuidPattern.test(jti) ||
      typeof exp !== 'number' ||
      !isListOf(claimedRoles, roles) || claimedRoles.length === 0 ||
      !isListOf(amr, ['pwd', 'otp'] as const) || !amr.includes('pwd')
    )
      throw errors.invalidToken()
    return { sub: sub.toLowerCase(), tid: tid.toLowerCase(), roles: claimedRoles, amr, jti, exp }
  }

  private keyFor(header: JWTHeaderParameters) {
    const key = typeof header.kid === 'string' ? this.ring.verifyKey(header.kid) : undefined
    if (!key) throw errors.invalidToken()
    return key
  }
}

function isListOf<T extends string>(value: unknown, allowed: readonly T[]): value is T[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && (allowed as readonly string[]).includes(v))
}
