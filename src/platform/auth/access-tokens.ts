import { randomUUID } from 'node:crypto'
import { isUtf8 } from 'node:buffer'
import { SignJWT } from 'jose'
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
const requiredClaims = ['iss', 'aud', 'sub', 'tid', 'roles', 'amr', 'iat', 'nbf', 'exp', 'jti'] as const
/** Three non-empty base64url segments (no padding, no '+' or '/'), and nothing else. */
const compactJws = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/
/** Far above any token this server issues (about 600 characters); refused before any parsing. */
const maxTokenLength = 8192
const base64urlAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

export interface AccessTokenOptions {
  /**
   * How many verified tokens to remember (0: none). A remembered token skips the signature and
   * parsing, not the checks that can change: its expiry (with the leeway) and its key's presence
   * in the ring are checked on every use. Revocation is not decided here at all: the per-request
   * Redis script and the actor gate of the tenant transaction see every token, cached or not.
   */
  readonly cacheSize?: number
  /** The clock, in ms since the epoch (tests move it). */
  readonly now?: () => number
}

/** The part of the key ring tokens need: the signing key, and a prepared signature check per kid. */
export type TokenKeys = Pick<KeyRing, 'signer' | 'signatureCheck'>

interface Verified {
  readonly claims: AccessClaims
  readonly kid: string
}

/** Thrown inside verify only; mapped to the contract's errors at the end. */
class Expired extends Error {}
class Invalid extends Error {}
const invalid = new Invalid('invalid token')
const expired = new Expired('expired token')

export class AccessTokens {
  private readonly cache = new Map<string, Verified>()
  private readonly cacheSize: number
  private readonly now: () => number

  constructor(
    private readonly config: Config,
    private readonly ring: TokenKeys,
    options: AccessTokenOptions = {},
  ) {
    this.cacheSize = Math.max(0, Math.floor(options.cacheSize ?? 10_000))
    this.now = options.now ?? Date.now
  }

