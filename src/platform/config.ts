import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import path from 'node:path'

/** The only reader of process.env. Parsed once at start, frozen, passed into buildApp(). */
export type JwtAlg = 'ES256' | 'EdDSA' | 'RS256' | 'HS256'
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface Config {
  readonly nodeEnv: 'development' | 'production' | 'test'
  readonly isProduction: boolean
  readonly http: { readonly port: number; readonly host: string; readonly trustedProxies: readonly string[] }
  readonly metricsPort: number
  readonly db: { readonly url: string | undefined; readonly ownerUrl: string | undefined; readonly dataDir: string }
  readonly redisUrl: string | undefined
  readonly jwt: {
    readonly issuer: string
    readonly audience: string
    readonly alg: JwtAlg
    readonly accessTtlSec: number
    readonly privateKeyPem: string | undefined
    readonly secret: string | undefined
  }
  /** AES-256-GCM key for signing keys and TOTP secrets at rest; generated into DATA_DIR in development. */
  readonly keyEncryptionKey: Buffer | undefined
  readonly refreshTtlSec: number
  readonly refreshReuseGraceSec: number
  readonly rateLimit: { readonly tenantPerMinute: number; readonly principalPerMinute: number; readonly authPerMinute: number }
  readonly requireMfaForAdmin: boolean
  readonly signupEnabled: boolean
  readonly logLevel: LogLevel
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

/** Longest access-token lifetime the contract allows (15 minutes). */
const maxAccessTtlSec = 900
/** Values copied from .env.example or docs must never reach production. */
const exampleSecretMarkers = ['change-me', 'changeme', 'example', 'replace-me', 'xxxxxxxx']

type Env = Record<string, string | undefined>

/**
 * Reads a secret from NAME, or from the file named by NAME_FILE (Kubernetes secret volumes,
 * the AWS Secrets Manager CSI driver). Setting both is refused: which one wins would be a guess.
 */
export function readSecret(env: Env, name: string): string | undefined {
  const direct = env[name]
  const file = env[`${name}_FILE`]
  if (direct !== undefined && direct !== '' && file) throw new ConfigError(name, `set either ${name} or ${name}_FILE, not both`)
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim()
    } catch {
      throw new ConfigError(`${name}_FILE`, `cannot read the file ${file}`)
    }
  }
  return direct === '' ? undefined : direct
}

