/**
 * The access-token verifier (node:crypto, keys prepared once, a verified-token cache) against
 * tokens made by jose and by hand: what jose accepted it accepts, what jose refused it refuses,
 * and where it is stricter the test says so. The HTTP-level contract is
 * test/security/threat-2-jwt-tampering.test.ts; this file works on AccessTokens directly, with a
 * clock the tests set, plus one app-level check that caching never delays a revocation.
 */
import assert from 'node:assert/strict'
import { createHmac, createSecretKey, generateKeyPairSync, randomBytes, randomUUID, sign as cryptoSign } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { SignJWT, jwtVerify } from 'jose'
import type { JWTPayload } from 'jose'
import { AccessTokens } from '../../src/platform/auth/access-tokens.ts'
import type { AccessClaims, TokenKeys } from '../../src/platform/auth/access-tokens.ts'
import { KeyRing, clockToleranceSec } from '../../src/platform/auth/key-ring.ts'
import { generateKeyMaterial, keyFromMaterial } from '../../src/platform/auth/signing-keys.ts'
import type { SigningKey } from '../../src/platform/auth/signing-keys.ts'
import { loadConfig } from '../../src/platform/config.ts'
import type { Config, JwtAlg } from '../../src/platform/config.ts'
import { AppError } from '../../src/platform/errors.ts'
import { createTenant, startTestApp, testRedisUrl } from '../helpers/app.ts'
import type { TestApp } from '../helpers/app.ts'

const issuer = 'https://api.test'
const audience = 'saas-api'
/** A fixed "now" for every test of this file (seconds); the verifier's clock reads `clock`. */
const T = 1_800_000_000
const requiredClaims = ['iss', 'aud', 'sub', 'tid', 'roles', 'amr', 'iat', 'nbf', 'exp', 'jti'] as const
/** Order of the P-256 group, for the high-S twin of a signature. */
const p256n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n

const b64 = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64url')
const seg = (value: unknown) => b64(JSON.stringify(value))

/** A ring that can drop a kid, as a reload does when a retired key's window ends. */
class Ring implements TokenKeys {
  readonly dropped = new Set<string>()
  constructor(private readonly inner: KeyRing) {}
  signer() {
    return this.inner.signer()
  }
  signatureCheck(kid: string) {
    return this.dropped.has(kid) ? undefined : this.inner.signatureCheck(kid)
  }
}

interface Fixture {
  alg: JwtAlg
  config: Config
  key: SigningKey
  ring: Ring
  tokens: AccessTokens
  clock: { ms: number }
  claims(overrides?: Record<string, unknown>): JWTPayload
  /** jose's SignJWT with the server's key and header, header fields overridable. */
  joseSigned(payload: JWTPayload, header?: Record<string, unknown>, key?: KeyObject | Uint8Array): Promise<string>
  /** Signs exactly the given encoded header and payload, so that only their encoding is under test. */
  rawSigned(header: string, payload: string): string
  /** What the previous verifier (jose jwtVerify with the same options) said. */
  joseAccepts(token: string): Promise<boolean>
}

async function fixture(alg: JwtAlg, options: { cacheSize?: number } = {}): Promise<Fixture> {
  const config = loadConfig({ NODE_ENV: 'test', JWT_ALG: alg, JWT_ISSUER: issuer, LOG_LEVEL: 'silent' })
  const key = await keyFromMaterial(alg, generateKeyMaterial(alg), new Date())
  const ring = new Ring(KeyRing.of(config, [key]))
  const clock = { ms: T * 1000 }
  const tokens = new AccessTokens(config, ring, { now: () => clock.ms, ...options })
  const sub = randomUUID()
  const tid = randomUUID()
  return {
    alg,
    config,
    key,
    ring,
    tokens,
    clock,
    claims(overrides = {}) {
      const base: Record<string, unknown> = {
        iss: issuer, aud: audience, sub, tid, roles: ['member'], amr: ['pwd'], iat: T, nbf: T, exp: T + 600, jti: randomUUID(), ...overrides,
      }
      return Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined))
    },
    joseSigned(payload, header = {}, signKey = key.signKey) {
      return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header }).sign(signKey)
    },
    rawSigned(header, payload) {
      const input = Buffer.from(`${header}.${payload}`)
      return `${header}.${payload}.${b64(signRaw(alg, key.signKey, input))}`
    },
    async joseAccepts(token) {
      try {
        await jwtVerify(token, key.verifyKey, {
          algorithms: [alg], issuer, audience, typ: 'at+jwt', clockTolerance: clockToleranceSec, requiredClaims: [...requiredClaims], currentDate: new Date(clock.ms),
        })
        return true
      } catch {
        return false
      }
    },
  }
}

