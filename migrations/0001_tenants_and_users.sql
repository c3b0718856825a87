-- Roles, tenants and users. Every tenant table: tenant_id leads the key, RLS enabled AND forced,
-- one policy reading the transaction-local app.tenant_id (unset or '' means no rows).

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'saas_runtime') then
    -- The role every request runs as: no login of its own, cannot bypass RLS, owns nothing.
    create role saas_runtime nologin nosuperuser nobypassrls nocreatedb nocreaterole;
  end if;
end
$$;

grant usage on schema public to saas_runtime;

create table tenants (
  id         uuid primary key,
  slug       text not null unique check (slug ~ '^[a-z0-9-]{3,63}$'),
  name       text not null check (char_length(name) between 1 and 200),
  settings   jsonb not null default '{}'::jsonb,
  status     text not null default 'active' check (status in ('active', 'suspended')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table tenants enable row level security;
alter table tenants force row level security;
create policy tenant_isolation on tenants
  using (id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (id = nullif(current_setting('app.tenant_id', true), '')::uuid);
-- The owner role (migrations, SECURITY DEFINER lookups) sees every row; it could disable RLS anyway.
create policy owner_all on tenants to current_user using (true) with check (true);
-- Status (suspension) is the operator's alone: the runtime role may change only name and settings.
grant select, insert on tenants to saas_runtime;
grant update (name, settings, updated_at) on tenants to saas_runtime;

create table users (
  tenant_id     uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid
                references tenants (id) on delete cascade,
  id            uuid not null,
  email         text not null check (char_length(email) between 3 and 254),
  password_hash text not null,
  role          text not null check (role in ('owner', 'admin', 'member', 'viewer')),
  disabled      boolean not null default false,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  primary key (tenant_id, id)
);
create unique index users_tenant_email_key on users (tenant_id, lower(email));
alter table users enable row level security;
alter table users force row level security;
create policy tenant_isolation on users
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy owner_all on users to current_user using (true) with check (true);
grant select, insert, update, delete on users to saas_runtime;

-- Login happens before a tenant context exists. This narrow function returns only what a login
-- needs for one (slug, email) pair; the runtime role can call it and read nothing else.
create function auth_login_lookup(p_slug text, p_email text)
returns table (tenant_id uuid, tenant_status text, user_id uuid, password_hash text, role text, disabled boolean)
language sql stable security definer
set search_path = pg_catalog, public
as $$
  select t.id, t.status, u.id, u.password_hash, u.role, u.disabled
    from tenants t
    left join users u on u.tenant_id = t.id and lower(u.email) = lower(p_email)
   where t.slug = p_slug
$$;
revoke all on function auth_login_lookup(text, text) from public;
grant execute on function auth_login_lookup(text, text) to saas_runtime;
