/**
 * `npm run migrate`: applies the migrations as the owner role and exits.
 * Owner: DATABASE_OWNER_URL, else DATABASE_URL, else the embedded database under DATA_DIR.
 * When the owner and runtime users differ, the runtime user is granted saas_runtime.
 */
import { prepare } from './cli.ts'
import { describeUrl, openDatabase } from '../src/platform/db/connect.ts'
import { migrate } from '../src/platform/db/migrate.ts'

function userOf(url: string | undefined): string | undefined {
  return url ? decodeURIComponent(new URL(url).username) || undefined : undefined
}

async function main(): Promise<number> {
  const prepared = await prepare(() => undefined, 'usage: npm run migrate')
  if (typeof prepared === 'number') return prepared
  const { config } = prepared
  const db = await openDatabase(config)
  try {
    const ownerUrl = config.db.ownerUrl ?? config.db.url
    const runtimeUser = userOf(config.db.url) !== userOf(ownerUrl) ? userOf(config.db.url) : undefined
    const started = Date.now()
    const applied = await migrate(db.ownerSql, { runtimeUser })
    const where = ownerUrl ? describeUrl(ownerUrl) : db.describe
    if (applied.length) for (const name of applied) console.log(`applied ${name}`)
    console.log(applied.length ? `${applied.length} migration${applied.length === 1 ? '' : 's'} applied to ${where} in ${Date.now() - started} ms` : `${where} is already up to date`)
    if (runtimeUser) console.log(`runtime user "${runtimeUser}" is a member of saas_runtime`)
    return 0
  } catch (err) {
    console.error(`Migration failed: ${err instanceof Error ? err.message : String(err)}`)
    return 1
  } finally {
    await db.close()
  }
}

process.exitCode = await main()
