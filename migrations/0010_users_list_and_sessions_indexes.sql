-- Users are listed in creation order (keyset pagination, tenant first), and disabling a user
-- revokes their refresh tokens by user (deleting one cascades through the same key).
create index users_tenant_created_idx on users (tenant_id, created_at, id);
create index refresh_tokens_user_idx on refresh_tokens (tenant_id, user_id);
