/**
 * Threat 2, JWT tampering: every way of forging, altering or replaying an access token outside its
 * rules gets 401, with the contract's code and `WWW-Authenticate: Bearer error="invalid_token"`.
 * Each attack is aimed at a real tenant endpoint (GET /v1/tenants/{tid}/projects).
 */
import assert from 'node:assert/strict'
import { createSecretKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { SignJWT, exportJWK } from 'jose'
import type { JWTPayload } from 'jose'
import type { LightMyRequestResponse } from 'fastify'
import type { JwtAlg } from '../../src/platform/config.ts'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

const issuer = 'https://api.test'
const audience = 'saas-api'
const requiredClaims = ['iss', 'aud', 'sub', 'tid', 'roles', 'amr', 'iat', 'nbf', 'exp', 'jti'] as const

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const nowSec = () => Math.floor(Date.now() / 1000)

/** Claims exactly as the server issues them, for a user of a tenant; overrides may remove (undefined) or change any. */
function claimsFor(tenant: Pick<TestTenant, 'tenantId' | 'userId'>, overrides: Record<string, unknown> = {}): JWTPayload {
  const now = nowSec()
  const base: Record<string, unknown> = {
    iss: issuer, aud: audience, sub: tenant.userId, tid: tenant.tenantId, roles: ['owner'], amr: ['pwd'],
    iat: now, nbf: now, exp: now + 600, jti: randomUUID(), ...overrides,
  }
  return Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined))
}

async function sign(payload: JWTPayload, key: KeyObject | Uint8Array, header: { alg: string; kid?: string; typ?: string }): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header).sign(key)
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

const projectsOf = (t: TestApp, tenantId: string, authorization: string) =>
  t.app.inject({ method: 'GET', url: `/v1/tenants/${tenantId}/projects`, headers: { authorization } })

function assertRefused(res: LightMyRequestResponse, code: 'invalid_token' | 'token_expired' = 'invalid_token'): void {
  assert.equal(res.statusCode, 401, res.body)
  assert.equal(res.json().code, code)
  assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/)
}

function serverKey(t: TestApp) {
  const key = t.deps.keyRing.signer()
  assert.ok(key, 'the server has a signing key')
  return key
}

