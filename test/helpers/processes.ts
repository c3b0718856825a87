import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { startNodeFlags } from '../../scripts/node-flags.ts'
import { adminDatabaseUrl, startTestApp } from './app.ts'
import type { TestApp, TestDatabase } from './app.ts'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A port that was free a moment ago (the OS picks it; the caller binds it right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

/** Polls until check() is true, or fails with what it was waiting for. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await sleep(everyMs)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Resolves with the exit code (or the signal name) once the child has exited. */
export function exitOf(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  if (child.signalCode !== null) return Promise.resolve(child.signalCode)
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)))
}

export interface PrivateRedis {
  readonly port: number
  readonly url: string
  /** Starts (or restarts) redis-server on the same port, empty. */
  start(): Promise<void>
  /** Kills redis-server and waits until it has exited. */
  stop(): Promise<void>
}

/** A redis-server of the test's own, so that the test can kill and restart it. */
export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
      await waitFor(`redis-server on ${port}`, () => canConnect(port))
    },
    async stop() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return
      const exited = exitOf(child)
      child.kill('SIGKILL')
      await exited
    },
  }
}

/** An ES256 signing key as PKCS#8 PEM, so that several processes sign and verify with one key. */
export function es256Pem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
}

export interface LogLine {
  level: string
  obj: unknown
  msg: string | undefined
}

/** A pino-shaped logger that records what it is given, to assert on warnings. */
export function captureLogger(lines: LogLine[] = []) {
  const record =
    (level: string) =>
    (obj: unknown, msg?: string): void => {
      lines.push(typeof obj === 'string' ? { level, obj: undefined, msg: obj } : { level, obj, msg })
    }
  const logger = {
    lines,
    level: 'trace',
    fatal: record('fatal'),
    error: record('error'),
    warn: record('warn'),
    info: record('info'),
    debug: record('debug'),
    trace: record('trace'),
    silent: () => {},
    child: () => logger,
  }
  return logger
}

/**
 * Like startTestApp(), with the dependency log captured (the limiter's Redis warnings go there).
 * The returned object is a TestApp, so createTenant() and addUser() work on it.
 */
export async function startAppWithLogs(env: Record<string, string | undefined> = {}, existing?: TestDatabase): Promise<TestApp & { logs: LogLine[] }> {
  const logger = captureLogger()
  const t = await startTestApp(env, existing, { depsLogger: logger })
  return { ...t, logs: logger.lines }
}

export interface ServerProcess {
  readonly child: ChildProcess
  readonly port: number
  readonly metricsPort: number
  readonly baseUrl: string
  /** Everything the process wrote so far. */
  stdout(): string
  stderr(): string
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | string>
  /** SIGKILLs the process if it still runs (cleanup). */
  kill(): Promise<void>
}

/** Spawns `node <npm start's flags> --import tsx src/main.ts` with exactly this environment (plus PATH and HOME). */
export function spawnMain(env: Record<string, string | undefined>): { child: ChildProcess; stdout(): string; stderr(): string; exited: Promise<number | string> } {
  const child = spawn(process.execPath, [...startNodeFlags(), '--import', 'tsx', 'src/main.ts'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
  return { child, stdout: () => out, stderr: () => err, exited: exitOf(child) }
}

/** Spawns a real server process on free ports and waits until /healthz answers. */
export async function startServerProcess(env: Record<string, string | undefined>): Promise<ServerProcess> {
  const port = await freePort()
  const metricsPort = await freePort()
  const dataDir = mkdtempSync(path.join(tmpdir(), 'saas-proc-'))
  const proc = spawnMain({ NODE_ENV: 'test', LOG_LEVEL: 'warn', DATA_DIR: dataDir, ...env, PORT: String(port), METRICS_PORT: String(metricsPort), HOST: '127.0.0.1' })
  const baseUrl = `http://127.0.0.1:${port}`
  const exited = proc.exited.finally(() => rmSync(dataDir, { recursive: true, force: true }))
  try {
    await waitFor(`server process on ${port}`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`server process exited with ${proc.child.exitCode}: ${proc.stderr()}${proc.stdout()}`)
      return fetch(`${baseUrl}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    }, 30_000, 100)
  } catch (err) {
    proc.child.kill('SIGKILL')
    throw err
  }
  return {
    child: proc.child,
    port,
    metricsPort,
    baseUrl,
    stdout: () => proc.stdout(),
    stderr: () => proc.stderr(),
    exited,
    async kill() {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
      await exited
    },
  }
}

/** Runs cluster-level statements (roles, dropping a database under a running app) as the superuser. */
async function asSuperuser(statement: string): Promise<void> {
  const admin = postgres(adminDatabaseUrl, { max: 1, onnotice: () => {} })
  try {
    await admin.unsafe(statement)
  } finally {
    await admin.end()
  }
}

const identifier = /^[a-z_][a-z0-9_]{0,62}$/

/** A plain login role (no superuser, no BYPASSRLS, owns nothing), as production expects. */
export async function createLoginRole(name: string): Promise<void> {
  if (!identifier.test(name)) throw new Error(`bad role name ${name}`)
  await asSuperuser(`create role ${name} login`)
}

export async function dropRole(name: string): Promise<void> {
  if (!identifier.test(name)) throw new Error(`bad role name ${name}`)
  await asSuperuser(`drop role if exists ${name}`)
}

/** Drops a database while clients are still connected to it: the "database went away" outage. */
export async function dropDatabaseNow(name: string): Promise<void> {
  if (!identifier.test(name)) throw new Error(`bad database name ${name}`)
  await asSuperuser(`drop database if exists ${name} with (force)`)
}
