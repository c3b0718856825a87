import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import postgres from 'postgres'
import { ConfigError, loadConfig } from '../../src/platform/config.ts'
import { migrate } from '../../src/platform/db/migrate.ts'
import { openDeps } from '../../src/platform/deps.ts'
import { createTestDatabase, testRedisUrl } from '../helpers/app.ts'
import type { TestDatabase } from '../helpers/app.ts'
import { captureLogger, createLoginRole, dropRole, es256Pem, spawnMain } from '../helpers/processes.ts'

type Env = Record<string, string | undefined>

const pem = es256Pem()
const kek = () => randomBytes(32).toString('base64')

/** A complete production environment; each test removes or spoils one thing. */
const production = (over: Env = {}): Env => ({
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://app@db.internal:5432/saas',
  REDIS_URL: 'redis://cache.internal:6379',
  KEY_ENCRYPTION_KEY: kek(),
  JWT_PRIVATE_KEY: pem,
  ...over,
})

function refuses(env: Env, variable: string, message?: RegExp): void {
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
      assert.equal(err.variable, variable)
      assert.ok(err.message.startsWith(`${variable}:`), err.message)
      if (message) assert.match(err.message, message)
      return true
    },
  )
}

describe('configuration: loadConfig', () => {
  let dir: string
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'saas-config-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  const file = (name: string, content: string) => {
    const p = path.join(dir, name)
    writeFileSync(p, content)
    return p
  }

  it('when nothing is set, then development defaults load', () => {
    const c = loadConfig({})
    assert.equal(c.nodeEnv, 'development')
    assert.equal(c.http.port, 3000)
    assert.equal(c.http.host, '127.0.0.1')
    assert.equal(c.metricsPort, 9464)
    assert.equal(c.jwt.alg, 'ES256')
    assert.equal(c.jwt.accessTtlSec, 600)
    assert.equal(c.redisUrl, undefined)
    assert.equal(c.db.url, undefined)
    assert.deepEqual(c.http.trustedProxies, [])
    assert.equal(c.requireMfaForAdmin, false)
    assert.ok(Object.isFrozen(c))
  })

  it('when a port is not a number, then PORT is named', () => {
    refuses({ PORT: 'abc' }, 'PORT')
    refuses({ PORT: '70000' }, 'PORT')
    refuses({ METRICS_PORT: '-1' }, 'METRICS_PORT')
  })

  it('when the public and metrics listeners share a port, then METRICS_PORT is named', () => {
    refuses({ PORT: '8080', METRICS_PORT: '8080' }, 'METRICS_PORT')
  })

  it('when JWT_ALG is none or unknown, then JWT_ALG is named', () => {
    refuses({ JWT_ALG: 'none' }, 'JWT_ALG')
    refuses({ JWT_ALG: 'HS512' }, 'JWT_ALG')
  })

  it('when KEY_ENCRYPTION_KEY is not 32 bytes of base64, then it is named and not echoed', () => {
    const short = randomBytes(16).toString('base64')
    refuses({ KEY_ENCRYPTION_KEY: short }, 'KEY_ENCRYPTION_KEY')
    refuses({ KEY_ENCRYPTION_KEY: randomBytes(33).toString('base64') }, 'KEY_ENCRYPTION_KEY')
    refuses({ KEY_ENCRYPTION_KEY: 'not base64 at all, but long enough to be 32+ chars' }, 'KEY_ENCRYPTION_KEY')
    try {
      loadConfig({ KEY_ENCRYPTION_KEY: short })
    } catch (err) {
      assert.doesNotMatch(String(err), new RegExp(short.replace(/[+/=]/g, '.')))
    }
  })

  it('when JWT_SECRET is shorter than 32 bytes, then JWT_SECRET is named', () => {
    refuses({ JWT_ALG: 'HS256', JWT_SECRET: 'x'.repeat(31) }, 'JWT_SECRET')
    assert.equal(loadConfig({ JWT_ALG: 'HS256', JWT_SECRET: 'x'.repeat(32) }).jwt.secret, 'x'.repeat(32))
  })

  it('when signing material does not fit the algorithm, then the variable is named', () => {
    refuses({ JWT_PRIVATE_KEY: 'not a pem' }, 'JWT_PRIVATE_KEY')
    refuses({ JWT_ALG: 'HS256', JWT_PRIVATE_KEY: pem }, 'JWT_PRIVATE_KEY')
    refuses({ JWT_ALG: 'ES256', JWT_SECRET: 'y'.repeat(40) }, 'JWT_SECRET')
  })

  it('when DATABASE_URL or REDIS_URL is not a URL of the right kind, then it is named without echoing it', () => {
    refuses({ DATABASE_URL: 'not a url with secret-password' }, 'DATABASE_URL')
    refuses({ DATABASE_URL: 'mysql://u:p@h/db' }, 'DATABASE_URL')
    refuses({ REDIS_URL: 'http://cache:6379' }, 'REDIS_URL')
    refuses({ DATABASE_OWNER_URL: 'postgres://owner@h/db' }, 'DATABASE_OWNER_URL')
    try {
      loadConfig({ DATABASE_URL: 'not a url with secret-password' })
    } catch (err) {
      assert.doesNotMatch(String(err), /secret-password/)
    }
  })

  it('when TRUSTED_PROXIES holds a bad entry, then TRUSTED_PROXIES is named', () => {
    for (const bad of ['10.0.0.0/33', 'proxy.internal', '10.0.0.0/8/1', '10.0.0.0/x', '::1/129', '10.0.0.0/8, 300.1.1.1'])
      refuses({ TRUSTED_PROXIES: bad }, 'TRUSTED_PROXIES')
    assert.deepEqual(loadConfig({ TRUSTED_PROXIES: ' 10.0.0.0/8, 192.168.1.7 ,fd00::/8' }).http.trustedProxies, ['10.0.0.0/8', '192.168.1.7', 'fd00::/8'])
  })

  it('when other settings are malformed, then each is named', () => {
    refuses({ NODE_ENV: 'staging' }, 'NODE_ENV')
    refuses({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL')
    refuses({ SIGNUP_ENABLED: 'yes' }, 'SIGNUP_ENABLED')
    refuses({ RATE_LIMIT_AUTH_PER_MINUTE: '0' }, 'RATE_LIMIT_AUTH_PER_MINUTE')
    refuses({ RATE_LIMIT_TENANT_PER_MINUTE: '1.5' }, 'RATE_LIMIT_TENANT_PER_MINUTE')
    refuses({ ACCESS_TOKEN_TTL_SECONDS: '10' }, 'ACCESS_TOKEN_TTL_SECONDS')
  })

  it('when both X and X_FILE are set, then X is named', () => {
    refuses({ JWT_ALG: 'HS256', JWT_SECRET: 'x'.repeat(32), JWT_SECRET_FILE: file('s1', 'y'.repeat(32)) }, 'JWT_SECRET', /not both/)
    refuses({ KEY_ENCRYPTION_KEY: kek(), KEY_ENCRYPTION_KEY_FILE: file('k1', kek()) }, 'KEY_ENCRYPTION_KEY', /not both/)
    refuses({ DATABASE_URL: 'postgres://a@h/d', DATABASE_URL_FILE: file('d1', 'postgres://b@h/d') }, 'DATABASE_URL', /not both/)
  })

  it('when X_FILE cannot be read, then X_FILE is named', () => {
    refuses({ KEY_ENCRYPTION_KEY_FILE: path.join(dir, 'missing') }, 'KEY_ENCRYPTION_KEY_FILE')
    const unreadable = file('unreadable', kek())
    chmodSync(unreadable, 0o000)
    // root reads anything: only assert where permissions apply.
    if (process.getuid?.() !== 0) refuses({ KEY_ENCRYPTION_KEY_FILE: unreadable }, 'KEY_ENCRYPTION_KEY_FILE')
    refuses({ JWT_PRIVATE_KEY_FILE: dir }, 'JWT_PRIVATE_KEY_FILE')
  })

  it('when secrets come as X_FILE, then the files are read and trimmed', () => {
    const key = kek()
    const c = loadConfig({
      KEY_ENCRYPTION_KEY_FILE: file('kek', `${key}\n`),
      JWT_PRIVATE_KEY_FILE: file('jwt.pem', pem),
      DATABASE_URL_FILE: file('db', 'postgres://app:pw@db:5432/saas\n'),
      REDIS_URL_FILE: file('redis', 'redis://cache:6379\n'),
    })
    assert.deepEqual(c.keyEncryptionKey, Buffer.from(key, 'base64'))
    assert.equal(c.jwt.privateKeyPem, pem.trim())
    assert.equal(c.db.url, 'postgres://app:pw@db:5432/saas')
    assert.equal(c.redisUrl, 'redis://cache:6379')
    const hs = loadConfig({ JWT_ALG: 'HS256', JWT_SECRET_FILE: file('hs', `${'z'.repeat(40)}\n`) })
    assert.equal(hs.jwt.secret, 'z'.repeat(40))
  })

  it('when production is complete, then it loads with production defaults', () => {
    const c = loadConfig(production())
    assert.equal(c.isProduction, true)
    assert.equal(c.requireMfaForAdmin, true)
  })

  it('when production lacks a store or a secret, then the missing variable is named', () => {
    refuses(production({ DATABASE_URL: undefined }), 'DATABASE_URL')
    refuses(production({ REDIS_URL: undefined }), 'REDIS_URL')
    refuses(production({ KEY_ENCRYPTION_KEY: undefined }), 'KEY_ENCRYPTION_KEY')
    refuses(production({ JWT_PRIVATE_KEY: undefined }), 'JWT_PRIVATE_KEY')
    refuses(production({ JWT_PRIVATE_KEY: undefined, JWT_ALG: 'EdDSA' }), 'JWT_PRIVATE_KEY')
    refuses(production({ JWT_PRIVATE_KEY: undefined, JWT_ALG: 'HS256' }), 'JWT_SECRET')
  })

  it('when production is given example secrets, then they are refused', () => {
    refuses(production({ JWT_PRIVATE_KEY: undefined, JWT_ALG: 'HS256', JWT_SECRET: 'change-me-change-me-change-me-change-me' }), 'JWT_SECRET', /example/)
    refuses(production({ JWT_PRIVATE_KEY: undefined, JWT_ALG: 'HS256', JWT_SECRET: 'this-is-an-EXAMPLE-secret-of-40-bytes!!' }), 'JWT_SECRET', /example/)
    refuses(production({ KEY_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64') }), 'KEY_ENCRYPTION_KEY', /example/)
    refuses(production({ KEY_ENCRYPTION_KEY: Buffer.from('example-key-example-key-example!').toString('base64') }), 'KEY_ENCRYPTION_KEY', /example/)
  })

  it('when production tokens would live over 15 minutes, then ACCESS_TOKEN_TTL_SECONDS is named', () => {
    refuses(production({ ACCESS_TOKEN_TTL_SECONDS: '901' }), 'ACCESS_TOKEN_TTL_SECONDS')
    assert.equal(loadConfig(production({ ACCESS_TOKEN_TTL_SECONDS: '900' })).jwt.accessTtlSec, 900)
    // Development may use longer tokens for manual testing.
    assert.equal(loadConfig({ ACCESS_TOKEN_TTL_SECONDS: '3600' }).jwt.accessTtlSec, 3600)
  })
})

describe('configuration: production database role', () => {
  let db: TestDatabase
  const role = `saas_test_rt_${randomBytes(5).toString('hex')}`

  before(async () => {
    db = await createTestDatabase()
    await createLoginRole(role)
    const owner = postgres(db.url, { max: 1, onnotice: () => {} })
    try {
      await migrate(owner, { runtimeUser: role })
    } finally {
      await owner.end()
    }
  })
  after(async () => {
    await db.drop()
    await dropRole(role)
  })

  const prodConfig = (databaseUrl: string) =>
    loadConfig({ NODE_ENV: 'production', DATABASE_URL: databaseUrl, REDIS_URL: testRedisUrl, KEY_ENCRYPTION_KEY: kek(), JWT_PRIVATE_KEY: pem, LOG_LEVEL: 'silent' })

  it('when production connects as a superuser, then it refuses to start and names DATABASE_URL', async () => {
    await assert.rejects(openDeps(prodConfig(db.url), captureLogger() as never), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.equal(err.variable, 'DATABASE_URL')
      assert.match(err.message, /superuser/)
      return true
    })
  })

  it('when production connects as a plain login role granted the runtime privileges, then it starts', async () => {
    const url = new URL(db.url)
    url.username = role
    const deps = await openDeps(prodConfig(url.toString()), captureLogger() as never)
    try {
      const [row] = await deps.db.sql<{ user: string }[]>`select current_user as user`
      assert.equal(row?.user, role)
    } finally {
      await deps.close()
    }
  })
})

describe('configuration: the server process', () => {
  it('when the server starts with a bad variable, then it exits non-zero naming the variable', async () => {
    const bad = spawnMain({ PORT: 'abc', LOG_LEVEL: 'silent' })
    assert.equal(await bad.exited, 78)
    assert.match(bad.stderr(), /PORT/)

    const prod = spawnMain({ NODE_ENV: 'production', LOG_LEVEL: 'silent' })
    assert.equal(await prod.exited, 78)
    assert.match(prod.stderr(), /DATABASE_URL/)
  })
})
