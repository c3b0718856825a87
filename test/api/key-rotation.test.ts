import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { decodeProtectedHeader } from 'jose'
import { clockToleranceSec, keyReloadIntervalMs } from '../../src/platform/auth/key-ring.ts'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'
import { repoRoot, waitFor } from '../helpers/processes.ts'

/** `npm run admin -- keys rotate` against the test database, with the servers' key-encryption key. */
function rotate(t: TestApp): Promise<{ code: number | null; stdout: string; stderr: string; kid: string }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'saas-admin-'))
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    USER: 'ops-bob',
    NODE_ENV: 'test',
    DATABASE_URL: t.db.url,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    KEY_ENCRYPTION_KEY: t.deps.config.keyEncryptionKey?.toString('base64'),
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/admin.ts', 'keys', 'rotate'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.once('error', reject)
    child.once('close', (code) => {
      rmSync(dataDir, { recursive: true, force: true })
      resolve({ code, stdout, stderr, kid: /new ES256 signing key (\S+)/.exec(stdout)?.[1] ?? '' })
    })
  })
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid

describe('signing key rotation', () => {
  let t: TestApp
  let owner: TestTenant
  before(async () => {
    t = await startTestApp()
    owner = await createTenant(t)
  })
  after(async () => t.close())

  const jwksKids = async () => {
    const res = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    assert.equal(res.statusCode, 200)
    return res.json<{ keys: { kid: string }[] }>().keys.map((k) => k.kid).sort()
  }
  const list = (token: string) => t.app.inject({ method: 'GET', url: `/v1/tenants/${owner.tenantId}/projects`, headers: { authorization: `Bearer ${token}` } })
  const issue = async () => (await t.deps.tokens.issue({ userId: owner.userId, tenantId: owner.tenantId, role: 'owner', amr: ['pwd'] })).token
  /** The keys that can verify now, from the database: unretired, or retired within the verification window. */
  const verifiable = async () => {
    const windowSec = t.deps.config.jwt.accessTtlSec + clockToleranceSec
    const rows = await t.admin<{ kid: string }[]>`
      select kid from signing_keys where retired_at is null or retired_at > now() - make_interval(secs => ${windowSec}) order by kid`
    return rows.map((r) => r.kid).sort()
  }

  it('when keys are rotated twice, then new tokens carry the newest kid, every earlier token still verifies, and the JWKS lists all three keys', async () => {
    const k0 = t.deps.keyRing.signer()?.kid
    assert.ok(k0)
    const token0 = await issue()
    assert.equal(kidOf(token0), k0)

    const r1 = await rotate(t)
    assert.equal(r1.code, 0, r1.stderr)
    assert.match(r1.stdout, new RegExp(`retired \\(still verifying until their tokens expire\\): ${k0}`))
    await t.deps.keyRing.reload()
    const token1 = await issue()
    assert.equal(kidOf(token1), r1.kid)

    const r2 = await rotate(t)
    assert.equal(r2.code, 0, r2.stderr)
    await t.deps.keyRing.reload()
    const token2 = await issue()
    assert.equal(kidOf(token2), r2.kid)
    assert.equal(new Set([k0, r1.kid, r2.kid]).size, 3)

    // Several keys at once: each token verifies with the key that signed it.
    for (const token of [token0, token1, token2]) assert.equal((await list(token)).statusCode, 200)
    assert.deepEqual(await jwksKids(), [k0, r1.kid, r2.kid].sort())
    assert.deepEqual(await jwksKids(), await verifiable())
    const stored = await t.admin<{ kid: string; retired: boolean }[]>`select kid, retired_at is not null as retired from signing_keys`
    assert.deepEqual(stored.filter((k) => !k.retired).map((k) => k.kid), [r2.kid])

    // Each rotation is an operator event (no tenant: operator_events only).
    const ops = await t.admin<{ action: string; operator: string; target_id: string; details: { retired: string[] } }[]>`
      select action, operator, target_id, details from operator_events where action = 'signing_key.rotated' order by at, id`
    assert.deepEqual(ops.map((o) => [o.operator, o.target_id]), [['ops-bob', r1.kid], ['ops-bob', r2.kid]])
    assert.deepEqual(ops[1]?.details.retired, [r1.kid])
    const [inTenantLog] = await t.admin<{ n: number }[]>`select count(*)::int as n from audit_events where action = 'signing_key.rotated'`
    assert.equal(inTenantLog?.n, 0)
  })

  it('when a retired key\'s verification window has passed, then the JWKS drops it and its tokens are refused, while a key still inside its window stays', async () => {
    const current = t.deps.keyRing.signer()?.kid
    assert.ok(current)
    const oldToken = await issue()
    const r = await rotate(t)
    assert.equal(r.code, 0, r.stderr)
    await t.deps.keyRing.reload()
    assert.ok((await jwksKids()).includes(current))
    assert.equal((await list(oldToken)).statusCode, 200)

    // Time passes for that key only: retired longer ago than ACCESS_TOKEN_TTL_SECONDS + 30 s.
    const windowSec = t.deps.config.jwt.accessTtlSec + clockToleranceSec
    await t.admin`update signing_keys set retired_at = now() - make_interval(secs => ${windowSec + 1}) where kid = ${current}`
    await t.deps.keyRing.reload()
    const kids = await jwksKids()
    assert.ok(!kids.includes(current), JSON.stringify(kids))
    assert.ok(kids.includes(r.kid))
    assert.deepEqual(kids, await verifiable())
    const refused = await list(oldToken)
    assert.equal(refused.statusCode, 401, refused.body)
    assert.equal(refused.json<{ code: string }>().code, 'invalid_token')

    // Five seconds short of the window, a retired key still verifies.
    await t.admin`update signing_keys set retired_at = now() - make_interval(secs => ${windowSec - 5}) where kid = ${current}`
    await t.deps.keyRing.reload()
    assert.ok((await jwksKids()).includes(current))
    assert.equal((await list(oldToken)).statusCode, 200)
  })

  it('when an operator rotates keys, then a running server signs with the new key within its reload interval, without being told', async () => {
    assert.ok(keyReloadIntervalMs <= 10_000, 'contract: within 10 s')
    const r = await rotate(t)
    assert.equal(r.code, 0, r.stderr)
    const started = Date.now()
    await waitFor('the server to sign with the rotated key', () => t.deps.keyRing.signer()?.kid === r.kid, 10_000, 100)
    assert.ok(Date.now() - started <= 10_000)
    assert.equal(kidOf(await issue()), r.kid)
    assert.ok((await jwksKids()).includes(r.kid))
  })
})
