import { createHash, createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK } from 'jose'
import type { JWK } from 'jose'
import type { Sql } from 'postgres'
import type { JwtAlg } from '../config.ts'
import type { SecretBox } from './secret-box.ts'

export interface SigningKey {
  readonly kid: string
  readonly alg: JwtAlg
  readonly signKey: KeyObject
  readonly verifyKey: KeyObject
  /** Public JWK for the JWKS; absent for HS256, whose secret is never published. */
  readonly publicJwk: JWK | undefined
  readonly createdAt: Date
  readonly retiredAt: Date | null
}

interface KeyRow {
  kid: string
  alg: JwtAlg
  private_enc: string
  kek_id: string
  created_at: Date
  retired_at: Date | null
}

/** Builds a key from PKCS#8 PEM (asymmetric) or a shared secret (HS256). */
export async function keyFromMaterial(alg: JwtAlg, material: string | Buffer, createdAt: Date, retiredAt: Date | null = null): Promise<SigningKey> {
  if (alg === 'HS256') {
    const secret = createSecretKey(Buffer.isBuffer(material) ? material : Buffer.from(material))
    // The kid names the secret without revealing it.
    const kid = createHash('sha256').update(secret.export()).digest('base64url').slice(0, 22)
    return { kid, alg, signKey: secret, verifyKey: secret, publicJwk: undefined, createdAt, retiredAt }
  }
  const signKey = createPrivateKey(material)
  const verifyKey = createPublicKey(signKey)
  checkKeyType(alg, verifyKey)
  const jwk = await exportJWK(verifyKey)
  const kid = await calculateJwkThumbprint(jwk)
  return { kid, alg, signKey, verifyKey, publicJwk: { ...jwk, kid, alg, use: 'sig' }, createdAt, retiredAt }
}

function checkKeyType(alg: JwtAlg, key: KeyObject): void {
  const type = key.asymmetricKeyType
  const ok =
    (alg === 'ES256' && type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') ||
    (alg === 'EdDSA' && type === 'ed25519') ||
    (alg === 'RS256' && type === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048)
  if (!ok) throw new Error(`JWT_PRIVATE_KEY does not fit JWT_ALG=${alg} (need ${alg === 'ES256' ? 'EC P-256' : alg === 'EdDSA' ? 'Ed25519' : 'RSA ≥ 2048'})`)
}

/** New key material for alg: PKCS#8 PEM, or 32 random bytes for HS256. */
export function generateKeyMaterial(alg: JwtAlg): Buffer {
  const pem = (k: KeyObject) => Buffer.from(k.export({ type: 'pkcs8', format: 'pem' }))
  switch (alg) {
    case 'HS256':
      return randomBytes(32)
    case 'ES256':
      return pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)
    case 'EdDSA':
      return pem(generateKeyPairSync('ed25519').privateKey)
    case 'RS256':
      return pem(generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey)
  }
}

/** Stores a new signing key, encrypted, and returns its kid. Used by development start-up and `keys rotate`. */
export async function storeNewSigningKey(owner: Sql, box: SecretBox, alg: JwtAlg): Promise<string> {
  const material = generateKeyMaterial(alg)
  const key = await keyFromMaterial(alg, material, new Date())
  await owner`insert into signing_keys (kid, alg, public_jwk, private_enc, kek_id)
    values (${key.kid}, ${alg}, ${key.publicJwk ? owner.json(key.publicJwk) : null},
            ${box.seal(material, `signing-key:${key.kid}`)}, ${box.keyId})`
  return key.kid
}

/** Reads every stored key this KEY_ENCRYPTION_KEY can open; others are reported, not used. */
export async function loadStoredKeys(sql: Sql, box: SecretBox): Promise<{ keys: SigningKey[]; unreadable: string[] }> {
  const rows = await sql<KeyRow[]>`select kid, alg, private_enc, kek_id, created_at, retired_at from signing_keys order by created_at`
  const keys: SigningKey[] = []
  const unreadable: string[] = []
  for (const row of rows) {
    try {
      if (row.kek_id !== box.keyId) throw new Error('other key-encryption key')
      const material = box.open(row.private_enc, `signing-key:${row.kid}`)
      keys.push(await keyFromMaterial(row.alg, row.alg === 'HS256' ? material : material.toString(), row.created_at, row.retired_at))
    } catch {
      unreadable.push(row.kid)
    }
  }
  return { keys, unreadable }
}
