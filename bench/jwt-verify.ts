/**
 * What does access-token verification cost, per algorithm, on this machine?
 *
 *   node --import tsx bench/jwt-verify.ts [iterations] [algs]
 *   e.g. node --import tsx bench/jwt-verify.ts 20000 ES256,EdDSA
 *
 * For each algorithm it verifies the same token (signed by AccessTokens.issue) over and over:
 *   jose      the previous path: jose jwtVerify with the ring's KeyObject and the same options;
 *   crypto    AccessTokens.verify with no cache: node:crypto with the key prepared once;
 *   cached    AccessTokens.verify with its verified-token cache (every call after the first a hit);
 *   cached×1k the cache with 1 000 distinct tokens verified in turn (all hits after the first round).
 * The variants run interleaved, in several rounds, and each figure is the median round; ratios are
 * against jose in the same run. CPU µs/op (process.cpuUsage) is printed too, since the machine may be
 * shared and wall-clock ops/s is then noisy.
 */
import { performance } from 'node:perf_hooks'
import { jwtVerify } from 'jose'
import type { JWTHeaderParameters } from 'jose'
import { AccessTokens } from '../src/platform/auth/access-tokens.ts'
import { KeyRing, clockToleranceSec } from '../src/platform/auth/key-ring.ts'
import { generateKeyMaterial, keyFromMaterial } from '../src/platform/auth/signing-keys.ts'
import { loadConfig } from '../src/platform/config.ts'
import type { JwtAlg } from '../src/platform/config.ts'

const iterations = Number(process.argv[2] ?? 20_000)
const algs = (process.argv[3] ?? 'ES256,EdDSA,RS256,HS256').split(',') as JwtAlg[]
const rounds = 5
const requiredClaims = ['iss', 'aud', 'sub', 'tid', 'roles', 'amr', 'iat', 'nbf', 'exp', 'jti']

interface Sample {
  opsPerSec: number
  cpuUsPerOp: number
}

async function time(n: number, run: (i: number) => Promise<unknown>): Promise<Sample> {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await run(i)
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { opsPerSec: (n / ms) * 1000, cpuUsPerOp: (cpu.user + cpu.system) / n }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

async function benchAlg(alg: JwtAlg) {
  const config = loadConfig({ NODE_ENV: 'test', JWT_ALG: alg, JWT_ISSUER: 'https://api.bench', LOG_LEVEL: 'silent' })
  const ring = KeyRing.of(config, [await keyFromMaterial(alg, generateKeyMaterial(alg), new Date())])
  const plain = new AccessTokens(config, ring, { cacheSize: 0 })
  const cached = new AccessTokens(config, ring)
  const many = new AccessTokens(config, ring)
  const subject = { userId: crypto.randomUUID(), tenantId: crypto.randomUUID(), role: 'member' as const, amr: ['pwd'] as const }
  const { token } = await plain.issue(subject)
  const tokens = await Promise.all(Array.from({ length: 1000 }, () => plain.issue(subject).then((t) => t.token)))
  const joseOptions = { algorithms: [alg], issuer: config.jwt.issuer, audience: config.jwt.audience, typ: 'at+jwt', clockTolerance: clockToleranceSec, requiredClaims }
  const keyFor = (header: JWTHeaderParameters) => {
    const key = typeof header.kid === 'string' ? ring.verifyKey(header.kid) : undefined
    if (!key) throw new Error('unknown kid')
    return key
  }
  // Same answer from every path before timing anything.
  const viaJose = (await jwtVerify(token, keyFor, joseOptions)).payload
  const viaCrypto = await plain.verify(token)
  if (viaJose.jti !== viaCrypto.jti || viaJose.sub !== viaCrypto.sub) throw new Error('paths disagree')

  const variants: Record<string, (i: number) => Promise<unknown>> = {
    jose: () => jwtVerify(token, keyFor, joseOptions),
    crypto: () => plain.verify(token),
    cached: () => cached.verify(token),
    'cached×1k': (i) => many.verify(tokens[i % tokens.length] ?? token),
  }
  const warm = Math.min(2000, iterations)
  for (const run of Object.values(variants)) await time(warm, run)
  const samples: Record<string, Sample[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
  for (let r = 0; r < rounds; r++) for (const [name, run] of Object.entries(variants)) samples[name]?.push(await time(iterations, run))
  const rows = Object.entries(samples).map(([name, s]) => ({ name, opsPerSec: median(s.map((x) => x.opsPerSec)), cpuUsPerOp: median(s.map((x) => x.cpuUsPerOp)) }))
  const base = rows[0]?.opsPerSec ?? 1
  const baseCpu = rows[0]?.cpuUsPerOp ?? 1
  return rows.map((row) => ({ alg, ...row, ratio: row.opsPerSec / base, cpuRatio: baseCpu / row.cpuUsPerOp }))
}

const all = []
for (const alg of algs) all.push(...(await benchAlg(alg)))
console.log(`jwt verification, ${iterations} verifications × ${rounds} rounds per variant (median round), one thread, node ${process.version}`)
console.log('alg    variant        ops/s   × jose   CPU µs/op   × jose (CPU)')
for (const r of all)
  console.log(
    `${r.alg.padEnd(6)} ${r.name.padEnd(10)} ${Math.round(r.opsPerSec).toString().padStart(9)}  ${r.ratio.toFixed(2).padStart(6)}   ${r.cpuUsPerOp.toFixed(1).padStart(9)}   ${r.cpuRatio.toFixed(2).padStart(6)}`,
  )
