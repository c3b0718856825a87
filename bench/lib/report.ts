import type { LoadResult, Scenario } from './load.ts'

export interface Target {
  /** Service req/s must be at least this × the baseline's. */
  minRpsRatio?: number
  /** Service p99 must be at most this × the baseline's. */
  maxP99Ratio?: number
}

/** The targets, as ratios to the baseline measured in the same run. */
export const targets: Record<Scenario, Target> = {
  list: { minRpsRatio: 0.5, maxP99Ratio: 2.5 },
  get: { minRpsRatio: 0.4, maxP99Ratio: 2.5 },
  create: { minRpsRatio: 0.4 },
  mixed: {},
}

export interface ScenarioRow {
  scenario: Scenario
  service: LoadResult
  baseline: LoadResult | undefined
  rpsRatio: number | undefined
  p99Ratio: number | undefined
  target: string
  pass: boolean | undefined
  rssStartMiB: number | undefined
  rssEndMiB: number | undefined
}

export function evaluate(scenario: Scenario, service: LoadResult, baseline: LoadResult | undefined): Pick<ScenarioRow, 'rpsRatio' | 'p99Ratio' | 'target' | 'pass'> {
  const t = targets[scenario]
  const rpsRatio = baseline ? service.rps / baseline.rps : undefined
  const p99Ratio = baseline ? service.p99 / baseline.p99 : undefined
  const parts: string[] = []
  let pass: boolean | undefined
  if (t.minRpsRatio !== undefined) {
    parts.push(`≥ ${t.minRpsRatio}× req/s`)
    pass = rpsRatio !== undefined && rpsRatio >= t.minRpsRatio
  }
  if (t.maxP99Ratio !== undefined) {
    parts.push(`p99 ≤ ${t.maxP99Ratio}×`)
    pass = (pass ?? true) && p99Ratio !== undefined && p99Ratio <= t.maxP99Ratio
  }
  // Errors never pass: a 5xx or a refused request under load is a bug, not a figure.
  if (pass !== undefined && service.non2xx + service.errors + service.timeouts > 0) pass = false
  return { rpsRatio, p99Ratio, target: parts.length ? parts.join(', ') : '—', pass }
}

const f0 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '—' : Math.round(n).toLocaleString('en-US'))
const f1 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(1))
/**
 * A ratio shown on the side of its target that it is on: one that must reach a minimum (req/s)
 * rounded down, one that must stay under a maximum (p99) rounded up, so that 0.396 against ≥ 0.4
 * shows as 0.39 FAIL, never as 0.40 FAIL. (The epsilon keeps 0.29 from flooring to 0.28.)
 */
const atLeast = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '—' : (Math.floor(n * 100 + 1e-9) / 100).toFixed(2))
const atMost = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '—' : (Math.ceil(n * 100 - 1e-9) / 100).toFixed(2))
const verdict = (p: boolean | undefined) => (p === undefined ? '—' : p ? 'PASS' : 'FAIL')
export const errorsOf = (r: LoadResult) => r.non2xx + r.errors + r.timeouts

export function scenarioTable(rows: readonly ScenarioRow[]): string[][] {
  const head = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'baseline req/s', 'baseline p99 ms', 'ratio req/s', 'ratio p99', 'target', 'result']
  return [
    head,
    ...rows.map((r) => [
      r.scenario,
      f0(r.service.rps),
      f1(r.service.p50),
      f1(r.service.p99),
      String(errorsOf(r.service)),
      f0(r.baseline?.rps),
      f1(r.baseline?.p99),
      atLeast(r.rpsRatio),
      atMost(r.p99Ratio),
      r.target,
      verdict(r.pass),
    ]),
  ]
}

/** Plain-text table with aligned columns, for the terminal. */
export function textTable(rows: readonly string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  const line = (r: readonly string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')
  const [head, ...body] = rows
  return [line(head ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

export function markdownTable(rows: readonly string[][]): string {
  const [head, ...body] = rows
  const esc = (c: string) => c.replace(/\|/g, '\\|')
  return [
    `| ${(head ?? []).map(esc).join(' | ')} |`,
    `|${(head ?? []).map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...body.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n')
}

export { atLeast, atMost, f0, f1, verdict }
