import type { FastifyBaseLogger } from 'fastify'
import type { Sql } from 'postgres'
import { withoutTenant } from '../db/tenant.ts'

/** The limits that apply inside one tenant. */
export interface TenantLimits {
  readonly tenantPerMinute: number
  readonly principalPerMinute: number
}

/** How often every server re-reads the operator's overrides: a change applies within this delay. */
export const overridesRefreshMs = 30_000

interface OverrideRow {
  tenant_id: string
  tenant_per_minute: number | null
  principal_per_minute: number | null
}

/**
 * Operator overrides of the configured limits (table rate_limit_overrides, migration 0006), held
 * in process and reloaded every 30 s so the hot path never queries for them. A failed reload keeps
 * the previous set: limits must not flap because the database hiccuped.
 */
export class LimitOverrides {
  private byTenant = new Map<string, OverrideRow>()
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly sql: Sql,
    private readonly defaults: TenantLimits,
    private readonly log: FastifyBaseLogger,
  ) {}

  async reload(): Promise<void> {
    // Runs as the runtime role; only the SECURITY DEFINER function returns rows outside a tenant.
    const rows = await withoutTenant(this.sql, (tx) => tx<OverrideRow[]>`select tenant_id, tenant_per_minute, principal_per_minute from rate_limit_overrides_all()`)
    this.byTenant = new Map(rows.map((r) => [r.tenant_id, r]))
  }

  start(): void {
    this.timer = setInterval(() => void this.reload().catch((err: Error) => this.log.warn({ err: err.message }, 'rate-limit overrides could not be reloaded; keeping the current set')), overridesRefreshMs)
    this.timer.unref()
  }

  limitsFor(tenantId: string): TenantLimits {
    const o = this.byTenant.get(tenantId)
    if (!o) return this.defaults
    return {
      tenantPerMinute: o.tenant_per_minute ?? this.defaults.tenantPerMinute,
      principalPerMinute: o.principal_per_minute ?? this.defaults.principalPerMinute,
    }
  }

  close(): void {
    clearInterval(this.timer)
  }
}
