-- Refresh-token lineage, for two rules of the auth module:
-- parent_id: the token this one replaced. The reuse grace window applies only when the presented
--   (spent) token's child was never used, i.e. the client lost the rotation's answer.
-- access_jti: the access token issued together with this refresh token, so that logout with only
--   a bearer token ends its whole login, and reuse detection revokes the family's access tokens too.
alter table refresh_tokens add column parent_id uuid;
alter table refresh_tokens add column access_jti uuid;
create index refresh_tokens_parent_idx on refresh_tokens (tenant_id, parent_id) where parent_id is not null;
create index refresh_tokens_access_jti_idx on refresh_tokens (tenant_id, access_jti) where access_jti is not null;
