-- Runbook runs (/dr run): a runbook's steps as they were approved, each step's record across attempts and restarts,
-- and the run's approvals. One open run per runbook: the unique partial index settles a race of two requests.
CREATE TABLE runbook_runs (
  number           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  runbook          text NOT NULL,
  version          text NOT NULL,
  title            text NOT NULL,
  approval         text NOT NULL CHECK (approval IN ('once', 'each_step')),
  requested_by     text NOT NULL,
  requested_in     text NOT NULL,
  response_url     text,
  dry_run          boolean NOT NULL,
  -- stopped: a step failed and waits for Retry, Skip or Abort; aborting: Abort's undos still run on a worker;
  -- failed: a dry run that found gaps, or a run whose stored steps this version cannot run.
  state            text NOT NULL CHECK (state IN ('awaiting_approval', 'running', 'stopped', 'aborting', 'succeeded',
                                                  'failed', 'aborted', 'rejected', 'expired')),
  -- [{by, at, step}]: step is null for the run's one approval, else the index of the step it was given for.
  approvals        jsonb NOT NULL DEFAULT '[]',
  expires_at       timestamptz,
  decided_by       text,
  progress_channel text,
  progress_ts      text,
  outcome          jsonb,
  lease_owner      text,
  lease_until      timestamptz,
  lease_epoch      bigint NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- The first approval (a dry run: its start): where the RTO is counted from.
  started_at       timestamptz,
  -- When the last step that proves recovery (http_check) passed: where the RTO ends.
  recovered_at     timestamptz,
  finished_at      timestamptz
);
CREATE UNIQUE INDEX runbook_runs_one_open ON runbook_runs (runbook)
  WHERE state IN ('awaiting_approval', 'running', 'stopped', 'aborting');

CREATE TABLE runbook_steps (
  run           integer NOT NULL REFERENCES runbook_runs (number),
  step_index    integer NOT NULL,
  id            text NOT NULL,
  kind          text NOT NULL,
  -- As approved, with {{steps.<id>.<output>}} still in them: filled in when the step starts.
  params        jsonb NOT NULL,
  state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'awaiting_approval', 'awaiting_done',
                                                                 'running', 'succeeded', 'failed', 'skipped')),
  attempts      integer NOT NULL DEFAULT 0,
  started_at    timestamptz,
  finished_at   timestamptz,
  detail        text NOT NULL DEFAULT '',
  -- A dry run: what the step's plan found missing.
  missing       jsonb NOT NULL DEFAULT '[]',
  kind_state    jsonb NOT NULL DEFAULT '{}',
  outputs       jsonb,
  data_age_ms   bigint,
  -- Who clicked Done, Retry or Skip on it last.
  acted_by      text,
  -- What Abort's undo said it put back.
  undone        text,
  PRIMARY KEY (run, step_index)
);

-- The audit trail names the run an entry is about.
ALTER TABLE audit_log ADD COLUMN run integer;
CREATE INDEX audit_log_by_run ON audit_log (run, id) WHERE run IS NOT NULL;
