-- API keys for machine clients: shown once, stored as SHA-256 of their secret, found by id.
create table api_keys (
  tenant_id    uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid
               references tenants (id) on delete cascade,
  id           uuid not null,
  name         text not null check (char_length(name) between 1 and 100),
  -- The non-secret start of the key (sk_<tenant hex><key id hex>); the secret itself is never stored.
  prefix       text not null check (prefix ~ '^sk_[0-9a-f]{64}$'),
  secret_hash  bytea not null check (octet_length(secret_hash) = 32),
  scopes       text[] not null check (cardinality(scopes) >= 1 and scopes <@ array['projects:read', 'projects:write', 'tasks:read', 'tasks:write']),
  expires_at   timestamptz,
  created_by   uuid,
  created_at   timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at   timestamptz,
  primary key (tenant_id, id),
  -- Keys belong to the tenant, not to their creator: deleting the creator keeps the key working.
  foreign key (tenant_id, created_by) references users (tenant_id, id) on delete set null (created_by)
);
alter table api_keys enable row level security;
alter table api_keys force row level security;
create policy tenant_isolation on api_keys
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
-- Keys are never edited or deleted: only used (last_used_at) and revoked (kept for the record).
grant select, insert on api_keys to saas_runtime;
grant update (last_used_at, revoked_at) on api_keys to saas_runtime;

-- A suspended tenant's transactions stop before any key is read, yet only a real key may learn
-- that its tenant is suspended (a forged one gets the same 401 as any unknown key). This narrow
-- function returns the hash of one live key and nothing else; the owner needs to see the row.
create policy owner_all on api_keys to current_user using (true) with check (true);
create function api_key_live_hash(p_tenant uuid, p_id uuid)
returns bytea
language sql stable security definer
set search_path = pg_catalog, public
as $$
  select secret_hash from api_keys
   where tenant_id = p_tenant and id = p_id and revoked_at is null and (expires_at is null or expires_at > now())
$$;
revoke all on function api_key_live_hash(uuid, uuid) from public;
grant execute on function api_key_live_hash(uuid, uuid) to saas_runtime;
