-- TOTP (RFC 6238) per user. Secrets are AES-256-GCM sealed with KEY_ENCRYPTION_KEY (SecretBox, context
-- "totp:<tenant_id>:<user_id>", so a ciphertext cannot be moved to another user's row); the *_kek_id
-- names the key that sealed it, so KEY_ENCRYPTION_KEY can rotate.
-- totp_pending_*: an enrolment awaiting its first code; it becomes the active secret only on confirmation.
-- totp_last_step: the last accepted 30 s step; only later steps are accepted, so a code works once.
alter table users add column totp_secret_enc text;
alter table users add column totp_secret_kek_id text;
alter table users add column totp_pending_enc text;
alter table users add column totp_pending_kek_id text;
alter table users add column totp_enabled boolean not null default false;
alter table users add column totp_last_step bigint;
alter table users add constraint users_totp_enabled_has_secret
  check (not totp_enabled or (totp_secret_enc is not null and totp_secret_kek_id is not null));

-- Narrow the runtime role's UPDATE on users to the columns the service writes: role and disabled
-- (users module), the TOTP columns (auth module), updated_at. id, tenant_id, email, password_hash
-- and created_at are never rewritten by a request.
revoke update on users from saas_runtime;
grant update (role, disabled, updated_at,
              totp_secret_enc, totp_secret_kek_id, totp_pending_enc, totp_pending_kek_id, totp_enabled, totp_last_step)
  on users to saas_runtime;
