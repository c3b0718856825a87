import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import postgres from 'postgres'
import type { Sql } from 'postgres'
import type { Config } from '../config.ts'

/** What the rest of the server knows about the database: a pool, and what it runs on. */
export interface Database {
  readonly sql: Sql
  /** Owner connection for migrations; the same pool when only one URL is configured. */
  readonly ownerSql: Sql
  readonly kind: 'postgres' | 'embedded'
  /** Where the data lives, for the start-up log (no credentials). */
  readonly describe: string
  close(): Promise<void>
}

/** The NOLOGIN role every tenant transaction runs as (created by migration 0001). */
export const runtimeRole = 'saas_runtime'

/** Keep DATE as 'YYYY-MM-DD' text: a JS Date would shift it by the server's time zone. */
const dateAsText = { to: 1082, from: [1082], serialize: (x: string) => x, parse: (x: string) => x }

export function createPool(url: string, options: { max?: number; applicationName?: string } = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 5,
    // A dead database must answer 503 quickly, not hang every request.
    max_lifetime: 60 * 30,
    onnotice: () => {},
    types: { date: dateAsText },
    connection: { application_name: options.applicationName ?? 'saas-api' },
  })
}

/** Host, port and database of a URL, never its password. */
export function describeUrl(url: string): string {
  const u = new URL(url)
  return `postgresql://${u.hostname}:${u.port || '5432'}${u.pathname}`
}

/**
 * Opens the configured database: PostgreSQL at DATABASE_URL, or embedded PostgreSQL (PGlite,
 * served over a loopback socket by pglite-socket) under DATA_DIR, so that the same driver,
 * migrations and RLS policies run in both.
 */
export async function openDatabase(config: Config): Promise<Database> {
  if (config.db.url) {
    const sql = createPool(config.db.url)
    const ownerSql = config.db.ownerUrl && config.db.ownerUrl !== config.db.url ? createPool(config.db.ownerUrl, { max: 2 }) : sql
    return {
      sql,
      ownerSql,
      kind: 'postgres',
      describe: describeUrl(config.db.url),
      async close() {
        await sql.end({ timeout: 5 })
        if (ownerSql !== sql) await ownerSql.end({ timeout: 5 })
      },
    }
  }
  return openEmbedded(path.join(config.db.dataDir, 'pgdata'))
}

/**
 * PGlite is a single-process database: a second process opening the same directory (a seed or
 * migrate run beside the server) would corrupt it. A lock file with the owner's pid refuses that;
 * a lock left by a process that no longer runs is taken over.
 */
function lockDataDir(dir: string): () => void {
  const lock = `${dir}.lock`
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' })
  } catch {
    const pid = Number(readFileSync(lock, 'utf8'))
    let alive = false
    try {
      alive = Number.isInteger(pid) && pid > 0 && (pid === process.pid || process.kill(pid, 0))
    } catch {
      alive = false
    }
    if (alive) throw new Error(`the embedded database in ${dir} is in use by process ${pid}; stop it first (or set DATA_DIR or DATABASE_URL)`)
    writeFileSync(lock, String(process.pid))
  }
  return () => rmSync(lock, { force: true })
}

async function openEmbedded(dir: string): Promise<Database> {
  mkdirSync(dir, { recursive: true })
  const unlock = lockDataDir(dir)
  const { PGlite } = await import('@electric-sql/pglite')
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket')
  const pglite = await PGlite.create(dir)
  // One connection: pglite-socket multiplexes at query level, which would interleave transactions.
  const server = new PGLiteSocketServer({ db: pglite, port: 0, host: '127.0.0.1', maxConnections: 1 })
  await server.start()
  const { port } = server.getServerConn().match(/:(?<port>\d+)$/)?.groups ?? {}
  const sql = createPool(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1 })
  return {
    sql,
    ownerSql: sql,
    kind: 'embedded',
    describe: `embedded PostgreSQL (PGlite) in ${dir}`,
    async close() {
      await sql.end({ timeout: 5 })
      await server.stop()
      await pglite.close()
      unlock()
    },
  }
}
