-- Per-tenant rate-limit overrides, set by an operator (never by the tenant: tenants.settings is
-- client-editable, this table is not). NULL keeps the configured default for that limit.
-- Servers reload the whole table every 30 seconds, so a change takes effect within 30 s.
create table rate_limit_overrides (
  tenant_id            uuid primary key references tenants (id) on delete cascade,
  tenant_per_minute    int check (tenant_per_minute > 0),
  principal_per_minute int check (principal_per_minute > 0),
  updated_at           timestamptz not null default now()
);
alter table rate_limit_overrides enable row level security;
alter table rate_limit_overrides force row level security;
-- Tenant transactions see only their own row (and have no write grant at all).
create policy tenant_isolation on rate_limit_overrides
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy owner_all on rate_limit_overrides to current_user using (true) with check (true);
grant select on rate_limit_overrides to saas_runtime;

-- Every override, for the limiter's in-process cache. Returns limits only, no tenant data.
create function rate_limit_overrides_all()
returns table (tenant_id uuid, tenant_per_minute int, principal_per_minute int)
language sql stable security definer
set search_path = pg_catalog, public
as $$ select tenant_id, tenant_per_minute, principal_per_minute from rate_limit_overrides $$;
revoke all on function rate_limit_overrides_all() from public;
grant execute on function rate_limit_overrides_all() to saas_runtime;
