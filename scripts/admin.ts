/**
 * Operator actions, run as the owner role (DATABASE_OWNER_URL, else DATABASE_URL, else the
 * embedded database under DATA_DIR, which must not be open in a running server at the same time):
 *
 *   npm run admin -- keys rotate             new signing key; older keys of the algorithm stop signing
 *   npm run admin -- tenant suspend <slug>   the tenant's tokens get 403 tenant_suspended
 *   npm run admin -- tenant resume <slug>
 *
 * Each is recorded in operator_events (owner role only) under the OS user's name; a tenant
 * suspension or resumption also in that tenant's audit log (GET /v1/tenants/{tid}/audit-events).
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { Sql, TransactionSql } from 'postgres'
import { operatorName, recordOperatorEvent } from '../src/platform/audit.ts'
import { keyReloadIntervalMs } from '../src/platform/auth/key-ring.ts'
import { createSecretBox } from '../src/platform/auth/secret-box.ts'
import { storeNewSigningKey } from '../src/platform/auth/signing-keys.ts'
import { UsageError, prepare } from './cli.ts'
import { ConfigError } from '../src/platform/config.ts'
import type { Config } from '../src/platform/config.ts'
import { openDatabase } from '../src/platform/db/connect.ts'
import { checkMigrations } from '../src/platform/db/migrate.ts'

const usage = `usage:
  npm run admin -- keys rotate
  npm run admin -- tenant suspend <slug>
  npm run admin -- tenant resume <slug>`

type Command = { kind: 'rotate' } | { kind: 'tenant'; action: 'suspend' | 'resume'; slug: string }

function parseCommand(argv: string[]): Command {
  const [group, action, arg, ...rest] = argv
  if (group === 'keys' && action === 'rotate' && arg === undefined) return { kind: 'rotate' }
  if (group === 'tenant' && (action === 'suspend' || action === 'resume')) {
    if (!arg || rest.length) throw new UsageError(`tenant ${action} takes exactly one tenant slug`)
    if (!/^[a-z0-9-]{3,63}$/.test(arg)) throw new UsageError(`"${arg}" is not a tenant slug (3–63 of [a-z0-9-])`)
    return { kind: 'tenant', action, slug: arg }
  }
  throw new UsageError(argv.length ? `unknown command: ${argv.join(' ')}` : 'no command given')
}

/**
 * The key-encryption key the servers use. In development it is the one the server generated into
 * DATA_DIR; the admin never generates one, since a key sealed with a key no server has is useless.
 */
function keyEncryptionKey(config: Config): Buffer {
  if (config.keyEncryptionKey) return config.keyEncryptionKey
  const file = path.join(config.db.dataDir, 'key-encryption-key')
  if (!config.isProduction && existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64')
  throw new ConfigError('KEY_ENCRYPTION_KEY', 'is required to seal a new signing key (in development, start the server once to generate it into DATA_DIR)')
}

async function rotateKeys(owner: Sql, config: Config): Promise<void> {
  const box = createSecretBox(keyEncryptionKey(config))
  const alg = config.jwt.alg
  const { kid, retired } = await owner.begin(async (tx) => {
    const newKid = await storeNewSigningKey(tx as unknown as Sql, box, alg)
    // Retired keys stop signing at once but stay in the JWKS until their last token has expired.
    const rows = await tx<{ kid: string }[]>`
      update signing_keys set retired_at = now() where alg = ${alg} and kid <> ${newKid} and retired_at is null returning kid`
    const retiredKids = rows.map((r) => r.kid)
    await recordOperatorEvent(tx, { operator: operatorName(), action: 'signing_key.rotated', target: { type: 'signing_key', id: newKid }, details: { alg, retired: retiredKids } })
    return { kid: newKid, retired: retiredKids }
  })
  console.log(`keys rotate: new ${alg} signing key ${kid}`)
  console.log(retired.length ? `retired (still verifying until their tokens expire): ${retired.join(', ')}` : 'no earlier stored key to retire')
  if (config.jwt.alg === 'HS256' ? config.jwt.secret : config.jwt.privateKeyPem)
    console.log('the configured JWT_PRIVATE_KEY/JWT_SECRET is older than the new key, so it no longer signs; it keeps verifying while it stays configured')
  console.log(`running servers reload signing keys every ${keyReloadIntervalMs / 1000} s and sign with the new key from then on`)
  console.log(`recorded in operator_events as signing_key.rotated by ${operatorName()}`)
}

async function setTenantStatus(owner: Sql, slug: string, action: 'suspend' | 'resume'): Promise<boolean> {
  const status = action === 'suspend' ? 'suspended' : 'active'
  const event = action === 'suspend' ? 'tenant.suspended' : 'tenant.resumed'
  // The change and its audit events commit together, or not at all.
  const row = await owner.begin(async (tx: TransactionSql) => {
    const [changed] = await tx<{ id: string; previous: string }[]>`
      update tenants t set status = ${status}, updated_at = now()
        from (select id, status from tenants where slug = ${slug} for update) old
       where t.id = old.id
      returning t.id, old.status as previous`
    if (changed)
      await recordOperatorEvent(tx, { operator: operatorName(), action: event, tenantId: changed.id, target: { type: 'tenant', id: changed.id }, details: { slug, previous_status: changed.previous } })
    return changed
  })
  if (!row) {
    console.error(`tenant ${action}: no tenant with slug "${slug}"`)
    return false
  }
  const change = row.previous === status ? `was already ${status}` : `${row.previous} -> ${status}`
  console.log(`tenant ${action}: ${slug} (${row.id}) ${change}`)
  if (action === 'suspend') console.log('its users and API keys now get 403 tenant_suspended on every tenant request')
  console.log(`recorded in the tenant's audit log as ${event} by operator ${operatorName()}`)
  return true
}

async function main(): Promise<number> {
  const prepared = await prepare(() => parseCommand(process.argv.slice(2)), usage)
  if (typeof prepared === 'number') return prepared
  const { args: command, config } = prepared
  const db = await openDatabase(config)
  try {
    const { pending } = await checkMigrations(db.ownerSql)
    if (pending.length) {
      console.error(`the database lacks migrations ${pending.join(', ')}; run \`npm run migrate\` first`)
      return 1
    }
    const ok = command.kind === 'rotate' ? (await rotateKeys(db.ownerSql, config), true) : await setTenantStatus(db.ownerSql, command.slug, command.action)
    return ok ? 0 : 1
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`)
      return 78
    }
    console.error(`admin failed: ${err instanceof Error ? err.message : String(err)}`)
    return 1
  } finally {
    await db.close()
  }
}

process.exitCode = await main()
