import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcessByStdio } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { after, describe, it } from 'node:test'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0))
    })
  })
}

interface Server {
  child: ChildProcessByStdio<null, Readable, Readable>
  output: () => string
  base: string
  exited: Promise<number | string>
}

/** `npm start` with nothing configured: no DATABASE_URL, no REDIS_URL, only a data directory. */
async function startServer(dataDir: string, port: number, metricsPort: number): Promise<Server> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'development', DATA_DIR: dataDir, PORT: String(port), METRICS_PORT: String(metricsPort), LOG_LEVEL: 'info' }
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)))
  const base = `http://127.0.0.1:${port}`
  const started = Date.now()
  const deadline = started + 120_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode} before listening:\n${out}`)
    const up = await fetch(`${base}/healthz`).then((r) => r.ok, () => false)
    if (up) break
    if (Date.now() > deadline) throw new Error(`the server did not listen within 120 s:\n${out}`)
    await sleep(100)
  }
  console.log(`# embedded server listening after ${Date.now() - started} ms`)
  return { child, output: () => out, base, exited }
}

async function stop(server: Server): Promise<number | string> {
  const started = Date.now()
  server.child.kill('SIGTERM')
  const code = await Promise.race([server.exited, sleep(30_000).then(() => 'timeout')])
  if (code === 'timeout') server.child.kill('SIGKILL')
  console.log(`# embedded server stopped after ${Date.now() - started} ms`)
  return code
}

async function call(base: string, method: string, url: string, body?: unknown, token?: string) {
  const res = await fetch(base + url, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, text }
}

describe('embedded mode (npm start with nothing configured)', { timeout: 300_000 }, () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'saas-embedded-'))
  let running: Server | undefined
  after(async () => {
    if (running && running.child.exitCode === null) await stop(running)
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('when started without DATABASE_URL and REDIS_URL, then it says so, serves signup and projects, and keeps the data across a restart', async () => {
    // The default JWT issuer is http://localhost:<PORT>, so the restart keeps the ports.
    const [port, metricsPort] = [await freePort(), await freePort()]
    running = await startServer(dataDir, port, metricsPort)
    const log = running.output()
    assert.match(log, /embedded PostgreSQL \(PGlite\)/, log)
    assert.match(log, /in-process counters/, log)
    assert.match(log, /not for production/, log)

    const ready = await call(running.base, 'GET', '/readyz')
    assert.equal(ready.status, 200)
    assert.deepEqual(ready.body, { status: 'ok', database: 'up', redis: 'embedded' })

    const slug = `smoke-${randomBytes(4).toString('hex')}`
    const signup = await call(running.base, 'POST', '/v1/signup', { tenant_name: 'Smoke test', tenant_slug: slug, email: 'owner@smoke.example.com', password: 'embedded mode password' })
    assert.equal(signup.status, 201, signup.text)
    const token = signup.body.access_token as string
    const tenantId = (signup.body.tenant as { id: string }).id

    const created = await call(running.base, 'POST', `/v1/tenants/${tenantId}/projects`, { name: 'Survives restarts' }, token)
    assert.equal(created.status, 201, created.text)
    const listed = await call(running.base, 'GET', `/v1/tenants/${tenantId}/projects`, undefined, token)
    assert.equal(listed.status, 200, listed.text)
    assert.deepEqual((listed.body.items as { id: string }[]).map((p) => p.id), [created.body.id])

    assert.equal(await stop(running), 0, running.output())

    // Same DATA_DIR: same database, same key-encryption key, same signing key, so the token still verifies.
    running = await startServer(dataDir, port, metricsPort)
    const again = await call(running.base, 'GET', `/v1/tenants/${tenantId}/projects/${String(created.body.id)}`, undefined, token)
    assert.equal(again.status, 200, again.text)
    assert.equal(again.body.name, 'Survives restarts')
    const login = await call(running.base, 'POST', '/v1/auth/login', { tenant_slug: slug, email: 'owner@smoke.example.com', password: 'embedded mode password' })
    assert.equal(login.status, 200, login.text)

    assert.equal(await stop(running), 0, running.output())
    assert.match(running.output(), /shutting down/)
  })
})
