create table projects (
  tenant_id   uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid
              references tenants (id) on delete cascade,
  id          uuid not null,
  name        text not null check (char_length(name) between 1 and 200),
  description text check (char_length(description) <= 10000),
  status      text not null default 'active' check (status in ('active', 'archived')),
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  primary key (tenant_id, id)
);
-- Keyset pagination for both sort orders, tenant first.
create index projects_tenant_created_idx on projects (tenant_id, created_at, id);
create index projects_tenant_name_idx on projects (tenant_id, name, id);
alter table projects enable row level security;
alter table projects force row level security;
create policy tenant_isolation on projects
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert, update, delete on projects to saas_runtime;

create table tasks (
  tenant_id   uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid,
  id          uuid not null,
  project_id  uuid not null,
  title       text not null check (char_length(title) between 1 and 500),
  description text check (char_length(description) <= 10000),
  status      text not null default 'todo' check (status in ('todo', 'doing', 'done')),
  assignee_id uuid,
  due_date    date,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  primary key (tenant_id, id),
  -- Composite keys: a task can only point at a project or user of its own tenant.
  foreign key (tenant_id, project_id) references projects (tenant_id, id) on delete cascade,
  foreign key (tenant_id, assignee_id) references users (tenant_id, id) on delete set null (assignee_id)
);
create index tasks_tenant_project_created_idx on tasks (tenant_id, project_id, created_at, id);
create index tasks_tenant_assignee_idx on tasks (tenant_id, assignee_id) where assignee_id is not null;
alter table tasks enable row level security;
alter table tasks force row level security;
create policy tenant_isolation on tasks
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert, update, delete on tasks to saas_runtime;