function signRaw(alg: JwtAlg, key: KeyObject, input: Buffer, dsaEncoding: 'ieee-p1363' | 'der' = 'ieee-p1363'): Buffer {
  switch (alg) {
    case 'ES256':
      return cryptoSign('sha256', input, { key, dsaEncoding })
    case 'EdDSA':
      return cryptoSign(null, input, key)
    case 'RS256':
      return cryptoSign('sha256', input, key)
    case 'HS256':
      return createHmac('sha256', key).update(input).digest()
  }
}

function foreignKey(alg: JwtAlg): KeyObject {
  switch (alg) {
    case 'ES256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    case 'EdDSA':
      return generateKeyPairSync('ed25519').privateKey
    case 'RS256':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
    case 'HS256':
      return createSecretKey(randomBytes(32))
  }
}

function refused(f: Fixture, token: string, code: 'invalid_token' | 'token_expired' = 'invalid_token', why = token): void {
  assert.throws(() => f.tokens.verifySync(token), (err: unknown) => err instanceof AppError && err.code === code && err.statusCode === 401, why)
}

function accepted(f: Fixture, token: string): AccessClaims {
  return f.tokens.verifySync(token)
}

const headerOf = (f: Fixture, extra: Record<string, unknown> = {}) => seg({ alg: f.alg, kid: f.key.kid, typ: 'at+jwt', ...extra })