  /** Signs a short-lived access token with the newest signing key. */
  async issue(subject: { userId: string; tenantId: string; role: Role; amr: readonly AuthMethod[] }): Promise<IssuedToken> {
    const key = this.ring.signer()
    if (!key) throw errors.unavailable('a signing key')
    const jti = randomUUID()
    const now = Math.floor(this.now() / 1000)
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
   * Verifies a compact JWS with node:crypto and the key ring's prepared keys: strict base64url in
   * exactly three segments; a header that is a JSON object with `alg` exactly the configured one
   * (no `none`, no HS256-with-public-key), `typ` at+jwt, a `kid` in the ring and no `crit`; the
   * signature; a payload that is a JSON object with every required claim, `iss` and `aud` exact,
   * numeric `iat`/`nbf`/`exp` within the leeway; and the shape of every claim.
   * Throws token_expired for an expired token that is otherwise valid, invalid_token for the rest.
   */
  async verify(token: string): Promise<AccessClaims> {
    return this.verifySync(token)
  }

  /** verify(), without the promise (for benchmarks and callers that are not async). */
  verifySync(token: string): AccessClaims {
    const nowSec = Math.floor(this.now() / 1000)
    const cached = this.cacheSize > 0 ? this.cache.get(token) : undefined
    if (cached) {
      this.cache.delete(token)
      // Still in date and its key still in the ring: the answer is the one a full check would give.
      if (cached.claims.exp > nowSec - clockToleranceSec && this.ring.signatureCheck(cached.kid)) {
        this.cache.set(token, cached)
        return cached.claims
      }
    }
    let verified: Verified
    try {
      verified = this.check(token, nowSec)
    } catch (err) {
      if (err === expired) throw errors.tokenExpired()
      throw errors.invalidToken()
    }
    if (this.cacheSize > 0) {
      if (this.cache.size >= this.cacheSize) {
        const oldest = this.cache.keys().next()
        if (!oldest.done) this.cache.delete(oldest.value)
      }
      this.cache.set(token, verified)
    }
    return verified.claims
  }

  /** How many verified tokens are remembered now (for tests and metrics). */
  get cachedCount(): number {
    return this.cache.size
  }

  /** Whether this exact token is remembered (for tests). */
  isCached(token: string): boolean {
    return this.cache.has(token)
  }

  private check(token: string, nowSec: number): Verified {
    if (token.length > maxTokenLength) throw invalid
    const parts = compactJws.exec(token)
    if (!parts) throw invalid
    const [, headerB64 = '', payloadB64 = '', signatureB64 = ''] = parts

    const header = jsonObject(headerB64)
    if (
      Object.hasOwn(header, 'crit') ||
      header.alg !== this.config.jwt.alg ||
      !isAccessTokenTyp(header.typ) ||
      typeof header.kid !== 'string'
    )
      throw invalid
    const kid = header.kid
    const signatureOk = this.ring.signatureCheck(kid)
    if (!signatureOk) throw invalid
    const signingInput = Buffer.from(token.slice(0, headerB64.length + 1 + payloadB64.length), 'latin1')
    if (!signatureOk(signingInput, base64url(signatureB64))) throw invalid

    const payload = jsonObject(payloadB64)
    for (const claim of requiredClaims) if (!Object.hasOwn(payload, claim)) throw invalid
    const { iss, aud, iat, nbf, exp } = payload
    const audience = this.config.jwt.audience
    if (iss !== this.config.jwt.issuer) throw invalid
    if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) throw invalid
    if (!isNumericDate(iat) || !isNumericDate(nbf) || !isNumericDate(exp)) throw invalid
    if (nbf > nowSec + clockToleranceSec || iat > nowSec + clockToleranceSec) throw invalid
    if (exp <= nowSec - clockToleranceSec) throw expired

    const { sub, tid, jti, amr } = payload
    const claimedRoles = payload.roles
    if (
      typeof sub !== 'string' || !uuidPattern.test(sub) ||
      typeof tid !== 'string' || !uuidPattern.test(tid) ||
      typeof jti !== 'string' || !uuidPattern.test(jti) ||
      !isListOf(claimedRoles, roles) || claimedRoles.length === 0 ||
      !isListOf(amr, ['pwd', 'otp'] as const) || !amr.includes('pwd')
    )
      throw invalid
    const claims: AccessClaims = Object.freeze({
      sub: sub.toLowerCase(),
      tid: tid.toLowerCase(),
      roles: Object.freeze(claimedRoles),
      amr: Object.freeze(amr),
      jti,
      exp,
    })
    return { claims, kid }
  }
}

/** `application/at+jwt`, or `at+jwt`, in any case (RFC 9068 §2.1, compared as jose compares media types). */
function isAccessTokenTyp(typ: unknown): boolean {
  if (typeof typ !== 'string') return false
  const t = typ.toLowerCase()
  return t === 'at+jwt' || t === 'application/at+jwt'
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/**
 * Decodes a segment already known to hold only base64url characters, refusing a length no
 * encoding produces and non-zero unused bits in the last character (so one byte string has one
 * spelling).
 */
function base64url(segment: string): Buffer {
  const rest = segment.length % 4
  if (rest === 1) throw invalid
  if (rest !== 0) {
    const last = base64urlAlphabet.indexOf(segment.charAt(segment.length - 1))
    if ((last & (rest === 2 ? 0x0f : 0x03)) !== 0) throw invalid
  }
  return Buffer.from(segment, 'base64url')
}

/** A segment that decodes to well-formed UTF-8 JSON whose top level is an object (not an array, not null). */
function jsonObject(segment: string): Record<string, unknown> {
  const bytes = base64url(segment)
  if (!isUtf8(bytes)) throw invalid
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw invalid
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid
  return value as Record<string, unknown>
}

function isListOf<T extends string>(value: unknown, allowed: readonly T[]): value is T[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && (allowed as readonly string[]).includes(v))
}
