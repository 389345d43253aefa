-- Recovery jobs (/dr), their steps, and the append-only audit trail.
CREATE TABLE recovery_jobs (
  number          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind            text NOT NULL,
  env             text NOT NULL,
  -- What the job changes; one active job per target (restore and drill of one env share 'env/database').
  target          text NOT NULL,
  params          jsonb NOT NULL,
  requested_by    text NOT NULL,
  requested_in    text NOT NULL,
  response_url    text,
  state           text NOT NULL CHECK (state IN ('planning', 'awaiting_approval', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'rejected', 'expired')),
  needs_approval  boolean NOT NULL,
  plan            text,
  approval_channel text,
  approval_ts     text,
  decided_by      text,
  decided_at      timestamptz,
  expires_at      timestamptz,
  cancel_requested_by text,
  progress_channel text,
  progress_ts     text,
  step_state      jsonb NOT NULL DEFAULT '{}',
  outcome         text,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at      timestamptz,
  finished_at     timestamptz
);
CREATE UNIQUE INDEX recovery_jobs_one_active_per_target ON recovery_jobs (target)
  WHERE state IN ('planning', 'awaiting_approval', 'queued', 'running');
CREATE INDEX recovery_jobs_active ON recovery_jobs (number)
  WHERE state IN ('planning', 'awaiting_approval', 'queued', 'running');

CREATE TABLE recovery_steps (
  job          integer NOT NULL REFERENCES recovery_jobs (number),
  step_index   integer NOT NULL,
  name         text NOT NULL,
  destructive  boolean NOT NULL,
  state        text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
  started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at  timestamptz,
  detail       text NOT NULL DEFAULT '',
  PRIMARY KEY (job, step_index)
);

CREATE TABLE audit_log (
  id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  env     text,
  job     integer,
  actor   text NOT NULL,
  action  text NOT NULL,
  detail  text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_by_env ON audit_log (env, id);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
