import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import type { ApiKeyVerifier } from './access.ts'
import { AccessTokens } from './auth/access-tokens.ts'
import { createApiKeyVerifier } from './auth/api-keys.ts'
import { KeyRing } from './auth/key-ring.ts'
import { createSecretBox } from './auth/secret-box.ts'
import type { SecretBox } from './auth/secret-box.ts'
import { storeNewSigningKey } from './auth/signing-keys.ts'
import type { Config } from './config.ts'
import { ConfigError } from './config.ts'
import { createCursorCodec } from './cursor.ts'
import type { CursorCodec } from './cursor.ts'
import { openDatabase } from './db/connect.ts'
import type { Database } from './db/connect.ts'
import { checkMigrations, migrate } from './db/migrate.ts'
import { describeRisks, inspectRole } from './db/roles.ts'
import { createMetrics } from './metrics.ts'
import type { Metrics } from './metrics.ts'
import { RateLimiter } from './ratelimit/limiter.ts'
import { LimitOverrides } from './ratelimit/overrides.ts'
import { createRedis } from './redis.ts'

/** Everything the app needs from outside itself; built once by main.ts, or by a test. */
export interface Deps {
  readonly config: Config
  readonly db: Database
  readonly redis: Redis | undefined
  readonly box: SecretBox
  readonly keyRing: KeyRing
  readonly tokens: AccessTokens
  readonly apiKeys: ApiKeyVerifier
  readonly limiter: RateLimiter
  readonly metrics: Metrics
  readonly cursors: CursorCodec
  close(): Promise<void>
}

/** Development only: a key-encryption key generated once into DATA_DIR, readable by this user alone. */
function developmentKek(dataDir: string, log: FastifyBaseLogger): Buffer {
  const file = path.join(dataDir, 'key-encryption-key')
  if (!existsSync(file)) {
    log.warn({ file }, 'KEY_ENCRYPTION_KEY is not set: generated a development key-encryption key (set it in production)')
    mkdirSync(dataDir, { recursive: true })
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 })
  }
  chmodSync(file, 0o600)
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64')
}

function userOf(url: string | undefined): string | undefined {
  return url ? decodeURIComponent(new URL(url).username) || undefined : undefined
}

/** Applies migrations (development) or checks they are applied and unedited (production). */
async function prepareSchema(config: Config, db: Database): Promise<void> {
  if (config.isProduction) {
    const { pending } = await checkMigrations(db.sql)
    if (pending.length) throw new ConfigError('DATABASE_URL', `the database lacks migrations ${pending.join(', ')}; run \`npm run migrate\` first`)
    const risk = describeRisks(await inspectRole(db.sql))
    if (risk) throw new ConfigError('DATABASE_URL', `${risk}; connect as a plain login role (see README, "Database roles")`)
    return
  }
  const runtimeUser = userOf(config.db.url) !== userOf(config.db.ownerUrl ?? config.db.url) ? userOf(config.db.url) : undefined
  await migrate(db.ownerSql, { runtimeUser })
}

export async function openDeps(config: Config, log: FastifyBaseLogger): Promise<Deps> {
  const kek = config.keyEncryptionKey ?? (config.isProduction ? undefined : developmentKek(config.db.dataDir, log))
  if (!kek) throw new ConfigError('KEY_ENCRYPTION_KEY', 'is required')
  const box = createSecretBox(kek)
  const db = await openDatabase(config)
  let redis: Redis | undefined
  try {
    await prepareSchema(config, db)
    const configuredKey = config.jwt.alg === 'HS256' ? config.jwt.secret : config.jwt.privateKeyPem
    if (!configuredKey && !config.isProduction) {
      const [row] = await db.ownerSql<{ n: number }[]>`select count(*)::int as n from signing_keys where alg = ${config.jwt.alg} and retired_at is null`
      if (!row?.n) {
        const kid = await storeNewSigningKey(db.ownerSql, box, config.jwt.alg)
        log.warn({ kid, alg: config.jwt.alg }, 'no signing key configured: generated one, stored encrypted in the database (set JWT_PRIVATE_KEY or JWT_SECRET in production)')
      }
    }
    const keyRing = await KeyRing.open(config, db.sql, box, (msg) => log.warn(msg))
    const metrics = createMetrics()
    const defaults = { tenantPerMinute: config.rateLimit.tenantPerMinute, principalPerMinute: config.rateLimit.principalPerMinute }
    const overrides = new LimitOverrides(db.sql, defaults, log)
    await overrides.reload()
    overrides.start()
    if (config.redisUrl) redis = createRedis(config.redisUrl)
    // Built before connecting, so that its listeners see (and log once) a Redis that is down at start.
    const limiter = new RateLimiter(redis, metrics, log, overrides, defaults)
    // Start even if Redis is down: the limiter serves on in-process counters until it is back.
    await redis?.connect().catch(() => {})
    const tokens = new AccessTokens(config, keyRing)
    return {
      config,
      db,
      redis,
      box,
      keyRing,
      tokens,
      apiKeys: createApiKeyVerifier(db.sql),
      limiter,
      metrics,
      cursors: createCursorCodec(kek),
      async close() {
        keyRing.close()
        limiter.close()
        redis?.disconnect()
        await db.close()
      },
    }
  } catch (err) {
    redis?.disconnect()
    await db.close().catch(() => {})
    throw err
  }
}
