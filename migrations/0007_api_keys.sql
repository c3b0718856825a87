-- API keys for machine clients: shown once, stored as SHA-256 of their secret, found by id.
create table api_keys (
  tenant_id    uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid
               references tenants (id) on delete cascade,
  id           uuid not null,
  name         text not null check (char_length(name) between 1 and 100),
  prefix       text not null,
  secret_hash  bytea not null,
  scopes       text[] not null check (cardinality(scopes) >= 1 and scopes <@ array['projects:read', 'projects:write', 'tasks:read', 'tasks:write']),
  expires_at   timestamptz,
  created_by   uuid,
  created_at   timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at   timestamptz,
  primary key (tenant_id, id)
);
alter table api_keys enable row level security;
alter table api_keys force row level security;
create policy tenant_isolation on api_keys
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
-- Keys are never edited: only used (last_used_at) and revoked.
grant select, insert on api_keys to saas_runtime;
grant update (last_used_at, revoked_at) on api_keys to saas_runtime;