function str(env: Env, name: string, fallback: string): string {
  const v = env[name]
  return v === undefined || v === '' ? fallback : v
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`)
  const n = Number(raw)
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`)
  return n
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (raw === 'true' || raw === '1') return true
  if (raw === 'false' || raw === '0') return false
  throw new ConfigError(name, `must be true or false, got "${raw}"`)
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = str(env, name, fallback)
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`)
  return raw as T
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = readSecret(env, name)
  if (raw === undefined) return undefined
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(name, 'is not a valid URL')
  }
  if (!protocols.includes(parsed.protocol)) throw new ConfigError(name, `must start with ${protocols.join(' or ')}`)
  return raw
}

/** Validates a CIDR list such as "10.0.0.0/8, ::1/128". */
function cidrs(env: Env, name: string): string[] {
  const raw = str(env, name, '')
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const c of list) {
    const [addr, bits, extra] = c.split('/')
    const family = isIP(addr ?? '')
    const max = family === 4 ? 32 : 128
    if (!family || extra !== undefined || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > max)))
      throw new ConfigError(name, `"${c}" is not an IP address or CIDR`)
  }
  return list
}

function kek(env: Env): Buffer | undefined {
  const raw = readSecret(env, 'KEY_ENCRYPTION_KEY')
  if (raw === undefined) return undefined
  const buf = Buffer.from(raw, 'base64')
  if (buf.length !== 32 || buf.toString('base64').replace(/=+$/, '') !== raw.replace(/=+$/, ''))
    throw new ConfigError('KEY_ENCRYPTION_KEY', 'must be 32 bytes, base64-encoded (openssl rand -base64 32)')
  return buf
}

function isExampleSecret(value: string): boolean {
  const v = value.toLowerCase()
  return exampleSecretMarkers.some((m) => v.includes(m))
}

/** Production refuses what is fine on a laptop: embedded stores, missing or example secrets, long tokens. */
function checkProduction(c: Config): void {
  if (!c.db.url) throw new ConfigError('DATABASE_URL', 'is required in production (the embedded database is for development only)')
  if (!c.redisUrl) throw new ConfigError('REDIS_URL', 'is required in production (in-process counters do not hold across replicas)')
  if (!c.keyEncryptionKey) throw new ConfigError('KEY_ENCRYPTION_KEY', 'is required in production')
  if (c.jwt.alg === 'HS256') {
    if (!c.jwt.secret) throw new ConfigError('JWT_SECRET', 'is required in production with JWT_ALG=HS256')
    if (isExampleSecret(c.jwt.secret)) throw new ConfigError('JWT_SECRET', 'is an example value; generate a real secret')
  } else if (!c.jwt.privateKeyPem) {
    throw new ConfigError('JWT_PRIVATE_KEY', `is required in production with JWT_ALG=${c.jwt.alg}`)
  }
  if (c.jwt.accessTtlSec > maxAccessTtlSec) throw new ConfigError('ACCESS_TOKEN_TTL_SECONDS', `must be at most ${maxAccessTtlSec} in production`)
  const kekText = c.keyEncryptionKey.toString('latin1')
  if (isExampleSecret(kekText) || c.keyEncryptionKey.every((b) => b === c.keyEncryptionKey?.[0]))
    throw new ConfigError('KEY_ENCRYPTION_KEY', 'is an example value; generate one with openssl rand -base64 32')
}

/** Parses and validates the environment. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = oneOf(env, 'NODE_ENV', 'development', ['development', 'production', 'test'])
  const isProduction = nodeEnv === 'production'
  const port = int(env, 'PORT', 3000, 0, 65535)
  const alg = oneOf<JwtAlg>(env, 'JWT_ALG', 'ES256', ['ES256', 'EdDSA', 'RS256', 'HS256'])
  const privateKeyPem = readSecret(env, 'JWT_PRIVATE_KEY')
  const secret = readSecret(env, 'JWT_SECRET')
  if (privateKeyPem !== undefined && !privateKeyPem.includes('-----BEGIN PRIVATE KEY-----'))
    throw new ConfigError('JWT_PRIVATE_KEY', 'must be a PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----")')
  if (secret !== undefined && Buffer.byteLength(secret) < 32) throw new ConfigError('JWT_SECRET', 'must be at least 32 bytes')
  if (alg === 'HS256' && privateKeyPem) throw new ConfigError('JWT_PRIVATE_KEY', 'is for asymmetric algorithms; HS256 uses JWT_SECRET')
  if (alg !== 'HS256' && secret) throw new ConfigError('JWT_SECRET', `is only for JWT_ALG=HS256 (JWT_ALG is ${alg})`)

  const config: Config = {
    nodeEnv,
    isProduction,
    http: { port, host: str(env, 'HOST', '127.0.0.1'), trustedProxies: cidrs(env, 'TRUSTED_PROXIES') },
    metricsPort: int(env, 'METRICS_PORT', 9464, 0, 65535),
    db: {
      url: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
      ownerUrl: url(env, 'DATABASE_OWNER_URL', ['postgres:', 'postgresql:']),
      dataDir: path.resolve(str(env, 'DATA_DIR', './.data')),
    },
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    jwt: {
      issuer: str(env, 'JWT_ISSUER', `http://localhost:${port}`),
      audience: str(env, 'JWT_AUDIENCE', 'saas-api'),
      alg,
      accessTtlSec: int(env, 'ACCESS_TOKEN_TTL_SECONDS', 600, 30, 86_400),
      privateKeyPem,
      secret,
    },
    keyEncryptionKey: kek(env),
    refreshTtlSec: int(env, 'REFRESH_TOKEN_TTL_SECONDS', 30 * 86_400, 60, 365 * 86_400),
    refreshReuseGraceSec: int(env, 'REFRESH_REUSE_GRACE_SECONDS', 0, 0, 300),
    rateLimit: {
      tenantPerMinute: int(env, 'RATE_LIMIT_TENANT_PER_MINUTE', 6000, 1, 10_000_000),
      principalPerMinute: int(env, 'RATE_LIMIT_PRINCIPAL_PER_MINUTE', 1200, 1, 10_000_000),
      authPerMinute: int(env, 'RATE_LIMIT_AUTH_PER_MINUTE', 10, 1, 1_000_000),
    },
    requireMfaForAdmin: bool(env, 'REQUIRE_MFA_FOR_ADMIN', isProduction),
    signupEnabled: bool(env, 'SIGNUP_ENABLED', true),
    logLevel: oneOf<LogLevel>(env, 'LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  }
  if (config.db.ownerUrl && !config.db.url) throw new ConfigError('DATABASE_OWNER_URL', 'needs DATABASE_URL as well')
  // Sharing the public port would either fail to listen or expose /metrics publicly.
  if (config.metricsPort !== 0 && config.metricsPort === config.http.port) throw new ConfigError('METRICS_PORT', 'must differ from PORT')
  if (isProduction) checkProduction(config)
  return Object.freeze(config)
}
