import assert from 'node:assert/strict'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../../src/platform/config.ts'
import { openDatabase } from '../../src/platform/db/connect.ts'
import { createTenant, startTestApp } from '../helpers/app.ts'
import type { TestApp, TestTenant } from '../helpers/app.ts'

/** Sends raw bytes and returns the raw answer: for what Node's HTTP parser refuses before Fastify. */
function rawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    let data = ''
    socket.on('data', (chunk) => (data += chunk.toString()))
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
    socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')))
  })
}

describe('HTTP edges', () => {
  let t: TestApp
  let a: TestTenant
  let port: number
  before(async () => {
    t = await startTestApp()
    a = await createTenant(t)
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    port = (t.app.server.address() as AddressInfo).port
  })
  after(async () => t.close())

  it('when a request has both Content-Length and Transfer-Encoding, then the answer is a 400 problem+json with a request id', async () => {
    const raw = await rawRequest(port, 'POST /v1/signup HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
    assert.match(raw, /^HTTP\/1\.1 400 /)
    assert.match(raw, /content-type: application\/problem\+json/i)
    assert.match(raw, /x-request-id: [0-9a-f-]{36}/i)
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))
    assert.equal(body.code, 'validation_failed')
  })

  it('when the headers are too large, then 431 problem+json', async () => {
    const raw = await rawRequest(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    assert.match(raw, /^HTTP\/1\.1 431 /)
    assert.match(raw, /application\/problem\+json/)
  })

  it('when a JSON body declares a charset other than UTF-8, then 415 and nothing is written', async () => {
    for (const charset of ['utf-16', 'latin1', '"iso-8859-1"']) {
      const res = await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects`, headers: { ...a.auth, 'content-type': `application/json; charset=${charset}` }, payload: '{"name":"x"}' })
      assert.equal(res.statusCode, 415, charset)
      assert.equal(res.json().code, 'unsupported_media_type')
    }
    const ok = await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects`, headers: { ...a.auth, 'content-type': 'application/json; charset=UTF-8' }, payload: '{"name":"x"}' })
    assert.equal(ok.statusCode, 201)
    const [row] = await t.admin<{ n: number }[]>`select count(*)::int as n from projects where tenant_id = ${a.tenantId}`
    assert.equal(row?.n, 1)
  })

  it('when a body carries thousands of unknown keys, then the 400 lists at most 100 of them', async () => {
    const body: Record<string, unknown> = { name: 'x' }
    for (let i = 0; i < 5_000; i++) body[`k${i}`] = 1
    const res = await t.app.inject({ method: 'POST', url: `/v1/tenants/${a.tenantId}/projects`, headers: a.auth, payload: body })
    assert.equal(res.statusCode, 400)
    assert.equal(res.json().errors.length, 100)
    assert.ok(res.body.length < 20_000)
  })

  it('when a sort or status is not one of the allowed values, then the message names the allowed values once', async () => {
    const res = await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects?sort=foo`, headers: a.auth })
    assert.equal(res.statusCode, 400)
    const errs = res.json().errors as { path: string; message: string }[]
    assert.equal(errs.length, 1)
    assert.equal(errs[0]?.path, '/querystring/sort')
    assert.match(errs[0]?.message ?? '', /"created_at", "-created_at", "name", "-name"/)
  })

  it('when a route is unknown and its URL is huge, then the 404 detail stays short', async () => {
    const res = await t.app.inject({ method: 'GET', url: `/x/${'a'.repeat(3_000)}` })
    assert.equal(res.statusCode, 404)
    assert.ok(res.json().detail.length < 200)
  })

  it('when the Authorization header is not "Bearer <token>", then the 401 says how to send it', async () => {
    const res = await t.app.inject({ method: 'GET', url: `/v1/tenants/${a.tenantId}/projects`, headers: { authorization: a.token } })
    assert.equal(res.statusCode, 401)
    assert.match(res.json().detail, /Authorization: Bearer <token>/)
  })
})

describe('embedded database lock', () => {
  it('when a second opener targets a data directory in use, then it is refused with a message naming the directory', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'saas-lock-'))
    const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, LOG_LEVEL: 'silent' })
    const first = await openDatabase(config)
    try {
      await assert.rejects(openDatabase(config), /is in use by process/)
    } finally {
      await first.close()
    }
    const again = await openDatabase(config)
    await again.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
})