describe('threat 2: JWT tampering (ES256, the default)', () => {
  let t: TestApp
  let a: TestTenant
  let b: TestTenant
  before(async () => {
    t = await startTestApp()
    a = await createTenant(t)
    b = await createTenant(t)
  })
  after(async () => t.close())

  /** Signs with the server's own key and header, so that only the change under test differs. */
  const serverSigned = (payload: JWTPayload, header: Partial<{ alg: string; kid: string; typ: string }> = {}) => {
    const key = serverKey(t)
    return sign(payload, key.signKey, { alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header })
  }

  it('when a token is crafted exactly like the server’s, then it is accepted (the attacks below differ in one thing only)', async () => {
    assert.equal((await projectsOf(t, a.tenantId, `Bearer ${await serverSigned(claimsFor(a))}`)).statusCode, 200)
    assert.equal((await projectsOf(t, a.tenantId, a.auth.authorization)).statusCode, 200)
  })

  it('when the token says alg "none" and has no signature, then 401 invalid_token', async () => {
    const { kid } = serverKey(t)
    for (const alg of ['none', 'None', 'NONE']) {
      const token = `${b64({ alg, typ: 'at+jwt', kid })}.${b64(claimsFor(a))}.`
      assertRefused(await projectsOf(t, a.tenantId, `Bearer ${token}`))
    }
  })

  it('when the token is HS256 signed with the server’s public key as the secret, then 401 invalid_token', async () => {
    const key = serverKey(t)
    const pem = key.verifyKey.export({ type: 'spki', format: 'pem' })
    const der = key.verifyKey.export({ type: 'spki', format: 'der' })
    const jwk = JSON.stringify(await exportJWK(key.verifyKey))
    for (const secret of [Buffer.from(pem), der, Buffer.from(jwk)]) {
      const token = await sign(claimsFor(a), new Uint8Array(secret), { alg: 'HS256', kid: key.kid, typ: 'at+jwt' })
      assertRefused(await projectsOf(t, a.tenantId, `Bearer ${token}`))
    }
  })

  it('when the token is signed by a foreign ES256 key under the server’s kid, then 401 invalid_token', async () => {
    const token = await sign(claimsFor(a), foreignKey('ES256'), { alg: 'ES256', kid: serverKey(t).kid, typ: 'at+jwt' })
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${token}`))
  })

  it('when the token names an unknown kid, or none, then 401 invalid_token', async () => {
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${await serverSigned(claimsFor(a), { kid: 'no-such-key' })}`))
    const key = serverKey(t)
    const withoutKid = await sign(claimsFor(a), key.signKey, { alg: key.alg, typ: 'at+jwt' })
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${withoutKid}`))
  })

  it('when the payload is changed (another tenant, a longer life) and the signature kept, then 401 invalid_token', async () => {
    const [header, payload, signature] = a.token.split('.')
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString())
    // tid and sub both point at tenant B's real user: only the signature can tell.
    const flipped = `${header}.${b64({ ...claims, tid: b.tenantId, sub: b.userId })}.${signature}`
    assertRefused(await projectsOf(t, b.tenantId, `Bearer ${flipped}`))
    // The same claims, correctly signed, would pass: the refusal above is the signature's doing.
    assert.equal((await projectsOf(t, b.tenantId, `Bearer ${await serverSigned({ ...claims, tid: b.tenantId, sub: b.userId })}`)).statusCode, 200)
    const escalated = `${header}.${b64({ ...claims, roles: ['owner'], exp: claims.exp + 86_400 })}.${signature}`
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${escalated}`))
  })

  it('when one character of the signature is changed, then 401 invalid_token', async () => {
    const [header, payload, signature = ''] = a.token.split('.')
    const swapped = signature.startsWith('A') ? `B${signature.slice(1)}` : `A${signature.slice(1)}`
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${header}.${payload}.${swapped}`))
  })

  it('when the token expired beyond the leeway, then 401 token_expired', async () => {
    const now = nowSec()
    const token = await serverSigned(claimsFor(a, { iat: now - 700, nbf: now - 700, exp: now - 60 }))
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${token}`), 'token_expired')
  })

  it('when the token is not yet valid beyond the leeway (nbf in the future), then 401 invalid_token', async () => {
    const now = nowSec()
    const token = await serverSigned(claimsFor(a, { nbf: now + 120, exp: now + 720 }))
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${token}`))
  })

  it('when the issuer is wrong, then 401 invalid_token', async () => {
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${await serverSigned(claimsFor(a, { iss: 'https://evil.test' }))}`))
  })

  it('when the audience is wrong, then 401 invalid_token', async () => {
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${await serverSigned(claimsFor(a, { aud: 'another-api' }))}`))
  })

  for (const claim of requiredClaims)
    it(`when the ${claim} claim is missing, then 401 invalid_token`, async () => {
      assertRefused(await projectsOf(t, a.tenantId, `Bearer ${await serverSigned(claimsFor(a, { [claim]: undefined }))}`))
    })

  it('when the typ header is JWT (or absent) instead of at+jwt, then 401 invalid_token', async () => {
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${await serverSigned(claimsFor(a), { typ: 'JWT' })}`))
    const key = serverKey(t)
    const untyped = await sign(claimsFor(a), key.signKey, { alg: key.alg, kid: key.kid })
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${untyped}`))
  })

  it('when a correctly signed token names a tenant that does not exist, then 401 invalid_token', async () => {
    const ghost = { tenantId: randomUUID(), userId: randomUUID() }
    assertRefused(await projectsOf(t, ghost.tenantId, `Bearer ${await serverSigned(claimsFor(ghost))}`))
  })

  it('when a correctly signed token names a user that is not in the tenant, then 401 invalid_token', async () => {
    assertRefused(await projectsOf(t, a.tenantId, `Bearer ${await serverSigned(claimsFor({ tenantId: a.tenantId, userId: b.userId }))}`))
  })

  it('when the roles claim holds an unknown role (or is empty or not a list), then 401 invalid_token', async () => {
    for (const roles of [['superadmin'], ['owner', 'root'], [], 'owner'])
      assertRefused(await projectsOf(t, a.tenantId, `Bearer ${await serverSigned(claimsFor(a, { roles }))}`))
  })

  it('when the amr claim lacks pwd or holds an unknown method, then 401 invalid_token', async () => {
    for (const amr of [[], ['otp'], ['pwd', 'face']])
      assertRefused(await projectsOf(t, a.tenantId, `Bearer ${await serverSigned(claimsFor(a, { amr }))}`))
  })

  it('when the Authorization header is malformed, then 401 invalid_token', async () => {
    for (const header of ['Bearer', 'Bearer ', `Bearer  ${a.token}`, `Bearer ${a.token} extra`, `Token ${a.token}`, `Basic ${Buffer.from('u:p').toString('base64')}`, `Bearer ${a.token},${a.token}`, 'Bearer a.b.c'])
      assertRefused(await projectsOf(t, a.tenantId, header))
  })
})

describe('threat 2: each configured algorithm verifies its own tokens and refuses every other', () => {
  const algs: JwtAlg[] = ['EdDSA', 'RS256', 'HS256']
  const apps = new Map<JwtAlg, TestApp>()
  let es256: TestApp
  before(async () => {
    es256 = await startTestApp()
    for (const alg of algs) apps.set(alg, await startTestApp({ JWT_ALG: alg }))
  })
  after(async () => {
    await es256.close()
    for (const app of apps.values()) await app.close()
  })

  for (const alg of algs) {
    it(`when JWT_ALG=${alg}, then signup issues ${alg} tokens that verify, and the JWKS publishes what it should`, async () => {
      const t = apps.get(alg)
      assert.ok(t)
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/signup',
        payload: { tenant_name: 'Alg', tenant_slug: `alg-${randomBytes(5).toString('hex')}`, email: `o-${randomBytes(4).toString('hex')}@example.com`, password: 'a long enough passphrase' },
      })
      assert.equal(res.statusCode, 201, res.body)
      const { tenant, access_token } = res.json<{ tenant: { id: string }; access_token: string }>()
      assert.equal(JSON.parse(Buffer.from(access_token.split('.')[0] ?? '', 'base64url').toString()).alg, alg)
      assert.equal((await projectsOf(t, tenant.id, `Bearer ${access_token}`)).statusCode, 200)
      const jwks = (await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<{ keys: Record<string, string | undefined>[] }>()
      if (alg === 'HS256') assert.deepEqual(jwks.keys, [], 'a shared secret is never published')
      else assert.ok(jwks.keys.length >= 1 && jwks.keys.every((k) => k.alg === alg && k.kid && k.d === undefined))
    })

    it(`when JWT_ALG=${alg}, then tokens of every other algorithm are refused, even under the server’s kid`, async () => {
      const t = apps.get(alg)
      assert.ok(t)
      const a = await createTenant(t)
      const { kid } = serverKey(t)
      for (const other of (['ES256', 'EdDSA', 'RS256', 'HS256'] as const).filter((x) => x !== alg)) {
        const token = await sign(claimsFor(a), foreignKey(other), { alg: other, kid, typ: 'at+jwt' })
        assertRefused(await projectsOf(t, a.tenantId, `Bearer ${token}`))
      }
      const key = serverKey(t)
      if (key.alg !== 'HS256') {
        const pem = key.verifyKey.export({ type: 'spki', format: 'pem' })
        const confused = await sign(claimsFor(a), new Uint8Array(Buffer.from(pem)), { alg: 'HS256', kid, typ: 'at+jwt' })
        assertRefused(await projectsOf(t, a.tenantId, `Bearer ${confused}`))
      }
      // Signed by the real key of a server configured for ES256, for a tenant that exists here: refused.
      const esKey = serverKey(es256)
      assertRefused(await projectsOf(t, a.tenantId, `Bearer ${await sign(claimsFor(a), esKey.signKey, { alg: esKey.alg, kid: esKey.kid, typ: 'at+jwt' })}`))
      // And the other way round.
      const e = await createTenant(es256)
      assertRefused(await projectsOf(es256, e.tenantId, `Bearer ${await sign(claimsFor(e), key.signKey, { alg: key.alg, kid: key.kid, typ: 'at+jwt' })}`))
    })
  }
})
