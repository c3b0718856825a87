import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const repoRoot = fileURLToPath(new URL('../', import.meta.url))

/**
 * The node flags the service runs with: the `--flags` between `node` and `--import tsx` in
 * package.json's start script, the one place they are written. The Dockerfile repeats them (a
 * test compares), and the benchmark and the tests that spawn the server use them from here.
 */
export function startNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(`${repoRoot}package.json`, 'utf8')) as { scripts: { start: string } }
  const m = /^node((?:\s+--[\w-]+(?:=\S+)?)*)\s+--import\s+tsx\s/.exec(pkg.scripts.start)
  if (!m) throw new Error(`package.json: cannot read the node flags of the start script "${pkg.scripts.start}"`)
  return (m[1] ?? '').trim().split(/\s+/).filter(Boolean)
}
