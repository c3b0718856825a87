import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { addUser, createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

/**
 * Login enumeration (issue 3, point 8): an attacker must not learn whether a tenant or an email
 * exists, or whether a user is disabled, from the status, the body or the time of a failed login.
 * The timing check is statistical and bounded: medians of interleaved samples, compared as ratios
 * (no absolute time), so machine load shifts every case alike. Without the dummy hash an unknown
 * account answers some 20× faster than a wrong password, far outside the bound.
 */

const rounds = 9
/** Medians within this factor of each other count as indistinguishable at this sample size. */
const maxMedianRatio = 2
const randomIp = () => `2001:db8:e::${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`

describe('login enumeration', () => {
  let t: TestApp
  let known: TestTenant
  let disabled: TestTenant
  before(async () => {
    t = await startTestApp({ RATE_LIMIT_AUTH_PER_MINUTE: '100000' })
    known = await createTenant(t)
    disabled = await addUser(t, known, 'member')
    await t.admin`update users set disabled = true where id = ${disabled.userId}`
  })
  after(async () => t.close())

  const cases = () => ({
    'wrong password': { tenant_slug: known.slug, email: known.email, password: 'a wrong but long password' },
    'unknown email': { tenant_slug: known.slug, email: `ghost-${randomBytes(4).toString('hex')}@example.com`, password: 'a wrong but long password' },
    'unknown tenant': { tenant_slug: `no-${randomBytes(4).toString('hex')}`, email: known.email, password: 'a wrong but long password' },
    'disabled user, right password': { tenant_slug: known.slug, email: disabled.email, password: disabled.password },
  })

  const login = (payload: Record<string, string>) => t.app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress: randomIp(), payload })

  it('when tenant, email, password or account state is wrong, then status, body and headers are identical', async () => {
    const seen = new Map<string, string>()
    for (const [name, payload] of Object.entries(cases())) {
      const res = await login(payload)
      const body = { ...res.json<Record<string, unknown>>(), request_id: undefined }
      seen.set(name, JSON.stringify({ status: res.statusCode, body, www: res.headers['www-authenticate'], type: res.headers['content-type'] }))
    }
    const distinct = new Set(seen.values())
    assert.equal(distinct.size, 1, [...seen.entries()].map(([k, v]) => `${k}: ${v}`).join('\n'))
    assert.match([...distinct][0] ?? '', /"status":401.*invalid_credentials/)
  })

  it('when failed logins are timed over interleaved rounds, then the medians of every case stay within a factor of 2', async () => {
    const samples = new Map<string, number[]>()
    await login(cases()['wrong password']) // warm-up: the dummy hash is computed once, lazily
    for (let round = 0; round < rounds; round++) {
      for (const [name, payload] of Object.entries(cases())) {
        const start = process.hrtime.bigint()
        const res = await login(payload)
        const ms = Number(process.hrtime.bigint() - start) / 1e6
        assert.equal(res.statusCode, 401)
        samples.set(name, [...(samples.get(name) ?? []), ms])
      }
    }
    const medians = [...samples.entries()].map(([name, ms]) => [name, [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)] ?? 0] as const)
    const values = medians.map(([, m]) => m)
    const ratio = Math.max(...values) / Math.min(...values)
    assert.ok(ratio < maxMedianRatio, `median ratio ${ratio.toFixed(2)}: ${medians.map(([n, m]) => `${n} ${m.toFixed(1)} ms`).join(', ')}`)
  })
})
