import { readdirSync, readFileSync } from 'node:fs'

/** CPU time (user + system, ms) spent so far by each part of the benchmark, from Linux /proc. */
export interface CpuTimes {
  server: number
  postgres: number
  redis: number
  /** This process: the load generator (autocannon) and the harness. */
  loadGenerator: number
}

const ticksPerSecond = 100 // USER_HZ: 100 on every Linux architecture Node supports

function statOf(pid: string): { comm: string; ms: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm is in parentheses and may hold spaces; the fields after it are space-separated.
    const close = stat.lastIndexOf(')')
    const comm = stat.slice(stat.indexOf('(') + 1, close)
    const fields = stat.slice(close + 2).split(' ')
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after comm.
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond
    return { comm, ms }
  } catch {
    return undefined // the process has gone
  }
}

/**
 * A snapshot of CPU times: the server's process, every PostgreSQL process on the machine (the
 * backends serving the server's pool do the work; the rest idle), every redis-server, and this one.
 * Backends that exit between two snapshots take their time with them: pools keep theirs open.
 */
export function cpuTimes(serverPid: number | undefined): CpuTimes {
  let postgres = 0
  let redis = 0
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const s = statOf(pid)
    if (s?.comm === 'postgres') postgres += s.ms
    else if (s?.comm === 'redis-server') redis += s.ms
  }
  const own = process.cpuUsage()
  return {
    server: serverPid === undefined ? 0 : (statOf(String(serverPid))?.ms ?? 0),
    postgres,
    redis,
    loadGenerator: (own.user + own.system) / 1000,
  }
}

/** CPU microseconds per request of each part, between two snapshots. */
export function cpuPerRequest(before: CpuTimes, after: CpuTimes, requests: number): CpuTimes {
  const per = (k: keyof CpuTimes) => (requests > 0 ? ((after[k] - before[k]) * 1000) / requests : 0)
  return { server: per('server'), postgres: per('postgres'), redis: per('redis'), loadGenerator: per('loadGenerator') }
}
