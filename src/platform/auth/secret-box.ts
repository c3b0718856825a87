import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'

/**
 * AES-256-GCM envelope for secrets at rest (signing keys, TOTP secrets). The output is
 * "v1.<iv>.<tag>.<ciphertext>" in base64url; the key id is stored beside it so that
 * KEY_ENCRYPTION_KEY can rotate without guessing which key encrypted what.
 */
export interface SecretBox {
  readonly keyId: string
  seal(plain: Buffer | string, context: string): string
  open(sealed: string, context: string): Buffer
}

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new Error('the key-encryption key must be 32 bytes')
  const keyId = createHash('sha256').update(key).digest('hex').slice(0, 16)
  return {
    keyId,
    seal(plain, context) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      // The context (e.g. "signing-key:<kid>") is authenticated, so a ciphertext cannot be moved to another row.
      cipher.setAAD(Buffer.from(context))
      const body = Buffer.concat([cipher.update(plain), cipher.final()])
      return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.')
    },
    open(sealed, context) {
      const [version, iv, tag, body] = sealed.split('.')
      if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('unknown ciphertext format')
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
      decipher.setAAD(Buffer.from(context))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()])
    },
  }
}
