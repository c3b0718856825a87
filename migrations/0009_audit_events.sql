-- The audit log. Append-only for the service: the runtime role may insert and read, never update
-- or delete (no grant). Rows go with their tenant when the tenant is deleted.
create table audit_events (
  tenant_id   uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid
              references tenants (id) on delete cascade,
  id          uuid not null,
  at          timestamptz not null default now(),
  actor_type  text not null check (actor_type in ('user', 'api_key', 'operator', 'system')),
  actor_id    text check (char_length(actor_id) <= 200),
  action      text not null check (action ~ '^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$' and char_length(action) <= 64),
  target_type text check (char_length(target_type) <= 64),
  target_id   text check (char_length(target_id) <= 200),
  request_id  text check (char_length(request_id) <= 128),
  ip          inet,
  -- Bounded, so that a caller cannot turn the audit log into storage.
  details     jsonb not null default '{}'::jsonb check (jsonb_typeof(details) = 'object' and pg_column_size(details) <= 4096),
  primary key (tenant_id, id)
);
-- Newest first, optionally by action; id (uuidv7) breaks ties in the keyset.
create index audit_events_tenant_at_idx on audit_events (tenant_id, at desc, id desc);
create index audit_events_tenant_action_at_idx on audit_events (tenant_id, action, at desc, id desc);
alter table audit_events enable row level security;
alter table audit_events force row level security;
-- No owner policy: the operator's commands insert with app.tenant_id set in their own transaction.
create policy tenant_isolation on audit_events
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert on audit_events to saas_runtime;

-- Operator actions (npm run admin), including those that concern no tenant (keys rotate). Not
-- tenant data: no grant at all to the runtime role, so only the owner role reads or writes it.
-- A tenant suspension is recorded here and in that tenant's audit_events.
create table operator_events (
  id         uuid primary key,
  at         timestamptz not null default now(),
  operator   text not null check (char_length(operator) between 1 and 200),
  action     text not null check (action ~ '^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$' and char_length(action) <= 64),
  target_type text check (char_length(target_type) <= 64),
  target_id  text check (char_length(target_id) <= 200),
  details    jsonb not null default '{}'::jsonb check (jsonb_typeof(details) = 'object' and pg_column_size(details) <= 4096)
);
create index operator_events_at_idx on operator_events (at desc, id desc);
revoke all on operator_events from saas_runtime;