describe('access-token verification with node:crypto (ES256, the default)', () => {
  let f: Fixture
  before(async () => {
    f = await fixture('ES256', { cacheSize: 0 })
  })

  it('when a token comes from AccessTokens.issue, then it verifies with exactly the claims it was issued with', async () => {
    const sub = randomUUID()
    const tid = randomUUID()
    const issued = await f.tokens.issue({ userId: sub, tenantId: tid, role: 'admin', amr: ['pwd', 'otp'] })
    assert.deepEqual({ ...accepted(f, issued.token) }, { sub, tid, roles: ['admin'], amr: ['pwd', 'otp'], jti: issued.jti, exp: T + f.config.jwt.accessTtlSec })
    assert.equal(await f.joseAccepts(issued.token), true)
  })

  it('when a jose-made token uses typ application/at+jwt or AT+JWT, or an aud list holding ours, then it verifies, as it did with jose', async () => {
    const tokens = [
      await f.joseSigned(f.claims()),
      await f.joseSigned(f.claims(), { typ: 'application/at+jwt' }),
      await f.joseSigned(f.claims(), { typ: 'AT+JWT' }),
      await f.joseSigned(f.claims({ aud: ['another-api', audience] })),
      f.rawSigned(headerOf(f), seg(f.claims())),
    ]
    for (const token of tokens) {
      assert.equal(await f.joseAccepts(token), true, token)
      assert.equal(accepted(f, token).sub, f.claims().sub)
    }
  })

  it('when sub and tid are upper-case UUIDs, then they come back lower-case, as before', async () => {
    const claims = f.claims()
    const token = await f.joseSigned({ ...claims, sub: String(claims.sub).toUpperCase(), tid: String(claims.tid).toUpperCase() })
    const verified = accepted(f, token)
    assert.equal(verified.sub, claims.sub)
    assert.equal(verified.tid, claims.tid)
  })

  it('when a segment is not strict base64url (padding, "+" or "/", spare bits set, whitespace), then it is refused although the signature covers it', () => {
    const header = JSON.stringify({ alg: 'ES256', kid: f.key.kid, typ: 'at+jwt' })
    // Pad the header JSON until its base64 needs '=' padding.
    const padded = Buffer.from(header.length % 3 === 0 ? `${header} ` : header).toString('base64')
    assert.match(padded, /=$/)
    refused(f, f.rawSigned(padded.replace(/\+/g, '-').replace(/\//g, '_'), seg(f.claims())), 'invalid_token', 'padding')
    // A payload whose standard base64 holds '+' (a run of '~', 0x7e, always yields one), sent in that alphabet.
    const standard = Buffer.from(JSON.stringify(f.claims({ x: '~~~~~~' }))).toString('base64').replace(/=+$/, '')
    assert.match(standard, /\+/)
    refused(f, f.rawSigned(headerOf(f), standard), 'invalid_token', '+ or /')
    // The last character of a 64-byte signature carries 4 spare bits; setting one decodes to the same bytes.
    const token = f.rawSigned(headerOf(f), seg(f.claims()))
    const [h, p, s = ''] = token.split('.')
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const spare = `${s.slice(0, -1)}${alphabet[alphabet.indexOf(s.slice(-1)) + 1]}`
    assert.deepEqual(Buffer.from(spare, 'base64url'), Buffer.from(s, 'base64url'))
    accepted(f, token)
    refused(f, `${h}.${p}.${spare}`, 'invalid_token', 'spare bits')
    refused(f, `${h}.${p}.${s}=`, 'invalid_token', 'padded signature')
    refused(f, `${h}.${p}.${s.slice(0, 40)} ${s.slice(40)}`, 'invalid_token', 'space')
    refused(f, `${h}.${p}.${s.slice(0, 40)}\n${s.slice(40)}`, 'invalid_token', 'newline')
    refused(f, ` ${token}`, 'invalid_token', 'leading space')
    refused(f, `${token}\n`, 'invalid_token', 'trailing newline')
  })

  it('when the token has two, four or empty segments, or is far too long, then it is refused', () => {
    const token = f.rawSigned(headerOf(f), seg(f.claims()))
    const [h, p, s] = token.split('.')
    for (const bad of [`${h}.${p}`, `${h}.${p}.${s}.${s}`, `${h}.${p}.`, `.${p}.${s}`, `${h}..${s}`, `${h}.${p}.${s}.`, '', '..', token.replace(/\./g, '')])
      refused(f, bad)
    refused(f, f.rawSigned(headerOf(f), seg(f.claims({ filler: 'x'.repeat(9000) }))), 'invalid_token', 'oversized')
  })

  it('when the header or payload is not a JSON object (not JSON, an array, null, a string, a number, bad UTF-8), then it is refused although signed', async () => {
    const claims = f.claims()
    for (const header of [b64('{"alg":"ES256"'), seg([{ alg: 'ES256', kid: f.key.kid, typ: 'at+jwt' }]), seg(null), seg('ES256'), seg(1)])
      refused(f, f.rawSigned(header, seg(claims)), 'invalid_token', header)
    for (const payload of [b64('not json'), seg([claims]), seg(null), seg('claims'), seg(42), b64(Buffer.from([0x7b, 0xff, 0x7d])), b64('')])
      refused(f, f.rawSigned(headerOf(f), payload), 'invalid_token', payload)
    // The same bytes in a correct string but invalid UTF-8 inside a claim (an unpaired surrogate is valid JSON, a lone 0xff byte is not UTF-8).
    const raw = Buffer.concat([Buffer.from(JSON.stringify(claims).slice(0, -1)), Buffer.from(',"x":"\xff"}', 'latin1')])
    refused(f, f.rawSigned(headerOf(f), b64(raw)), 'invalid_token', 'invalid UTF-8')
    assert.equal(await f.joseAccepts(f.rawSigned(headerOf(f), b64(raw))), false)
  })

  it('when the header carries crit (even ["b64"] with b64 true, which jose accepted), then it is refused', async () => {
    const claims = f.claims()
    for (const extra of [{ crit: ['exp'], exp: T + 600 }, { crit: [] }, { crit: null }, { crit: ['b64'], b64: true }, { crit: ['b64'], b64: false }])
      refused(f, f.rawSigned(headerOf(f, extra), seg(claims)), 'invalid_token', JSON.stringify(extra))
    assert.equal(await f.joseAccepts(f.rawSigned(headerOf(f, { crit: ['b64'], b64: true }), seg(claims))), true, 'stricter than jose here')
  })

  it('when typ is not at+jwt (JWT, application/jwt, padded, absent, not a string), then it is refused, as jose refused it', async () => {
    for (const typ of ['JWT', 'jwt', 'application/jwt', 'at+jwt ', ' at+jwt', 'at+JWT+x', 'text/at+jwt', ['at+jwt'], 1, null]) {
      const token = f.rawSigned(headerOf(f, { typ }), seg(f.claims()))
      refused(f, token, 'invalid_token', JSON.stringify(typ))
      assert.equal(await f.joseAccepts(token), false, JSON.stringify(typ))
    }
    const untyped = f.rawSigned(seg({ alg: 'ES256', kid: f.key.kid }), seg(f.claims()))
    refused(f, untyped)
    assert.equal(await f.joseAccepts(untyped), false)
  })

  it('when alg is not exactly ES256 (none, es256, ES384, EdDSA, HS256 keyed with the public key, absent), then it is refused', async () => {
    const claims = seg(f.claims())
    for (const alg of ['none', 'None', 'NONE']) {
      refused(f, `${headerOf(f, { alg })}.${claims}.`)
      refused(f, `${headerOf(f, { alg })}.${claims}.${b64('x')}`)
    }
    for (const alg of ['es256', 'ES384', 'ES256K', 'EdDSA', 'Ed25519', 'RS256', 'PS256', '', null, ['ES256']])
      refused(f, f.rawSigned(headerOf(f, { alg }), claims), 'invalid_token', JSON.stringify(alg))
    refused(f, f.rawSigned(seg({ kid: f.key.kid, typ: 'at+jwt' }), claims), 'invalid_token', 'no alg')
    // HS256 with the server's public key as the secret (algorithm confusion).
    for (const secret of [f.key.verifyKey.export({ type: 'spki', format: 'pem' }), f.key.verifyKey.export({ type: 'spki', format: 'der' })]) {
      const h = headerOf(f, { alg: 'HS256' })
      const token = `${h}.${claims}.${b64(createHmac('sha256', secret).update(`${h}.${claims}`).digest())}`
      refused(f, token)
      assert.equal(await f.joseAccepts(token), false)
    }
  })

  it('when the kid is unknown, absent, not a string, or its key has left the ring, then it is refused', async () => {
    const claims = f.claims()
    for (const kid of ['no-such-key', '', 1, null, [f.key.kid], f.key.kid.toUpperCase()]) refused(f, f.rawSigned(headerOf(f, { kid }), seg(claims)), 'invalid_token', JSON.stringify(kid))
    refused(f, f.rawSigned(seg({ alg: 'ES256', typ: 'at+jwt' }), seg(claims)))
    const token = await f.joseSigned(claims)
    accepted(f, token)
    f.ring.dropped.add(f.key.kid)
    try {
      refused(f, token)
    } finally {
      f.ring.dropped.delete(f.key.kid)
    }
  })

  it('when the signature is by another key, DER-encoded, truncated, extended, or over other bytes, then it is refused', async () => {
    const claims = f.claims()
    const other = await f.joseSigned(claims, {}, foreignKey('ES256'))
    refused(f, other)
    assert.equal(await f.joseAccepts(other), false)
    const h = headerOf(f)
    const p = seg(claims)
    const input = Buffer.from(`${h}.${p}`)
    const der = signRaw('ES256', f.key.signKey, input, 'der')
    refused(f, `${h}.${p}.${b64(der)}`, 'invalid_token', 'DER')
    assert.equal(await f.joseAccepts(`${h}.${p}.${b64(der)}`), false)
    const raw = signRaw('ES256', f.key.signKey, input)
    accepted(f, `${h}.${p}.${b64(raw)}`)
    for (const sig of [raw.subarray(0, 63), Buffer.concat([raw, Buffer.alloc(1)]), Buffer.concat([Buffer.alloc(1), raw]), Buffer.alloc(64), Buffer.alloc(0)])
      refused(f, `${h}.${p}.${b64(sig)}`, 'invalid_token', `${sig.length} bytes`)
    refused(f, `${h}.${seg({ ...claims, roles: ['owner'] })}.${b64(raw)}`, 'invalid_token', 'payload changed')
    refused(f, `${headerOf(f, { x: 1 })}.${p}.${b64(raw)}`, 'invalid_token', 'header changed')
  })

  it('when the ECDSA signature is the high-S twin of a valid one, then it is accepted, as jose accepted it (ECDSA is malleable; both decode to the same jti, which revocation goes by)', async () => {
    const h = headerOf(f)
    const p = seg(f.claims())
    const raw = signRaw('ES256', f.key.signKey, Buffer.from(`${h}.${p}`))
    const s = BigInt(`0x${raw.subarray(32).toString('hex')}`)
    const twin = Buffer.concat([raw.subarray(0, 32), Buffer.from((p256n - s).toString(16).padStart(64, '0'), 'hex')])
    const token = `${h}.${p}.${b64(twin)}`
    assert.notEqual(token, `${h}.${p}.${b64(raw)}`)
    assert.equal(await f.joseAccepts(token), true)
    assert.equal(accepted(f, token).jti, accepted(f, `${h}.${p}.${b64(raw)}`).jti)
  })

  it('when exp is exactly leeway seconds past, then token_expired; one second later it was still valid, and jose agrees on both', async () => {
    const edge = await f.joseSigned(f.claims({ iat: T - 700, nbf: T - 700, exp: T - clockToleranceSec }))
    refused(f, edge, 'token_expired')
    assert.equal(await f.joseAccepts(edge), false)
    const inside = await f.joseSigned(f.claims({ iat: T - 700, nbf: T - 700, exp: T - clockToleranceSec + 1 }))
    accepted(f, inside)
    assert.equal(await f.joseAccepts(inside), true)
    // Fractions count as jose counted them: exp = T - 29.5 is inside, T - 30 is not.
    accepted(f, await f.joseSigned(f.claims({ exp: T - clockToleranceSec + 0.5 })))
  })

  it('when nbf is exactly leeway seconds ahead, then it is accepted; one second further, invalid_token, as with jose', async () => {
    const edge = await f.joseSigned(f.claims({ nbf: T + clockToleranceSec }))
    accepted(f, edge)
    assert.equal(await f.joseAccepts(edge), true)
    const beyond = await f.joseSigned(f.claims({ nbf: T + clockToleranceSec + 1 }))
    refused(f, beyond)
    assert.equal(await f.joseAccepts(beyond), false)
  })

  it('when iat is more than the leeway in the future, then invalid_token (jose did not check this; the server never issues such a token)', async () => {
    accepted(f, await f.joseSigned(f.claims({ iat: T + clockToleranceSec })))
    const beyond = await f.joseSigned(f.claims({ iat: T + clockToleranceSec + 1 }))
    refused(f, beyond)
    assert.equal(await f.joseAccepts(beyond), true, 'stricter than jose here')
  })

  it('when iat, nbf or exp is not a finite number (a string, null, a list, 1e400), then invalid_token', async () => {
    for (const claim of ['iat', 'nbf', 'exp'])
      for (const value of [String(T), null, [T], true])
        refused(f, await f.joseSigned(f.claims({ [claim]: value })), 'invalid_token', `${claim}=${JSON.stringify(value)}`)
    // JSON.parse reads 1e400 as Infinity: a token that would never expire.
    const infinite = JSON.stringify(f.claims()).replace(/"exp":\d+/, '"exp":1e400')
    refused(f, f.rawSigned(headerOf(f), b64(infinite)), 'invalid_token', 'exp=1e400')
  })

  it('when the token is expired and also broken (bad signature, wrong typ, wrong issuer), then invalid_token, not token_expired', async () => {
    const old = { iat: T - 900, nbf: T - 900, exp: T - 300 }
    const badSig = await f.joseSigned(f.claims(old), {}, foreignKey('ES256'))
    refused(f, badSig, 'invalid_token')
    refused(f, await f.joseSigned(f.claims(old), { typ: 'JWT' }), 'invalid_token')
    refused(f, await f.joseSigned(f.claims({ ...old, iss: 'https://evil.test' })), 'invalid_token')
    refused(f, await f.joseSigned(f.claims(old)), 'token_expired')
  })

  it('when iss or aud is wrong (another value, a list for iss, a list without ours for aud), then invalid_token', async () => {
    for (const overrides of [{ iss: 'https://evil.test' }, { iss: [issuer] }, { iss: `${issuer}/` }, { aud: 'another-api' }, { aud: ['another-api'] }, { aud: [] }, { aud: `${audience} ` }, { aud: { 0: audience } }]) {
      const token = await f.joseSigned(f.claims(overrides))
      refused(f, token, 'invalid_token', JSON.stringify(overrides))
      assert.equal(await f.joseAccepts(token), false, JSON.stringify(overrides))
    }
  })

  it('when any required claim is missing, or a claim has the wrong shape, then invalid_token', async () => {
    for (const claim of requiredClaims) refused(f, await f.joseSigned(f.claims({ [claim]: undefined })), 'invalid_token', `no ${claim}`)
    const shapes: Record<string, unknown>[] = [
      { sub: 'not-a-uuid' }, { tid: 42 }, { jti: 'x' }, { roles: [] }, { roles: ['superadmin'] }, { roles: 'owner' },
      { amr: [] }, { amr: ['otp'] }, { amr: ['pwd', 'face'] }, { amr: 'pwd' },
    ]
    for (const overrides of shapes) refused(f, await f.joseSigned(f.claims(overrides)), 'invalid_token', JSON.stringify(overrides))
  })
})

describe('access-token verification: the other algorithms', () => {
  for (const alg of ['EdDSA', 'RS256', 'HS256'] as const) {
    it(`when JWT_ALG=${alg}, then its own tokens verify and foreign keys, other algorithms and wrong-length signatures are refused`, async () => {
      const f = await fixture(alg, { cacheSize: 0 })
      const issued = await f.tokens.issue({ userId: randomUUID(), tenantId: randomUUID(), role: 'viewer', amr: ['pwd'] })
      assert.equal(accepted(f, issued.token).jti, issued.jti)
      assert.equal(await f.joseAccepts(issued.token), true)
      accepted(f, await f.joseSigned(f.claims()))
      refused(f, await f.joseSigned(f.claims(), {}, foreignKey(alg)), 'invalid_token', 'foreign key')
      for (const other of (['ES256', 'EdDSA', 'RS256', 'HS256'] as const).filter((x) => x !== alg))
        refused(f, await new SignJWT(f.claims()).setProtectedHeader({ alg: other, kid: f.key.kid, typ: 'at+jwt' }).sign(foreignKey(other)), 'invalid_token', other)
      const [h, p, s = ''] = issued.token.split('.')
      const sig = Buffer.from(s, 'base64url')
      for (const bad of [sig.subarray(1), Buffer.concat([sig, Buffer.alloc(1)]), Buffer.alloc(sig.length)]) refused(f, `${h}.${p}.${b64(bad)}`)
      if (alg === 'EdDSA') refused(f, f.rawSigned(headerOf(f, { alg: 'Ed25519' }), seg(f.claims())), 'invalid_token', 'Ed25519 spelling')
    })
  }
})

describe('the verified-token cache', () => {
  it('when a cached token passes exp + leeway, then token_expired, and it leaves the cache', async () => {
    const f = await fixture('ES256')
    const token = await f.joseSigned(f.claims({ exp: T + 60 }))
    const first = accepted(f, token)
    assert.equal(f.tokens.cachedCount, 1)
    f.clock.ms = (T + 60 + clockToleranceSec - 1) * 1000
    assert.equal(accepted(f, token), first, 'served from the cache')
    f.clock.ms = (T + 60 + clockToleranceSec) * 1000
    refused(f, token, 'token_expired')
    assert.equal(f.tokens.cachedCount, 0)
    f.clock.ms = T * 1000
  })

  it('when a cached token’s key leaves the ring (retired past its window), then invalid_token', async () => {
    const f = await fixture('ES256')
    const token = await f.joseSigned(f.claims())
    accepted(f, token)
    accepted(f, token)
    f.ring.dropped.add(f.key.kid)
    refused(f, token)
    assert.equal(f.tokens.cachedCount, 0)
  })

  it('when a cached token is altered by one character, then the copy is refused (only the exact string is a hit)', async () => {
    const f = await fixture('ES256')
    const token = await f.joseSigned(f.claims())
    accepted(f, token)
    const [h, p, s = ''] = token.split('.')
    refused(f, `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`)
    refused(f, `${h}.${seg({ ...f.claims(), roles: ['owner'] })}.${s}`)
    refused(f, `${token}.`)
    assert.equal(f.tokens.cachedCount, 1)
  })

  it('when more tokens than its bound are verified, then it holds at most the bound, dropping the least recently used', async () => {
    const f = await fixture('ES256', { cacheSize: 3 })
    const [a = '', b = '', c = '', d = ''] = await Promise.all([1, 2, 3, 4].map(() => f.joseSigned(f.claims())))
    accepted(f, a)
    accepted(f, b)
    accepted(f, c)
    accepted(f, a) // a is now the most recent; b the least
    accepted(f, d)
    assert.equal(f.tokens.cachedCount, 3)
    assert.deepEqual([a, b, c, d].map((x) => f.tokens.isCached(x)), [true, false, true, true])
    // b, verified again in full, comes back in and pushes out the least recent (c).
    accepted(f, b)
    assert.deepEqual([a, b, c, d].map((x) => f.tokens.isCached(x)), [true, true, false, true])
    assert.equal(f.tokens.cachedCount, 3)
  })

  it('when the cache is off (cacheSize 0), then nothing is kept', async () => {
    const f = await fixture('ES256', { cacheSize: 0 })
    const token = await f.joseSigned(f.claims())
    accepted(f, token)
    accepted(f, token)
    assert.equal(f.tokens.cachedCount, 0)
  })

  it('when the claims come from the cache, then they cannot be changed by the request that got them', async () => {
    const f = await fixture('ES256')
    const token = await f.joseSigned(f.claims())
    const claims = accepted(f, token)
    assert.throws(() => (claims.roles as string[]).push('owner'))
    assert.throws(() => Object.assign(claims, { tid: randomUUID() }))
    assert.deepEqual(accepted(f, token).roles, ['member'])
  })
})

describe('the verified-token cache never delays a revocation (real app, PostgreSQL and Redis)', () => {
  let t: TestApp
  let redis: Redis
  before(async () => {
    t = await startTestApp()
    redis = new Redis(testRedisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await redis.connect()
  })
  after(async () => {
    redis.disconnect()
    await t.close()
  })

  const list = (tenantId: string, token: string) =>
    t.app.inject({ method: 'GET', url: `/v1/tenants/${tenantId}/projects`, headers: { authorization: `Bearer ${token}` } })
  const jtiOf = (token: string) => String(JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).jti)

  it('when a token that is in the cache is logged out, then the very next request with it is 401 token_revoked', async () => {
    const a = await createTenant(t)
    assert.equal((await list(a.tenantId, a.token)).statusCode, 200)
    assert.equal((await list(a.tenantId, a.token)).statusCode, 200)
    assert.ok(t.deps.tokens.cachedCount >= 1, 'the token was cached')
    assert.equal((await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: { authorization: `Bearer ${a.token}` } })).statusCode, 204)
    const res = await list(a.tenantId, a.token)
    assert.equal(res.statusCode, 401)
    assert.equal(res.json().code, 'token_revoked')
  })

  it('when the Redis copy of a revocation is gone, then PostgreSQL still refuses the cached token', async () => {
    const a = await createTenant(t)
    assert.equal((await list(a.tenantId, a.token)).statusCode, 200)
    assert.equal((await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: { authorization: `Bearer ${a.token}` } })).statusCode, 204)
    assert.equal(await redis.del(`saas:revoked:${jtiOf(a.token)}`), 1, 'the Redis gate had the revocation')
    const res = await list(a.tenantId, a.token)
    assert.equal(res.statusCode, 401)
    assert.equal(res.json().code, 'token_revoked')
  })

  it('when a cached token’s user is disabled, then the next request is refused', async () => {
    const a = await createTenant(t)
    assert.equal((await list(a.tenantId, a.token)).statusCode, 200)
    await t.admin`update users set disabled = true where id = ${a.userId}`
    const res = await list(a.tenantId, a.token)
    assert.equal(res.statusCode, 401, res.body)
  })
})
