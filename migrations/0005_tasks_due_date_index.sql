-- Keyset pagination of a project's tasks by due date; undated tasks sort as 'infinity'.
-- The expression must match the ORDER BY of src/modules/tasks/tasks.repo.ts.
create index tasks_tenant_project_due_idx on tasks (tenant_id, project_id, (coalesce(due_date, 'infinity'::date)), id);
