import type { KeyObject } from 'node:crypto'
import type { JWK } from 'jose'
import type { Sql } from 'postgres'
import type { Config } from '../config.ts'
import type { SecretBox } from './secret-box.ts'
import { keyFromMaterial, loadStoredKeys } from './signing-keys.ts'
import type { SigningKey } from './signing-keys.ts'

/** How often every server re-reads signing keys, so a rotation reaches all of them (contract: within 10 s). */
export const keyReloadIntervalMs = 5_000
/** Verification leeway for exp/nbf (contract: at most 30 s). */
export const clockToleranceSec = 30

/**
 * The signing keys a server may use: the configured one (JWT_PRIVATE_KEY / JWT_SECRET) and those
 * stored in the database. The newest unretired key of the configured algorithm signs; a retired
 * key keeps verifying until the last token it could have signed has expired.
 */
export class KeyRing {
  private keys: SigningKey[] = []
  private byKid = new Map<string, SigningKey>()
  private timer: NodeJS.Timeout | undefined

  private constructor(
    private readonly config: Config,
    private readonly sql: Sql,
    private readonly box: SecretBox,
    private readonly configured: SigningKey | undefined,
    private readonly onWarning: (msg: string) => void,
  ) {}

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
    const { keys, unreadable } = await loadStoredKeys(this.sql, this.box)
    if (unreadable.length > 0) this.onWarning(`signing keys ${unreadable.join(', ')} cannot be decrypted with this KEY_ENCRYPTION_KEY and are not used`)
    const all = this.configured ? [this.configured, ...keys.filter((k) => k.kid !== this.configured?.kid)] : keys
    const verifyWindowMs = (this.config.jwt.accessTtlSec + clockToleranceSec) * 1000
    const now = Date.now()
    this.keys = all.filter((k) => k.retiredAt === null || k.retiredAt.getTime() + verifyWindowMs > now)
    this.byKid = new Map(this.keys.map((k) => [k.kid, k]))
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

  /** Exactly the public keys that can verify a token now. */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.filter((k) => k.alg === this.config.jwt.alg && k.publicJwk).map((k) => k.publicJwk as JWK) }
  }

  close(): void {
    clearInterval(this.timer)
  }
}
