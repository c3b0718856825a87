import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { after, before, describe, it } from 'node:test'
import { startTestApp } from '../helpers/app.ts'
import type { TestApp } from '../helpers/app.ts'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const spectral = path.join(repoRoot, 'node_modules', '.bin', 'spectral')
const operationMethods = ['get', 'put', 'post', 'delete', 'patch'] as const

type Doc = {
  openapi: string
  servers: { url: string }[]
  paths: Record<string, Record<string, { security?: unknown[]; operationId?: string; responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, unknown> }> }>>
  components: { securitySchemes: Record<string, unknown> }
}

/**
 * Every method and URL the app serves, read from Fastify's own route tree (printRoutes), so a
 * route hidden from the document or registered without a schema cannot slip past.
 */
function registeredRoutes(app: FastifyInstance): { method: string; url: string }[] {
  const out: { method: string; url: string }[] = []
  const prefixes: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:[│ ] {3})*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (!m) continue
    const depth = (m[1] ?? '').length / 4
    const url = (depth > 0 ? (prefixes[depth - 1] ?? '') : '') + (m[2] ?? '')
    prefixes[depth] = url
    prefixes.length = depth + 1
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) out.push({ method, url })
  }
  return out
}

/** The route tree merges sibling parameters ("{id}|{projectId}"); the route is one of the spellings. */
function expand(pathWithAlternatives: string): string[] {
  const m = /\{[A-Za-z0-9_]+\}(?:\|\{[A-Za-z0-9_]+\})+/.exec(pathWithAlternatives)
  if (!m) return [pathWithAlternatives]
  return m[0].split('|').flatMap((alt) => expand(pathWithAlternatives.slice(0, m.index) + alt + pathWithAlternatives.slice(m.index + m[0].length)))
}

describe('OpenAPI document and /docs', () => {
  let t: TestApp
  let doc: Doc
  let raw: string
  before(async () => {
    t = await startTestApp()
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' })
    assert.equal(res.statusCode, 200)
    raw = res.body
    doc = res.json()
  })
  after(async () => t.close())

  it('when /openapi.json is fetched, then it is OpenAPI 3.1 with a bearer scheme and an https server', () => {
    assert.equal(doc.openapi, '3.1.0')
    assert.ok(doc.components.securitySchemes.bearer)
    assert.ok(doc.servers.every((s) => s.url.startsWith('https://') || s.url.startsWith('/')))
  })

  it('when the app registers a route, then the document describes that method and path', () => {
    const routes = registeredRoutes(t.app).filter((r) => r.method !== 'HEAD' && r.url !== '/docs' && !r.url.startsWith('/docs/'))
    assert.ok(routes.length >= 7, `expected the API routes, got ${JSON.stringify(routes)}`)
    const missing = routes
      .map((r) => ({ method: r.method.toLowerCase(), path: r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}') }))
      .filter((r) => !expand(r.path).some((p) => doc.paths[p]?.[r.method]))
    assert.deepEqual(missing, [], 'routes missing from /openapi.json')
  })

  it('when an operation needs a token, then 401 and 429 are documented as problem+json, 429 with Retry-After, successes with RateLimit headers', () => {
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const method of operationMethods) {
        const op = item[method]
        if (!op) continue
        assert.ok(op.operationId, `${method} ${p} has an operationId`)
        if (Array.isArray(op.security) && op.security.length === 0) continue
        for (const status of ['401', '429']) {
          const r = op.responses[status]
          assert.ok(r?.content?.['application/problem+json'], `${method} ${p} documents ${status} as problem+json`)
        }
        assert.ok(op.responses['429']?.headers?.['Retry-After'], `${method} ${p} 429 has Retry-After`)
        const ok = Object.entries(op.responses).find(([s]) => s.startsWith('2'))
        assert.ok(ok?.[1].headers?.['RateLimit-Limit'], `${method} ${p} success documents RateLimit-Limit`)
      }
    }
  })

  it('when signup, login or a probe is documented, then it asks for no token', () => {
    for (const p of ['/healthz', '/readyz', '/v1/signup', '/v1/auth/login', '/v1/auth/refresh']) {
      const item = doc.paths[p]
      if (!item) continue // the route's module may not be registered in this build
      const op = item.get ?? item.post
      assert.deepEqual(op?.security, [], `${p} is documented as public`)
    }
  })

  it('when spectral lints the document with spectral:oas and the OWASP ruleset, then it reports no errors', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'openapi-lint-'))
    try {
      const file = path.join(dir, 'openapi.json')
      writeFileSync(file, raw)
      const run = spawnSync(spectral, ['lint', file, '--ruleset', path.join(repoRoot, '.spectral.yaml'), '--fail-severity', 'error', '--format', 'json', '--quiet'], {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 120_000,
      })
      const results = JSON.parse(run.stdout || '[]') as { code: string; severity: number; path: string[]; message: string }[]
      const errs = results.filter((r) => r.severity === 0).map((r) => `${r.code} at ${r.path.join('.')}: ${r.message}`)
      assert.deepEqual(errs, [], 'spectral errors')
      assert.equal(run.status, 0, run.stderr)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('when /docs is opened, then it serves an HTML page whose script loads from this origin', async () => {
    let res = await t.app.inject({ method: 'GET', url: '/docs' })
    if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) res = await t.app.inject({ method: 'GET', url: new URL(String(res.headers.location), 'http://x/docs').pathname })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /text\/html/)
    const scripts = [...res.body.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1] ?? '')
    assert.ok(scripts.length > 0, 'the page loads a script')
    for (const src of scripts) {
      assert.ok(!/^https?:/.test(src), `script ${src} comes from this origin (CSP allows 'self' only)`)
      const js = await t.app.inject({ method: 'GET', url: new URL(src, 'http://x/docs/').pathname })
      assert.equal(js.statusCode, 200, `script ${src}`)
      assert.match(String(js.headers['content-type']), /javascript/)
    }
  })
})
