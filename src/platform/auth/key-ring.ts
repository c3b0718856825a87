import { createHmac, timingSafeEqual, verify as cryptoVerify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { JWK } from 'jose'
import type { Sql } from 'postgres'
import type { Config, JwtAlg } from '../config.ts'
import type { SecretBox } from './secret-box.ts'
import { keyFromMaterial, loadStoredKeys } from './signing-keys.ts'
import type { SigningKey } from './signing-keys.ts'

/** How often every server re-reads signing keys, so a rotation reaches all of them (contract: within 10 s). */
export const keyReloadIntervalMs = 5_000
/** Verification leeway for exp/nbf (contract: at most 30 s). */
export const clockToleranceSec = 30

/**
 * Checks a JWS signature (raw bytes, as decoded from the compact form) over the signing input
 * (the ASCII of `header.payload`). Built once per key; never throws.
 */
export type SignatureCheck = (signingInput: Buffer, signature: Buffer) => boolean

/**
 * The node:crypto check for one key of one algorithm, with everything that can be prepared in
 * advance prepared here rather than per token. ES256 signatures in a JWS are raw r||s (64 bytes),
 * which OpenSSL takes as `dsaEncoding: 'ieee-p1363'`; a DER signature is refused by its length.
 */
export function signatureCheck(alg: JwtAlg, key: KeyObject): SignatureCheck {
  const guarded = (check: SignatureCheck): SignatureCheck => (input, signature) => {
    try {
      return check(input, signature)
    } catch {
      return false
    }
  }
  switch (alg) {
    case 'ES256': {
      const ecKey = { key, dsaEncoding: 'ieee-p1363' } as const
      return guarded((input, signature) => signature.length === 64 && cryptoVerify('sha256', input, ecKey, signature))
    }
    case 'EdDSA':
      return guarded((input, signature) => signature.length === 64 && cryptoVerify(null, input, key, signature))
    case 'RS256': {
      const bytes = Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8)
      return guarded((input, signature) => signature.length === bytes && cryptoVerify('sha256', input, key, signature))
    }
    case 'HS256':
      return guarded((input, signature) => {
        if (signature.length !== 32) return false
        return timingSafeEqual(createHmac('sha256', key).update(input).digest(), signature)
      })
  }
}

/**
 * The signing keys a server may use: the configured one (JWT_PRIVATE_KEY / JWT_SECRET) and those
 * stored in the database. The newest unretired key of the configured algorithm signs; a retired
 * key keeps verifying until the last token it could have signed has expired.
 */
export class KeyRing {
  private keys: SigningKey[] = []
  private byKid = new Map<string, SigningKey>()
  private checks = new Map<string, SignatureCheck>()
  private timer: NodeJS.Timeout | undefined

  private constructor(
    private readonly config: Config,
    private readonly sql: Sql | undefined,
    private readonly box: SecretBox | undefined,
    private readonly configured: SigningKey | undefined,
    private readonly onWarning: (msg: string) => void,
  ) {}

  /** A ring of exactly these keys, never reloaded (benchmarks and unit tests; servers use open()). */
  static of(config: Config, keys: readonly SigningKey[]): KeyRing {
    const ring = new KeyRing(config, undefined, undefined, undefined, () => {})
    ring.install([...keys])
    return ring
  }

  static async open(config: Config, sql: Sql, box: SecretBox, onWarning: (msg: string) => void): Promise<KeyRing> {
    const material = config.jwt.alg === 'HS256' ? config.jwt.secret : config.jwt.privateKeyPem
    // The configured key counts as the oldest: any rotated key in the database is newer.
    const configured = material ? await keyFromMaterial(config.jwt.alg, material, new Date(0)) : undefined
    const ring = new KeyRing(config, sql, box, configured, onWarning)
    await ring.reload()
    if (!ring.signer()) throw new Error(`no signing key for JWT_ALG=${config.jwt.alg}: set JWT_PRIVATE_KEY or JWT_SECRET, or run \`npm run admin -- keys rotate\``)
    ring.timer = setInterval(() => void ring.reload().catch(() => ring.onWarning('signing keys could not be reloaded; keeping the current set')), keyReloadIntervalMs)
    ring.timer.unref()
    return ring
  }

  async reload(): Promise<void> {
    if (!this.sql || !this.box) return
    const { keys, unreadable } = await loadStoredKeys(this.sql, this.box)
    if (unreadable.length > 0) this.onWarning(`signing keys ${unreadable.join(', ')} cannot be decrypted with this KEY_ENCRYPTION_KEY and are not used`)
    this.install(this.configured ? [this.configured, ...keys.filter((k) => k.kid !== this.configured?.kid)] : keys)
  }

  private install(all: SigningKey[]): void {
    const verifyWindowMs = (this.config.jwt.accessTtlSec + clockToleranceSec) * 1000
    const now = Date.now()
    this.keys = all.filter((k) => k.retiredAt === null || k.retiredAt.getTime() + verifyWindowMs > now)
    // A kid names its key (a thumbprint, or a hash of the secret), so a kid kept across reloads keeps its check.
    const previous = this.checks
    this.byKid = new Map(this.keys.map((k) => [k.kid, k]))
    this.checks = new Map(
      this.keys.filter((k) => k.alg === this.config.jwt.alg).map((k) => [k.kid, previous.get(k.kid) ?? signatureCheck(k.alg, k.verifyKey)]),
    )
  }

  /** The key new tokens are signed with. */
  signer(): SigningKey | undefined {
    return this.keys.filter((k) => k.alg === this.config.jwt.alg && k.retiredAt === null).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0]
  }

  /** The verification key for a kid, only if it is of the configured algorithm. */
  verifyKey(kid: string): KeyObject | undefined {
    const key = this.byKid.get(kid)
    return key && key.alg === this.config.jwt.alg ? key.verifyKey : undefined
  }

  /** The signature check for a kid, only if its key is of the configured algorithm and can verify now. */
  signatureCheck(kid: string): SignatureCheck | undefined {
    return this.checks.get(kid)
  }

  /** Exactly the public keys that can verify a token now. */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.filter((k) => k.alg === this.config.jwt.alg && k.publicJwk).map((k) => k.publicJwk as JWK) }
  }

  close(): void {
    clearInterval(this.timer)
  }
}
