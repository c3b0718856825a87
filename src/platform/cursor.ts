import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'
import { errors } from './errors.ts'

/**
 * Opaque list cursors: base64url JSON plus an HMAC bound to the tenant and the sort, so a cursor
 * cannot be forged, edited, or replayed in another tenant or another ordering.
 */
export interface CursorCodec {
  encode(tenantId: string, sort: string, position: readonly string[]): string
  decode(tenantId: string, sort: string, cursor: string): string[]
}

export function createCursorCodec(kek: Buffer): CursorCodec {
  const key = Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), 'saas-api list cursors', 32))
  const mac = (payload: string, tenantId: string, sort: string) =>
    createHmac('sha256', key).update(`${tenantId}\n${sort}\n${payload}`).digest().subarray(0, 16)
  const invalid = () => errors.validation([{ path: '/querystring/cursor', message: 'is not a cursor this list issued' }])
  return {
    encode(tenantId, sort, position) {
      const payload = Buffer.from(JSON.stringify(position)).toString('base64url')
      return `${payload}.${mac(payload, tenantId, sort).toString('base64url')}`
    },
    decode(tenantId, sort, cursor) {
      const [payload, tag, extra] = cursor.split('.')
      if (!payload || !tag || extra !== undefined) throw invalid()
      const given = Buffer.from(tag, 'base64url')
      const expected = mac(payload, tenantId, sort)
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid()
      const position: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString())
      if (!Array.isArray(position) || !position.every((p) => typeof p === 'string')) throw invalid()
      return position
    },
  }
}
