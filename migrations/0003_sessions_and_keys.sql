-- Refresh tokens: stored only as SHA-256 hashes. A family is one login; reuse of a spent token
-- revokes the family.
create table refresh_tokens (
  tenant_id   uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid,
  id          uuid not null,
  family_id   uuid not null,
  user_id     uuid not null,
  token_hash  bytea not null,
  amr         text[] not null,
  created_at  timestamptz not null default now(),
  expires_at  timestamptz not null,
  spent_at    timestamptz,
  revoked_at  timestamptz,
  primary key (tenant_id, id),
  foreign key (tenant_id, user_id) references users (tenant_id, id) on delete cascade
);
create unique index refresh_tokens_hash_key on refresh_tokens (tenant_id, token_hash);
create index refresh_tokens_family_idx on refresh_tokens (tenant_id, family_id);
alter table refresh_tokens enable row level security;
alter table refresh_tokens force row level security;
create policy tenant_isolation on refresh_tokens
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert, update on refresh_tokens to saas_runtime;

-- Revoked access tokens (by jti) until they expire: the durable copy; Redis holds the fast one.
create table revoked_tokens (
  tenant_id  uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid
             references tenants (id) on delete cascade,
  jti        uuid not null,
  expires_at timestamptz not null,
  revoked_at timestamptz not null default now(),
  primary key (tenant_id, jti)
);
alter table revoked_tokens enable row level security;
alter table revoked_tokens force row level security;
create policy tenant_isolation on revoked_tokens
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert on revoked_tokens to saas_runtime;

-- Signing keys: private material encrypted with KEY_ENCRYPTION_KEY (AES-256-GCM); kek_id names
-- the key that encrypted it so that KEY_ENCRYPTION_KEY can rotate. Not tenant data.
create table signing_keys (
  kid          text primary key,
  alg          text not null check (alg in ('ES256', 'EdDSA', 'RS256', 'HS256')),
  public_jwk   jsonb,
  private_enc  text not null,
  kek_id       text not null,
  created_at   timestamptz not null default now(),
  -- After this the key no longer signs; it still verifies until every token it signed has expired.
  retired_at   timestamptz
);
grant select on signing_keys to saas_runtime;
