-- The tenant transaction's actor check raises instead of returning a row to inspect, so that it can
-- ride inside a tenant statement (reads: one statement instead of two) and abort a write
-- transaction by itself, before any of the write's statements run. The check itself is an
-- expression built by the server (src/platform/db/tenant.ts); this function is what it calls to
-- refuse: one SQLSTATE per answer, mapped back by the server.
--   SA001 invalid_token     the tenant or the user does not exist, or the user is disabled
--   SA002 token_revoked     the access token is on the tenant's revocation list
--   SA003 forbidden         the user's current role is below the route's minimum
--   SA004 tenant_suspended  the tenant is not active
-- VOLATILE (the default), so the planner never folds a call ahead of the CASE branch that makes it.
create function tenant_actor_refuse(p_reason text) returns boolean
language plpgsql
set search_path = pg_catalog
as $$
begin
  case p_reason
    when 'invalid_token' then raise exception using errcode = 'SA001', message = 'tenant actor refused: invalid_token';
    when 'token_revoked' then raise exception using errcode = 'SA002', message = 'tenant actor refused: token_revoked';
    when 'forbidden' then raise exception using errcode = 'SA003', message = 'tenant actor refused: forbidden';
    when 'tenant_suspended' then raise exception using errcode = 'SA004', message = 'tenant actor refused: tenant_suspended';
    else raise exception using errcode = 'SA001', message = 'tenant actor refused: ' || p_reason;
  end case;
end $$;
revoke all on function tenant_actor_refuse(text) from public;
grant execute on function tenant_actor_refuse(text) to saas_runtime;
